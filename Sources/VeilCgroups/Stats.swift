import FoundationEssentials
import Glibc
import VeilExchange

// MARK: reading

extension Cgroup {
    /// Current usage counters: v1 from cpuacct/cpu/cpuset/memory/pids/blkio/hugetlb, v2 from
    /// cpu.stat, cpuset.*.effective, memory.*, pids.*, io.stat and hugetlb.*. A controller that
    /// is not there leaves its part zero; a file that cannot be parsed is an error naming it.
    public func stats() throws(CgroupError) -> CgroupStats {
        if unifiedOnly {
            guard let dir = paths["unified"] else {
                throw CgroupError.controllerUnavailable(file: "cgroup2 hierarchy (no unified path recorded)")
            }
            return try Cgroup.statsV2(dir)
        }
        return try statsV1()
    }

    private func statsV1() throws(CgroupError) -> CgroupStats {
        var s = CgroupStats()
        if let dir = paths["cpuacct"] {
            s.cpu.usage.total = try StatFile.uint(dir + "/cpuacct.usage") ?? 0
            s.cpu.usage.percpu = try StatFile.uintList(dir + "/cpuacct.usage_percpu")
            if let text = try StatFile.read(dir + "/cpuacct.usage_all") {
                // "cpu user system" header, then one line per CPU in nanoseconds.
                for line in text.split(separator: "\n").dropFirst() {
                    let f = line.split(separator: " ", omittingEmptySubsequences: true)
                    guard f.count == 3, let user = UInt64(f[1]), let sys = UInt64(f[2]) else {
                        throw StatFile.bad(dir + "/cpuacct.usage_all", String(line))
                    }
                    s.cpu.usage.percpuUser.append(user)
                    s.cpu.usage.percpuKernel.append(sys)
                }
            }
            if let text = try StatFile.read(dir + "/cpuacct.stat") {
                // USER_HZ ticks.
                let ticks = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
                let kv = try StatFile.keyed(text, path: dir + "/cpuacct.stat")
                s.cpu.usage.user = (kv["user"] ?? 0) * 1_000_000_000 / ticks
                s.cpu.usage.kernel = (kv["system"] ?? 0) * 1_000_000_000 / ticks
            }
        }
        if let dir = paths["cpu"], let text = try StatFile.read(dir + "/cpu.stat") {
            let kv = try StatFile.keyed(text, path: dir + "/cpu.stat")
            s.cpu.throttling.periods = kv["nr_periods"] ?? 0
            s.cpu.throttling.throttledPeriods = kv["nr_throttled"] ?? 0
            s.cpu.throttling.throttledTime = kv["throttled_time"] ?? 0
        }
        if let dir = paths["cpuset"] {
            s.cpuset.cpus = try StatFile.cpuList(dir + "/cpuset.cpus")
            s.cpuset.mems = try StatFile.cpuList(dir + "/cpuset.mems")
            s.cpuset.cpuExclusive = try StatFile.uint(dir + "/cpuset.cpu_exclusive") ?? 0
            s.cpuset.memHardwall = try StatFile.uint(dir + "/cpuset.mem_hardwall") ?? 0
            s.cpuset.memExclusive = try StatFile.uint(dir + "/cpuset.mem_exclusive") ?? 0
            s.cpuset.memoryMigrate = try StatFile.uint(dir + "/cpuset.memory_migrate") ?? 0
            s.cpuset.memorySpreadPage = try StatFile.uint(dir + "/cpuset.memory_spread_page") ?? 0
            s.cpuset.memorySpreadSlab = try StatFile.uint(dir + "/cpuset.memory_spread_slab") ?? 0
            s.cpuset.memoryPressure = try StatFile.uint(dir + "/cpuset.memory_pressure") ?? 0
            s.cpuset.schedLoadBalance = try StatFile.uint(dir + "/cpuset.sched_load_balance") ?? 0
            if let text = try StatFile.read(dir + "/cpuset.sched_relax_domain_level") {
                let t = trimmed(text)
                guard let v = Int64(t) else { throw StatFile.bad(dir + "/cpuset.sched_relax_domain_level", t) }
                s.cpuset.schedRelaxDomainLevel = v
            }
        }
        if let dir = paths["memory"] {
            func entry(_ prefix: String) throws(CgroupError) -> MemoryEntry {
                var e = MemoryEntry()
                e.usage = try StatFile.uint(dir + "/\(prefix)usage_in_bytes") ?? 0
                e.max = try StatFile.uint(dir + "/\(prefix)max_usage_in_bytes") ?? 0
                e.failcnt = try StatFile.uint(dir + "/\(prefix)failcnt") ?? 0
                e.limit = try StatFile.uint(dir + "/\(prefix)limit_in_bytes") ?? 0
                return e
            }
            s.memory.usage = try entry("memory.")
            s.memory.swap = try entry("memory.memsw.")
            s.memory.kernel = try entry("memory.kmem.")
            s.memory.kernelTCP = try entry("memory.kmem.tcp.")
            if let text = try StatFile.read(dir + "/memory.stat") {
                s.memory.raw = try StatFile.keyed(text, path: dir + "/memory.stat")
            }
            s.memory.cache = s.memory.raw["cache"] ?? 0
        }
        if let dir = paths["pids"] {
            s.pids.current = try StatFile.uint(dir + "/pids.current") ?? 0
            let limit = try StatFile.uint(dir + "/pids.max") ?? 0
            s.pids.limit = limit == UInt64.max ? 0 : limit
        }
        if let dir = paths["blkio"] {
            s.blkio = try Cgroup.blkioV1(dir)
        }
        if let dir = paths["hugetlb"] {
            for (size, prefix) in try Cgroup.hugetlbSizes(dir, suffix: ".usage_in_bytes") {
                var h = HugetlbStats()
                h.usage = try StatFile.uint(prefix + ".usage_in_bytes") ?? 0
                h.max = try StatFile.uint(prefix + ".max_usage_in_bytes") ?? 0
                h.failcnt = try StatFile.uint(prefix + ".failcnt") ?? 0
                s.hugetlb[size] = h
            }
        }
        return s
    }

    /// CFQ's files when it has data, else BFQ's, else the throttle layer's (runc's order).
    static func blkioV1(_ dir: String) throws(CgroupError) -> BlkioStats {
        var b = BlkioStats()
        if let serviced = try StatFile.read(dir + "/blkio.io_serviced_recursive"), !trimmed(serviced).isEmpty {
            b.ioServiceBytesRecursive = try blkioEntries(dir + "/blkio.io_service_bytes_recursive")
            b.ioServicedRecursive = try blkioEntries(dir + "/blkio.io_serviced_recursive")
            b.ioQueuedRecursive = try blkioEntries(dir + "/blkio.io_queued_recursive")
            b.ioServiceTimeRecursive = try blkioEntries(dir + "/blkio.io_service_time_recursive")
            b.ioWaitTimeRecursive = try blkioEntries(dir + "/blkio.io_wait_time_recursive")
            b.ioMergedRecursive = try blkioEntries(dir + "/blkio.io_merged_recursive")
            b.ioTimeRecursive = try blkioEntries(dir + "/blkio.time_recursive")
            b.sectorsRecursive = try blkioEntries(dir + "/blkio.sectors_recursive")
            return b
        }
        let bfq = try blkioEntries(dir + "/blkio.bfq.io_serviced_recursive")
        if !bfq.isEmpty {
            b.ioServiceBytesRecursive = try blkioEntries(dir + "/blkio.bfq.io_service_bytes_recursive")
            b.ioServicedRecursive = bfq
            return b
        }
        b.ioServiceBytesRecursive = try blkioEntries(dir + "/blkio.throttle.io_service_bytes_recursive")
        b.ioServicedRecursive = try blkioEntries(dir + "/blkio.throttle.io_serviced_recursive")
        return b
    }

    /// "MAJ:MIN Op Value" lines (time/sectors files have "MAJ:MIN Value"); the "Total N" summary is skipped.
    static func blkioEntries(_ path: String) throws(CgroupError) -> [BlkioEntry] {
        guard let text = try StatFile.read(path) else { return [] }
        var out: [BlkioEntry] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 2, f[0] != "Total" else { continue }
            let dev = f[0].split(separator: ":")
            guard dev.count == 2, let major = UInt64(dev[0]), let minor = UInt64(dev[1]) else {
                throw StatFile.bad(path, String(line))
            }
            let op = f.count >= 3 ? f[1] : ""
            guard let value = UInt64(f[f.count - 1]) else { throw StatFile.bad(path, String(line)) }
            out.append(BlkioEntry(major: major, minor: minor, op: op, value: value))
        }
        return out
    }

    /// Page sizes with hugetlb files in `dir`: ("2MB", "<dir>/hugetlb.2MB").
    static func hugetlbSizes(_ dir: String, suffix: String) throws(CgroupError) -> [(String, String)] {
        try SysFS.files(dir).compactMap { name -> (String, String)? in
            guard name.hasPrefix("hugetlb."), name.hasSuffix(suffix) else { return nil }
            let size = String(name.dropFirst("hugetlb.".count).dropLast(suffix.count))
            guard !size.isEmpty, !size.contains(".") else { return nil }  // skips hugetlb.2MB.rsvd.*
            return (size, dir + "/hugetlb." + size)
        }.sorted { $0.0 < $1.0 }
    }

    static func statsV2(_ dir: String) throws(CgroupError) -> CgroupStats {
        var s = CgroupStats()
        if let text = try StatFile.read(dir + "/cpu.stat") {
            let kv = try StatFile.keyed(text, path: dir + "/cpu.stat")
            s.cpu.usage.total = (kv["usage_usec"] ?? 0) * 1000
            s.cpu.usage.user = (kv["user_usec"] ?? 0) * 1000
            s.cpu.usage.kernel = (kv["system_usec"] ?? 0) * 1000
            s.cpu.throttling.periods = kv["nr_periods"] ?? 0
            s.cpu.throttling.throttledPeriods = kv["nr_throttled"] ?? 0
            s.cpu.throttling.throttledTime = (kv["throttled_usec"] ?? 0) * 1000
        }
        s.cpuset.cpus = try StatFile.cpuList(dir + "/cpuset.cpus.effective")
        s.cpuset.mems = try StatFile.cpuList(dir + "/cpuset.mems.effective")
        if let usage = try StatFile.uint(dir + "/memory.current") {
            s.memory.usage.usage = usage
            s.memory.usage.limit = try StatFile.uint(dir + "/memory.max") ?? UInt64.max
            s.memory.usage.max = try StatFile.uint(dir + "/memory.peak") ?? 0
            // v1 reported memory+swap; runc adds memory to v2's swap-only numbers.
            if let swap = try StatFile.uint(dir + "/memory.swap.current") {
                s.memory.swap.usage = swap + usage
                let swapLimit = try StatFile.uint(dir + "/memory.swap.max") ?? UInt64.max
                s.memory.swap.limit = swapLimit == UInt64.max || s.memory.usage.limit == UInt64.max
                    ? UInt64.max : swapLimit &+ s.memory.usage.limit
            }
        }
        if let text = try StatFile.read(dir + "/memory.stat") {
            s.memory.raw = try StatFile.keyed(text, path: dir + "/memory.stat")
            s.memory.cache = s.memory.raw["file"] ?? 0
        }
        s.pids.current = try StatFile.uint(dir + "/pids.current") ?? 0
        let pidsMax = try StatFile.uint(dir + "/pids.max") ?? 0
        s.pids.limit = pidsMax == UInt64.max ? 0 : pidsMax
        if let text = try StatFile.read(dir + "/io.stat") {
            // "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N", mapped to v1's tables.
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard let first = f.first else { continue }
                let dev = first.split(separator: ":")
                guard dev.count == 2, let major = UInt64(dev[0]), let minor = UInt64(dev[1]) else {
                    throw StatFile.bad(dir + "/io.stat", String(line))
                }
                for item in f.dropFirst() {
                    let kv = item.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2 else { continue }
                    let op: String
                    let bytes: Bool
                    switch kv[0] {
                    case "rbytes": (op, bytes) = ("Read", true)
                    case "wbytes": (op, bytes) = ("Write", true)
                    case "rios": (op, bytes) = ("Read", false)
                    case "wios": (op, bytes) = ("Write", false)
                    default: continue
                    }
                    guard let value = UInt64(kv[1]) else { throw StatFile.bad(dir + "/io.stat", String(line)) }
                    let e = BlkioEntry(major: major, minor: minor, op: op, value: value)
                    if bytes { s.blkio.ioServiceBytesRecursive.append(e) } else { s.blkio.ioServicedRecursive.append(e) }
                }
            }
        }
        for (size, prefix) in try hugetlbSizes(dir, suffix: ".current") {
            var h = HugetlbStats()
            h.usage = try StatFile.uint(prefix + ".current") ?? 0
            h.max = try StatFile.uint(prefix + ".max") ?? 0
            if let text = try StatFile.read(prefix + ".events") {
                h.failcnt = Cgroup.keyedValue(text, "max") ?? 0
            }
            s.hugetlb[size] = h
        }
        return s
    }
}

/// Tolerant readers for stats: a missing file is "no data", a malformed one an error naming it.
enum StatFile {
    static func read(_ path: String) throws(CgroupError) -> String? {
        do { return try SysFS.read(path) } catch {
            if case .io(_, _, let err) = error, err == ENOENT || err == ENODEV || err == EOPNOTSUPP { return nil }
            throw error
        }
    }

    static func bad(_ path: String, _ content: String) -> CgroupError {
        .invalidResource(field: path, value: content, reason: "unexpected content in kernel file")
    }

    /// A single number; "max" reads as UInt64.max.
    static func uint(_ path: String) throws(CgroupError) -> UInt64? {
        guard let text = try read(path) else { return nil }
        let t = trimmed(text)
        if t == "max" { return UInt64.max }
        guard let v = UInt64(t) else { throw bad(path, t) }
        return v
    }

    static func uintList(_ path: String) throws(CgroupError) -> [UInt64] {
        guard let text = try read(path) else { return [] }
        return try text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { (word) throws(CgroupError) -> UInt64 in
            guard let v = UInt64(word) else { throw bad(path, String(word)) }
            return v
        }
    }

    /// "key value" lines; lines whose value is not a number (memory.stat has none today) are skipped.
    static func keyed(_ text: String, path: String) throws(CgroupError) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count == 2 else { continue }
            guard let v = UInt64(f[1]) else { throw bad(path, String(line)) }
            out[String(f[0])] = v
        }
        return out
    }

    /// "0-3,7" -> [0, 1, 2, 3, 7].
    static func cpuList(_ path: String) throws(CgroupError) -> [UInt16] {
        guard let text = try read(path) else { return [] }
        return try parseList(trimmed(text), path: path)
    }

    static func parseList(_ t: String, path: String) throws(CgroupError) -> [UInt16] {
        var out: [UInt16] = []
        for part in t.split(separator: ",") {
            let range = part.split(separator: "-")
            if range.count == 1, let v = UInt16(range[0]) {
                out.append(v)
            } else if range.count == 2, let a = UInt16(range[0]), let b = UInt16(range[1]), a <= b {
                out.append(contentsOf: a...b)
            } else {
                throw bad(path, t)
            }
        }
        return out
    }
}

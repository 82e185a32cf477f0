import FoundationEssentials
import Glibc

/// A cgroup's usage counters in the JSON shape of runc's `events --stats` "data" object
/// (runc types/events.go): the same key names, Go's `omitempty` (zero numbers, empty lists and
/// maps left out), and "intel_rdt"/"network_interfaces", which cgroups do not provide, as runc
/// prints them when unset ({} and null). Units as runc: nanoseconds for CPU, bytes for memory.
public struct CgroupStats: Sendable, Codable, Equatable {
    public var cpu = CPUStats()
    public var cpuset = CPUSetStats()
    public var memory = MemoryStats()
    public var pids = PidsStats()
    public var blkio = BlkioStats()
    /// Page size as runc spells it ("2MB") -> counters.
    public var hugetlb: [String: HugetlbStats] = [:]
    /// Filled by the caller (runc reads /proc/<pid>/net/dev in the container's namespace); nil prints null.
    public var networkInterfaces: [NetworkInterfaceStats]?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case cpu, cpuset, memory, pids, blkio, hugetlb
        case intelRdt = "intel_rdt"
        case networkInterfaces = "network_interfaces"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cpu, forKey: .cpu)
        try c.encode(cpuset, forKey: .cpuset)
        try c.encode(memory, forKey: .memory)
        try c.encode(pids, forKey: .pids)
        try c.encode(blkio, forKey: .blkio)
        try c.encode(hugetlb, forKey: .hugetlb)
        try c.encode([String: UInt64](), forKey: .intelRdt)
        if let networkInterfaces {
            try c.encode(networkInterfaces, forKey: .networkInterfaces)
        } else {
            try c.encodeNil(forKey: .networkInterfaces)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpu = try c.decodeIfPresent(CPUStats.self, forKey: .cpu) ?? CPUStats()
        cpuset = try c.decodeIfPresent(CPUSetStats.self, forKey: .cpuset) ?? CPUSetStats()
        memory = try c.decodeIfPresent(MemoryStats.self, forKey: .memory) ?? MemoryStats()
        pids = try c.decodeIfPresent(PidsStats.self, forKey: .pids) ?? PidsStats()
        blkio = try c.decodeIfPresent(BlkioStats.self, forKey: .blkio) ?? BlkioStats()
        hugetlb = try c.decodeIfPresent([String: HugetlbStats].self, forKey: .hugetlb) ?? [:]
        networkInterfaces = try c.decodeIfPresent([NetworkInterfaceStats].self, forKey: .networkInterfaces)
    }
}

public struct CPUUsage: Sendable, Codable, Equatable {
    public var total: UInt64 = 0
    public var percpu: [UInt64] = []
    public var percpuKernel: [UInt64] = []
    public var percpuUser: [UInt64] = []
    public var kernel: UInt64 = 0
    public var user: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case total, percpu, kernel, user
        case percpuKernel = "percpu_kernel"
        case percpuUser = "percpu_user"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(total, forKey: .total)
        try c.encodeNonEmpty(percpu, forKey: .percpu)
        try c.encodeNonEmpty(percpuKernel, forKey: .percpuKernel)
        try c.encodeNonEmpty(percpuUser, forKey: .percpuUser)
        try c.encode(kernel, forKey: .kernel)
        try c.encode(user, forKey: .user)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        total = try c.decodeIfPresent(UInt64.self, forKey: .total) ?? 0
        percpu = try c.decodeIfPresent([UInt64].self, forKey: .percpu) ?? []
        percpuKernel = try c.decodeIfPresent([UInt64].self, forKey: .percpuKernel) ?? []
        percpuUser = try c.decodeIfPresent([UInt64].self, forKey: .percpuUser) ?? []
        kernel = try c.decodeIfPresent(UInt64.self, forKey: .kernel) ?? 0
        user = try c.decodeIfPresent(UInt64.self, forKey: .user) ?? 0
    }
}

public struct Throttling: Sendable, Codable, Equatable {
    public var periods: UInt64 = 0
    public var throttledPeriods: UInt64 = 0
    /// Nanoseconds.
    public var throttledTime: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case periods, throttledPeriods, throttledTime }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(periods, forKey: .periods)
        try c.encodeNonZero(throttledPeriods, forKey: .throttledPeriods)
        try c.encodeNonZero(throttledTime, forKey: .throttledTime)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        periods = try c.decodeIfPresent(UInt64.self, forKey: .periods) ?? 0
        throttledPeriods = try c.decodeIfPresent(UInt64.self, forKey: .throttledPeriods) ?? 0
        throttledTime = try c.decodeIfPresent(UInt64.self, forKey: .throttledTime) ?? 0
    }
}

public struct CPUStats: Sendable, Codable, Equatable {
    public var usage = CPUUsage()
    public var throttling = Throttling()
    public init() {}
}

public struct CPUSetStats: Sendable, Codable, Equatable {
    public var cpus: [UInt16] = []
    public var cpuExclusive: UInt64 = 0
    public var mems: [UInt16] = []
    public var memHardwall: UInt64 = 0
    public var memExclusive: UInt64 = 0
    public var memoryMigrate: UInt64 = 0
    public var memorySpreadPage: UInt64 = 0
    public var memorySpreadSlab: UInt64 = 0
    public var memoryPressure: UInt64 = 0
    public var schedLoadBalance: UInt64 = 0
    public var schedRelaxDomainLevel: Int64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case cpus, mems
        case cpuExclusive = "cpu_exclusive"
        case memHardwall = "mem_hardwall"
        case memExclusive = "mem_exclusive"
        case memoryMigrate = "memory_migrate"
        case memorySpreadPage = "memory_spread_page"
        case memorySpreadSlab = "memory_spread_slab"
        case memoryPressure = "memory_pressure"
        case schedLoadBalance = "sched_load_balance"
        case schedRelaxDomainLevel = "sched_relax_domain_level"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonEmpty(cpus, forKey: .cpus)
        try c.encode(cpuExclusive, forKey: .cpuExclusive)
        try c.encodeNonEmpty(mems, forKey: .mems)
        try c.encode(memHardwall, forKey: .memHardwall)
        try c.encode(memExclusive, forKey: .memExclusive)
        try c.encode(memoryMigrate, forKey: .memoryMigrate)
        try c.encode(memorySpreadPage, forKey: .memorySpreadPage)
        try c.encode(memorySpreadSlab, forKey: .memorySpreadSlab)
        try c.encode(memoryPressure, forKey: .memoryPressure)
        try c.encode(schedLoadBalance, forKey: .schedLoadBalance)
        try c.encode(schedRelaxDomainLevel, forKey: .schedRelaxDomainLevel)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpus = try c.decodeIfPresent([UInt16].self, forKey: .cpus) ?? []
        mems = try c.decodeIfPresent([UInt16].self, forKey: .mems) ?? []
        cpuExclusive = try c.decodeIfPresent(UInt64.self, forKey: .cpuExclusive) ?? 0
        memHardwall = try c.decodeIfPresent(UInt64.self, forKey: .memHardwall) ?? 0
        memExclusive = try c.decodeIfPresent(UInt64.self, forKey: .memExclusive) ?? 0
        memoryMigrate = try c.decodeIfPresent(UInt64.self, forKey: .memoryMigrate) ?? 0
        memorySpreadPage = try c.decodeIfPresent(UInt64.self, forKey: .memorySpreadPage) ?? 0
        memorySpreadSlab = try c.decodeIfPresent(UInt64.self, forKey: .memorySpreadSlab) ?? 0
        memoryPressure = try c.decodeIfPresent(UInt64.self, forKey: .memoryPressure) ?? 0
        schedLoadBalance = try c.decodeIfPresent(UInt64.self, forKey: .schedLoadBalance) ?? 0
        schedRelaxDomainLevel = try c.decodeIfPresent(Int64.self, forKey: .schedRelaxDomainLevel) ?? 0
    }
}

public struct MemoryEntry: Sendable, Codable, Equatable {
    public var limit: UInt64 = 0
    public var usage: UInt64 = 0
    public var max: UInt64 = 0
    public var failcnt: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case limit, usage, max, failcnt }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(limit, forKey: .limit)
        try c.encodeNonZero(usage, forKey: .usage)
        try c.encodeNonZero(max, forKey: .max)
        try c.encode(failcnt, forKey: .failcnt)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        limit = try c.decodeIfPresent(UInt64.self, forKey: .limit) ?? 0
        usage = try c.decodeIfPresent(UInt64.self, forKey: .usage) ?? 0
        max = try c.decodeIfPresent(UInt64.self, forKey: .max) ?? 0
        failcnt = try c.decodeIfPresent(UInt64.self, forKey: .failcnt) ?? 0
    }
}

public struct MemoryStats: Sendable, Codable, Equatable {
    public var cache: UInt64 = 0
    public var usage = MemoryEntry()
    /// v1 semantics (memory+swap) on both versions, as runc.
    public var swap = MemoryEntry()
    public var kernel = MemoryEntry()
    public var kernelTCP = MemoryEntry()
    /// memory.stat as is.
    public var raw: [String: UInt64] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey { case cache, usage, swap, kernel, kernelTCP, raw }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(cache, forKey: .cache)
        try c.encode(usage, forKey: .usage)
        try c.encode(swap, forKey: .swap)
        try c.encode(kernel, forKey: .kernel)
        try c.encode(kernelTCP, forKey: .kernelTCP)
        if !raw.isEmpty { try c.encode(raw, forKey: .raw) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cache = try c.decodeIfPresent(UInt64.self, forKey: .cache) ?? 0
        usage = try c.decodeIfPresent(MemoryEntry.self, forKey: .usage) ?? MemoryEntry()
        swap = try c.decodeIfPresent(MemoryEntry.self, forKey: .swap) ?? MemoryEntry()
        kernel = try c.decodeIfPresent(MemoryEntry.self, forKey: .kernel) ?? MemoryEntry()
        kernelTCP = try c.decodeIfPresent(MemoryEntry.self, forKey: .kernelTCP) ?? MemoryEntry()
        raw = try c.decodeIfPresent([String: UInt64].self, forKey: .raw) ?? [:]
    }
}

public struct PidsStats: Sendable, Codable, Equatable {
    public var current: UInt64 = 0
    /// 0 = no limit.
    public var limit: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case current, limit }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(current, forKey: .current)
        try c.encodeNonZero(limit, forKey: .limit)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        current = try c.decodeIfPresent(UInt64.self, forKey: .current) ?? 0
        limit = try c.decodeIfPresent(UInt64.self, forKey: .limit) ?? 0
    }
}

public struct BlkioEntry: Sendable, Codable, Equatable {
    public var major: UInt64 = 0
    public var minor: UInt64 = 0
    public var op: String = ""
    public var value: UInt64 = 0

    public init(major: UInt64 = 0, minor: UInt64 = 0, op: String = "", value: UInt64 = 0) {
        self.major = major
        self.minor = minor
        self.op = op
        self.value = value
    }

    enum CodingKeys: String, CodingKey { case major, minor, op, value }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(major, forKey: .major)
        try c.encodeNonZero(minor, forKey: .minor)
        if !op.isEmpty { try c.encode(op, forKey: .op) }
        try c.encodeNonZero(value, forKey: .value)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        major = try c.decodeIfPresent(UInt64.self, forKey: .major) ?? 0
        minor = try c.decodeIfPresent(UInt64.self, forKey: .minor) ?? 0
        op = try c.decodeIfPresent(String.self, forKey: .op) ?? ""
        value = try c.decodeIfPresent(UInt64.self, forKey: .value) ?? 0
    }
}

public struct BlkioStats: Sendable, Codable, Equatable {
    public var ioServiceBytesRecursive: [BlkioEntry] = []
    public var ioServicedRecursive: [BlkioEntry] = []
    public var ioQueuedRecursive: [BlkioEntry] = []
    public var ioServiceTimeRecursive: [BlkioEntry] = []
    public var ioWaitTimeRecursive: [BlkioEntry] = []
    public var ioMergedRecursive: [BlkioEntry] = []
    public var ioTimeRecursive: [BlkioEntry] = []
    public var sectorsRecursive: [BlkioEntry] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case ioServiceBytesRecursive, ioServicedRecursive, ioServiceTimeRecursive, ioWaitTimeRecursive
        case ioMergedRecursive, ioTimeRecursive, sectorsRecursive
        case ioQueuedRecursive = "ioQueueRecursive"  // runc's spelling
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonEmpty(ioServiceBytesRecursive, forKey: .ioServiceBytesRecursive)
        try c.encodeNonEmpty(ioServicedRecursive, forKey: .ioServicedRecursive)
        try c.encodeNonEmpty(ioQueuedRecursive, forKey: .ioQueuedRecursive)
        try c.encodeNonEmpty(ioServiceTimeRecursive, forKey: .ioServiceTimeRecursive)
        try c.encodeNonEmpty(ioWaitTimeRecursive, forKey: .ioWaitTimeRecursive)
        try c.encodeNonEmpty(ioMergedRecursive, forKey: .ioMergedRecursive)
        try c.encodeNonEmpty(ioTimeRecursive, forKey: .ioTimeRecursive)
        try c.encodeNonEmpty(sectorsRecursive, forKey: .sectorsRecursive)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func list(_ k: CodingKeys) throws -> [BlkioEntry] { try c.decodeIfPresent([BlkioEntry].self, forKey: k) ?? [] }
        ioServiceBytesRecursive = try list(.ioServiceBytesRecursive)
        ioServicedRecursive = try list(.ioServicedRecursive)
        ioQueuedRecursive = try list(.ioQueuedRecursive)
        ioServiceTimeRecursive = try list(.ioServiceTimeRecursive)
        ioWaitTimeRecursive = try list(.ioWaitTimeRecursive)
        ioMergedRecursive = try list(.ioMergedRecursive)
        ioTimeRecursive = try list(.ioTimeRecursive)
        sectorsRecursive = try list(.sectorsRecursive)
    }
}

public struct HugetlbStats: Sendable, Codable, Equatable {
    public var usage: UInt64 = 0
    public var max: UInt64 = 0
    public var failcnt: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case usage, max, failcnt }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNonZero(usage, forKey: .usage)
        try c.encodeNonZero(max, forKey: .max)
        try c.encode(failcnt, forKey: .failcnt)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        usage = try c.decodeIfPresent(UInt64.self, forKey: .usage) ?? 0
        max = try c.decodeIfPresent(UInt64.self, forKey: .max) ?? 0
        failcnt = try c.decodeIfPresent(UInt64.self, forKey: .failcnt) ?? 0
    }
}

/// runc's NetworkInterface (Go field names as JSON keys: it has no json tags).
public struct NetworkInterfaceStats: Sendable, Codable, Equatable {
    public var name: String
    public var rxBytes: UInt64 = 0
    public var rxPackets: UInt64 = 0
    public var rxErrors: UInt64 = 0
    public var rxDropped: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txErrors: UInt64 = 0
    public var txDropped: UInt64 = 0

    public init(name: String) { self.name = name }

    enum CodingKeys: String, CodingKey {
        case name = "Name", rxBytes = "RxBytes", rxPackets = "RxPackets", rxErrors = "RxErrors", rxDropped = "RxDropped"
        case txBytes = "TxBytes", txPackets = "TxPackets", txErrors = "TxErrors", txDropped = "TxDropped"
    }
}

extension KeyedEncodingContainer {
    mutating func encodeNonZero(_ v: UInt64, forKey key: Key) throws {
        if v != 0 { try encode(v, forKey: key) }
    }

    mutating func encodeNonEmpty<T: Encodable>(_ v: [T], forKey key: Key) throws {
        if !v.isEmpty { try encode(v, forKey: key) }
    }
}

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

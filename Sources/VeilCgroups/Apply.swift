import FoundationEssentials
import Glibc

/// The writes one `apply` will make, computed (and validated) in full before the first one
/// happens: a bad value or a missing controller file is reported with nothing changed.
/// Only a kernel refusal in the middle (EINVAL, EBUSY) can leave earlier writes in place.
struct WritePlan {
    enum Step {
        case write(path: String, value: String)
        /// Work that needs a decision at write time (retry orders, bpf); `files` must exist.
        case action(files: [String], run: () throws(CgroupError) -> Void)
    }

    var steps: [Step] = []

    mutating func write(_ path: String, _ value: String) {
        steps.append(.write(path: path, value: value))
    }

    mutating func action(files: [String], _ run: @escaping () throws(CgroupError) -> Void) {
        steps.append(.action(files: files, run: run))
    }

    /// The (path, value) pairs of plain writes, in order (tests, debugging).
    var writes: [(String, String)] {
        steps.compactMap { if case .write(let p, let v) = $0 { return (p, v) } else { return nil } }
    }

    func checkFiles() throws(CgroupError) {
        var checked: Set<String> = []  // device rules write one file many times
        for step in steps {
            let files: [String]
            switch step {
            case .write(let path, _): files = [path]
            case .action(let paths, _): files = paths
            }
            for path in files where checked.insert(path).inserted && !SysFS.exists(path) {
                throw CgroupError.controllerUnavailable(file: path)
            }
        }
    }

    func run() throws(CgroupError) {
        try checkFiles()
        for step in steps {
            switch step {
            case .write(let path, let value): try SysFS.write(path, value)
            case .action(_, let body): try body()
            }
        }
    }
}

extension Cgroup {
    /// Writes the resource limits. Fields left nil (or empty) are not touched, so the same call
    /// serves `create` and `update`. Every value is validated and every target file checked
    /// before the first write.
    public func apply(_ r: CgroupResources) throws(CgroupError) {
        try plan(r).run()
    }

    /// `runc update`: applies only the fields that are set, refusing (with
    /// `memoryCheckBeforeUpdate`) a memory limit below the current usage. Device rules are
    /// replaced only when `r.devices` is non-empty.
    public func update(_ r: CgroupResources) throws(CgroupError) {
        try apply(r)
    }

    /// The writes `apply` would make, validated, without making them.
    func plan(_ r: CgroupResources) throws(CgroupError) -> WritePlan {
        var plan = WritePlan()
        if unifiedOnly {
            try planV2(r, into: &plan)
        } else {
            try planV1(r, into: &plan)
        }
        return plan
    }

    /// Directory of a v1 controller, or an error naming the field that needs it.
    private func v1Dir(_ controller: String, for field: String) throws(CgroupError) -> String {
        guard let dir = paths[controller] else {
            throw CgroupError.controllerUnavailable(
                file: "/sys/fs/cgroup/\(controller) (controller \(controller) is not mounted; needed by \(field))")
        }
        return dir
    }

    // MARK: cgroup v1

    private func planV1(_ r: CgroupResources, into plan: inout WritePlan) throws(CgroupError) {
        if !r.unified.isEmpty {
            throw CgroupError.unsupported(
                field: "unified (\(r.unified.keys.sorted().joined(separator: ", ")))",
                reason: "unified resources need cgroup v2; this host's controllers are cgroup v1")
        }
        // runc's subsystem order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls,
        // net_prio, rdma.
        if r.cpusetCpus != nil || r.cpusetMems != nil {
            let dir = try v1Dir("cpuset", for: "cpu.cpus/cpu.mems")
            if let cpus = r.cpusetCpus { plan.write(dir + "/cpuset.cpus", cpus) }
            if let mems = r.cpusetMems { plan.write(dir + "/cpuset.mems", mems) }
        }
        if !r.devices.isEmpty {
            let dir = try v1Dir("devices", for: "devices")
            // Validate every rule before denying everything, so a typo cannot leave the
            // container with no devices at all.
            let lines = try r.devices.map { (device) throws(CgroupError) in (device.allow, try device.cgroupV1Line()) }
            plan.write(dir + "/devices.deny", "a")
            for (allow, line) in lines {
                plan.write(dir + (allow ? "/devices.allow" : "/devices.deny"), line)
            }
        }
        try planMemoryV1(r, into: &plan)
        try planCpuV1(r, into: &plan)
        if let pids = r.pidsLimit {
            plan.write(try v1Dir("pids", for: "pids.limit") + "/pids.max", pids <= 0 ? "max" : String(pids))
        }
        try planBlkioV1(r, into: &plan)
        if !r.hugepageLimits.isEmpty {
            let dir = try v1Dir("hugetlb", for: "hugepageLimits")
            for h in r.hugepageLimits {
                let size = try validPageSize(h.pageSize)
                plan.write(dir + "/hugetlb.\(size).limit_in_bytes", String(h.limit))
                // Reservations (kernel 5.7+) follow the limit when the kernel has them, as runc 1.2.
                let rsvd = dir + "/hugetlb.\(size).rsvd.limit_in_bytes"
                if SysFS.exists(rsvd) { plan.write(rsvd, String(h.limit)) }
            }
        }
        if let classID = r.networkClassID, classID != 0 {
            plan.write(try v1Dir("net_cls", for: "network.classID") + "/net_cls.classid", String(classID))
        }
        if !r.networkPriorities.isEmpty {
            let dir = try v1Dir("net_prio", for: "network.priorities")
            for p in r.networkPriorities {
                plan.write(dir + "/net_prio.ifpriomap", "\(try interfaceName(p.name)) \(p.priority)")
            }
        }
        if !r.rdma.isEmpty {
            let dir = try v1Dir("rdma", for: "rdma")
            for line in try rdmaLines(r.rdma) { plan.write(dir + "/rdma.max", line) }
        }
    }

    private func planMemoryV1(_ r: CgroupResources, into plan: inout WritePlan) throws(CgroupError) {
        let limit = try r.memoryLimit.flatMap { (value) throws(CgroupError) in try memoryValue(value, field: "memory.limit") }
        var swap = try r.memorySwap.flatMap { (value) throws(CgroupError) in try memoryValue(value, field: "memory.swap") }
        let reservation = try r.memoryReservation.flatMap { (value) throws(CgroupError) in try memoryValue(value, field: "memory.reservation") }
        let swappiness = try r.memorySwappiness.flatMap { (value) throws(CgroupError) in try swappinessValue(value) }
        let disableOOM = r.memoryDisableOOMKiller == true
        // memory.kernel / memory.kernelTCP are ignored, as runc 1.1+ does: the kernel
        // deprecated kmem limits (writes fail with ENOTSUPP on 6.x).
        guard limit != nil || swap != nil || reservation != nil || swappiness != nil || disableOOM else { return }
        let dir = try v1Dir("memory", for: "memory")
        let limitFile = dir + "/memory.limit_in_bytes"
        let swapFile = dir + "/memory.memsw.limit_in_bytes"
        // Unlimited memory with swap unspecified means unlimited swap too (as runc), otherwise
        // the old memsw limit would keep capping the container.
        if limit == -1 && swap == nil { swap = -1 }
        // Swap accounting may be disabled (no memsw files): then there is nothing to limit.
        if !SysFS.exists(swapFile) { swap = nil }
        if r.memoryCheckBeforeUpdate == true {
            try checkUsage(limit: limit, swap: swap, usageFile: dir + "/memory.usage_in_bytes",
                           swapUsageFile: dir + "/memory.memsw.usage_in_bytes", swapIncludesMemory: true)
        }

        if let limit, let swap {
            // The kernel requires memsw >= limit at every moment, so the order of the two
            // writes depends on whether the limit grows past the current memsw.
            let current = try readUInt(limitFile)
            if swap == -1 || current < UInt64(swap) {
                plan.write(swapFile, String(swap))
                plan.write(limitFile, String(limit))
            } else {
                plan.write(limitFile, String(limit))
                plan.write(swapFile, String(swap))
            }
        } else {
            if let limit { plan.write(limitFile, String(limit)) }
            if let swap { plan.write(swapFile, String(swap)) }
        }
        if let reservation { plan.write(dir + "/memory.soft_limit_in_bytes", String(reservation)) }
        if let swappiness { plan.write(dir + "/memory.swappiness", String(swappiness)) }
        if disableOOM { plan.write(dir + "/memory.oom_control", "1") }
    }

    private func planCpuV1(_ r: CgroupResources, into plan: inout WritePlan) throws(CgroupError) {
        let shares = r.cpuShares.flatMap { $0 == 0 ? nil : $0 }
        let rtPeriod = r.cpuRealtimePeriod.flatMap { $0 == 0 ? nil : $0 }
        let rtRuntime = r.cpuRealtimeRuntime.flatMap { $0 == 0 ? nil : $0 }
        if let rtRuntime, rtRuntime < -1 {
            throw CgroupError.invalidResource(field: "cpu.realtimeRuntime", value: String(rtRuntime), reason: "must be >= 0 or -1 for unlimited")
        }
        let idle = try r.cpuIdle.map { (value) throws(CgroupError) in try idleValue(value) }
        guard shares != nil || r.cpuQuota != nil || r.cpuPeriod != nil || r.cpuBurst != nil
            || rtPeriod != nil || rtRuntime != nil || idle != nil else { return }
        let dir = try v1Dir("cpu", for: "cpu")
        if let shares {
            let file = dir + "/cpu.shares"
            plan.action(files: [file]) { () throws(CgroupError) in
                try SysFS.write(file, String(shares))
                // The kernel clamps silently; report it as runc does.
                let got = try readUInt(file)
                if got != shares {
                    throw CgroupError.invalidResource(field: "cpu.shares", value: String(shares),
                                                      reason: "the kernel clamped it to \(got) (allowed range is 2...262144)")
                }
            }
        }
        // Realtime: period before runtime, as runc.
        if let rtPeriod { plan.write(dir + "/cpu.rt_period_us", String(rtPeriod)) }
        if let rtRuntime { plan.write(dir + "/cpu.rt_runtime_us", String(rtRuntime)) }
        if r.cpuPeriod != nil || r.cpuQuota != nil {
            let periodFile = dir + "/cpu.cfs_period_us"
            let quotaFile = dir + "/cpu.cfs_quota_us"
            let period = r.cpuPeriod.flatMap { $0 == 0 ? nil : $0 }
            let quota = r.cpuQuota
            plan.action(files: [periodFile, quotaFile]) { () throws(CgroupError) in
                var periodPending = false
                if let period {
                    do throws(CgroupError) {
                        try SysFS.write(periodFile, String(period))
                    } catch .writeFailed(_, _, let err) where err == EINVAL && quota != nil {
                        // A smaller period can be refused while the old quota/period ratio would exceed
                        // the parent's; it fits once the new quota is in, so retry after it (as runc).
                        periodPending = true
                    }
                }
                if let quota {
                    try SysFS.write(quotaFile, quota <= 0 ? "-1" : String(quota))
                }
                if periodPending, let period {
                    try SysFS.write(periodFile, String(period))
                }
            }
        }
        if let burst = r.cpuBurst { plan.write(dir + "/cpu.cfs_burst_us", String(burst)) }
        // Last: an idle group refuses cpu.shares writes.
        if let idle { plan.write(dir + "/cpu.idle", String(idle)) }
    }

    private func planBlkioV1(_ r: CgroupResources, into plan: inout WritePlan) throws(CgroupError) {
        let weight = try r.blockIOWeight.flatMap { (value) throws(CgroupError) in try blkioWeight(value, field: "blockIO.weight") }
        let leafWeight = try r.blockIOLeafWeight.flatMap { (value) throws(CgroupError) in try blkioWeight(value, field: "blockIO.leafWeight") }
        let throttles = try throttleLines(r)
        var weightDevices: [(weight: String?, leaf: String?)] = []
        for (i, wd) in r.blockIOWeightDevices.enumerated() {
            let field = "blockIO.weightDevice[\(i)]"
            let dev = try deviceNumbers(wd.major, wd.minor, field: field)
            let w = try wd.weight.flatMap { (value) throws(CgroupError) in try blkioWeight(value, field: field + ".weight") }
            let l = try wd.leafWeight.flatMap { (value) throws(CgroupError) in try blkioWeight(value, field: field + ".leafWeight") }
            weightDevices.append((w.map { "\(dev) \($0)" }, l.map { "\(dev) \($0)" }))
        }
        guard weight != nil || leafWeight != nil || !throttles.isEmpty || !weightDevices.isEmpty else { return }
        let dir = try v1Dir("blkio", for: "blockIO")
        // CFQ (kernels before 5.0) has blkio.weight; BFQ names its files blkio.bfq.*.
        let cfq = SysFS.exists(dir + "/blkio.weight")
        let weightFile = dir + (cfq ? "/blkio.weight" : "/blkio.bfq.weight")
        let weightDeviceFile = dir + (cfq ? "/blkio.weight_device" : "/blkio.bfq.weight_device")
        if let weight { plan.write(weightFile, String(weight)) }
        if let leafWeight { plan.write(dir + "/blkio.leaf_weight", String(leafWeight)) }
        for wd in weightDevices {
            if let w = wd.weight { plan.write(weightDeviceFile, w) }
            if let l = wd.leaf { plan.write(dir + "/blkio.leaf_weight_device", l) }
        }
        for t in throttles {
            plan.write(dir + "/blkio.throttle.\(t.v1File)", "\(t.device) \(t.rate)")
        }
    }

    // MARK: cgroup v2

    private func planV2(_ r: CgroupResources, into plan: inout WritePlan) throws(CgroupError) {
        guard let dir = paths["unified"] else {
            throw CgroupError.controllerUnavailable(file: "cgroup2 hierarchy (no unified path recorded)")
        }
        if r.cpuRealtimePeriod.map({ $0 != 0 }) == true || r.cpuRealtimeRuntime.map({ $0 != 0 }) == true {
            throw CgroupError.unsupported(field: "cpu.realtimePeriod/realtimeRuntime",
                                          reason: "cgroup v2 has no realtime CPU controller (cpu.rt_* files)")
        }
        if r.networkClassID.map({ $0 != 0 }) == true || !r.networkPriorities.isEmpty {
            throw CgroupError.unsupported(field: "network", reason: "cgroup v2 has no net_cls/net_prio controllers")
        }
        // runc fs2's order: pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, unified.
        if let pids = r.pidsLimit {
            plan.write(dir + "/pids.max", pids <= 0 ? "max" : String(pids))
        }
        try planMemoryV2(r, dir: dir, into: &plan)
        try planIOV2(r, dir: dir, into: &plan)
        try planCpuV2(r, dir: dir, into: &plan)
        if !r.devices.isEmpty {
            let program = try DeviceFilter.build(r.devices)
            plan.action(files: [dir]) { () throws(CgroupError) in
                try DeviceFilter.attach(program, toCgroup: dir)
            }
        }
        if let cpus = r.cpusetCpus { plan.write(dir + "/cpuset.cpus", cpus) }
        if let mems = r.cpusetMems { plan.write(dir + "/cpuset.mems", mems) }
        for h in r.hugepageLimits {
            let size = try validPageSize(h.pageSize)
            plan.write(dir + "/hugetlb.\(size).max", String(h.limit))
            let rsvd = dir + "/hugetlb.\(size).rsvd.max"
            if SysFS.exists(rsvd) { plan.write(rsvd, String(h.limit)) }
        }
        for line in try rdmaLines(r.rdma) { plan.write(dir + "/rdma.max", line) }
        try planUnified(r.unified, dir: dir, into: &plan)
    }

    private func planMemoryV2(_ r: CgroupResources, dir: String, into plan: inout WritePlan) throws(CgroupError) {
        let limit = try r.memoryLimit.flatMap { (value) throws(CgroupError) in try memoryValue(value, field: "memory.limit") }
        let reservation = try r.memoryReservation.flatMap { (value) throws(CgroupError) in try memoryValue(value, field: "memory.reservation") }
        _ = try r.memorySwappiness.flatMap { (value) throws(CgroupError) in try swappinessValue(value) }  // validated; v2 has no knob (ignored, as runc)
        // memory.disableOOMKiller, kernel and kernelTCP have no v2 file; runc ignores them too.
        let swap = try Cgroup.convertSwapToV2(memorySwap: r.memorySwap, memory: limit)
        if r.memoryCheckBeforeUpdate == true {
            try checkUsage(limit: limit, swap: r.memorySwap.flatMap { $0 == 0 ? nil : $0 },
                           usageFile: dir + "/memory.current", swapUsageFile: dir + "/memory.swap.current",
                           swapIncludesMemory: false)
        }
        // Swap first, as runc, so a lower memory.max is not briefly paired with the old swap.
        if let swap {
            let file = dir + "/memory.swap.max"
            if SysFS.exists(file) {
                plan.write(file, swap == -1 ? "max" : String(swap))
            } else if swap != -1 {
                throw CgroupError.controllerUnavailable(file: file + " (swap accounting is off; needed by memory.swap)")
            }
        }
        if let limit { plan.write(dir + "/memory.max", limit == -1 ? "max" : String(limit)) }
        if let reservation { plan.write(dir + "/memory.low", reservation == -1 ? "max" : String(reservation)) }
    }

    private func planCpuV2(_ r: CgroupResources, dir: String, into plan: inout WritePlan) throws(CgroupError) {
        let idle = try r.cpuIdle.map { (value) throws(CgroupError) in try idleValue(value) }
        if let shares = r.cpuShares, shares != 0 {
            plan.write(dir + "/cpu.weight", String(Cgroup.convertSharesToWeight(shares)))
        }
        let maxFile = dir + "/cpu.max"
        let burstFile = dir + "/cpu.max.burst"
        let burst = r.cpuBurst
        if r.cpuQuota != nil || r.cpuPeriod != nil {
            var value = "max"
            if let quota = r.cpuQuota, quota > 0 { value = String(quota) }
            // Without a period the kernel keeps the current one.
            if let period = r.cpuPeriod, period != 0 { value += " \(period)" }
            let quotaSet = r.cpuQuota != nil
            plan.action(files: [maxFile] + (burst == nil ? [] : [burstFile])) { () throws(CgroupError) in
                var burstPending = false
                if let burst {
                    do throws(CgroupError) {
                        try SysFS.write(burstFile, String(burst))
                    } catch .writeFailed(_, _, let err) where err == EINVAL && quotaSet {
                        // A burst above the old quota is refused; it fits after the new cpu.max (as runc).
                        burstPending = true
                    }
                }
                try SysFS.write(maxFile, value)
                if burstPending, let burst { try SysFS.write(burstFile, String(burst)) }
            }
        } else if let burst {
            plan.write(burstFile, String(burst))
        }
        if let idle { plan.write(dir + "/cpu.idle", String(idle)) }
    }

    private func planIOV2(_ r: CgroupResources, dir: String, into plan: inout WritePlan) throws(CgroupError) {
        let weight = try r.blockIOWeight.flatMap { (value) throws(CgroupError) in try blkioWeight(value, field: "blockIO.weight") }
        if let leaf = r.blockIOLeafWeight, leaf != 0 {
            throw CgroupError.unsupported(field: "blockIO.leafWeight", reason: "cgroup v2 has no leaf weights")
        }
        var deviceWeights: [String] = []
        for (i, wd) in r.blockIOWeightDevices.enumerated() {
            let field = "blockIO.weightDevice[\(i)]"
            let dev = try deviceNumbers(wd.major, wd.minor, field: field)
            if let l = wd.leafWeight, l != 0 {
                throw CgroupError.unsupported(field: field + ".leafWeight", reason: "cgroup v2 has no leaf weights")
            }
            if let w = try wd.weight.flatMap({ (value) throws(CgroupError) in try blkioWeight(value, field: field + ".weight") }) {
                deviceWeights.append("\(dev) \(w)")
            }
        }
        let bfqFile = dir + "/io.bfq.weight"
        let bfq = SysFS.exists(bfqFile)
        if let weight {
            // BFQ takes the blkio weight as is; io.weight needs runc's 10...1000 -> 1...10000 mapping.
            if bfq {
                plan.write(bfqFile, String(weight))
            } else {
                plan.write(dir + "/io.weight", String(Cgroup.convertBlkIOToIOWeight(weight)))
            }
        }
        if !deviceWeights.isEmpty {
            // Only BFQ has per-device weights in v2 ("MAJ:MIN WEIGHT" lines in io.bfq.weight).
            guard bfq else {
                throw CgroupError.controllerUnavailable(file: bfqFile + " (per-device weights need the BFQ scheduler)")
            }
            for line in deviceWeights { plan.write(bfqFile, line) }
        }
        // io.max: one line per device with every limit for it.
        var byDevice: [(device: String, keys: [String])] = []
        for t in try throttleLines(r) {
            let item = "\(t.v2Key)=\(t.rate == 0 ? "max" : String(t.rate))"
            if let i = byDevice.firstIndex(where: { $0.device == t.device }) {
                byDevice[i].keys.append(item)
            } else {
                byDevice.append((t.device, [item]))
            }
        }
        for (device, keys) in byDevice {
            plan.write(dir + "/io.max", "\(device) \(keys.joined(separator: " "))")
        }
    }

    private func planUnified(_ unified: [String: String], dir: String, into plan: inout WritePlan) throws(CgroupError) {
        for key in unified.keys.sorted() {
            let value = unified[key] ?? ""
            guard !key.isEmpty, !key.contains("/"), key != ".", key != ".." else {
                throw CgroupError.invalidResource(field: "unified", value: key, reason: "must be a file name in the cgroup directory (no slashes)")
            }
            let parts = key.split(separator: ".", maxSplits: 1)
            guard parts.count == 2 else {
                throw CgroupError.invalidResource(field: "unified", value: key, reason: "must be in the form CONTROLLER.PARAMETER")
            }
            let file = dir + "/" + key
            if !SysFS.exists(file) {
                let controller = String(parts[0])
                let available = ((try? SysFS.readTrimmed(dir + "/cgroup.controllers")) ?? "").split(separator: " ").map(String.init)
                if controller != "cgroup" && !available.contains(controller) {
                    throw CgroupError.unsupported(field: "unified[\(key)]", reason: "controller \"\(controller)\" is not available in \(dir)")
                }
                throw CgroupError.controllerUnavailable(file: file)
            }
            // Multi-line values (io.max for two devices) take one write per line, as runc.
            let lines = value.split(separator: "\n").map { trimmed($0) }.filter { !$0.isEmpty }
            if lines.isEmpty {
                plan.write(file, value)
            } else {
                for line in lines { plan.write(file, line) }
            }
        }
    }

    // MARK: conversions

    /// runc's cgroup v1 shares (2...262144) to v2 weight (1...10000) mapping.
    public static func convertSharesToWeight(_ shares: UInt64) -> UInt64 {
        if shares == 0 { return 0 }
        let clamped = min(max(shares, 2), 262_144)
        return 1 + ((clamped - 2) * 9999) / 262_142
    }

    /// runc's blkio weight (10...1000) to io.weight (1...10000) mapping.
    public static func convertBlkIOToIOWeight(_ weight: UInt16) -> UInt64 {
        if weight == 0 { return 0 }
        let w = UInt64(min(max(weight, 10), 1000))
        return 1 + (w - 10) * 9999 / 990
    }

    /// OCI memory.swap is memory+swap (v1 semantics); v2's memory.swap.max is swap alone.
    /// Returns nil when nothing should be written, -1 for "max".
    public static func convertSwapToV2(memorySwap: Int64?, memory: Int64?) throws(CgroupError) -> Int64? {
        let mem = memory ?? 0
        let swap = memorySwap ?? 0
        // Unlimited memory with swap unspecified: lift swap too, like v1.
        if mem == -1 && swap == 0 { return -1 }
        if swap == 0 { return nil }
        if swap == -1 { return -1 }
        guard swap > 0 else {
            throw CgroupError.invalidResource(field: "memory.swap", value: String(swap), reason: "must be >= 0 or -1 for unlimited")
        }
        guard mem != 0 && mem != -1 else {
            throw CgroupError.invalidResource(field: "memory.swap", value: String(swap), reason: "a swap limit needs a memory limit")
        }
        guard mem > 0 else {
            throw CgroupError.invalidResource(field: "memory.limit", value: String(mem), reason: "must be >= 0 or -1 for unlimited")
        }
        guard swap >= mem else {
            throw CgroupError.invalidResource(field: "memory.swap", value: String(swap), reason: "memory+swap limit must be >= memory limit \(mem)")
        }
        return swap - mem
    }
}

// MARK: validation helpers

/// nil for 0 ("not set", as runc), the value for -1 or a positive count, an error otherwise.
private func memoryValue(_ v: Int64, field: String) throws(CgroupError) -> Int64? {
    guard v >= -1 else {
        throw CgroupError.invalidResource(field: field, value: String(v), reason: "must be >= 0 or -1 for unlimited")
    }
    return v == 0 ? nil : v
}

/// Go's -1 arrives as UInt64.max and means "not set", as in runc.
private func swappinessValue(_ v: UInt64) throws(CgroupError) -> UInt64? {
    if v == UInt64.max { return nil }
    guard v <= 100 else {
        throw CgroupError.invalidResource(field: "memory.swappiness", value: String(v), reason: "valid range is 0-100")
    }
    return v
}

private func idleValue(_ v: Int64) throws(CgroupError) -> Int64 {
    guard v == 0 || v == 1 else {
        throw CgroupError.invalidResource(field: "cpu.idle", value: String(v), reason: "must be 0 or 1")
    }
    return v
}

/// nil for 0 ("not set"); 10...1000 otherwise.
private func blkioWeight(_ v: UInt16, field: String) throws(CgroupError) -> UInt16? {
    if v == 0 { return nil }
    guard (10...1000).contains(v) else {
        throw CgroupError.invalidResource(field: field, value: String(v), reason: "valid range is 10-1000")
    }
    return v
}

private func deviceNumbers(_ major: Int64, _ minor: Int64, field: String) throws(CgroupError) -> String {
    guard major >= 0, major <= Int64(UInt32.max) else {
        throw CgroupError.invalidResource(field: field + ".major", value: String(major), reason: "must be a device major number >= 0")
    }
    guard minor >= 0, minor <= Int64(UInt32.max) else {
        throw CgroupError.invalidResource(field: field + ".minor", value: String(minor), reason: "must be a device minor number >= 0")
    }
    return "\(major):\(minor)"
}

private struct Throttle {
    var device: String
    var rate: UInt64
    var v1File: String
    var v2Key: String
}

private func throttleLines(_ r: CgroupResources) throws(CgroupError) -> [Throttle] {
    let groups: [([ThrottleDevice], String, String, String)] = [
        (r.blockIOThrottleReadBpsDevices, "throttleReadBpsDevice", "read_bps_device", "rbps"),
        (r.blockIOThrottleWriteBpsDevices, "throttleWriteBpsDevice", "write_bps_device", "wbps"),
        (r.blockIOThrottleReadIOPSDevices, "throttleReadIOPSDevice", "read_iops_device", "riops"),
        (r.blockIOThrottleWriteIOPSDevices, "throttleWriteIOPSDevice", "write_iops_device", "wiops"),
    ]
    var out: [Throttle] = []
    for (list, field, v1File, v2Key) in groups {
        for (i, t) in list.enumerated() {
            let dev = try deviceNumbers(t.major, t.minor, field: "blockIO.\(field)[\(i)]")
            out.append(Throttle(device: dev, rate: t.rate, v1File: v1File, v2Key: v2Key))
        }
    }
    return out
}

/// "2MB", "1GB", "64KB": the spelling runc uses in hugetlb file names.
func validPageSize(_ s: String) throws(CgroupError) -> String {
    let digits = s.prefix { $0.isASCII && $0.isNumber }
    let unit = s.dropFirst(digits.count)
    guard !digits.isEmpty, digits.first != "0", ["B", "KB", "MB", "GB", "TB", "PB"].contains(String(unit)) else {
        throw CgroupError.invalidResource(field: "hugepageLimits.pageSize", value: s, reason: "expected a size like 2MB or 1GB")
    }
    return s
}

private func interfaceName(_ name: String) throws(CgroupError) -> String {
    guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == "/" }) else {
        throw CgroupError.invalidResource(field: "network.priorities.name", value: name, reason: "not an interface name")
    }
    return name
}

private func rdmaLines(_ rdma: [String: RdmaLimit]) throws(CgroupError) -> [String] {
    var lines: [String] = []
    for device in rdma.keys.sorted() {
        guard !device.isEmpty, !device.contains(where: { $0.isWhitespace }) else {
            throw CgroupError.invalidResource(field: "rdma", value: device, reason: "not an RDMA device name")
        }
        guard let limit = rdma[device] else { continue }
        var line = device
        if let h = limit.hcaHandles { line += " hca_handle=\(h)" }
        if let o = limit.hcaObjects { line += " hca_object=\(o)" }
        if line != device { lines.append(line) }
    }
    return lines
}

/// memory.checkBeforeUpdate: refuse a limit the cgroup already uses (runc's wording).
private func checkUsage(limit: Int64?, swap: Int64?, usageFile: String, swapUsageFile: String, swapIncludesMemory: Bool) throws(CgroupError) {
    guard let limit, limit > 0 else { return }
    let usage = try readUInt(usageFile)
    if usage >= UInt64(limit) {
        throw CgroupError.invalidResource(field: "memory.limit", value: String(limit),
                                          reason: "rejecting memory limit below current usage \(usage) (\(usageFile))")
    }
    guard let swap, swap > 0, SysFS.exists(swapUsageFile) else { return }
    var total = try readUInt(swapUsageFile)
    if !swapIncludesMemory { total += usage }
    if total >= UInt64(swap) {
        throw CgroupError.invalidResource(field: "memory.swap", value: String(swap),
                                          reason: "rejecting memory+swap limit below current usage \(total) (\(swapUsageFile))")
    }
}

func readUInt(_ path: String) throws(CgroupError) -> UInt64 {
    let text = try SysFS.readTrimmed(path)
    guard let value = UInt64(text) else {
        throw CgroupError.invalidResource(field: path, value: text, reason: "kernel file does not hold an unsigned integer")
    }
    return value
}

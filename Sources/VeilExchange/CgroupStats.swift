// No Foundation: veil (VeilCgroups) encodes these and the shim decodes them; plain Codable.

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

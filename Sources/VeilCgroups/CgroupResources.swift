import FoundationEssentials

/// One device cgroup rule, as in the OCI spec's linux.resources.devices.
public struct DeviceRule: Sendable, Codable, Equatable {
    public var allow: Bool
    /// "a" (all), "c" (char) or "b" (block).
    public var type: String
    /// nil or -1 means any ("*").
    public var major: Int64?
    public var minor: Int64?
    /// Any combination of "r", "w", "m".
    public var access: String

    public init(allow: Bool, type: String = "a", major: Int64? = nil, minor: Int64? = nil, access: String = "rwm") {
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
    }

    /// The line the v1 devices controller parses: "c 1:3 rwm". Validated here because the
    /// kernel only answers EINVAL without saying which part was wrong.
    func cgroupV1Line() throws(CgroupError) -> String {
        guard ["a", "c", "b"].contains(type) else {
            throw CgroupError.invalidResource(field: "devices.type", value: type, reason: "must be a, c or b")
        }
        let validAccess = !access.isEmpty && access.allSatisfy { "rwm".contains($0) }
        guard validAccess else {
            throw CgroupError.invalidResource(field: "devices.access", value: access, reason: "cannot be empty: a combination of r, w, m")
        }
        // The kernel treats a leading "a" as "every device" and ignores the rest of the line.
        if type == "a" { return "a" }
        func number(_ n: Int64?, _ field: String) throws(CgroupError) -> String {
            guard let n, n != -1 else { return "*" }
            guard n >= 0 else {
                throw CgroupError.invalidResource(field: field, value: String(n), reason: "must be >= 0 or -1 for any")
            }
            return String(n)
        }
        return "\(type) \(try number(major, "devices.major")):\(try number(minor, "devices.minor")) \(access)"
    }
}

/// A per-device weight (OCI linux.resources.blockIO.weightDevice[]).
public struct WeightDevice: Sendable, Codable, Equatable {
    public var major: Int64
    public var minor: Int64
    /// 10...1000; nil or 0 = not set.
    public var weight: UInt16?
    /// 10...1000; nil or 0 = not set (v1 CFQ only).
    public var leafWeight: UInt16?

    public init(major: Int64, minor: Int64, weight: UInt16? = nil, leafWeight: UInt16? = nil) {
        self.major = major
        self.minor = minor
        self.weight = weight
        self.leafWeight = leafWeight
    }
}

/// A per-device I/O rate limit (OCI blockIO.throttle*Device[]). A rate of 0 removes the limit.
public struct ThrottleDevice: Sendable, Codable, Equatable {
    public var major: Int64
    public var minor: Int64
    public var rate: UInt64

    public init(major: Int64, minor: Int64, rate: UInt64) {
        self.major = major
        self.minor = minor
        self.rate = rate
    }
}

/// OCI linux.resources.hugepageLimits[]: pageSize as runc spells it ("2MB", "1GB", "64KB").
public struct HugepageLimit: Sendable, Codable, Equatable {
    public var pageSize: String
    public var limit: UInt64

    public init(pageSize: String, limit: UInt64) {
        self.pageSize = pageSize
        self.limit = limit
    }
}

/// OCI linux.resources.network.priorities[].
public struct InterfacePriority: Sendable, Codable, Equatable {
    public var name: String
    public var priority: UInt32

    public init(name: String, priority: UInt32) {
        self.name = name
        self.priority = priority
    }
}

/// OCI linux.resources.rdma[device]; nil = leave that limit as is.
public struct RdmaLimit: Sendable, Codable, Equatable {
    public var hcaHandles: UInt32?
    public var hcaObjects: UInt32?

    public init(hcaHandles: UInt32? = nil, hcaObjects: UInt32? = nil) {
        self.hcaHandles = hcaHandles
        self.hcaObjects = hcaObjects
    }
}

/// Plain mirror of the OCI linux.resources fields (VeilCgroups does not import VeilSpec).
/// nil / empty means "leave unchanged", matching how runc treats absent fields on create and update.
public struct CgroupResources: Sendable, Codable, Equatable {
    // MARK: memory
    /// Bytes; -1 = unlimited; 0 = not set (as runc).
    public var memoryLimit: Int64?
    /// Soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low); -1 = unlimited; 0 = not set.
    public var memoryReservation: Int64?
    /// Memory + swap in bytes (v1 semantics, as in the OCI spec); -1 = unlimited.
    public var memorySwap: Int64?
    /// Ignored on v1 and v2, as runc 1.1+ does (the kernel deprecated kmem limits).
    public var memoryKernel: Int64?
    /// Ignored on v1 and v2, as runc 1.1+ does.
    public var memoryKernelTCP: Int64?
    /// 0...100 (v1 memory.swappiness); UInt64.max (Go's -1) = not set. Ignored on v2 (as runc).
    public var memorySwappiness: UInt64?
    /// true writes 1 to v1 memory.oom_control; false/nil leave it. Ignored on v2 (as runc).
    public var memoryDisableOOMKiller: Bool?
    /// When true, a memory (or memory+swap) limit at or below the current usage is refused
    /// before anything is written.
    public var memoryCheckBeforeUpdate: Bool?

    // MARK: cpu
    public var cpuShares: UInt64?
    /// Microseconds per period; <= 0 = unlimited.
    public var cpuQuota: Int64?
    public var cpuPeriod: UInt64?
    /// Microseconds a group may run above its quota (v1 cpu.cfs_burst_us, v2 cpu.max.burst).
    public var cpuBurst: UInt64?
    /// v1 only (cpu.rt_runtime_us / cpu.rt_period_us); 0 = not set.
    public var cpuRealtimeRuntime: Int64?
    public var cpuRealtimePeriod: UInt64?
    public var cpusetCpus: String?
    public var cpusetMems: String?
    /// cpu.idle: 0 or 1.
    public var cpuIdle: Int64?

    // MARK: pids
    /// <= 0 = unlimited.
    public var pidsLimit: Int64?

    // MARK: blockIO
    /// 10...1000; 0 = not set.
    public var blockIOWeight: UInt16?
    /// 10...1000, v1 CFQ only; 0 = not set.
    public var blockIOLeafWeight: UInt16?
    public var blockIOWeightDevices: [WeightDevice]
    public var blockIOThrottleReadBpsDevices: [ThrottleDevice]
    public var blockIOThrottleWriteBpsDevices: [ThrottleDevice]
    public var blockIOThrottleReadIOPSDevices: [ThrottleDevice]
    public var blockIOThrottleWriteIOPSDevices: [ThrottleDevice]

    // MARK: others
    public var hugepageLimits: [HugepageLimit]
    /// v1 net_cls.classid; 0 = not set. Refused on v2 (no net_cls there).
    public var networkClassID: UInt32?
    /// v1 net_prio.ifpriomap. Refused on v2.
    public var networkPriorities: [InterfacePriority]
    /// Device name ("mlx5_1") -> limits; rdma.max on v1 and v2.
    public var rdma: [String: RdmaLimit]
    /// cgroup v2 file name -> content, written verbatim (one write per line) after everything
    /// else. Refused on v1 and hybrid hosts, as runc.
    public var unified: [String: String]

    /// Applied only when non-empty, so an `update` that omits devices leaves them alone.
    /// v1: devices.deny/devices.allow; v2: an eBPF program attached to the cgroup.
    public var devices: [DeviceRule]

    public init(
        memoryLimit: Int64? = nil, memoryReservation: Int64? = nil, memorySwap: Int64? = nil,
        cpuShares: UInt64? = nil, cpuQuota: Int64? = nil, cpuPeriod: UInt64? = nil,
        cpusetCpus: String? = nil, cpusetMems: String? = nil,
        pidsLimit: Int64? = nil, devices: [DeviceRule] = [],
        memoryKernel: Int64? = nil, memoryKernelTCP: Int64? = nil, memorySwappiness: UInt64? = nil,
        memoryDisableOOMKiller: Bool? = nil, memoryCheckBeforeUpdate: Bool? = nil,
        cpuBurst: UInt64? = nil, cpuRealtimeRuntime: Int64? = nil, cpuRealtimePeriod: UInt64? = nil,
        cpuIdle: Int64? = nil,
        blockIOWeight: UInt16? = nil, blockIOLeafWeight: UInt16? = nil,
        blockIOWeightDevices: [WeightDevice] = [],
        blockIOThrottleReadBpsDevices: [ThrottleDevice] = [],
        blockIOThrottleWriteBpsDevices: [ThrottleDevice] = [],
        blockIOThrottleReadIOPSDevices: [ThrottleDevice] = [],
        blockIOThrottleWriteIOPSDevices: [ThrottleDevice] = [],
        hugepageLimits: [HugepageLimit] = [],
        networkClassID: UInt32? = nil, networkPriorities: [InterfacePriority] = [],
        rdma: [String: RdmaLimit] = [:], unified: [String: String] = [:]
    ) {
        self.memoryLimit = memoryLimit
        self.memoryReservation = memoryReservation
        self.memorySwap = memorySwap
        self.cpuShares = cpuShares
        self.cpuQuota = cpuQuota
        self.cpuPeriod = cpuPeriod
        self.cpusetCpus = cpusetCpus
        self.cpusetMems = cpusetMems
        self.pidsLimit = pidsLimit
        self.devices = devices
        self.memoryKernel = memoryKernel
        self.memoryKernelTCP = memoryKernelTCP
        self.memorySwappiness = memorySwappiness
        self.memoryDisableOOMKiller = memoryDisableOOMKiller
        self.memoryCheckBeforeUpdate = memoryCheckBeforeUpdate
        self.cpuBurst = cpuBurst
        self.cpuRealtimeRuntime = cpuRealtimeRuntime
        self.cpuRealtimePeriod = cpuRealtimePeriod
        self.cpuIdle = cpuIdle
        self.blockIOWeight = blockIOWeight
        self.blockIOLeafWeight = blockIOLeafWeight
        self.blockIOWeightDevices = blockIOWeightDevices
        self.blockIOThrottleReadBpsDevices = blockIOThrottleReadBpsDevices
        self.blockIOThrottleWriteBpsDevices = blockIOThrottleWriteBpsDevices
        self.blockIOThrottleReadIOPSDevices = blockIOThrottleReadIOPSDevices
        self.blockIOThrottleWriteIOPSDevices = blockIOThrottleWriteIOPSDevices
        self.hugepageLimits = hugepageLimits
        self.networkClassID = networkClassID
        self.networkPriorities = networkPriorities
        self.rdma = rdma
        self.unified = unified
    }

    /// Missing keys decode as "not set", so JSON written before a field existed still loads.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        memoryLimit = try c.decodeIfPresent(Int64.self, forKey: .memoryLimit)
        memoryReservation = try c.decodeIfPresent(Int64.self, forKey: .memoryReservation)
        memorySwap = try c.decodeIfPresent(Int64.self, forKey: .memorySwap)
        memoryKernel = try c.decodeIfPresent(Int64.self, forKey: .memoryKernel)
        memoryKernelTCP = try c.decodeIfPresent(Int64.self, forKey: .memoryKernelTCP)
        memorySwappiness = try c.decodeIfPresent(UInt64.self, forKey: .memorySwappiness)
        memoryDisableOOMKiller = try c.decodeIfPresent(Bool.self, forKey: .memoryDisableOOMKiller)
        memoryCheckBeforeUpdate = try c.decodeIfPresent(Bool.self, forKey: .memoryCheckBeforeUpdate)
        cpuShares = try c.decodeIfPresent(UInt64.self, forKey: .cpuShares)
        cpuQuota = try c.decodeIfPresent(Int64.self, forKey: .cpuQuota)
        cpuPeriod = try c.decodeIfPresent(UInt64.self, forKey: .cpuPeriod)
        cpuBurst = try c.decodeIfPresent(UInt64.self, forKey: .cpuBurst)
        cpuRealtimeRuntime = try c.decodeIfPresent(Int64.self, forKey: .cpuRealtimeRuntime)
        cpuRealtimePeriod = try c.decodeIfPresent(UInt64.self, forKey: .cpuRealtimePeriod)
        cpusetCpus = try c.decodeIfPresent(String.self, forKey: .cpusetCpus)
        cpusetMems = try c.decodeIfPresent(String.self, forKey: .cpusetMems)
        cpuIdle = try c.decodeIfPresent(Int64.self, forKey: .cpuIdle)
        pidsLimit = try c.decodeIfPresent(Int64.self, forKey: .pidsLimit)
        blockIOWeight = try c.decodeIfPresent(UInt16.self, forKey: .blockIOWeight)
        blockIOLeafWeight = try c.decodeIfPresent(UInt16.self, forKey: .blockIOLeafWeight)
        blockIOWeightDevices = try c.decodeIfPresent([WeightDevice].self, forKey: .blockIOWeightDevices) ?? []
        blockIOThrottleReadBpsDevices = try c.decodeIfPresent([ThrottleDevice].self, forKey: .blockIOThrottleReadBpsDevices) ?? []
        blockIOThrottleWriteBpsDevices = try c.decodeIfPresent([ThrottleDevice].self, forKey: .blockIOThrottleWriteBpsDevices) ?? []
        blockIOThrottleReadIOPSDevices = try c.decodeIfPresent([ThrottleDevice].self, forKey: .blockIOThrottleReadIOPSDevices) ?? []
        blockIOThrottleWriteIOPSDevices = try c.decodeIfPresent([ThrottleDevice].self, forKey: .blockIOThrottleWriteIOPSDevices) ?? []
        hugepageLimits = try c.decodeIfPresent([HugepageLimit].self, forKey: .hugepageLimits) ?? []
        networkClassID = try c.decodeIfPresent(UInt32.self, forKey: .networkClassID)
        networkPriorities = try c.decodeIfPresent([InterfacePriority].self, forKey: .networkPriorities) ?? []
        rdma = try c.decodeIfPresent([String: RdmaLimit].self, forKey: .rdma) ?? [:]
        unified = try c.decodeIfPresent([String: String].self, forKey: .unified) ?? [:]
        devices = try c.decodeIfPresent([DeviceRule].self, forKey: .devices) ?? []
    }
}

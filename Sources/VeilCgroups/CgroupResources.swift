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
    func cgroupV1Line() throws -> String {
        guard ["a", "c", "b"].contains(type) else {
            throw CgroupError.invalidResource(field: "devices.type", value: type, reason: "must be a, c or b")
        }
        let validAccess = !access.isEmpty && access.allSatisfy { "rwm".contains($0) }
        guard validAccess else {
            throw CgroupError.invalidResource(field: "devices.access", value: access, reason: "must be a non-empty combination of r, w, m")
        }
        // The kernel treats a leading "a" as "every device" and ignores the rest of the line.
        if type == "a" { return "a" }
        func number(_ n: Int64?, _ field: String) throws -> String {
            guard let n, n != -1 else { return "*" }
            guard n >= 0 else {
                throw CgroupError.invalidResource(field: field, value: String(n), reason: "must be >= 0 or -1 for any")
            }
            return String(n)
        }
        return "\(type) \(try number(major, "devices.major")):\(try number(minor, "devices.minor")) \(access)"
    }
}

/// Plain mirror of the OCI linux.resources fields the cgroup drivers understand so far.
/// nil means "leave unchanged", matching how runc treats absent fields on create and update.
public struct CgroupResources: Sendable, Codable, Equatable {
    /// Bytes; -1 = unlimited.
    public var memoryLimit: Int64?
    public var memoryReservation: Int64?
    /// Memory + swap in bytes (v1 semantics, as in the OCI spec); -1 = unlimited.
    public var memorySwap: Int64?
    public var cpuShares: UInt64?
    /// Microseconds per period; <= 0 = unlimited.
    public var cpuQuota: Int64?
    public var cpuPeriod: UInt64?
    public var cpusetCpus: String?
    public var cpusetMems: String?
    /// <= 0 = unlimited.
    public var pidsLimit: Int64?
    /// Applied (on v1) only when non-empty, so an `update` that omits devices leaves them alone.
    public var devices: [DeviceRule]

    public init(
        memoryLimit: Int64? = nil, memoryReservation: Int64? = nil, memorySwap: Int64? = nil,
        cpuShares: UInt64? = nil, cpuQuota: Int64? = nil, cpuPeriod: UInt64? = nil,
        cpusetCpus: String? = nil, cpusetMems: String? = nil,
        pidsLimit: Int64? = nil, devices: [DeviceRule] = []
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
    }
}

// Codable mirror of the OCI runtime-spec 1.1 configuration (specs-go/config.go).
//
// Property names are exactly the JSON keys so synthesized Codable needs no CodingKeys,
// and properties are declared in Go field order so encoded output reads like runc's.
// Go `omitempty` / pointer fields are Swift optionals: synthesized encoding skips nil,
// which keeps `veil spec` output free of `null`s. Unknown JSON keys are ignored by
// synthesized decoding, matching encoding/json.

/// Top-level container configuration (`config.json`).
public struct Spec: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var process: Process?
    /// Optional in the spec (VM runtimes), but every Linux container needs one, so decoding
    /// rejects a config without it instead of failing later in rootfs setup.
    public var root: Root
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init(
        ociVersion: String, process: Process? = nil, root: Root, hostname: String? = nil,
        domainname: String? = nil, mounts: [Mount]? = nil, hooks: Hooks? = nil,
        annotations: [String: String]? = nil, linux: Linux? = nil
    ) {
        self.ociVersion = ociVersion
        self.process = process
        self.root = root
        self.hostname = hostname
        self.domainname = domainname
        self.mounts = mounts
        self.hooks = hooks
        self.annotations = annotations
        self.linux = linux
    }
}

/// The container process.
public struct Process: Codable, Sendable, Equatable {
    public var terminal: Bool?
    public var consoleSize: Box?
    public var user: User
    /// Optional in the Go type; `Spec.validate()` insists on a non-empty list.
    public var args: [String]?
    public var commandLine: String?
    public var env: [String]?
    public var cwd: String
    public var capabilities: LinuxCapabilities?
    public var rlimits: [POSIXRlimit]?
    public var noNewPrivileges: Bool?
    public var apparmorProfile: String?
    public var oomScoreAdj: Int?
    public var selinuxLabel: String?

    public init(
        terminal: Bool? = nil, consoleSize: Box? = nil, user: User = User(), args: [String]? = nil,
        commandLine: String? = nil, env: [String]? = nil, cwd: String,
        capabilities: LinuxCapabilities? = nil, rlimits: [POSIXRlimit]? = nil,
        noNewPrivileges: Bool? = nil, apparmorProfile: String? = nil, oomScoreAdj: Int? = nil,
        selinuxLabel: String? = nil
    ) {
        self.terminal = terminal
        self.consoleSize = consoleSize
        self.user = user
        self.args = args
        self.commandLine = commandLine
        self.env = env
        self.cwd = cwd
        self.capabilities = capabilities
        self.rlimits = rlimits
        self.noNewPrivileges = noNewPrivileges
        self.apparmorProfile = apparmorProfile
        self.oomScoreAdj = oomScoreAdj
        self.selinuxLabel = selinuxLabel
    }

    // runc (Go) treats a missing `user` as uid 0 / gid 0; accept it the same way.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        terminal = try c.decodeIfPresent(Bool.self, forKey: .terminal)
        consoleSize = try c.decodeIfPresent(Box.self, forKey: .consoleSize)
        user = try c.decodeIfPresent(User.self, forKey: .user) ?? User()
        args = try c.decodeIfPresent([String].self, forKey: .args)
        commandLine = try c.decodeIfPresent(String.self, forKey: .commandLine)
        env = try c.decodeIfPresent([String].self, forKey: .env)
        cwd = try c.decode(String.self, forKey: .cwd)
        capabilities = try c.decodeIfPresent(LinuxCapabilities.self, forKey: .capabilities)
        rlimits = try c.decodeIfPresent([POSIXRlimit].self, forKey: .rlimits)
        noNewPrivileges = try c.decodeIfPresent(Bool.self, forKey: .noNewPrivileges)
        apparmorProfile = try c.decodeIfPresent(String.self, forKey: .apparmorProfile)
        oomScoreAdj = try c.decodeIfPresent(Int.self, forKey: .oomScoreAdj)
        selinuxLabel = try c.decodeIfPresent(String.self, forKey: .selinuxLabel)
    }
}

/// Console size in characters.
public struct Box: Codable, Sendable, Equatable {
    public var height: UInt
    public var width: UInt

    public init(height: UInt, width: UInt) {
        self.height = height
        self.width = width
    }
}

/// User the process runs as.
public struct User: Codable, Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var umask: UInt32?
    public var additionalGids: [UInt32]?
    public var username: String?

    public init(
        uid: UInt32 = 0, gid: UInt32 = 0, umask: UInt32? = nil, additionalGids: [UInt32]? = nil,
        username: String? = nil
    ) {
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additionalGids = additionalGids
        self.username = username
    }

    // Go decodes a missing uid/gid as 0 and runc accepts `"user": {}`; do the same.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        uid = try c.decodeIfPresent(UInt32.self, forKey: .uid) ?? 0
        gid = try c.decodeIfPresent(UInt32.self, forKey: .gid) ?? 0
        umask = try c.decodeIfPresent(UInt32.self, forKey: .umask)
        additionalGids = try c.decodeIfPresent([UInt32].self, forKey: .additionalGids)
        username = try c.decodeIfPresent(String.self, forKey: .username)
    }
}

/// Capability sets, names like "CAP_KILL".
public struct LinuxCapabilities: Codable, Sendable, Equatable {
    public var bounding: [String]?
    public var effective: [String]?
    public var inheritable: [String]?
    public var permitted: [String]?
    public var ambient: [String]?

    public init(
        bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
        permitted: [String]? = nil, ambient: [String]? = nil
    ) {
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient
    }
}

/// One rlimit, `type` like "RLIMIT_NOFILE".
public struct POSIXRlimit: Codable, Sendable, Equatable {
    public var type: String
    public var hard: UInt64
    public var soft: UInt64

    public init(type: String, hard: UInt64, soft: UInt64) {
        self.type = type
        self.hard = hard
        self.soft = soft
    }
}

/// Root filesystem; `path` is relative to the bundle unless absolute.
public struct Root: Codable, Sendable, Equatable {
    public var path: String
    public var readonly: Bool?

    public init(path: String, readonly: Bool? = nil) {
        self.path = path
        self.readonly = readonly
    }
}

/// A mount added to the container.
public struct Mount: Codable, Sendable, Equatable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String]?
    /// ID-mapped mounts (spec 1.1).
    public var uidMappings: [LinuxIDMapping]?
    public var gidMappings: [LinuxIDMapping]?

    public init(
        destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil,
        uidMappings: [LinuxIDMapping]? = nil, gidMappings: [LinuxIDMapping]? = nil
    ) {
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
    }
}

/// One hook command.
public struct Hook: Codable, Sendable, Equatable {
    public var path: String
    public var args: [String]?
    public var env: [String]?
    /// Seconds.
    public var timeout: Int?

    public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout
    }
}

/// Lifecycle hooks.
public struct Hooks: Codable, Sendable, Equatable {
    /// Deprecated in the spec but still run by runc.
    public var prestart: [Hook]?
    public var createRuntime: [Hook]?
    public var createContainer: [Hook]?
    public var startContainer: [Hook]?
    public var poststart: [Hook]?
    public var poststop: [Hook]?

    public init(
        prestart: [Hook]? = nil, createRuntime: [Hook]? = nil, createContainer: [Hook]? = nil,
        startContainer: [Hook]? = nil, poststart: [Hook]? = nil, poststop: [Hook]? = nil
    ) {
        self.prestart = prestart
        self.createRuntime = createRuntime
        self.createContainer = createContainer
        self.startContainer = startContainer
        self.poststart = poststart
        self.poststop = poststop
    }
}

/// Linux-specific configuration.
public struct Linux: Codable, Sendable, Equatable {
    public var uidMappings: [LinuxIDMapping]?
    public var gidMappings: [LinuxIDMapping]?
    public var sysctl: [String: String]?
    public var resources: LinuxResources?
    public var cgroupsPath: String?
    public var namespaces: [LinuxNamespace]?
    public var devices: [LinuxDevice]?
    public var seccomp: LinuxSeccomp?
    public var rootfsPropagation: String?
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?
    public var mountLabel: String?
    public var personality: LinuxPersonality?
    /// Keys "monotonic" / "boottime".
    public var timeOffsets: [String: LinuxTimeOffset]?

    public init(
        uidMappings: [LinuxIDMapping]? = nil, gidMappings: [LinuxIDMapping]? = nil,
        sysctl: [String: String]? = nil, resources: LinuxResources? = nil,
        cgroupsPath: String? = nil, namespaces: [LinuxNamespace]? = nil,
        devices: [LinuxDevice]? = nil, seccomp: LinuxSeccomp? = nil,
        rootfsPropagation: String? = nil, maskedPaths: [String]? = nil,
        readonlyPaths: [String]? = nil, mountLabel: String? = nil,
        personality: LinuxPersonality? = nil, timeOffsets: [String: LinuxTimeOffset]? = nil
    ) {
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
        self.sysctl = sysctl
        self.resources = resources
        self.cgroupsPath = cgroupsPath
        self.namespaces = namespaces
        self.devices = devices
        self.seccomp = seccomp
        self.rootfsPropagation = rootfsPropagation
        self.maskedPaths = maskedPaths
        self.readonlyPaths = readonlyPaths
        self.mountLabel = mountLabel
        self.personality = personality
        self.timeOffsets = timeOffsets
    }
}

/// Namespace kinds; the raw values are the JSON strings.
public enum LinuxNamespaceType: String, Codable, Sendable, Equatable, CaseIterable {
    case pid
    case network
    case mount
    case ipc
    case uts
    case user
    case cgroup
    case time

    // Custom so the error carries the offending value; the synthesized one only says
    // "cannot initialize from invalid String value".
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let raw = try c.decode(String.self)
        guard let value = LinuxNamespaceType(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "unknown namespace type \(quoted(raw))")
        }
        self = value
    }

    /// Its CLONE_NEW* flag (clone(2), unshare(2), setns(2)): the one place veil spells these out.
    public var cloneFlag: Int32 {
        switch self {
        case .pid: return 0x2000_0000
        case .network: return 0x4000_0000
        case .mount: return 0x0002_0000
        case .ipc: return 0x0800_0000
        case .uts: return 0x0400_0000
        case .user: return 0x1000_0000
        case .cgroup: return 0x0200_0000
        case .time: return 0x0000_0080
        }
    }

    /// The namespace whose flag this is, if any.
    public init?(cloneFlag: Int32) {
        guard let type = Self.allCases.first(where: { $0.cloneFlag == cloneFlag }) else { return nil }
        self = type
    }

    /// Its file under /proc/PID/ns.
    public var procFile: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }
}

/// A namespace to create, or to join when `path` is set.
public struct LinuxNamespace: Codable, Sendable, Equatable {
    public var type: LinuxNamespaceType
    public var path: String?

    public init(type: LinuxNamespaceType, path: String? = nil) {
        self.type = type
        self.path = path
    }
}

/// A user-namespace ID range.
public struct LinuxIDMapping: Codable, Sendable, Equatable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32

    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }
}

/// Clock offset for a time namespace.
public struct LinuxTimeOffset: Codable, Sendable, Equatable {
    public var secs: Int64?
    public var nanosecs: UInt32?

    public init(secs: Int64? = nil, nanosecs: UInt32? = nil) {
        self.secs = secs
        self.nanosecs = nanosecs
    }
}

/// A device node to create in the container.
public struct LinuxDevice: Codable, Sendable, Equatable {
    public var path: String
    /// "c", "b", "u" or "p".
    public var type: String
    public var major: Int64?
    public var minor: Int64?
    public var fileMode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?

    public init(
        path: String, type: String, major: Int64? = nil, minor: Int64? = nil,
        fileMode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil
    ) {
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.fileMode = fileMode
        self.uid = uid
        self.gid = gid
    }
}

/// A device cgroup rule.
public struct LinuxDeviceCgroup: Codable, Sendable, Equatable {
    public var allow: Bool
    public var type: String?
    public var major: Int64?
    public var minor: Int64?
    public var access: String?

    public init(
        allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil,
        access: String? = nil
    ) {
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
    }
}

/// cgroup resource limits.
public struct LinuxResources: Codable, Sendable, Equatable {
    public var devices: [LinuxDeviceCgroup]?
    public var memory: LinuxMemory?
    public var cpu: LinuxCPU?
    public var pids: LinuxPids?
    public var blockIO: LinuxBlockIO?
    public var hugepageLimits: [LinuxHugepageLimit]?
    public var network: LinuxNetwork?
    public var rdma: [String: LinuxRdma]?
    /// cgroup v2 files, e.g. "memory.high" → "1G".
    public var unified: [String: String]?

    public init(
        devices: [LinuxDeviceCgroup]? = nil, memory: LinuxMemory? = nil, cpu: LinuxCPU? = nil,
        pids: LinuxPids? = nil, blockIO: LinuxBlockIO? = nil,
        hugepageLimits: [LinuxHugepageLimit]? = nil, network: LinuxNetwork? = nil,
        rdma: [String: LinuxRdma]? = nil, unified: [String: String]? = nil
    ) {
        self.devices = devices
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
        self.blockIO = blockIO
        self.hugepageLimits = hugepageLimits
        self.network = network
        self.rdma = rdma
        self.unified = unified
    }
}

/// Memory controller settings (bytes; -1 means unlimited).
public struct LinuxMemory: Codable, Sendable, Equatable {
    public var limit: Int64?
    public var reservation: Int64?
    public var swap: Int64?
    public var kernel: Int64?
    public var kernelTCP: Int64?
    public var swappiness: UInt64?
    public var disableOOMKiller: Bool?
    public var useHierarchy: Bool?
    public var checkBeforeUpdate: Bool?

    public init(
        limit: Int64? = nil, reservation: Int64? = nil, swap: Int64? = nil, kernel: Int64? = nil,
        kernelTCP: Int64? = nil, swappiness: UInt64? = nil, disableOOMKiller: Bool? = nil,
        useHierarchy: Bool? = nil, checkBeforeUpdate: Bool? = nil
    ) {
        self.limit = limit
        self.reservation = reservation
        self.swap = swap
        self.kernel = kernel
        self.kernelTCP = kernelTCP
        self.swappiness = swappiness
        self.disableOOMKiller = disableOOMKiller
        self.useHierarchy = useHierarchy
        self.checkBeforeUpdate = checkBeforeUpdate
    }
}

/// CPU controller settings.
public struct LinuxCPU: Codable, Sendable, Equatable {
    public var shares: UInt64?
    public var quota: Int64?
    public var burst: UInt64?
    public var period: UInt64?
    public var realtimeRuntime: Int64?
    public var realtimePeriod: UInt64?
    public var cpus: String?
    public var mems: String?
    public var idle: Int64?

    public init(
        shares: UInt64? = nil, quota: Int64? = nil, burst: UInt64? = nil, period: UInt64? = nil,
        realtimeRuntime: Int64? = nil, realtimePeriod: UInt64? = nil, cpus: String? = nil,
        mems: String? = nil, idle: Int64? = nil
    ) {
        self.shares = shares
        self.quota = quota
        self.burst = burst
        self.period = period
        self.realtimeRuntime = realtimeRuntime
        self.realtimePeriod = realtimePeriod
        self.cpus = cpus
        self.mems = mems
        self.idle = idle
    }
}

/// pids controller settings.
public struct LinuxPids: Codable, Sendable, Equatable {
    /// Maximum number of tasks; 0 or -1 means unlimited.
    public var limit: Int64

    public init(limit: Int64) {
        self.limit = limit
    }
}

/// Weight for one block device.
public struct LinuxWeightDevice: Codable, Sendable, Equatable {
    public var major: Int64
    public var minor: Int64
    public var weight: UInt16?
    public var leafWeight: UInt16?

    public init(major: Int64, minor: Int64, weight: UInt16? = nil, leafWeight: UInt16? = nil) {
        self.major = major
        self.minor = minor
        self.weight = weight
        self.leafWeight = leafWeight
    }
}

/// Bandwidth or IOPS cap for one block device.
public struct LinuxThrottleDevice: Codable, Sendable, Equatable {
    public var major: Int64
    public var minor: Int64
    public var rate: UInt64

    public init(major: Int64, minor: Int64, rate: UInt64) {
        self.major = major
        self.minor = minor
        self.rate = rate
    }
}

/// blkio / io controller settings.
public struct LinuxBlockIO: Codable, Sendable, Equatable {
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public var weightDevice: [LinuxWeightDevice]?
    public var throttleReadBpsDevice: [LinuxThrottleDevice]?
    public var throttleWriteBpsDevice: [LinuxThrottleDevice]?
    public var throttleReadIOPSDevice: [LinuxThrottleDevice]?
    public var throttleWriteIOPSDevice: [LinuxThrottleDevice]?

    public init(
        weight: UInt16? = nil, leafWeight: UInt16? = nil, weightDevice: [LinuxWeightDevice]? = nil,
        throttleReadBpsDevice: [LinuxThrottleDevice]? = nil,
        throttleWriteBpsDevice: [LinuxThrottleDevice]? = nil,
        throttleReadIOPSDevice: [LinuxThrottleDevice]? = nil,
        throttleWriteIOPSDevice: [LinuxThrottleDevice]? = nil
    ) {
        self.weight = weight
        self.leafWeight = leafWeight
        self.weightDevice = weightDevice
        self.throttleReadBpsDevice = throttleReadBpsDevice
        self.throttleWriteBpsDevice = throttleWriteBpsDevice
        self.throttleReadIOPSDevice = throttleReadIOPSDevice
        self.throttleWriteIOPSDevice = throttleWriteIOPSDevice
    }
}

/// hugetlb limit for one page size, e.g. "2MB".
public struct LinuxHugepageLimit: Codable, Sendable, Equatable {
    public var pageSize: String
    public var limit: UInt64

    public init(pageSize: String, limit: UInt64) {
        self.pageSize = pageSize
        self.limit = limit
    }
}

/// net_prio priority for one interface.
public struct LinuxInterfacePriority: Codable, Sendable, Equatable {
    public var name: String
    public var priority: UInt32

    public init(name: String, priority: UInt32) {
        self.name = name
        self.priority = priority
    }
}

/// net_cls / net_prio settings.
public struct LinuxNetwork: Codable, Sendable, Equatable {
    public var classID: UInt32?
    public var priorities: [LinuxInterfacePriority]?

    public init(classID: UInt32? = nil, priorities: [LinuxInterfacePriority]? = nil) {
        self.classID = classID
        self.priorities = priorities
    }
}

/// rdma controller limits for one device.
public struct LinuxRdma: Codable, Sendable, Equatable {
    public var hcaHandles: UInt32?
    public var hcaObjects: UInt32?

    public init(hcaHandles: UInt32? = nil, hcaObjects: UInt32? = nil) {
        self.hcaHandles = hcaHandles
        self.hcaObjects = hcaObjects
    }
}

/// Seccomp filter. Actions, arches, flags and ops stay strings; the seccomp module
/// validates them so it can report unsupported values with its own context.
public struct LinuxSeccomp: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt?
    public var architectures: [String]?
    public var flags: [String]?
    public var listenerPath: String?
    public var listenerMetadata: String?
    public var syscalls: [LinuxSyscall]?

    public init(
        defaultAction: String, defaultErrnoRet: UInt? = nil, architectures: [String]? = nil,
        flags: [String]? = nil, listenerPath: String? = nil, listenerMetadata: String? = nil,
        syscalls: [LinuxSyscall]? = nil
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.flags = flags
        self.listenerPath = listenerPath
        self.listenerMetadata = listenerMetadata
        self.syscalls = syscalls
    }
}

/// A seccomp rule for a set of syscalls.
public struct LinuxSyscall: Codable, Sendable, Equatable {
    public var names: [String]
    public var action: String
    public var errnoRet: UInt?
    public var args: [LinuxSeccompArg]?

    public init(names: [String], action: String, errnoRet: UInt? = nil, args: [LinuxSeccompArg]? = nil) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
    }
}

/// A seccomp argument comparison.
public struct LinuxSeccompArg: Codable, Sendable, Equatable {
    public var index: UInt
    public var value: UInt64
    public var valueTwo: UInt64?
    public var op: String

    public init(index: UInt, value: UInt64, valueTwo: UInt64? = nil, op: String) {
        self.index = index
        self.value = value
        self.valueTwo = valueTwo
        self.op = op
    }
}

/// personality(2) domain, e.g. "LINUX32".
public struct LinuxPersonality: Codable, Sendable, Equatable {
    public var domain: String
    public var flags: [String]?

    public init(domain: String, flags: [String]? = nil) {
        self.domain = domain
        self.flags = flags
    }
}

/// `"value"` as a JSON string literal (quotes, backslashes and control characters escaped):
/// error messages here, and the runtime's JSON log lines.
public func quoted(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if ch.value < 0x20 {
                let hex = String(ch.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out + "\""
}

import Glibc
import VeilLinux
import VeilSpec

/// The outcome of one `veil doctor` check.
public enum DoctorStatus: String, Codable, Sendable, Comparable, CaseIterable {
    case pass, warn, fail

    var rank: Int {
        switch self {
        case .pass: return 0
        case .warn: return 1
        case .fail: return 2
        }
    }

    public static func < (a: DoctorStatus, b: DoctorStatus) -> Bool { a.rank < b.rank }
}

/// One line of `veil doctor`: what was checked, how it went, what was found, and how to fix it.
public struct DoctorCheck: Equatable, Sendable {
    public var name: String
    public var status: DoctorStatus
    public var detail: String
    /// A command or setting; only when the status is not pass.
    public var fix: String?

    public init(_ name: String, _ status: DoctorStatus, _ detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = status == .pass ? nil : fix
    }
}

/// What `veil doctor` looks at (its flags).
public struct DoctorOptions: Equatable, Sendable {
    public static let defaultKubeletConfig = "/var/lib/kubelet/config.yaml"
    public static let defaultKubeletRoot = "/var/lib/kubelet"

    public var containerdConfig = InstallOptions.defaultContainerdConfig
    public var crioDirectory = "/etc/crio/crio.conf.d"
    /// CRI-O's main config, read for `root`/`runroot` and runtimes before the drop-ins.
    public var crioConfig = "/etc/crio/crio.conf"
    /// containers-storage's config, where CRI-O's graphroot/runroot default from.
    public var containersStorageConfig = "/etc/containers/storage.conf"
    public var kubeletConfig = DoctorOptions.defaultKubeletConfig
    /// kubelet's --root-dir: the node filesystem (nodefs) for eviction.
    public var kubeletRoot = DoctorOptions.defaultKubeletRoot
    /// Where `veil install` puts the binaries; checked besides PATH.
    public var prefix = "/usr/local/bin"
    /// PATH to search; nil for the environment's.
    public var searchPath: String?

    public init() {}
}

/// The checks of `veil doctor`, in the order they are printed. Each family lives in its own
/// Doctor*.swift file as pure functions over what was read, so tests can feed them.
public struct Doctor {
    public let options: DoctorOptions
    let host: InstallHost

    public init(options: DoctorOptions = DoctorOptions(), host: InstallHost = SystemHost()) {
        self.options = options
        self.host = host
    }

    /// Every check name `run()` reports, in order.
    public static let checkNames = [
        "kernel.version", "kernel.seccomp-notify", "kernel.user-namespaces", "kernel.idmapped-mounts",
        "kernel.pidfd", "kernel.clone3", "kernel.openat2", "kernel.close-range",
        "cgroup.layout", "cgroup.controllers", "cgroup.driver",
        "containerd.config", "containerd.isolation-floor", "crio.config", "crio.isolation-floor",
        "binary.veil", "binary.shim", "binary.versions", "binary.warden",
        "storage.containerd-root", "storage.containerd-state", "storage.crio-graphroot", "storage.crio-runroot",
        "eviction.nodefs", "eviction.imagefs",
    ]

    public func run() -> [DoctorCheck] {
        var checks = DoctorKernel.checks()
        checks += DoctorCgroups.checks()
        checks.append(DoctorCgroupDriver.check(options: options))
        let containerd = DoctorContainerd.inspect(configPath: options.containerdConfig, installed: containerdInstalled)
        checks.append(containerd.check)
        checks.append(DoctorIsolationFloor.containerd(configPath: options.containerdConfig, text: DoctorFiles.read(options.containerdConfig),
                                                      readFile: DoctorFiles.read))
        let crio = DoctorCRIO.inspect(options: options, installed: crioInstalled)
        checks.append(crio.check)
        checks.append(DoctorIsolationFloor.crio(handlers: crio.handlers, readFile: DoctorFiles.read))
        checks += DoctorBinaries.checks(searchPath: options.searchPath ?? environmentPath, prefix: options.prefix, shimRequired: containerd.storage != nil, host: host)
        checks += DoctorStorage.checks(containerd: containerd.storage, crio: crio.storage, options: options)
        return checks
    }

    var environmentPath: String {
        guard let value = getenv("PATH") else { return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        return String(cString: value)
    }

    var containerdInstalled: Bool {
        FS.exists(options.containerdConfig) || DoctorBinaries.find("containerd", in: environmentPath + ":/usr/sbin:/sbin") != nil
    }

    var crioInstalled: Bool {
        FS.exists(options.crioConfig) || FS.isDirectory(options.crioDirectory)
            || DoctorBinaries.find("crio", in: environmentPath + ":/usr/sbin:/sbin") != nil
    }

    /// 0 when no check failed, else 1.
    public static func exitStatus(_ checks: [DoctorCheck]) -> Int32 {
        checks.contains { $0.status == .fail } ? 1 : 0
    }

    // MARK: output

    /// A table: CHECK, STATUS, DETAIL, and the fix on an indented line below a check that is not pass.
    public static func renderTable(_ checks: [DoctorCheck]) -> String {
        let nameWidth = max(5, checks.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var out = pad("CHECK", nameWidth) + "  STATUS  DETAIL\n"
        for check in checks {
            out += pad(check.name, nameWidth) + "  " + pad(check.status.rawValue, 6) + "  " + check.detail + "\n"
            if let fix = check.fix {
                out += String(repeating: " ", count: nameWidth + 10) + "fix: " + fix + "\n"
            }
        }
        let fails = checks.filter { $0.status == .fail }.count, warns = checks.filter { $0.status == .warn }.count
        out += "\n\(checks.count) checks: \(checks.count - fails - warns) pass, \(warns) warn, \(fails) fail\n"
        return out
    }

    /// `{"checks":[{"name","status","detail","fix"?}],"ok":bool}`.
    public static func renderJSON(_ checks: [DoctorCheck]) -> String {
        let items: [JSONValue] = checks.map { check in
            var members: [(String, JSONValue)] = [
                ("name", .string(check.name)), ("status", .string(check.status.rawValue)), ("detail", .string(check.detail)),
            ]
            if let fix = check.fix { members.append(("fix", .string(fix))) }
            return .object(members)
        }
        return JSONValue.object([("checks", .array(items)), ("ok", .bool(exitStatus(checks) == 0))]).render()
    }
}

/// Small readers shared by the checks: nil when a file is missing or unreadable.
enum DoctorFiles {
    static func read(_ path: String) -> String? {
        try? FS.readString(path)
    }

    static func readTrimmed(_ path: String) -> String? {
        read(path).map { $0.trimmingWhitespace }
    }
}

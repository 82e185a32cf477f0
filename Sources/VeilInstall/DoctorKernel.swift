import CVeilLinux
import Glibc

/// What one probing call of a system call told.
public enum SyscallProbe: Equatable, Sendable {
    /// The kernel knows the call (it succeeded or refused the probe's arguments).
    case available
    /// ENOSYS: the kernel lacks it, or a seccomp filter above veil hides it.
    case missing
    /// EPERM/EACCES: present but this process may not use it (a seccomp filter or LSM).
    case denied(Int32)

    /// From the errno the probe returned (0 for success).
    public init(errno code: Int32) {
        switch code {
        case ENOSYS: self = .missing
        case EPERM, EACCES: self = .denied(code)
        default: self = .available
        }
    }

    var text: String {
        switch self {
        case .available: return "available"
        case .missing: return "missing (ENOSYS)"
        case .denied(let code): return "denied (\(code == EPERM ? "EPERM" : "EACCES"))"
        }
    }
}

/// Kernel features veil relies on.
public enum DoctorKernel {
    /// Every system call veil needs exists from this release on (mount_setattr, 5.12).
    static let minimum = (5, 12)

    static func checks() -> [DoctorCheck] {
        let release = kernelRelease()
        return [
            version(release: release),
            seccompNotify(actionsAvail: DoctorFiles.read("/proc/sys/kernel/seccomp/actions_avail")),
            userNamespaces(maxUserNamespaces: DoctorFiles.readTrimmed("/proc/sys/user/max_user_namespaces"),
                           unprivilegedClone: DoctorFiles.readTrimmed("/proc/sys/kernel/unprivileged_userns_clone")),
            idmappedMounts(release: release,
                           mountSetattr: SyscallProbe(errno: veil_doctor_probe_mount_setattr()),
                           openTree: SyscallProbe(errno: veil_doctor_probe_open_tree())),
            syscall("kernel.pidfd", call: "pidfd_open", since: "5.3", use: "waits on container processes through pidfds",
                    SyscallProbe(errno: veil_doctor_probe_pidfd_open())),
            syscall("kernel.clone3", call: "clone3", since: "5.7 for CLONE_INTO_CGROUP", use: "starts containers inside their cgroup v2 with clone3",
                    SyscallProbe(errno: veil_doctor_probe_clone3())),
            syscall("kernel.openat2", call: "openat2", since: "5.6", use: "resolves mount targets with openat2(RESOLVE_BENEATH)",
                    SyscallProbe(errno: veil_doctor_probe_openat2())),
            syscall("kernel.close-range", call: "close_range", since: "5.9", use: "closes leaked fds with close_range before exec",
                    SyscallProbe(errno: veil_doctor_probe_close_range())),
        ]
    }

    static func kernelRelease() -> String {
        var name = utsname()
        guard uname(&name) == 0 else { return "" }
        return withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// "6.1.0-18-amd64" → (6, 1); nil when it does not start with MAJOR.MINOR.
    public static func parseRelease(_ release: String) -> (major: Int, minor: Int)? {
        let parts = release.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let major = Int(parts[0]) else { return nil }
        let minor = Int(parts[1].prefix { $0.isNumber })
        guard let minor else { return nil }
        return (major, minor)
    }

    static func atLeast(_ version: (major: Int, minor: Int), _ minimum: (Int, Int)) -> Bool {
        version.major > minimum.0 || (version.major == minimum.0 && version.minor >= minimum.1)
    }

    public static func version(release: String) -> DoctorCheck {
        guard let parsed = parseRelease(release) else {
            return DoctorCheck("kernel.version", .warn, "cannot read the kernel version from \"\(release)\"",
                               fix: "check `uname -r`; veil needs Linux 5.12 or later")
        }
        if atLeast(parsed, minimum) {
            return DoctorCheck("kernel.version", .pass, "Linux \(release)")
        }
        return DoctorCheck("kernel.version", .warn,
                           "Linux \(release) is older than 5.12; veil needs openat2 (5.6), clone3 into a cgroup (5.7), close_range (5.9) and mount_setattr (5.12) unless backported (see the probes below)",
                           fix: "boot a kernel 5.12 or later")
    }

    public static func seccompNotify(actionsAvail: String?) -> DoctorCheck {
        let name = "kernel.seccomp-notify"
        guard let actionsAvail else {
            return DoctorCheck(name, .fail, "/proc/sys/kernel/seccomp/actions_avail is missing: no seccomp filter support",
                               fix: "a kernel built with CONFIG_SECCOMP_FILTER=y (5.0 or later for user notification)")
        }
        let actions = actionsAvail.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        if actions.contains("user_notif") {
            return DoctorCheck(name, .pass, "seccomp filters with user notification (SCMP_ACT_NOTIFY)")
        }
        return DoctorCheck(name, .fail, "the kernel's seccomp actions are \(actions.joined(separator: " ")): no user_notif, so profiles with SCMP_ACT_NOTIFY are refused",
                           fix: "boot a kernel 5.0 or later with CONFIG_SECCOMP_FILTER=y")
    }

    public static func userNamespaces(maxUserNamespaces: String?, unprivilegedClone: String?) -> DoctorCheck {
        let name = "kernel.user-namespaces"
        guard let maxUserNamespaces else {
            return DoctorCheck(name, .fail, "/proc/sys/user/max_user_namespaces is missing: the kernel has no user namespaces",
                               fix: "a kernel built with CONFIG_USER_NS=y")
        }
        guard let limit = Int(maxUserNamespaces) else {
            return DoctorCheck(name, .warn, "user.max_user_namespaces reads \"\(maxUserNamespaces)\"", fix: "sysctl -w user.max_user_namespaces=15000")
        }
        guard limit > 0 else {
            return DoctorCheck(name, .fail, "user.max_user_namespaces is 0: containers with a user namespace cannot start",
                               fix: "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)")
        }
        var detail = "user.max_user_namespaces = \(limit)"
        // Debian's switch for unprivileged users only; veil runs as root, so this is for information.
        if let unprivilegedClone {
            detail += "; kernel.unprivileged_userns_clone = \(unprivilegedClone)" + (unprivilegedClone == "0" ? " (only root may create them: fine for veil)" : "")
        }
        return DoctorCheck(name, .pass, detail)
    }

    public static func idmappedMounts(release: String, mountSetattr: SyscallProbe, openTree: SyscallProbe) -> DoctorCheck {
        let name = "kernel.idmapped-mounts"
        let newEnough = parseRelease(release).map { atLeast($0, minimum) } ?? false
        let detail = "mount_setattr \(mountSetattr.text), open_tree \(openTree.text)"
        if mountSetattr == .available && openTree == .available {
            if newEnough {
                return DoctorCheck(name, .pass, detail + "; idmapped mounts (5.12+) and veil's read-only runtime binary mount work")
            }
            return DoctorCheck(name, .warn, detail + ", but Linux \(release) predates idmapped mounts (5.12): only the read-only binary mount is sure to work",
                               fix: "boot a kernel 5.12 or later")
        }
        return DoctorCheck(name, .fail, detail + ": veil runs `veil init` from a detached read-only mount of its binary (open_tree + mount_setattr) and cannot start containers",
                           fix: "boot a kernel 5.12 or later, and allow open_tree/mount_setattr in any seccomp profile around veil")
    }

    public static func syscall(_ name: String, call: String, since: String, use: String, _ probe: SyscallProbe) -> DoctorCheck {
        switch probe {
        case .available:
            return DoctorCheck(name, .pass, "\(call) available")
        case .missing, .denied:
            return DoctorCheck(name, .fail, "\(call) \(probe.text): veil \(use)",
                               fix: "boot a kernel with \(call) (Linux \(since)), and allow it in any seccomp profile around veil")
        }
    }
}

import Glibc
import CVeilLinux

private let PR_CAPBSET_DROP: Int32 = 24
private let PR_SET_KEEPCAPS: Int32 = 8
private let PR_CAP_AMBIENT: Int32 = 47
private let PR_CAP_AMBIENT_RAISE: UInt = 2
private let PR_CAP_AMBIENT_CLEAR_ALL: UInt = 4
private let PR_SET_NO_NEW_PRIVS: Int32 = 38

/// A set of capability numbers as the kernel's two 32-bit words.
public struct CapabilitySet: Sendable, Equatable {
    public var bits: UInt64 = 0
    public init(_ numbers: [Int32] = []) { for n in numbers where n >= 0 && n < 64 { bits |= 1 << UInt64(n) } }
    public func contains(_ n: Int32) -> Bool { n >= 0 && n < 64 && bits & (1 << UInt64(n)) != 0 }
    var words: [UInt32] { [UInt32(truncatingIfNeeded: bits), UInt32(truncatingIfNeeded: bits >> 32)] }
}

public enum Credentials {
    /// Read once per process: the init filters each configured capability by it.
    public static let lastCapability: Int32 =
        (try? FS.readString("/proc/sys/kernel/cap_last_cap")).flatMap { Int32($0.trimmingCharacters()) } ?? 40

    public static func dropBounding(keeping keep: CapabilitySet) throws(LinuxError) {
        for cap in 0...lastCapability where !keep.contains(cap) {
            try sysNeg("prctl(PR_CAPBSET_DROP)", "capability \(cap)") { veil_prctl(PR_CAPBSET_DROP, UInt(cap), 0, 0, 0) }
        }
    }

    public static func setKeepCaps(_ on: Bool) throws(LinuxError) {
        try sysNeg("prctl(PR_SET_KEEPCAPS)") { veil_prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) }
    }

    public static func setCapabilities(effective: CapabilitySet, permitted: CapabilitySet, inheritable: CapabilitySet) throws(LinuxError) {
        var e = effective.words, p = permitted.words, i = inheritable.words
        try sysNeg("capset") { veil_capset(&e, &p, &i) }
    }

    /// The kernel raises an ambient capability only if it is both permitted and inheritable;
    /// like runc, the others are skipped rather than failing (runc's default spec lists ambient
    /// capabilities without inheritable ones).
    public static func raiseAmbient(_ set: CapabilitySet, permitted: CapabilitySet, inheritable: CapabilitySet) {
        _ = veil_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        for cap in 0...lastCapability where set.contains(cap) && permitted.contains(cap) && inheritable.contains(cap) {
            _ = veil_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, UInt(cap), 0, 0)
        }
    }

    public static func setNoNewPrivileges() throws(LinuxError) {
        try sysNeg("prctl(PR_SET_NO_NEW_PRIVS)") { veil_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }
    }

    public static func setIDs(uid: UInt32, gid: UInt32, groups: [UInt32]) throws(LinuxError) {
        var list = groups.map { gid_t($0) }
        try sys("setgroups", "\(groups)") { setgroups(list.count, &list) }
        try sysNeg("setresgid", "\(gid)") { veil_setresgid(gid) }
        try sysNeg("setresuid", "\(uid)") { veil_setresuid(uid) }
    }

    public static func setRlimit(_ resource: Int32, soft: UInt64, hard: UInt64) throws(LinuxError) {
        var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
        try sys("setrlimit", "resource \(resource) (\(soft)/\(hard))") { setrlimit(__rlimit_resource_t(UInt32(resource)), &limit) }
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

public enum Pty {
    /// Opens a new pty pair from `ptmx`; returns master and the slave's path.
    public static func open(ptmx: String = "/dev/ptmx") throws(LinuxError) -> (master: FileDescriptor, slavePath: String) {
        let master = try FileDescriptor.open(ptmx, O_RDWR | O_NOCTTY)
        let number = try sysNeg("ioctl(TIOCGPTN)", ptmx) { veil_pty_unlock(master.raw) }
        return (master, "/dev/pts/\(number)")
    }

    public static func makeControllingTerminal(_ fd: Int32) throws(LinuxError) {
        try sysNeg("ioctl(TIOCSCTTY)") { veil_set_ctty(fd) }
    }

    public static func setWindowSize(_ fd: Int32, rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = veil_ioctl_ptr(fd, UInt(TIOCSWINSZ), &size)
    }

    public static func windowSize(_ fd: Int32) -> (rows: UInt16, columns: UInt16)? {
        var size = winsize()
        guard veil_ioctl_ptr(fd, UInt(TIOCGWINSZ), &size) == 0 else { return nil }
        return (size.ws_row, size.ws_col)
    }
}

import CSeccomp

/// Action values of libseccomp 2.5.4's <seccomp.h> (lines 332-364). Its SCMP_ACT_ERRNO(x) and
/// SCMP_ACT_TRACE(x) are function-like macros Swift cannot import, so all values are spelled here:
///   SCMP_ACT_KILL_PROCESS 0x80000000U, SCMP_ACT_KILL_THREAD 0x00000000U (= SCMP_ACT_KILL),
///   SCMP_ACT_TRAP 0x00030000U, SCMP_ACT_NOTIFY 0x7fc00000U,
///   SCMP_ACT_ERRNO(x) (0x00050000U | ((x) & 0x0000ffffU)),
///   SCMP_ACT_TRACE(x) (0x7ff00000U | ((x) & 0x0000ffffU)),
///   SCMP_ACT_LOG 0x7ffc0000U, SCMP_ACT_ALLOW 0x7fff0000U.
/// They equal the kernel's SECCOMP_RET_* values (<linux/seccomp.h>).
enum ActionValue {
    static let killProcess: UInt32 = 0x8000_0000
    static let killThread: UInt32 = 0x0000_0000
    static let trap: UInt32 = 0x0003_0000
    static let notify: UInt32 = 0x7fc0_0000
    static let log: UInt32 = 0x7ffc_0000
    static let allow: UInt32 = 0x7fff_0000
    static func errno(_ value: UInt32) -> UInt32 { 0x0005_0000 | (value & 0xffff) }
    static func trace(_ value: UInt32) -> UInt32 { 0x7ff0_0000 | (value & 0xffff) }
}

/// The OCI action names veil knows (runc's list).
enum ActionName: String, CaseIterable {
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP"
    case errno = "SCMP_ACT_ERRNO"
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    case log = "SCMP_ACT_LOG"
    case notify = "SCMP_ACT_NOTIFY"

    /// Whether `errnoRet` means something for this action (runtime-spec: ERRNO and TRACE).
    var takesErrno: Bool { self == .errno || self == .trace }
    /// As a default action: calls the profile does not name fail (or kill) rather than run.
    var failsUnknownCalls: Bool { self != .allow && self != .log && self != .notify }

    /// The libseccomp action; `errnoRet` defaults to EPERM as in runc.
    func value(errnoRet: UInt32?) -> UInt32 {
        let eperm: UInt32 = 1  // EPERM
        switch self {
        case .kill, .killThread: return ActionValue.killThread
        case .killProcess: return ActionValue.killProcess
        case .trap: return ActionValue.trap
        case .errno: return ActionValue.errno(errnoRet ?? eperm)
        case .trace: return ActionValue.trace(errnoRet ?? eperm)
        case .allow: return ActionValue.allow
        case .log: return ActionValue.log
        case .notify: return ActionValue.notify
        }
    }

    /// The name the kernel lists in /proc/sys/kernel/seccomp/actions_avail.
    var kernelName: String {
        switch self {
        case .kill, .killThread: return "kill_thread"
        case .killProcess: return "kill_process"
        case .trap: return "trap"
        case .errno: return "errno"
        case .trace: return "trace"
        case .allow: return "allow"
        case .log: return "log"
        case .notify: return "user_notif"
        }
    }
}

/// Comparison operators, named as in libseccomp's `enum scmp_compare`.
enum OperatorName: String, CaseIterable {
    case ne = "SCMP_CMP_NE"
    case lt = "SCMP_CMP_LT"
    case le = "SCMP_CMP_LE"
    case eq = "SCMP_CMP_EQ"
    case ge = "SCMP_CMP_GE"
    case gt = "SCMP_CMP_GT"
    case maskedEq = "SCMP_CMP_MASKED_EQ"

    var value: scmp_compare {
        switch self {
        case .ne: return SCMP_CMP_NE
        case .lt: return SCMP_CMP_LT
        case .le: return SCMP_CMP_LE
        case .eq: return SCMP_CMP_EQ
        case .ge: return SCMP_CMP_GE
        case .gt: return SCMP_CMP_GT
        case .maskedEq: return SCMP_CMP_MASKED_EQ
        }
    }
}

/// seccomp(2) filter flags (<linux/seccomp.h>).
public enum SeccompFilterFlag {
    public static let tsync: UInt32 = 1 << 0
    public static let log: UInt32 = 1 << 1
    public static let specAllow: UInt32 = 1 << 2
    public static let newListener: UInt32 = 1 << 3
    public static let tsyncESRCH: UInt32 = 1 << 4
    public static let waitKillableRecv: UInt32 = 1 << 5

    /// The flag names a profile may list, with their bits. TSYNC is not in the runtime-spec but
    /// runc accepts it.
    public static let known: [(name: String, bit: UInt32)] = [
        ("SECCOMP_FILTER_FLAG_TSYNC", tsync),
        ("SECCOMP_FILTER_FLAG_LOG", log),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", specAllow),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", waitKillableRecv),
    ]

    static func bit(named name: String) -> UInt32? {
        known.first { $0.name == name }?.bit
    }
}

/// The OCI architecture names runc knows; those libseccomp cannot resolve are refused at compile
/// time and left out of `SeccompFeatures.archs`.
let knownArchitectureNames: [String] = [
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
]

/// libseccomp's token for an OCI architecture name ("SCMP_ARCH_X86_64" -> "x86_64"), or nil.
func resolveArchitecture(_ name: String) -> UInt32? {
    let prefix = "SCMP_ARCH_"
    guard name.hasPrefix(prefix) else { return nil }
    let short = String(name.dropFirst(prefix.count)).lowercased()
    guard !short.isEmpty else { return nil }
    let token = seccomp_arch_resolve_name(short)
    return token == 0 ? nil : token
}

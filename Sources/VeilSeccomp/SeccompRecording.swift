import CSeccomp
import Glibc
import VeilSpec

/// Record mode (`veil seccomp record`): the filter that notifies every call, and the OCI profile
/// written from the calls it saw.
public enum SeccompRecording {
    /// The calls the container's init may make between installing the record filter and the
    /// recorder's start (handing the listener over, memory for that): they cannot wait for a
    /// recorder that does not exist yet, so the record filter allows them unseen, and every
    /// recorded profile allows them.
    public static let unrecordedCalls: [String] = [
        "sendto", "sendmsg", "close", "write", "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
        "futex", "exit", "exit_group",
    ]

    /// The runtime's own needs in every recorded profile: the unrecorded calls, and what the init
    /// does when the profile is applied before the point where the record filter went in (a
    /// profile without no_new_privs is installed early, then the sandbox policy after it).
    public static let runtimeCalls: [String] = unrecordedCalls + ["seccomp", "execve"]

    /// Audit architecture numbers (<linux/audit.h>), as notifications report them.
    static let auditX86_64: UInt32 = 0xC000_003E
    static let auditI386: UInt32 = 0x4000_0003
    static let x32Bit: Int32 = 0x4000_0000

    /// The OCI names, in the order a recorded profile lists them.
    public static let architectureOrder = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

    /// The record filter: SCMP_ACT_NOTIFY for every call of the native architecture and its
    /// compat ones (x86, x32), except `unrecordedCalls`.
    public static func filter() throws(SeccompError) -> SeccompProgram {
        let field = "record filter"
        guard let ctx = seccomp_init(ActionValue.notify) else {
            throw SeccompError(path: field, reason: "libseccomp refused SCMP_ACT_NOTIFY as the default action (does this kernel have user notification?)")
        }
        defer { seccomp_release(ctx) }
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0)
        if seccomp_arch_native() == auditX86_64 {  // SCMP_ARCH_X86_64 (a macro Swift cannot import)
            for name in ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] {
                guard let token = resolveArchitecture(name) else { continue }
                let rc = seccomp_arch_add(ctx, token)
                if rc < 0 && rc != -EEXIST {
                    throw SeccompError(path: field, reason: "cannot add \(name): \(errnoText(-rc))")
                }
            }
        }
        for name in unrecordedCalls {
            let number = seccomp_syscall_resolve_name(name)
            if number == __NR_SCMP_ERROR { continue }
            let rc = seccomp_rule_add_array(ctx, ActionValue.allow, number, 0, nil)
            if rc < 0 { throw SeccompError(path: field, reason: "cannot allow \(name): \(errnoText(-rc))") }
        }
        return SeccompProgram(filter: try SeccompProgram.export(ctx, field: field), flags: [], usesNotify: true)
    }

    /// A filter that allows everything and asks for a listener: installed by the recorder on
    /// itself at the sandbox level, its listener keeps the sandbox's warden alive exactly as long as
    /// the recorder (a warden lives while one of its listeners has a process under its filter).
    /// One instruction: BPF_RET|BPF_K SECCOMP_RET_ALLOW.
    public static let anchorFilter = SeccompProgram(filter: [0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x7F], flags: [], usesNotify: true)

    /// The OCI architecture and libseccomp's name of one recorded call; nil when libseccomp does
    /// not know the number (a call newer than it) or the architecture.
    public static func name(arch: UInt32, nr: Int32) -> (architecture: String, name: String)? {
        let architecture: String
        switch arch {
        case auditX86_64: architecture = nr & x32Bit != 0 ? "SCMP_ARCH_X32" : "SCMP_ARCH_X86_64"
        case auditI386: architecture = "SCMP_ARCH_X86"
        default: return nil
        }
        guard let token = resolveArchitecture(architecture),
              let raw = seccomp_syscall_resolve_num_arch(token, nr) else { return nil }
        defer { free(raw) }
        return (architecture, String(cString: raw))
    }

    /// The profile of the recorded calls (names by OCI architecture): every call not listed fails
    /// with EPERM; `architectures` names those seen, x86_64 first; one SCMP_ACT_ALLOW rule lists
    /// the names sorted and deduplicated, with the runtime's own needs. An OCI rule cannot be
    /// limited to one architecture, so the rule is the union over them.
    public static func profile(names: [String: Set<String>], runtime: [String] = runtimeCalls) -> LinuxSeccomp {
        var architectures = ["SCMP_ARCH_X86_64"]
        for name in architectureOrder.dropFirst() where !(names[name] ?? []).isEmpty { architectures.append(name) }
        for name in names.keys.sorted() where !architectures.contains(name) && !(names[name] ?? []).isEmpty {
            architectures.append(name)
        }
        var all = Set(runtime)
        for set in names.values { all.formUnion(set) }
        return LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: UInt(EPERM), architectures: architectures,
                            syscalls: [LinuxSyscall(names: all.sorted(), action: "SCMP_ACT_ALLOW")])
    }

    /// The profile as JSON, two-space indented, keys in the runtime-spec's order.
    public static func encode(_ profile: LinuxSeccomp) throws(SeccompError) -> [UInt8] {
        do { return try OrderedJSONEncoder.encode(profile, layout: .twoSpaces) } catch {
            throw SeccompError(path: "", reason: "cannot encode the recorded profile: \(error)")
        }
    }
}

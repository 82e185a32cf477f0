import Glibc
import VeilLinux
import VeilSeccomp
import VeilSpec

/// The warden's own seccomp filter: only the calls it makes (recorded with `strace -f` over the
/// sandbox, pod and warden-death tests), so that a warden turned by a crafted request still
/// reaches almost nothing of the host kernel (gVisor confines its Sentry the same way). Any other
/// call kills it, and with it the sandbox it guards (its sentinel sees it go): a confused warden is
/// not left running. veil compiles it (libseccomp) and hands it over as `warden.bpf` in the state
/// directory; the warden installs it once it is confined, before it serves anything.
public enum WardenPolicy {
    /// Calls allowed with any arguments.
    public static let allowed: [String] = [
        // Memory, threads, signals (the Swift runtime, glibc, pthreads, the fatal-signal handlers).
        "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "futex", "set_robust_list", "rseq",
        "clone", "clone3", "exit", "exit_group", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
        "tgkill", "getpid", "gettid", "restart_syscall", "sched_yield", "sched_getaffinity", "getrandom",
        "clock_gettime", "clock_nanosleep", "nanosleep", "prctl",
        // Files: its /proc and cgroup reads, /proc/<tid>/mem, the FUSE connection, stderr.
        "openat", "close", "read", "write", "writev", "pread64", "pwrite64", "lseek", "fstat", "newfstatat", "statx",
        "fcntl",
        // The control socket and the listeners' threads.
        "poll", "ppoll", "accept", "accept4", "recvmsg", "sendmsg",
        // The answers it computes: uname's base, the host's memory for sysinfo and meminfo.
        "uname", "sysinfo",
        // The dead man's switch.
        "pidfd_open", "pidfd_send_signal",
    ]

    /// ioctl only for the seccomp listener's requests (receive, send, id check, flags).
    public static let ioctlRequests: [(String, UInt64)] = [
        ("SECCOMP_IOCTL_NOTIF_RECV", 0xc050_2100), ("SECCOMP_IOCTL_NOTIF_SEND", 0xc018_2101),
        ("SECCOMP_IOCTL_NOTIF_ID_VALID", 0x4008_2102), ("SECCOMP_IOCTL_NOTIF_ID_VALID (5.0-5.6 encoding)", 0x8008_2102),
        ("SECCOMP_IOCTL_NOTIF_SET_FLAGS", 0x4008_2104),
    ]

    public static var profile: LinuxSeccomp {
        var syscalls = [LinuxSyscall(names: allowed, action: "SCMP_ACT_ALLOW")]
        for (_, request) in ioctlRequests {
            syscalls.append(LinuxSyscall(names: ["ioctl"], action: "SCMP_ACT_ALLOW",
                                         args: [LinuxSeccompArg(index: 1, value: request, op: "SCMP_CMP_EQ")]))
        }
        return LinuxSeccomp(defaultAction: "SCMP_ACT_KILL_PROCESS", architectures: ["SCMP_ARCH_X86_64"],
                            flags: ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], syscalls: syscalls)
    }

    /// The compiled filter, cached in `cacheDirectory` (`PolicyCache`).
    public static func program(cacheDirectory: String) throws(SeccompError) -> SeccompProgram {
        let path = PolicyCache.path("warden-policy", suffix: "bpf", directory: cacheDirectory) {
            ([profile.defaultAction] + (profile.flags ?? []) + allowed + ioctlRequests.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
        }
        let filter = try PolicyCache.load(path, directory: cacheDirectory, valid: { !$0.isEmpty && $0.count % 8 == 0 }) { () throws(SeccompError) -> [UInt8] in
            try SeccompProgram.compile(profile, field: "warden policy").filter
        }
        return SeccompProgram(filter: filter, flags: [], usesNotify: false)
    }
}

import CVeilLinux
import Glibc
import VeilSpec

/// What the sandbox does with one system call (README, "Isolation levels").
public enum SyscallTreatment: Sendable, Equatable {
    /// Straight to the host kernel, when the argument filter (if any) holds.
    case direct
    /// Answered by the warden (seccomp user notification); the host kernel never sees it.
    case emulated
    /// Seen by the warden (seccomp user notification), then run by the host kernel.
    case observed
    /// Fails with this errno, as gVisor fails it.
    case refused(errno: Int32)
}

/// One line of the policy: a system call, its treatment, and the argument filter that narrows it.
public struct PolicyEntry: Sendable, Equatable {
    public let name: String
    public let treatment: SyscallTreatment
    /// Argument comparisons (ANDed) under which the treatment applies; empty: always.
    public let args: [LinuxSeccompArg]
    /// What the filter means, for `veil sandbox policy`.
    public let note: String

    public init(_ name: String, _ treatment: SyscallTreatment, args: [LinuxSeccompArg] = [], note: String = "") {
        self.name = name
        self.treatment = treatment
        self.args = args
        self.note = note
    }
}

/// The sandbox's seccomp policy: deny by default (ENOSYS, as gVisor answers a call it does not
/// implement), a small allow-list straight to the kernel, the kernel-identity calls emulated by
/// the warden, and the risky calls refused with gVisor's errno.
public enum SandboxPolicy {
    /// Unknown and unlisted calls.
    public static let defaultErrno = ENOSYS

    /// Namespace bits of clone(2)/unshare(2): a sandbox makes no new namespaces.
    static let namespaceFlags: [(String, UInt64)] = LinuxNamespaceType.allCases.map { type in
        let name = [.mount: "NS", .network: "NET"][type] ?? type.rawValue.uppercased()
        return ("CLONE_NEW" + name, UInt64(type.cloneFlag))
    }
    /// For clone(2) 0x80 is part of the exit signal (CSIGNAL), not CLONE_NEWTIME.
    static func namespaceMask(for call: String) -> UInt64 {
        namespaceFlags.reduce(0) { $0 | $1.1 } & (call == "clone" ? ~UInt64(0x80) : ~UInt64(0))
    }

    /// Calls any program needs, with no argument that reaches beyond the sandbox's own resources.
    static let plain: [String] = [
        "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset", "chdir", "chmod",
        "chown", "chroot", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
        "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "exit",
        "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat",
        "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
        "fremovexattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_waitv",
        "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents",
        "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid",
        "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
        "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
        "io_getevents", "io_pgetevents", "io_setup", "io_submit", "ioprio_get", "ioprio_set", "kill",
        "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link",
        "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lstat", "madvise",
        "mbind", "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
        "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
        "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
        "pread64", "preadv", "preadv2", "prlimit64", "pselect6", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
        "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
        "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
        "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
        "select", "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
        "set_mempolicy", "set_robust_list", "set_thread_area", "set_tid_address", "setdomainname", "setfsgid",
        "setfsuid", "setgid", "setgroups", "sethostname", "setitimer", "setpgid", "setpriority", "setregid",
        "setresgid", "setresuid", "setreuid", "setrlimit", "setsid", "setuid", "shmat",
        "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "splice", "stat",
        "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "tgkill", "time",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
        "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "unlink", "unlinkat",
        "utime", "utimensat", "utimes", "vfork", "wait4", "waitid", "write", "writev",
    ]

    /// Refused outright, with the errno gVisor gives (EPERM where it needs a capability the
    /// sandbox never has, ENOSYS where gVisor does not implement it).
    static let refusals: [(String, Int32, String)] = [
        ("mount", EPERM, "mount family (overlayfs CVE-2023-0386, fs_context CVE-2022-0185)"), ("umount2", EPERM, "mount family"), ("pivot_root", EPERM, "mount family"),
        ("fsopen", EPERM, "new mount API: fs_context parsing (CVE-2022-0185)"), ("fsconfig", EPERM, "mount family"), ("fsmount", EPERM, "mount family"),
        ("fspick", EPERM, "mount family"), ("move_mount", EPERM, "mount family"), ("open_tree", EPERM, "mount family"),
        ("mount_setattr", EPERM, "mount family"), ("setns", EPERM, "joining namespaces"),
        ("keyctl", EACCES, "kernel keyrings (CVE-2016-0728)"), ("add_key", EACCES, "kernel keyrings (CVE-2016-0728)"), ("request_key", EACCES, "kernel keyrings (CVE-2016-0728)"),
        ("bpf", EPERM, "eBPF verifier and maps (CVE-2021-3490, CVE-2022-23222)"), ("perf_event_open", ENODEV, "perf events (CVE-2023-6931)"),
        ("userfaultfd", ENOSYS, "userfaultfd: stalls kernel copies to win the races of use-after-free exploits"),
        ("io_uring_setup", ENOSYS, "io_uring (CVE-2022-29582, CVE-2023-2598)"), ("io_uring_enter", ENOSYS, "io_uring"), ("io_uring_register", ENOSYS, "io_uring"),
        ("ptrace", EPERM, "tracing other processes (CVE-2019-13272)"), ("process_vm_readv", EPERM, "other processes' memory"),
        ("process_vm_writev", EPERM, "other processes' memory"), ("process_madvise", EPERM, "other processes' memory"),
        ("kcmp", EPERM, "comparing other processes"), ("pidfd_getfd", EPERM, "stealing other processes' fds"),
        ("move_pages", EPERM, "other processes' memory"), ("migrate_pages", EPERM, "other processes' memory"),
        ("kexec_load", EPERM, "loading a kernel"), ("kexec_file_load", EPERM, "loading a kernel"),
        ("init_module", EPERM, "kernel modules"), ("finit_module", EPERM, "kernel modules"), ("delete_module", EPERM, "kernel modules"),
        ("open_by_handle_at", EOPNOTSUPP, "file handles (the 'shocker' breakout)"), ("name_to_handle_at", EOPNOTSUPP, "file handles"),
        ("reboot", EPERM, "rebooting the host"), ("swapon", EPERM, "swap"), ("swapoff", EPERM, "swap"),
        ("clock_settime", EPERM, "setting the clock"), ("settimeofday", EPERM, "setting the clock"),
        ("adjtimex", EPERM, "setting the clock"), ("clock_adjtime", EPERM, "setting the clock"),
        ("acct", EPERM, "process accounting"), ("quotactl", EPERM, "disk quotas"), ("quotactl_fd", EPERM, "disk quotas"),
        ("lookup_dcookie", EPERM, "profiling"), ("vmsplice", EPERM, "splicing user pages"),
        ("iopl", EPERM, "I/O ports"), ("ioperm", EPERM, "I/O ports"), ("modify_ldt", EPERM, "x86 LDT (CVE-2015-5157, CVE-2017-17053)"),
        ("vhangup", EPERM, "terminal hangup"), ("fanotify_init", ENOSYS, "fanotify"), ("nfsservctl", ENOSYS, "nfsd"),
        ("_sysctl", ENOSYS, "sysctl(2)"), ("sysfs", ENOSYS, "sysfs(2)"), ("uselib", ENOSYS, "uselib"), ("ustat", ENOSYS, "ustat"),
        ("setxattr", EOPNOTSUPP, "file capabilities (setcap) would ride on it; copy tools treat EOPNOTSUPP as 'no xattrs here'"),
        ("lsetxattr", EOPNOTSUPP, "as setxattr"), ("fsetxattr", EOPNOTSUPP, "as setxattr"),
        ("clone3", ENOSYS, "flags live in memory the filter cannot read; C libraries fall back to clone"),
    ]

    /// Answered by the warden.
    static let emulations: [(String, String)] = [
        ("uname", "veil's kernel identity; the sandbox's own hostname"),
        ("syslog", "veil's boot log (dmesg)"),
        ("sysinfo", "the sandbox's memory limit, uptime and process count"),
    ]

    /// execve(2) and execveat(2) are seen by the warden before the kernel runs them: it drops what
    /// it keeps of the caller's address space (TaskMemory). veil's init execs the container's
    /// program unseen, marked in the three argument registers execve does not read: it has made no
    /// call the warden answers, so there is nothing to drop, and the program's start does not wait
    /// for the warden. A tenant copying the marks only spares the warden's bookkeeping of its own
    /// processes: a handle left over by an unseen exec names an address space the dead image shared
    /// with its own CLONE_VM children, or none.
    static var observations: [PolicyEntry] {
        let marks = [VEIL_EXEC_MARK_0, VEIL_EXEC_MARK_1, VEIL_EXEC_MARK_2]
        let why = "the warden drops what it keeps of the caller's memory, then the kernel runs it"
        var entries = [PolicyEntry("execve", .direct, args: marks.enumerated().map { arg(UInt($0.offset) + 3, "SCMP_CMP_EQ", $0.element) },
                                   note: "veil's init starting the container's program (marked in the unused arguments)")]
        for (index, mark) in marks.enumerated() {
            entries.append(PolicyEntry("execve", .observed, args: [arg(UInt(index) + 3, "SCMP_CMP_NE", mark)], note: why))
        }
        entries.append(PolicyEntry("execveat", .observed, note: why))
        return entries
    }

    static func arg(_ index: UInt, _ op: String, _ value: UInt64, _ valueTwo: UInt64? = nil) -> LinuxSeccompArg {
        LinuxSeccompArg(index: index, value: value, valueTwo: valueTwo, op: op)
    }

    /// Calls allowed only with some arguments; every other argument is refused or falls to the default.
    static var filtered: [PolicyEntry] {
        var entries: [PolicyEntry] = []
        for call in ["clone", "unshare"] {
            entries.append(PolicyEntry(call, .direct, args: [arg(0, "SCMP_CMP_MASKED_EQ", namespaceMask(for: call), 0)], note: "no new namespace"))
            for (name, bit) in namespaceFlags where !(call == "clone" && bit == 0x80) {
                let why = bit == UInt64(LinuxNamespaceType.user.cloneFlag) ? ": nested user namespaces hand container root every capability over new network and mount namespaces (the tc, nf_tables and fs_context classes)" : ""
                entries.append(PolicyEntry(call, .refused(errno: EPERM), args: [arg(0, "SCMP_CMP_MASKED_EQ", bit, bit)], note: name + why))
            }
        }
        entries += socketRules + setsockoptRules + ioctlRules
        // prctl(2): the options programs use on themselves.
        let prctlOptions: [(UInt64, String)] = [
            (1, "PR_SET_PDEATHSIG"), (2, "PR_GET_PDEATHSIG"), (3, "PR_GET_DUMPABLE"), (4, "PR_SET_DUMPABLE"),
            (7, "PR_GET_KEEPCAPS"), (8, "PR_SET_KEEPCAPS"), (13, "PR_GET_TIMING"), (15, "PR_SET_NAME"), (16, "PR_GET_NAME"),
            (21, "PR_GET_SECCOMP"), (22, "PR_SET_SECCOMP"), (23, "PR_CAPBSET_READ"), (24, "PR_CAPBSET_DROP"),
            (25, "PR_GET_TSC"), (27, "PR_GET_SECUREBITS"), (28, "PR_SET_SECUREBITS"), (29, "PR_SET_TIMERSLACK"),
            (30, "PR_GET_TIMERSLACK"), (36, "PR_SET_CHILD_SUBREAPER"), (37, "PR_GET_CHILD_SUBREAPER"),
            (38, "PR_SET_NO_NEW_PRIVS"), (39, "PR_GET_NO_NEW_PRIVS"), (40, "PR_GET_TID_ADDRESS"),
            (41, "PR_SET_THP_DISABLE"), (42, "PR_GET_THP_DISABLE"), (47, "PR_CAP_AMBIENT"),
            (52, "PR_GET_SPECULATION_CTRL"), (53, "PR_SET_SPECULATION_CTRL"), (65, "PR_SET_MDWE"), (66, "PR_GET_MDWE"),
            (0x5356_4d41, "PR_SET_VMA"), (0x5961_6d61, "PR_SET_PTRACER"),
        ]
        for (option, name) in prctlOptions {
            entries.append(PolicyEntry("prctl", .direct, args: [arg(0, "SCMP_CMP_EQ", option)], note: name))
        }
        entries.append(PolicyEntry("prctl", .refused(errno: EPERM), args: [arg(0, "SCMP_CMP_EQ", 35)], note: "PR_SET_MM"))
        // personality(2): query, Linux, 32-bit and uname26 personas, no ASLR.
        for (persona, name) in [(UInt64(0), "PER_LINUX"), (8, "PER_LINUX32"), (0x20000, "UNAME26"), (0x20008, "PER_LINUX32|UNAME26"),
                                (0x0040000, "ADDR_NO_RANDOMIZE"), (0xffff_ffff, "query")] {
            entries.append(PolicyEntry("personality", .direct, args: [arg(0, "SCMP_CMP_EQ", persona)], note: name))
        }
        return entries
    }

    /// Every entry, in the order `veil sandbox policy` prints them.
    public static let entries: [PolicyEntry] = {
        plain.map { PolicyEntry($0, .direct) }
            + filtered
            + emulations.map { PolicyEntry($0.0, .emulated, note: $0.1) }
            + observations
            + refusals.map { PolicyEntry($0.0, .refused(errno: $0.1), note: $0.2) }
    }()

    /// How many system calls each treatment covers, as `veil sandbox policy` sums them up.
    public struct Summary: Sendable, Equatable {
        /// Calls that can reach the host kernel directly (under an argument filter or not).
        public let direct: Int
        /// Of those, the calls that reach it only when an argument filter holds.
        public let filtered: Int
        /// Of those, the calls that reach it after the warden has seen them.
        public let observed: Int
        /// Calls answered by the warden.
        public let emulated: Int
        /// Calls that never reach the host kernel: refused whatever their arguments.
        public let refused: Int

        /// "direct filtered observed emulated refused", the form `SandboxProgram.summary` caches.
        var text: String { [direct, filtered, observed, emulated, refused].map { String($0) }.joined(separator: " ") }

        init(direct: Int, filtered: Int, observed: Int, emulated: Int, refused: Int) {
            (self.direct, self.filtered, self.observed, self.emulated, self.refused) = (direct, filtered, observed, emulated, refused)
        }

        init?(text bytes: [UInt8]) {
            let numbers = String(decoding: bytes, as: UTF8.self).split(separator: " ").compactMap { Int($0) }
            guard numbers.count == 5 else { return nil }
            self.init(direct: numbers[0], filtered: numbers[1], observed: numbers[2], emulated: numbers[3], refused: numbers[4])
        }
    }

    public static let summary: Summary = {
        let all = entries
        func names(_ treatment: SyscallTreatment) -> Set<String> { Set(all.filter { $0.treatment == treatment }.map(\.name)) }
        let observed = names(.observed)
        let direct = names(.direct).union(observed)
        let unconditional = Set(all.filter { $0.treatment == .direct && $0.args.isEmpty }.map(\.name)).union(observed)
        let emulated = names(.emulated)
        let refused = Set(all.map(\.name)).subtracting(direct).subtracting(emulated)
        return Summary(direct: direct.count, filtered: direct.subtracting(unconditional).count,
                       observed: observed.count, emulated: emulated.count, refused: refused.count)
    }()

    /// A stable text of the whole policy (every entry, in order): the cache key of its compiled form
    /// where the build has no identity (`PolicyCache`).
    /// Built from strings and integers only: interpolating arrays or optionals would go through
    /// `String(describing:)`, whose dynamic casts scan the binary's conformances on every create.
    public static let fingerprint: String = {
        func text(_ number: UInt64) -> String { String(number) }
        var lines = [[profile.defaultAction, text(UInt64(profile.defaultErrnoRet ?? 0)),
                      (profile.architectures ?? []).joined(separator: ","), (profile.flags ?? []).joined(separator: ",")].joined(separator: " ")]
        for call in profile.syscalls ?? [] {
            let args = (call.args ?? []).map { [text(UInt64($0.index)), $0.op, text($0.value), text($0.valueTwo ?? 0)].joined(separator: ":") }
            lines.append([call.names.joined(separator: ","), call.action, text(UInt64(call.errnoRet ?? 0)), args.joined(separator: ",")].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }()

    /// The flags the policy's filter is installed with.
    public static let filterFlags = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]

    /// The policy as an OCI seccomp profile, compiled with the same libseccomp path as linux.seccomp.
    public static let profile: LinuxSeccomp = {
        let syscalls = entries.map { entry -> LinuxSyscall in
            switch entry.treatment {
            case .direct: return LinuxSyscall(names: [entry.name], action: "SCMP_ACT_ALLOW", args: entry.args.isEmpty ? nil : entry.args)
            case .emulated, .observed: return LinuxSyscall(names: [entry.name], action: "SCMP_ACT_NOTIFY", args: entry.args.isEmpty ? nil : entry.args)
            case .refused(let code):
                return LinuxSyscall(names: [entry.name], action: "SCMP_ACT_ERRNO", errnoRet: UInt(code), args: entry.args.isEmpty ? nil : entry.args)
            }
        }
        return LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: UInt(defaultErrno),
                            architectures: ["SCMP_ARCH_X86_64"],  // 32-bit entry points are killed, as gVisor has none
                            flags: filterFlags, syscalls: syscalls)
    }()
}

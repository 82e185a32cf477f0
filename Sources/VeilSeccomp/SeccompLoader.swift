import CVeilLinux
import Glibc
import VeilLinux

/// Installs a compiled program on the calling thread with the raw seccomp(2) call.
public enum SeccompLoader {
    /// seccomp(SECCOMP_SET_MODE_FILTER, program.filterFlags, &prog). Returns the listener fd
    /// when the program uses SCMP_ACT_NOTIFY, nil otherwise. The caller must either have set
    /// no_new_privs or hold CAP_SYS_ADMIN (EACCES otherwise). A kernel that refuses
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (before 5.19) gets the filter without it.
    ///
    /// Not async-signal-safe (Swift array access); between fork and exec, call
    /// `veil_seccomp_install(filter, count, filterFlags)` directly on memory prepared beforehand.
    public static func install(_ program: SeccompProgram) throws(LinuxError) -> Int32? {
        let count = program.filter.count / 8
        guard count > 0, program.filter.count % 8 == 0, count <= SeccompProgram.maxInstructions else {
            throw LinuxError("seccomp", "filter of \(program.filter.count) bytes", errno: EINVAL)
        }
        var flags = program.filterFlags
        while true {
            let rc = program.filter.withUnsafeBytes { veil_seccomp_install($0.baseAddress, UInt16(count), flags) }
            if rc == -EINVAL && flags & SeccompFilterFlag.waitKillableRecv != 0 {
                flags &= ~SeccompFilterFlag.waitKillableRecv
                continue
            }
            if rc < 0 { throw LinuxError("seccomp", "SECCOMP_SET_MODE_FILTER", errno: -rc) }
            if program.usesNotify { return rc }
            // With TSYNC (and no listener) a positive result is the id of a thread that could not
            // be synchronised, and nothing was installed.
            if rc > 0 { throw LinuxError("seccomp", "SECCOMP_FILTER_FLAG_TSYNC: thread \(rc) cannot be synchronised", errno: EAGAIN) }
            return nil
        }
    }

    /// The bare system call for code that runs between fork and exec: no allocation, no locks.
    /// `filter` holds `count` sock_filter entries; `flags` is `SeccompProgram.filterFlags`.
    /// Returns the listener fd (with NEW_LISTENER), 0, or -errno.
    public static func installRaw(filter: UnsafeRawPointer, count: UInt16, flags: UInt32) -> Int32 {
        veil_seccomp_install(filter, count, flags)
    }
}

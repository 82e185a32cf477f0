import CVeilLinux
import Glibc

/// Another process's file descriptors, as host root reaches them: taking a copy (pidfd_getfd) and
/// closing one in that process (one close(2) run in it under ptrace). A sandbox restored by CRIU
/// holds its own seccomp listener this way: the warden takes it, the sandbox must not keep it.
public enum ForeignDescriptors {
    /// A copy of `pid`'s descriptor `fd`, close-on-exec.
    public static func take(_ fd: Int32, from pid: Int32) throws(LinuxError) -> FileDescriptor {
        FileDescriptor(try sysNeg("pidfd_getfd", "fd \(fd) of \(pid)") { veil_take_fd(pid, fd) })
    }

    /// Closes `fd` in `pid`, which is left stopped if it was (a process CRIU restored with
    /// --leave-stopped). x86-64 only.
    public static func close(_ fd: Int32, in pid: Int32) throws(LinuxError) {
        let result = veil_inject_close(pid, fd)
        if result < 0 { throw LinuxError("close injected by ptrace", "fd \(fd) of \(pid)", errno: -result) }
    }

    /// `pid`'s descriptors whose /proc link reads `target` exactly (e.g. "anon_inode:seccomp notify").
    public static func find(_ target: String, in pid: Int32) -> [Int32] {
        let directory = "/proc/\(pid)/fd"
        return FS.listDirectory(directory).compactMap { Int32($0) }.filter { FS.readLink(directory + "/\($0)") == target }.sorted()
    }
}

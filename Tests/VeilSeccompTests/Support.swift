import CVeilLinux
import Glibc

/// `make test` sets VEIL_REQUIRED=1: there a missing machine feature fails the test instead of skipping it.
var veilRequired: Bool { getenv("VEIL_REQUIRED").map { String(cString: $0) } == "1" }

/// prctl(PR_SET_NO_NEW_PRIVS, 1) as a raw x86-64 system call (prctl is variadic, out of Swift's
/// reach): without CAP_SYS_ADMIN the kernel installs a filter only under no_new_privs, so the
/// forked children set it first and the tests run as any user.
func setNoNewPrivileges() -> Int {
    veil_raw_syscall(157, 38, 1, 0, 0, 0, 0)
}

/// Runs `child` in a forked copy of this (multi-threaded) test process and returns its exit
/// status. The child may only do async-signal-safe work: raw system calls on memory prepared
/// before the fork, then _exit. It runs with no_new_privs set.
func inChild(_ child: () -> Int32) -> Int32? {
    let pid = fork()
    if pid == 0 { _exit(setNoNewPrivileges() == 0 ? child() : installFailed) }
    guard pid > 0 else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS are macros.
    guard status & 0x7f == 0 else { return -(status & 0x7f) }
    return (status >> 8) & 0xff
}

func scratchDirectory() -> String {
    var template = Array("/tmp/veil-seccomp-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ buffer -> UnsafeMutablePointer<CChar>? in
        guard let base = buffer.baseAddress else { return nil }
        return mkdtemp(base)
    }) else { return "/tmp" }
    return String(cString: made)
}

/// Exit code of a child whose filter could not be installed.
let installFailed: Int32 = 200

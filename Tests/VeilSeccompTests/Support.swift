import Glibc

/// Runs `child` in a forked copy of this (multi-threaded) test process and returns its exit
/// status. The child may only do async-signal-safe work: raw system calls on memory prepared
/// before the fork, then _exit.
func inChild(_ child: () -> Int32) -> Int32? {
    let pid = fork()
    if pid == 0 { _exit(child()) }
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

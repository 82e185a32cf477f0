import Glibc
import Testing
import VeilLinux

/// A fresh directory under /tmp; the caller removes it with `removeTree`.
func makeTempDir(_ tag: String = "linux") throws -> String {
    var template = Array("/tmp/veil-unit-\(tag)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
        guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
        return String(cString: result)
    }
    guard let made else { throw LinuxError("mkdtemp", "/tmp") }
    return made
}

/// Cleanup that does not depend on the code under test.
func removeTree(_ path: String) {
    guard path.hasPrefix("/tmp/veil-unit-") else { return }
    _ = runShell("rm -rf '\(path)'")
}

/// posix_spawn with the test's environment; returns the child's pid. The child starts with an
/// empty signal mask and default dispositions: tests run on worker threads that may block
/// signals (SIGTERM among them), and a spawned child would inherit that mask.
func spawnProcess(_ argv: [String]) throws -> pid_t {
    try Spawner.spawn(argv)
}

/// Runs `sh -c command` and returns its raw wait status.
@discardableResult
func runShell(_ command: String) -> Int32 {
    guard let pid = try? spawnProcess(["/bin/sh", "-c", command]) else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

// Glibc declares pipe2 only under _GNU_SOURCE, which Swift's Glibc module does not set.
@_silgen_name("pipe2")
private func systemPipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// A pipe with both ends close-on-exec, so children spawned by parallel tests do not inherit it.
func makePipe() throws -> (read: FileDescriptor, write: FileDescriptor) {
    var fds: [Int32] = [-1, -1]
    guard systemPipe2(&fds, O_CLOEXEC) == 0 else { throw LinuxError("pipe2") }
    return (FileDescriptor(fds[0]), FileDescriptor(fds[1]))
}

/// Polls `condition` every 5 ms for up to `timeoutMs`.
func eventually(timeoutMs: Int = 1000, _ condition: () -> Bool) -> Bool {
    var waited = 0
    while waited <= timeoutMs {
        if condition() { return true }
        usleep(5000)
        waited += 5
    }
    return false
}

/// The flags line of /proc/self/fdinfo/FD, as a number.
func fdFlags(_ fd: Int32) -> Int? {
    guard let text = try? FS.readString("/proc/self/fdinfo/\(fd)") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("flags:") {
        let value = line.dropFirst("flags:".count).filter { !$0.isWhitespace }
        return Int(value, radix: 8)
    }
    return nil
}

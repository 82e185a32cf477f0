import Glibc
import Testing
import VeilLinux

/// A fresh directory under /tmp; the caller removes it with `removeTree`.
func makeTempDir(_ tag: String = "container") throws -> String {
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
    guard let pid = try? spawnProcess(["/bin/rm", "-rf", path]) else { return }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
}

/// posix_spawn with an empty signal mask and default dispositions (test threads may block
/// signals, which a child would otherwise inherit).
func spawnProcess(_ argv: [String]) throws -> pid_t {
    try Spawner.spawn(argv)
}

/// Writes an executable script.
func writeScript(_ path: String, _ body: String) throws {
    try FS.writeFile(path, Array(("#!/bin/sh\n" + body + "\n").utf8), mode: 0o755)
    chmod(path, 0o755)
}

/// Where an fd points, via /proc.
func fdTarget(_ fd: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

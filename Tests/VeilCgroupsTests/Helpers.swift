import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

/// A unique top-level test cgroup name so parallel tests and leftover runs never collide.
func uniqueTestRoot() -> String {
    "/veil-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Starts `/bin/sleep 60` with posix_spawn so the test owns a real process to move around.
func spawnSleep() throws -> pid_t {
    var pid: pid_t = 0
    let args: [UnsafeMutablePointer<CChar>?] = ["sleep", "60"].map { (s: String) in strdup(s) }
    defer { args.forEach { free($0) } }
    var argv = args + [nil]
    let rc = posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, environ)
    guard rc == 0 else { throw TestFailure(description: "posix_spawn /bin/sleep: errno \(rc)") }
    return pid
}

func killAndReap(_ pid: pid_t) {
    guard pid > 0 else { return }
    kill(pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
}

func readFile(_ path: String) throws -> String {
    try SysFS.readTrimmed(path)
}

/// Last-resort cleanup if a test failed before destroy(): removes `root` and everything
/// below it in every hierarchy. Only ever called with a /veil-test-* path.
func forceRemove(root: String) {
    precondition(root.hasPrefix("/veil-test-"))
    guard let layout = try? CgroupLayout.detect() else { return }
    for h in layout.hierarchies {
        let dir = joinPath(h.mountpoint, cleanComponents(root))
        try? Cgroup.removeTree(dir, deadline: monotonicSeconds() + 0.5)
    }
}

/// Tests that need real cgroups run only as root on a host with cgroups mounted.
var canUseCgroups: Bool {
    getuid() == 0 && (try? CgroupLayout.detect()) != nil
}

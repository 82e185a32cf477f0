// Helpers for the machine tests: module APIs against this host's real kernel as root (cgroups,
// BPF programs, `veil doctor`'s probes), where a unit test would need a fake. `make unit-test`
// leaves this target out.
//
// A test that needs a machine feature says so in `.enabled(if: feature || veilRequired, "reason")`:
// a visible skip, or a failure under VEIL_REQUIRED=1 (`make test`). A host whose layout differs
// (cgroup v2 only, no disk) is not missing a feature: those tests end with `Test.cancel("why")`.
//
//   canUseCgroups, isV1Host           root with cgroups mounted; a hybrid/v1 layout
//   uniqueTestRoot(), forceRemove(root:)  a /veil-test-* cgroup path and its last-resort cleanup
//   spawnSleep(), spawnShell(_:joining:), killAndReap(_:), waitExit(_:timeout:)
//   eventually(timeout:_:), exitCode(_:), termSignal(_:), readFile(_:), procsFiles(_:), JSON

import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

/// `make test` sets VEIL_REQUIRED=1: there a missing machine feature fails the test instead of skipping it.
var veilRequired: Bool { getenv("VEIL_REQUIRED").map { String(cString: $0) } == "1" }

/// A unique top-level test cgroup name so parallel tests and leftover runs never collide.
func uniqueTestRoot() -> String {
    "/veil-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Starts `/bin/sleep 60` with posix_spawn so the test owns a real process to move around.
func spawnSleep(seconds: String = "60") throws -> pid_t {
    var pid: pid_t = 0
    let args: [UnsafeMutablePointer<CChar>?] = ["sleep", seconds].map { (s: String) in strdup(s) }
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

/// Tests that need real cgroups run only as root on a host with cgroups mounted; under
/// VEIL_REQUIRED=1 they run anyway, so a machine without them fails the run.
var canUseCgroups: Bool {
    getuid() == 0 && (try? CgroupLayout.detect()) != nil || veilRequired
}

/// A host whose cgroup controllers are v1 (hybrid or legacy). Not a missing feature on a v2-only
/// host but another layout (the qemu guest of CgroupV2GuestTests covers that one), so the v1
/// suites skip there even under VEIL_REQUIRED=1.
var isV1Host: Bool {
    (getuid() == 0 || veilRequired) && (try? CgroupLayout.detect())?.isUnifiedOnly == false
}

/// Runs `/bin/sh -c script` after the shell moved itself into each `cgroup.procs` file listed,
/// so everything the script starts is accounted to the cgroup from the first instruction.
func spawnShell(_ script: String, joining procsFiles: [String]) throws -> pid_t {
    let joined = procsFiles.map { "echo $$ > \($0) || exit 97" }.joined(separator: "; ")
    let full = (joined.isEmpty ? "" : joined + "; ") + script
    var pid: pid_t = 0
    let args: [UnsafeMutablePointer<CChar>?] = ["sh", "-c", full].map { (s: String) in strdup(s) }
    defer { args.forEach { free($0) } }
    var argv = args + [nil]
    let env: [UnsafeMutablePointer<CChar>?] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"].map { (s: String) in strdup(s) }
    defer { env.forEach { free($0) } }
    var envp = env + [nil]
    let rc = posix_spawn(&pid, "/bin/sh", nil, nil, &argv, &envp)
    guard rc == 0 else { throw TestFailure(description: "posix_spawn /bin/sh: errno \(rc)") }
    return pid
}

/// Every cgroup.procs file of `cg` (one per distinct directory).
func procsFiles(_ cg: Cgroup) -> [String] {
    Set(cg.paths.values).sorted().map { $0 + "/cgroup.procs" }
}

/// waitpid with a deadline; returns the raw status, or nil (after SIGKILL) on timeout.
func waitExit(_ pid: pid_t, timeout: Double = 30) -> Int32? {
    let deadline = monotonicSeconds() + timeout
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return status }
        if r < 0 && errno != EINTR { return nil }
        if monotonicSeconds() > deadline {
            killAndReap(pid)
            return nil
        }
        usleep(5_000)
    }
}

/// Polls `condition` every 5 ms until it holds or `timeout` seconds pass; returns its last value.
func eventually(timeout: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = monotonicSeconds() + timeout
    while true {
        if try condition() { return true }
        if monotonicSeconds() > deadline { return false }
        usleep(5_000)
    }
}

func exitCode(_ status: Int32) -> Int32? { (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil }
func termSignal(_ status: Int32) -> Int32? { (status & 0x7f) != 0 && (status & 0x7f) != 0x7f ? status & 0x7f : nil }

/// Just enough JSON to check an encoded shape without Foundation's JSONSerialization.
enum JSON: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSON]), object([String: JSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    subscript(key: String) -> JSON {
        if case .object(let o) = self { return o[key] ?? .null }
        return .null
    }

    var keys: [String] {
        if case .object(let o) = self { return Array(o.keys) }
        return []
    }
}

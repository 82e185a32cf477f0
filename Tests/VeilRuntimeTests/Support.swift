// Shared helpers for the end-to-end tests in VeilRuntimeTests. These tests drive binaries
// (veil, runc, ctr, containerd) as root; nothing here links against the package's modules.
//
// API (keep it small; other test files rely on these names):
//
//   runCommand(_ executable, _ arguments, environment:, stdin:, timeout:, workingDirectory:) throws -> CommandResult
//       Runs a program (bare names are looked up in PATH, plus /usr/sbin and /sbin) to completion.
//       stdout/stderr are captured through files, so a grandchild that keeps a descriptor open
//       (a daemon, a container) can never make the call hang. `environment` is merged over ours.
//       stdin: nil means /dev/null. On timeout the program gets SIGTERM, then SIGKILL after 1 s,
//       and the result has `timedOut == true`. Only failing to start the program throws.
//   waitForExit(process, timeout:) -> Int32?, terminate(process, grace:) -> Int32?, exitStatus(of:):
//       bounded waits for a Foundation Process (never use waitUntilExit: see exitStatus(of:)).
//   CommandResult: command, stdout, stderr, status (exit code, or 128+signal), timedOut,
//       succeeded (status 0 and not timed out), description (everything, for #expect messages).
//   TempDir(prefix:) throws: a fresh directory (mkdtemp) under /tmp; `path`, `file(name)`, and
//       `remove()`: detaches any mount below it first, then deletes it (not if a mount remains).
//       There is no deinit cleanup (Swift may end an object's life right after its last use, while
//       its path is still in use), so write `defer { dir.remove() }`.
//   packageRoot: the directory holding Package.swift (found from this file's path).
//   veilBinary: $VEIL_BINARY, else <packageRoot>/.build/release/veil.
//   veilRequired: $VEIL_REQUIRED == "1" (`make test` sets it): veil tests must fail, not skip.
//   requireVeil() throws -> String: veilBinary if it is an executable file, else throws (the test fails).
//   RuntimeUnderTest: the runc-compatible binaries a test runs against. `RuntimeUnderTest.all` is
//       runc always, plus veil when veilBinary exists or veilRequired is set; use it as
//       `@Test(arguments: RuntimeUnderTest.all)` and call `try runtime.binary()` for the path.
//   unmountAll(under:): lazily unmounts every mount point at or below a path, deepest first.
//   processIsAlive(_ pid): /proc/PID exists and is not a zombie.
//   waitUntil(timeout:_:) -> Bool: retries a condition every 50 ms until it holds or time runs out.
//   SupportError: the error these helpers throw; its message says what went wrong.
//
// See SupportPTY.swift (runInPseudoTerminal) and SupportContainerd.swift (ContainerdRig).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct SupportError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// What a finished command did.
struct CommandResult: Sendable, CustomStringConvertible {
    let command: [String]
    let stdout: String
    let stderr: String
    /// The exit code, or 128 + the signal number when a signal ended the program (as shells report it).
    let status: Int32
    let timedOut: Bool

    var succeeded: Bool { status == 0 && !timedOut }

    var description: String {
        var text = "$ \(command.joined(separator: " "))\nstatus: \(status)\(timedOut ? " (timed out)" : "")"
        text += "\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
        return text
    }
}

/// Resolves a bare program name the way a root shell would; paths with a slash are returned as given.
func findExecutable(_ name: String) -> String? {
    if name.contains("/") { return name }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    // Root tools (runc, umount) live in sbin, which a test runner's PATH may lack.
    for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
        let candidate = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

@discardableResult
func runCommand(
    _ executable: String,
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    stdin: String? = nil,
    timeout: TimeInterval = 30,
    workingDirectory: String? = nil
) throws -> CommandResult {
    guard let path = findExecutable(executable) else {
        throw SupportError("runCommand: \(executable) not found in PATH")
    }
    // Files rather than pipes: reading a pipe to EOF would block as long as any descendant
    // (a daemonized shim, a container) still holds its write end.
    let scratch = try TempDir(prefix: "veil-cmd")
    defer { scratch.remove() }
    let outPath = scratch.file("stdout"), errPath = scratch.file("stderr"), inPath = scratch.file("stdin")
    guard FileManager.default.createFile(atPath: outPath, contents: nil),
          FileManager.default.createFile(atPath: errPath, contents: nil),
          FileManager.default.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8)),
          let outHandle = FileHandle(forWritingAtPath: outPath),
          let errHandle = FileHandle(forWritingAtPath: errPath),
          let inHandle = FileHandle(forReadingAtPath: inPath)
    else { throw SupportError("runCommand: cannot create capture files in \(scratch.path)") }
    defer {
        try? outHandle.close()
        try? errHandle.close()
        try? inHandle.close()
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    process.standardInput = stdin == nil ? FileHandle.nullDevice : inHandle
    process.standardOutput = outHandle
    process.standardError = errHandle
    try process.run()

    var status = waitForExit(process, timeout: timeout)
    let timedOut = status == nil
    if status == nil { status = terminate(process) }
    return CommandResult(
        command: [path] + arguments,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
        status: status ?? 128 + SIGKILL,
        timedOut: timedOut)
}

/// The program's exit status (exit code, or 128 + signal), or nil while it runs.
/// Asks the kernel as well as Foundation: Foundation has been seen never noticing that a SIGKILLed
/// child had exited (it stayed a zombie and `waitUntilExit` blocked forever). waitid with WNOWAIT
/// reads the status without collecting the zombie, so Foundation can still reap it later.
func exitStatus(of process: Process) -> Int32? {
    if !process.isRunning { return foundationStatus(process) }
    let pid = process.processIdentifier
    var info = siginfo_t()
    if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
       info._sifields._sigchld.si_pid == pid {
        let value = info._sifields._sigchld.si_status
        return info.si_code == Int32(CLD_EXITED) ? value : 128 + value
    }
    // waitid fails with ECHILD when Foundation reaped the child in the meantime.
    return process.isRunning ? nil : foundationStatus(process)
}

private func foundationStatus(_ process: Process) -> Int32 {
    process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
}

/// Waits up to `timeout` seconds; the exit status, or nil if the program still runs. Polls rather
/// than using terminationHandler, which would need a Sendable closure and a semaphore for no gain
/// at this scale: 5 ms granularity is invisible next to container start-up times.
@discardableResult
func waitForExit(_ process: Process, timeout: TimeInterval) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if let status = exitStatus(of: process) { return status }
        if Date() >= deadline { return nil }
        usleep(5_000)
    }
}

/// SIGTERM, then SIGKILL after `grace` seconds; the exit status, or nil if even SIGKILL did not end
/// the program within 5 s (stuck in the kernel). Bounded, unlike `waitUntilExit`.
@discardableResult
func terminate(_ process: Process, grace: TimeInterval = 1) -> Int32? {
    if let status = exitStatus(of: process) { return status }
    kill(process.processIdentifier, SIGTERM)
    if let status = waitForExit(process, timeout: grace) { return status }
    kill(process.processIdentifier, SIGKILL)
    return waitForExit(process, timeout: 5)
}

/// Retries `condition` every 50 ms until it holds or `timeout` passes; returns its last value.
func waitUntil(timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        usleep(50_000)
    }
}

/// A fresh directory; call `remove()` (usually in a `defer`) when done.
final class TempDir {
    let path: String

    init(prefix: String = "veil-test", parent: String = "/tmp") throws {
        var template = Array((parent + "/" + prefix + ".XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard made else { throw SupportError("mkdtemp under \(parent): errno \(errno)") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Unmounts first so that deleting can never reach into a bind-mounted host directory.
    func remove() {
        removeTree(path)
    }
}

/// Detaches the mounts below `path`, then deletes it; if some mount would not go away, the tree
/// is left in place, because deleting through a mount could destroy files outside the test.
func removeTree(_ path: String) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    unmountAll(under: path)
    guard mountPoints(under: path).isEmpty else { return }
    try? FileManager.default.removeItem(atPath: path)
}

/// Mount points at or below `path` in our mount namespace, read from /proc/self/mountinfo.
func mountPoints(under path: String) -> [String] {
    guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
    let prefix = path.hasSuffix("/") ? path : path + "/"
    return info.split(separator: "\n").compactMap { line -> String? in
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count > 4 else { return nil }
        let point = unescapeMountinfo(String(fields[4]))
        return point == path || point.hasPrefix(prefix) ? point : nil
    }
}

/// mountinfo writes space, tab, newline and backslash as three-digit octal escapes.
private func unescapeMountinfo(_ field: String) -> String {
    var bytes: [UInt8] = []
    let raw = Array(field.utf8)
    var index = 0
    while index < raw.count {
        if raw[index] == UInt8(ascii: "\\"), index + 3 < raw.count,
           let value = UInt8(String(decoding: raw[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
            bytes.append(value)
            index += 4
        } else {
            bytes.append(raw[index])
            index += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Lazily unmounts everything at or below `path`, deepest first, repeating while mounts remain
/// (stacked mounts on one point need one pass each).
func unmountAll(under path: String) {
    for _ in 0..<8 {
        let points = mountPoints(under: path).sorted { $0.count > $1.count }
        if points.isEmpty { return }
        for point in points { _ = umount2(point, Int32(MNT_DETACH)) }
    }
}

/// True when the process exists and has not exited; a zombie has exited (only its parent has not
/// collected the status yet), so it counts as gone.
func processIsAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    // The state letter follows the command name, which is in parentheses and may contain spaces.
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X" && state != nil
}

/// The package directory: this file is <root>/Tests/VeilRuntimeTests/Support.swift.
let packageRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

var veilBinary: String {
    if let path = ProcessInfo.processInfo.environment["VEIL_BINARY"], !path.isEmpty { return path }
    return packageRoot + "/.build/release/veil"
}

var veilRequired: Bool { ProcessInfo.processInfo.environment["VEIL_REQUIRED"] == "1" }

/// The veil binary's path; throws (failing the calling test) when it has not been built.
func requireVeil() throws -> String {
    guard FileManager.default.isExecutableFile(atPath: veilBinary) else {
        throw SupportError("veil binary not found at \(veilBinary) (set VEIL_BINARY or build with `swift build -c release`)")
    }
    return veilBinary
}

/// A runc-compatible runtime binary to run a test against.
struct RuntimeUnderTest: Sendable, CustomStringConvertible {
    let name: String
    private let path: String

    static let runc = RuntimeUnderTest(name: "runc", path: findExecutable("runc") ?? "/usr/sbin/runc")

    /// runc always (the reference, proving the test itself); veil when built, or when the run
    /// demands it, in which case a missing binary fails the test through `binary()` — at both
    /// isolation levels: "veil" is the default (sandbox), "veil-native" is veil started as
    /// `veil-native` (a symbolic link), which means `--isolation native`.
    static var all: [RuntimeUnderTest] {
        var list = [runc]
        if veilRequired || FileManager.default.isExecutableFile(atPath: veilBinary) {
            list.append(RuntimeUnderTest(name: "veil", path: veilBinary))
            list.append(RuntimeUnderTest(name: "veil-native", path: veilBinary))
        }
        return list
    }

    /// veil or veil-native.
    var isVeil: Bool { name.hasPrefix("veil") }

    /// The absolute path to pass as --runc-binary; throws when the binary is missing.
    func binary() throws -> String {
        if name == "veil" { return try requireVeil() }
        if name == "veil-native" { return try nativeWrapper(try requireVeil()) }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw SupportError("\(name) not found at \(path)")
        }
        return path
    }

    var description: String { name }

    /// veil under the name `veil-native`, which veil takes as `--isolation native` (a symbolic
    /// link, as an operator makes for CRI-O): usable wherever a runtime binary path goes
    /// (containerd's --runc-binary, podman's --runtime) without a wrapper script.
    private func nativeWrapper(_ veil: String) throws -> String {
        let directory = "/tmp/veil-native-link-\(getpid())"
        let path = directory + "/veil-native"
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == veil { return path }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let temporary = path + ".\(UInt32.random(in: 0...UInt32.max))"
        guard symlink(veil, temporary) == 0 else { throw SupportError("cannot link \(temporary) to \(veil)") }
        if rename(temporary, path) != 0 { unlink(temporary) }
        return path
    }
}

/// Host pids of the veil-warden processes serving containers whose state is under `root` (not
/// their sentinels, which share their command line and are named veil-sentinel).
func wardens(under root: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        guard comm.hasPrefix("veil-warden"), let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let argv = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return argv.count > 1 && argv[1].hasPrefix(root + "/")
    }
}

/// The veil-sentinel children of a warden.
func sentinels(of warden: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return comm == "veil-sentinel\n" && status.contains("\nPPid:\t\(warden)\n")
    }
}

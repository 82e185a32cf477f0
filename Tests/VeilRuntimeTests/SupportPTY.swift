// Running a program on a pseudo-terminal, for tests of `-t` / terminal: true.
//
//   runInPseudoTerminal(_ executable, _ arguments, rows:, columns:, steps:, timeout:) throws -> CommandResult
//       Starts the program with stdin, stdout and stderr on the slave side of a new pty whose window
//       size is rows x columns. `steps` is a script of PTYStep(waitFor:send:): each step waits until
//       `waitFor` appears in the output read so far (after the previous step's match), then writes
//       `send` to the terminal. Returns once the program exits and the terminal has drained, with
//       everything the terminal showed in `stdout` (`stderr` is empty: a terminal merges them).
//       On timeout (whole run, steps included) the program is killed and `timedOut` is true.
//
// Native rather than `script` or python's pty module: no extra tool, and we control the window size
// and the timing of input exactly.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct PTYStep: Sendable {
    let waitFor: String
    let send: String
}

func runInPseudoTerminal(
    _ executable: String,
    _ arguments: [String],
    rows: UInt16 = 24,
    columns: UInt16 = 80,
    steps: [PTYStep] = [],
    timeout: TimeInterval = 20
) throws -> CommandResult {
    guard let path = findExecutable(executable) else {
        throw SupportError("runInPseudoTerminal: \(executable) not found in PATH")
    }
    var master: Int32 = -1, slave: Int32 = -1
    var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
    guard openpty(&master, &slave, nil, nil, &size) == 0 else { throw SupportError("openpty: errno \(errno)") }
    defer { close(master) }
    // Close-on-exec on both: the master must never reach a child, and the slave only as the
    // program's 0/1/2 (dup2 clears the flag there), not in processes other tests spawn meanwhile.
    _ = fcntl(master, F_SETFD, FD_CLOEXEC)
    _ = fcntl(slave, F_SETFD, FD_CLOEXEC)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let slaveHandle = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
    process.standardInput = slaveHandle
    process.standardOutput = slaveHandle
    process.standardError = slaveHandle
    do {
        try process.run()
    } catch {
        close(slave)
        throw error
    }
    // The parent's copy must go, or the master never sees hang-up once the program exits.
    close(slave)

    var output: [UInt8] = []
    var searchFrom = 0
    var pending = steps[...]
    var timedOut = false
    let deadline = Date().addingTimeInterval(timeout)
    var buffer = [UInt8](repeating: 0, count: 4096)
    var exitedAt: Date?

    while true {
        if Date() >= deadline {
            timedOut = true
            break
        }
        var pollfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pollfd, 1, 50)
        var hungUp = false
        if ready > 0 {
            let count = read(master, &buffer, buffer.count)
            if count > 0 {
                output.append(contentsOf: buffer[0..<count])
            } else {
                // EIO (or 0) on a master means no process holds the slave any more.
                hungUp = true
            }
        }
        // Feed the script: a step fires once its text has appeared since the previous match.
        while let step = pending.first {
            let text = String(decoding: output[searchFrom...], as: UTF8.self)
            guard let range = text.range(of: step.waitFor) else { break }
            searchFrom += text[..<range.upperBound].utf8.count
            let bytes = Array(step.send.utf8)
            _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            pending = pending.dropFirst()
        }
        if hungUp { break }
        if exitStatus(of: process) != nil {
            // A background descendant may keep the slave open forever; give the output a moment
            // to drain after our program exits, then stop reading.
            if let exitedAt {
                if Date().timeIntervalSince(exitedAt) > 0.5 { break }
            } else {
                exitedAt = Date()
            }
        }
    }
    let status = terminate(process) ?? 128 + SIGKILL
    return CommandResult(
        command: [path] + arguments,
        stdout: String(decoding: output, as: UTF8.self),
        stderr: "",
        status: status,
        timedOut: timedOut)
}

// The receiving end of `--console-socket`, for tests of exec/create with a terminal.
//
//   ConsoleSocket() throws: a unix stream socket listening at `path` (in a fresh temp dir).
//   receiveMaster(timeout:) throws -> Int32: accepts one connection and takes the pty master
//       the runtime sends with SCM_RIGHTS (close-on-exec; the caller owns it and closes it).
//   readTerminal(master, timeout:, until:) -> String: everything the master shows until the slave
//       side hangs up (EIO), `until()` has held for a short drain period, or time runs out.
//   startCommand(_ executable, _ arguments, workingDirectory:) throws -> RunningCommand: a program
//       running in the background (stdin /dev/null, stdout/stderr to files); `finish(timeout:)`
//       waits (killing it on timeout) and returns its CommandResult.
//   close(): closes the listener and removes the directory.
//
// Polled with timeouts throughout, so a runtime that never connects fails the test instead of
// hanging it.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ConsoleSocket {
    let dir: TempDir
    let path: String
    private let listener: Int32

    init() throws {
        dir = try TempDir(prefix: "veil-console")
        path = dir.file("console.sock")
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw SupportError("console socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let fits = withUnsafeMutableBytes(of: &address.sun_path) { raw -> Bool in
            guard bytes.count < raw.count else { return false }
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
            raw[bytes.count] = 0
            return true
        }
        guard fits else { throw SupportError("console socket path too long: \(path)") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(listener, 4) == 0 else {
            let code = errno
            Glibc.close(listener)
            throw SupportError("console socket \(path): bind/listen errno \(code)")
        }
    }

    func close() {
        Glibc.close(listener)
        dir.remove()
    }

    /// Accepts one connection and returns the fd passed over it.
    func receiveMaster(timeout: TimeInterval) throws -> Int32 {
        var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&waiting, 1, Int32(timeout * 1000)) > 0 else {
            throw SupportError("console socket: nobody connected within \(timeout) s")
        }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { throw SupportError("console socket: accept errno \(errno)") }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        defer { Glibc.close(connection) }
        var readable = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        guard poll(&readable, 1, Int32(timeout * 1000)) > 0 else {
            throw SupportError("console socket: no message within \(timeout) s")
        }
        var data = [UInt8](repeating: 0, count: 4096)
        // Room for a few cmsghdr + int records; only the first SCM_RIGHTS record is used.
        var control = [UInt8](repeating: 0, count: 256)
        var received: Int32 = -1
        let count = data.withUnsafeMutableBytes { dataBuffer in
            control.withUnsafeMutableBytes { controlBuffer -> Int in
                var vector = iovec(iov_base: dataBuffer.baseAddress, iov_len: dataBuffer.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBuffer.baseAddress
                    message.msg_controllen = controlBuffer.count
                    let n = recvmsg(connection, &message, Int32(MSG_CMSG_CLOEXEC))
                    guard n >= 0 else { return n }
                    // Walk the control records: cmsghdr is {size_t len; int level; int type;} then data,
                    // each record padded to a multiple of size_t.
                    let headerSize = MemoryLayout<cmsghdr>.size
                    let align = MemoryLayout<Int>.size
                    var offset = 0
                    while offset + headerSize <= Int(message.msg_controllen) {
                        let length = controlBuffer.load(fromByteOffset: offset, as: Int.self)
                        let level = controlBuffer.load(fromByteOffset: offset + align, as: Int32.self)
                        let type = controlBuffer.load(fromByteOffset: offset + align + 4, as: Int32.self)
                        guard length >= headerSize else { break }
                        if level == SOL_SOCKET, type == Int32(SCM_RIGHTS), length >= headerSize + 4 {
                            let fds = (length - headerSize) / 4
                            for index in 0..<fds {
                                let fd = controlBuffer.load(fromByteOffset: offset + headerSize + 4 * index, as: Int32.self)
                                if received < 0 { received = fd } else { Glibc.close(fd) }
                            }
                        }
                        offset += (length + align - 1) / align * align
                    }
                    return n
                }
            }
        }
        guard count >= 0 else { throw SupportError("console socket: recvmsg errno \(errno)") }
        guard received >= 0 else {
            throw SupportError("console socket: a \(count)-byte message without a file descriptor")
        }
        return received
    }
}

/// Reads a pty master until the slave hangs up, `until()` has held for 0.3 s, or `timeout`.
func readTerminal(_ master: Int32, timeout: TimeInterval, until: () -> Bool = { false }) -> String {
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    let deadline = Date().addingTimeInterval(timeout)
    var doneAt: Date?
    while Date() < deadline {
        var waiting = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        if poll(&waiting, 1, 50) > 0 {
            let count = read(master, &buffer, buffer.count)
            if count > 0 {
                output.append(contentsOf: buffer[0..<count])
                continue
            }
            if count < 0 && errno == EINTR { continue }
            break  // EIO or 0: no process holds the slave any more
        }
        if until() {
            if let doneAt {
                if Date().timeIntervalSince(doneAt) > 0.3 { break }
            } else {
                doneAt = Date()
            }
        }
    }
    return String(decoding: output, as: UTF8.self)
}

/// A program started in the background; `finish` collects it.
final class RunningCommand {
    let process: Process
    let command: [String]
    private let scratch: TempDir

    fileprivate init(process: Process, command: [String], scratch: TempDir) {
        self.process = process
        self.command = command
        self.scratch = scratch
    }

    var hasExited: Bool { exitStatus(of: process) != nil }

    /// Waits up to `timeout` (then SIGTERM/SIGKILL) and returns what it did.
    func finish(timeout: TimeInterval) -> CommandResult {
        var status = waitForExit(process, timeout: timeout)
        let timedOut = status == nil
        if status == nil { status = terminate(process) }
        let result = CommandResult(
            command: command,
            stdout: (try? String(contentsOfFile: scratch.file("stdout"), encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch.file("stderr"), encoding: .utf8)) ?? "",
            status: status ?? 128 + SIGKILL,
            timedOut: timedOut)
        scratch.remove()
        return result
    }
}

func startCommand(_ executable: String, _ arguments: [String], workingDirectory: String? = nil) throws -> RunningCommand {
    guard let path = findExecutable(executable) else { throw SupportError("startCommand: \(executable) not found") }
    let scratch = try TempDir(prefix: "veil-bg")
    guard FileManager.default.createFile(atPath: scratch.file("stdout"), contents: nil),
          FileManager.default.createFile(atPath: scratch.file("stderr"), contents: nil),
          let out = FileHandle(forWritingAtPath: scratch.file("stdout")),
          let err = FileHandle(forWritingAtPath: scratch.file("stderr"))
    else {
        scratch.remove()
        throw SupportError("startCommand: cannot create capture files")
    }
    defer {
        try? out.close()
        try? err.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
    do {
        try process.run()
    } catch {
        scratch.remove()
        throw error
    }
    return RunningCommand(process: process, command: [path] + arguments, scratch: scratch)
}

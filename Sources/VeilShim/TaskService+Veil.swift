import Foundation
import Glibc
import TTRPC
import VeilExchange
import VeilLinux

/// Running veil for a container: its global flags, captured output, errors from its log, and a
/// process's stdio (fifos, pipes or a console socket) handed to it.
extension TaskService {
    func globalArguments(bundle: String, settings: RuntimeSettings) -> [String] {
        ["--root", settings.runtimeRoot(namespace: namespace), "--log", bundle + "/log.json", "--log-format", "json"] + settings.veilFlags
    }

    /// Runs veil; returns stdout. Without `io`, stdin is /dev/null and output is captured.
    @discardableResult
    func runVeil(_ arguments: [String], bundle: String, settings: RuntimeSettings, io: SpawnIO? = nil) async throws -> String {
        let veil = settings.binary ?? self.veil
        let argv = [veil] + globalArguments(bundle: bundle, settings: settings) + arguments
        var outFD: Int32 = -1, errFD: Int32 = -1, nullFD: Int32 = -1
        defer {
            for fd in [outFD, errFD, nullFD] where fd >= 0 { close(fd) }
        }
        let spawnIO: SpawnIO
        if let io {
            spawnIO = io
        } else {
            outFD = try makeMemoryFile("veil-stdout")
            errFD = try makeMemoryFile("veil-stderr")
            nullFD = try openFD("/dev/null", O_RDWR)
            spawnIO = SpawnIO(stdin: nullFD, stdout: outFD, stderr: errFD)
        }
        let status = try await Reaper.shared.run(veil, argv, io: spawnIO)
        if status != 0 {
            var message = errFD >= 0 ? readWhole(errFD).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            if let logged = lastLoggedError(bundle: bundle) { message = logged }
            if message.isEmpty { message = "exit status \(UInt32(Wait.statusCode(status)))" }
            throw TTRPCError(.unknown, "veil \(arguments.first ?? ""): \(message)")
        }
        return outFD >= 0 ? readWhole(outFD) : ""
    }

    /// The last `msg` of an error line in the bundle's log.json (what runc's shim reports too).
    func lastLoggedError(bundle: String) -> String? {
        guard let text = try? String(contentsOfFile: bundle + "/log.json", encoding: .utf8) else { return nil }
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n").reversed() {
            guard let entry = try? decoder.decode(LogEntry.self, from: Data(line.utf8)), entry.level == LogEntry.errorLevel else { continue }
            return entry.msg
        }
        return nil
    }

    /// Opens a process's fifos for the runtime to hand over: stdin O_RDONLY (non-blocking open,
    /// then blocking), stdout/stderr O_RDWR (never blocks, whether or not the reader is there yet).
    func openStdio(stdin: String, stdout: String, stderr: String) throws -> [Int32] {
        var fds: [Int32] = []
        do {
            if stdin.isEmpty { fds.append(try openFD("/dev/null", O_RDONLY)) } else {
                let fd = try openFD(stdin, O_RDONLY | O_NONBLOCK)
                setBlocking(fd)
                fds.append(fd)
            }
            fds.append(try openFD(stdout.isEmpty ? "/dev/null" : stdout, O_RDWR))
            fds.append(try openFD(stderr.isEmpty ? "/dev/null" : stderr, O_RDWR))
        } catch {
            for fd in fds { close(fd) }
            throw error
        }
        return fds
    }

    static let socketDirectory = "/run/veil-shim"
    static let counter = Locked(0)

    /// A fresh console socket path (short: unix socket paths are limited to 108 bytes).
    func consoleSocketPath() -> String {
        let n = Self.counter.withLock { value -> Int in
            value += 1
            return value
        }
        return "\(Self.socketDirectory)/c-\(getpid())-\(n).sock"
    }

    /// Runs `body` (which starts the runtime with --console-socket) and takes the pty master the
    /// runtime sent.
    func withConsoleSocket(_ body: (String) async throws -> Void) async throws -> Int32 {
        try FS.mkdirAll(Self.socketDirectory, mode: 0o711)
        let path = consoleSocketPath()
        unlink(path)
        let listener = try UnixSocket.listen(path: path).release()
        defer {
            close(listener)
            unlink(path)
        }
        try await body(path)
        // The runtime has exited: its connection (and the fd it sent) wait in the backlog.
        let listenerFlags = fcntl(listener, F_GETFL)
        _ = fcntl(listener, F_SETFL, listenerFlags | O_NONBLOCK)
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { throw TTRPCError(.internal, "the runtime sent no console: \(LinuxError("accept", path))") }
        defer { close(connection) }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        setBlocking(connection)
        let (master, _) = try UnixSocket.receiveFD(socket: connection)
        return master.release()
    }

    /// Runs veil with the process's fifos as its stdio (the runtime hands them to the process).
    func runWithStdio(_ arguments: [String], bundle: String, settings: RuntimeSettings, stdin: String, stdout: String, stderr: String) async throws {
        let fds = try openStdio(stdin: stdin, stdout: stdout, stderr: stderr)
        defer { for fd in fds { close(fd) } }
        try await runVeil(arguments, bundle: bundle, settings: settings, io: SpawnIO(stdin: fds[0], stdout: fds[1], stderr: fds[2]))
    }

    /// Runs veil with fresh pipes as its stdio (the runtime hands them to the process) and the
    /// shim copying between them and the process's fifos.
    func runWithPipes(_ arguments: [String], bundle: String, settings: RuntimeSettings, stdin: String, stdout: String, stderr: String) async throws -> PipeIO {
        let io = try PipeIO(stdin: stdin, stdout: stdout, stderr: stderr)
        do {
            try await runVeil(arguments, bundle: bundle, settings: settings, io: SpawnIO(stdin: io.childStdin, stdout: io.childStdout, stderr: io.childStderr))
        } catch {
            io.cleanup()
            throw error
        }
        io.releaseChildEnds()
        return io
    }
}

import Foundation
import Glibc
import SwiftProtobuf
import TTRPC
import VeilLinux
import VeilShimProtocol

/// One process of a container: its init (execID "") or an exec.
final class ShimProcess: @unchecked Sendable {
    let containerID: String
    let execID: String
    let stdin: String
    let stdout: String
    let stderr: String
    let terminal: Bool
    var execSpec: Data?
    // Locked by TaskService's lock.
    var pid: Int32 = 0
    var state: Containerd_V1_Types_Status = .created
    var exitStatus: UInt32?
    var exitedAt: Date?
    var waiters: [CheckedContinuation<Void, Never>] = []
    var starting = false
    var pendingExit: Int32?
    var console: Console?
    /// Pipes and their copies, without a terminal.
    var pipeIO: PipeIO?

    init(containerID: String, execID: String, stdin: String, stdout: String, stderr: String, terminal: Bool) {
        self.containerID = containerID
        self.execID = execID
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
    }
}

final class ShimContainer: @unchecked Sendable {
    let id: String
    let bundle: String
    let rootfsMounted: Bool
    let initProcess: ShimProcess
    /// From the runtime options of its Create; every later veil call of this container uses them.
    let settings: RuntimeSettings
    var execs: [String: ShimProcess] = [:]
    var oomWatcher: OOMWatcher?

    init(id: String, bundle: String, settings: RuntimeSettings, rootfsMounted: Bool, initProcess: ShimProcess) {
        self.id = id
        self.bundle = bundle
        self.settings = settings
        self.rootfsMounted = rootfsMounted
        self.initProcess = initProcess
    }
}

/// A pty master received from the runtime, copied to and from the process's fifos.
final class Console: @unchecked Sendable {
    let master: Int32
    private let outputDone = DispatchSemaphore(value: 0)
    private let stdinFD = Locked<Int32>(-1)

    init(master: Int32, stdin: String, stdout: String) {
        self.master = master
        let out: Int32 = stdout.isEmpty ? -1 : open(stdout, O_RDWR | O_CLOEXEC)
        let done = outputDone
        let outThread = Thread {
            var buffer = [UInt8](repeating: 0, count: 32768)
            while true {
                let n = read(master, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if out >= 0 { _ = buffer.withUnsafeBytes { writeAll(out, UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            }
            if out >= 0 { close(out) }
            done.signal()
        }
        outThread.start()
        if !stdin.isEmpty {
            let stdinFD = self.stdinFD
            let inThread = Thread {
                // Blocks until containerd's client opens the writing side.
                let fd = open(stdin, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { return }
                stdinFD.withLock { $0 = fd }
                var buffer = [UInt8](repeating: 0, count: 32768)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    if !buffer.withUnsafeBytes({ writeAll(master, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { break }
                }
                stdinFD.withLock { current in
                    if current == fd { close(fd) }
                    current = -1
                }
            }
            inThread.start()
        }
    }

    /// Waits until the output has been drained (the slave side closed), at most `seconds`.
    func waitForOutput(seconds: Double) {
        if outputDone.wait(timeout: .now() + seconds) == .success { outputDone.signal() }
    }

    func closeStdin() {
        stdinFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    func resize(width: UInt32, height: UInt32) {
        Pty.setWindowSize(master, rows: UInt16(truncatingIfNeeded: height), columns: UInt16(truncatingIfNeeded: width))
    }
}

/// containerd.task.v2.Task, driving the veil binary.
public final class TaskService: @unchecked Sendable {
    public static let serviceName = "containerd.task.v2.Task"

    let namespace: String
    /// The veil binary, unless a container's settings name another.
    let veil: String
    let events: EventPublisher
    let onShutdown: @Sendable () async -> Void
    private let lock = NSLock()
    private var containers: [String: ShimContainer] = [:]
    /// Creates under way (a pod's shim serves several containers: Shutdown waits for them too).
    private var creating = 0

    init(namespace: String, veil: String, events: EventPublisher, onShutdown: @escaping @Sendable () async -> Void) {
        self.namespace = namespace
        self.veil = veil
        self.events = events
        self.onShutdown = onShutdown
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: running veil

    private func globalArguments(bundle: String, settings: RuntimeSettings) -> [String] {
        ["--root", settings.runtimeRoot(namespace: namespace), "--log", bundle + "/log.json", "--log-format", "json"] + settings.veilFlags
    }

    /// Runs veil; returns stdout. Without `io`, stdin is /dev/null and output is captured.
    @discardableResult
    private func runVeil(_ arguments: [String], bundle: String, settings: RuntimeSettings, io: SpawnIO? = nil) async throws -> String {
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
    private func lastLoggedError(bundle: String) -> String? {
        guard let text = try? String(contentsOfFile: bundle + "/log.json", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n").reversed() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["level"] as? String == "error", let message = object["msg"] as? String else { continue }
            return message
        }
        return nil
    }

    // MARK: stdio

    /// Opens a process's fifos for the runtime to hand over: stdin O_RDONLY (non-blocking open,
    /// then blocking), stdout/stderr O_RDWR (never blocks, whether or not the reader is there yet).
    private func openStdio(stdin: String, stdout: String, stderr: String) throws -> [Int32] {
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

    private static let socketDirectory = "/run/veil-shim"
    private static let counter = Locked(0)

    /// A fresh console socket path (short: unix socket paths are limited to 108 bytes).
    private func consoleSocketPath() -> String {
        let n = Self.counter.withLock { value -> Int in
            value += 1
            return value
        }
        return "\(Self.socketDirectory)/c-\(getpid())-\(n).sock"
    }

    /// Runs `body` (which starts the runtime with --console-socket) and takes the pty master the
    /// runtime sent.
    private func withConsoleSocket(_ body: (String) async throws -> Void) async throws -> Int32 {
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

    // MARK: exits

    private func watchExit(_ process: ShimProcess, pid: Int32, since: Date) {
        Reaper.shared.watch(pid, since: since) { [self] status in handleExit(process, status: status) }
    }

    private func handleExit(_ process: ShimProcess, status: Int32) {
        let deferred: Bool = locked {
            if process.starting {
                process.pendingExit = status
                return true
            }
            return false
        }
        if deferred { return }
        // Off the reaper's thread: a terminal's output is drained before the exit is reported.
        Thread.detachNewThread { [self] in
            process.console?.waitForOutput(seconds: 2)
            // As runc's shim: the exit is reported once the output has been copied (all of it
            // reaches a client that waits for the exit and then for its fifos to close).
            if let pipeIO = locked({ process.pipeIO }), !pipeIO.waitForOutput(seconds: 30) {
                shimLog("\(process.containerID)/\(process.execID): output still open 30 s after the exit; reporting it anyway")
            }
            let now = Date()
            let (waiters, pid): ([CheckedContinuation<Void, Never>], Int32) = locked {
                process.exitStatus = UInt32(Wait.statusCode(status))
                process.exitedAt = now
                process.state = .stopped
                defer { process.waiters = [] }
                return (process.waiters, process.pid)
            }
            var event = Containerd_Events_TaskExit()
            event.containerID = process.containerID
            event.id = process.execID.isEmpty ? process.containerID : process.execID
            event.pid = UInt32(max(pid, 0))
            event.exitStatus = UInt32(Wait.statusCode(status))
            event.exitedAt = Google_Protobuf_Timestamp(date: now)
            events.publish("/tasks/exit", event)
            for waiter in waiters { waiter.resume() }
        }
    }

    // MARK: lookups

    private func container(_ id: String) throws -> ShimContainer {
        guard let container = locked({ containers[id] }) else { throw TTRPCError(.notFound, "container \(id): not found") }
        return container
    }

    private func process(_ id: String, _ execID: String) throws -> (ShimContainer, ShimProcess) {
        let container = try container(id)
        if execID.isEmpty { return (container, container.initProcess) }
        guard let process = locked({ container.execs[execID] }) else {
            throw TTRPCError(.notFound, "process \(execID): not found")
        }
        return (container, process)
    }

    /// The isolation level in veil's state record of a created container ("unknown" if unreadable).
    func isolationLevel(id: String, settings: RuntimeSettings) -> String {
        let path = settings.runtimeRoot(namespace: namespace) + "/" + id + "/state.json"
        guard let data = FileManager.default.contents(atPath: path),
              let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "unknown" }
        return record["isolation"] as? String ?? "native"
    }

    // MARK: Task methods

    func create(_ request: Containerd_Task_V2_CreateTaskRequest) async throws -> Containerd_Task_V2_CreateTaskResponse {
        guard !request.id.isEmpty, !request.bundle.isEmpty else { throw TTRPCError(.invalidArgument, "id and bundle are required") }
        guard request.checkpoint.isEmpty else { throw TTRPCError(.failedPrecondition, "checkpoint/restore: not supported yet") }
        // Bad options fail the Create before anything exists.
        let settings: RuntimeSettings
        do {
            settings = try RuntimeSettings.from(options: request.hasOptions ? request.options : nil)
            try settings.record(bundle: request.bundle)
        } catch {
            throw TTRPCError(.invalidArgument, "\(error)")
        }
        try locked {
            if containers[request.id] != nil { throw TTRPCError(.alreadyExists, "container \(request.id): already exists") }
            creating += 1
        }
        defer { locked { creating -= 1 } }
        let bundle = request.bundle
        let rootfs = bundle + "/rootfs"
        var mounted = false
        if !request.rootfs.isEmpty {
            try FS.mkdirAll(rootfs)
            for mount in request.rootfs {
                do {
                    try mountRootfs(type: mount.type, source: mount.source, options: mount.options, target: rootfs)
                    mounted = true
                } catch {
                    unmountAll(rootfs)
                    throw TTRPCError(.internal, "mount rootfs: \(error)")
                }
            }
        }
        let process = ShimProcess(containerID: request.id, execID: "", stdin: request.stdin, stdout: request.stdout,
                                  stderr: request.stderr, terminal: request.terminal)
        let since = Date()
        let pidFile = bundle + "/init.pid"
        var master: Int32 = -1
        var pipeIO: PipeIO?
        do {
            let createArguments = { (console: String?) -> [String] in
                ["create", "--bundle", bundle, "--pid-file", pidFile] + (console.map { ["--console-socket", $0] } ?? []) + [request.id]
            }
            if request.terminal {
                master = try await withConsoleSocket { socket in
                    try await runWithStdio(createArguments(socket), bundle: bundle, settings: settings, stdin: "", stdout: "", stderr: "")
                }
            } else {
                pipeIO = try await runWithPipes(createArguments(nil), bundle: bundle, settings: settings, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr)
            }
        } catch {
            _ = try? await runVeil(["delete", "--force", request.id], bundle: bundle, settings: settings)
            if mounted { unmountAll(rootfs) }
            throw error
        }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            if master >= 0 { close(master) }
            pipeIO?.cleanup()
            _ = try? await runVeil(["delete", "--force", request.id], bundle: bundle, settings: settings)
            if mounted { unmountAll(rootfs) }
            throw TTRPCError(.internal, "veil create wrote no pid file")
        }
        if master >= 0 { process.console = Console(master: master, stdin: request.stdin, stdout: request.stdout) }
        // The level veil chose (annotation, runtime options or the default) goes to containerd's log.
        shimLog("container \(request.id): isolation \(isolationLevel(id: request.id, settings: settings))")
        process.pipeIO = pipeIO
        pipeIO?.startStdinCopy()
        let container = ShimContainer(id: request.id, bundle: bundle, settings: settings, rootfsMounted: mounted, initProcess: process)
        let events = self.events
        let containerID = request.id
        let oomWatcher = OOMWatcher(pid: pid) {
            events.publish("/tasks/oom", Containerd_Events_TaskOOM.with { $0.containerID = containerID })
        }
        locked {
            process.pid = pid
            container.oomWatcher = oomWatcher
            containers[request.id] = container
        }
        watchExit(process, pid: pid, since: since)

        var event = Containerd_Events_TaskCreate()
        event.containerID = request.id
        event.bundle = bundle
        event.rootfs = request.rootfs
        event.io.stdin = request.stdin
        event.io.stdout = request.stdout
        event.io.stderr = request.stderr
        event.io.terminal = request.terminal
        event.pid = UInt32(pid)
        events.publish("/tasks/create", event)
        return .with { $0.pid = UInt32(pid) }
    }

    /// Runs veil with the process's fifos as its stdio (the runtime hands them to the process).
    private func runWithStdio(_ arguments: [String], bundle: String, settings: RuntimeSettings, stdin: String, stdout: String, stderr: String) async throws {
        let fds = try openStdio(stdin: stdin, stdout: stdout, stderr: stderr)
        defer { for fd in fds { close(fd) } }
        try await runVeil(arguments, bundle: bundle, settings: settings, io: SpawnIO(stdin: fds[0], stdout: fds[1], stderr: fds[2]))
    }

    /// Runs veil with fresh pipes as its stdio (the runtime hands them to the process) and the
    /// shim copying between them and the process's fifos.
    private func runWithPipes(_ arguments: [String], bundle: String, settings: RuntimeSettings, stdin: String, stdout: String, stderr: String) async throws -> PipeIO {
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

    func start(_ request: Containerd_Task_V2_StartRequest) async throws -> Containerd_Task_V2_StartResponse {
        let (container, process) = try process(request.id, request.execID)
        try locked {
            guard process.state == .created, !process.starting else {
                throw TTRPCError(.failedPrecondition, "process \(request.execID.isEmpty ? request.id : request.execID): already started")
            }
            process.starting = true
        }
        var pid: Int32 = 0
        do {
            if request.execID.isEmpty {
                try await runVeil(["start", request.id], bundle: container.bundle, settings: container.settings)
                pid = locked { process.pid }
            } else {
                pid = try await startExec(container, process)
            }
        } catch {
            let pending: Int32? = locked {
                process.starting = false
                defer { process.pendingExit = nil }
                return process.pendingExit
            }
            if let pending { handleExit(process, status: pending) }
            throw error
        }
        let pending: Int32? = locked {
            process.starting = false
            if process.state == .created { process.state = .running }
            defer { process.pendingExit = nil }
            return process.pendingExit
        }
        if request.execID.isEmpty {
            var event = Containerd_Events_TaskStart()
            event.containerID = request.id
            event.pid = UInt32(pid)
            events.publish("/tasks/start", event)
        } else {
            var event = Containerd_Events_TaskExecStarted()
            event.containerID = request.id
            event.execID = request.execID
            event.pid = UInt32(pid)
            events.publish("/tasks/exec-started", event)
        }
        if let pending { handleExit(process, status: pending) }
        return .with { $0.pid = UInt32(pid) }
    }

    private func safeName(_ execID: String) -> String {
        String(execID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    private func startExec(_ container: ShimContainer, _ process: ShimProcess) async throws -> Int32 {
        let name = safeName(process.execID)
        let specPath = container.bundle + "/exec-\(name).json"
        let pidFile = container.bundle + "/exec-\(name).pid"
        guard let spec = process.execSpec else { throw TTRPCError(.invalidArgument, "exec \(process.execID): no process spec") }
        do {
            try spec.write(to: URL(fileURLWithPath: specPath))
        } catch {
            throw TTRPCError(.internal, "write \(specPath): \(error)")
        }
        defer { unlink(specPath) }
        unlink(pidFile)
        let since = Date()
        let arguments = { (console: String?) -> [String] in
            ["exec", "--process", specPath, "--detach", "--pid-file", pidFile] + (console.map { ["--console-socket", $0] } ?? []) + [container.id]
        }
        var master: Int32 = -1
        var pipeIO: PipeIO?
        if process.terminal {
            master = try await withConsoleSocket { socket in
                try await runWithStdio(arguments(socket), bundle: container.bundle, settings: container.settings, stdin: "", stdout: "", stderr: "")
            }
        } else {
            pipeIO = try await runWithPipes(arguments(nil), bundle: container.bundle, settings: container.settings, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr)
        }
        defer { unlink(pidFile) }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            if master >= 0 { close(master) }
            pipeIO?.cleanup()
            throw TTRPCError(.internal, "veil exec wrote no pid file")
        }
        if master >= 0 { process.console = Console(master: master, stdin: process.stdin, stdout: process.stdout) }
        if let pipeIO {
            locked { process.pipeIO = pipeIO }
            pipeIO.startStdinCopy()
        }
        locked { process.pid = pid }
        watchExit(process, pid: pid, since: since)
        return pid
    }

    func exec(_ request: Containerd_Task_V2_ExecProcessRequest) async throws -> Google_Protobuf_Empty {
        let container = try container(request.id)
        guard !request.execID.isEmpty else { throw TTRPCError(.invalidArgument, "exec id is required") }
        let process = ShimProcess(containerID: request.id, execID: request.execID, stdin: request.stdin, stdout: request.stdout,
                                  stderr: request.stderr, terminal: request.terminal)
        process.execSpec = request.spec.value
        try locked {
            if container.execs[request.execID] != nil { throw TTRPCError(.alreadyExists, "id \(request.execID): already exists") }
            if container.initProcess.exitStatus != nil { throw TTRPCError(.failedPrecondition, "container \(request.id): not running") }
            container.execs[request.execID] = process
        }
        var event = Containerd_Events_TaskExecAdded()
        event.containerID = request.id
        event.execID = request.execID
        events.publish("/tasks/exec-added", event)
        return Google_Protobuf_Empty()
    }

    func state(_ request: Containerd_Task_V2_StateRequest) async throws -> Containerd_Task_V2_StateResponse {
        let (container, process) = try process(request.id, request.execID)
        return locked {
            Containerd_Task_V2_StateResponse.with {
                $0.id = request.execID.isEmpty ? request.id : request.execID
                $0.bundle = container.bundle
                $0.pid = UInt32(max(process.pid, 0))
                $0.status = process.exitStatus != nil ? .stopped : process.state
                $0.stdin = process.stdin
                $0.stdout = process.stdout
                $0.stderr = process.stderr
                $0.terminal = process.terminal
                $0.execID = request.execID
                if let status = process.exitStatus { $0.exitStatus = status }
                if let at = process.exitedAt { $0.exitedAt = Google_Protobuf_Timestamp(date: at) }
            }
        }
    }

    func kill(_ request: Containerd_Task_V2_KillRequest) async throws -> Google_Protobuf_Empty {
        let (container, process) = try process(request.id, request.execID)
        let (exited, pid, state) = locked { (process.exitStatus != nil, process.pid, process.state) }
        if request.execID.isEmpty {
            if exited && !request.all { throw TTRPCError(.notFound, "process already finished") }
            var arguments = ["kill"]
            if request.all { arguments.append("--all") }
            arguments += [request.id, String(request.signal)]
            do {
                try await runVeil(arguments, bundle: container.bundle, settings: container.settings)
            } catch {
                if locked({ process.exitStatus != nil }) { throw TTRPCError(.notFound, "process already finished") }
                throw error
            }
        } else {
            guard !exited, pid > 0, state != .created else {
                throw TTRPCError(.notFound, exited ? "process already finished" : "process not started")
            }
            if Glibc.kill(pid, Int32(truncatingIfNeeded: request.signal)) != 0 {
                throw TTRPCError(.notFound, "process already finished")
            }
        }
        return Google_Protobuf_Empty()
    }

    func wait(_ request: Containerd_Task_V2_WaitRequest) async throws -> Containerd_Task_V2_WaitResponse {
        let (_, process) = try process(request.id, request.execID)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done: Bool = locked {
                if process.exitStatus != nil { return true }
                process.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        return locked {
            Containerd_Task_V2_WaitResponse.with {
                $0.exitStatus = process.exitStatus ?? 0
                $0.exitedAt = Google_Protobuf_Timestamp(date: process.exitedAt ?? Date())
            }
        }
    }

    func delete(_ request: Containerd_Task_V2_DeleteRequest) async throws -> Containerd_Task_V2_DeleteResponse {
        let (container, process) = try process(request.id, request.execID)
        let (exited, state) = locked { (process.exitStatus != nil, process.state) }
        if !exited && state != .created {
            throw TTRPCError(.failedPrecondition, "cannot delete a running process")
        }
        if request.execID.isEmpty {
            locked { container.oomWatcher }?.stop()
            try await runVeil(["delete", "--force", request.id], bundle: container.bundle, settings: container.settings)
            if container.rootfsMounted { unmountAll(container.bundle + "/rootfs") }
            if let console = process.console { close(console.master) }
            process.pipeIO?.cleanup()
            for exec in locked({ Array(container.execs.values) }) { exec.pipeIO?.cleanup() }
            locked { containers[request.id] = nil }
        } else {
            if let console = process.console { close(console.master) }
            process.pipeIO?.cleanup()
            locked { container.execs[request.execID] = nil }
        }
        let (pid, status, at) = locked { (process.pid, process.exitStatus ?? 137, process.exitedAt ?? Date()) }
        if request.execID.isEmpty {
            var event = Containerd_Events_TaskDelete()
            event.containerID = request.id
            event.pid = UInt32(max(pid, 0))
            event.exitStatus = status
            event.exitedAt = Google_Protobuf_Timestamp(date: at)
            events.publish("/tasks/delete", event)
        }
        return .with {
            $0.pid = UInt32(max(pid, 0))
            $0.exitStatus = status
            $0.exitedAt = Google_Protobuf_Timestamp(date: at)
        }
    }

    func pids(_ request: Containerd_Task_V2_PidsRequest) async throws -> Containerd_Task_V2_PidsResponse {
        let container = try container(request.id)
        let output = try await runVeil(["ps", "--format", "json", request.id], bundle: container.bundle, settings: container.settings)
        guard let pids = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [Int] else {
            throw TTRPCError(.internal, "veil ps: unexpected output \(output)")
        }
        let execsByPid: [Int32: String] = locked {
            Dictionary(container.execs.values.filter { $0.pid > 0 }.map { ($0.pid, $0.execID) }, uniquingKeysWith: { a, _ in a })
        }
        return .with {
            $0.processes = pids.map { pid in
                Containerd_V1_Types_ProcessInfo.with { info in
                    info.pid = UInt32(truncatingIfNeeded: pid)
                    if let execID = execsByPid[Int32(truncatingIfNeeded: pid)],
                       let any = try? Google_Protobuf_Any(containerdPacking: Containerd_Runc_V1_ProcessDetails.with { $0.execID = execID }) {
                        info.info = any
                    }
                }
            }
        }
    }

    func stats(_ request: Containerd_Task_V2_StatsRequest) async throws -> Containerd_Task_V2_StatsResponse {
        let container = try container(request.id)
        let output = try await runVeil(["events", "--stats", request.id], bundle: container.bundle, settings: container.settings)
        let metrics = try StatsConverter.metrics(fromEventsJSON: output)
        return .with { $0.stats = metrics }
    }

    func pause(_ request: Containerd_Task_V2_PauseRequest) async throws -> Google_Protobuf_Empty {
        let container = try container(request.id)
        try await runVeil(["pause", request.id], bundle: container.bundle, settings: container.settings)
        locked { container.initProcess.state = .paused }
        events.publish("/tasks/paused", Containerd_Events_TaskPaused.with { $0.containerID = request.id })
        return Google_Protobuf_Empty()
    }

    func resume(_ request: Containerd_Task_V2_ResumeRequest) async throws -> Google_Protobuf_Empty {
        let container = try container(request.id)
        try await runVeil(["resume", request.id], bundle: container.bundle, settings: container.settings)
        locked { if container.initProcess.state == .paused { container.initProcess.state = .running } }
        events.publish("/tasks/resumed", Containerd_Events_TaskResumed.with { $0.containerID = request.id })
        return Google_Protobuf_Empty()
    }

    func update(_ request: Containerd_Task_V2_UpdateTaskRequest) async throws -> Google_Protobuf_Empty {
        let container = try container(request.id)
        let path = container.bundle + "/update-resources.json"
        do {
            try request.resources.value.write(to: URL(fileURLWithPath: path))
        } catch {
            throw TTRPCError(.internal, "write \(path): \(error)")
        }
        defer { unlink(path) }
        try await runVeil(["update", "-r", path, request.id], bundle: container.bundle, settings: container.settings)
        return Google_Protobuf_Empty()
    }

    func resizePty(_ request: Containerd_Task_V2_ResizePtyRequest) async throws -> Google_Protobuf_Empty {
        let (_, process) = try process(request.id, request.execID)
        guard let console = locked({ process.console }) else { throw TTRPCError(.failedPrecondition, "process has no terminal") }
        console.resize(width: request.width, height: request.height)
        return Google_Protobuf_Empty()
    }

    func closeIO(_ request: Containerd_Task_V2_CloseIORequest) async throws -> Google_Protobuf_Empty {
        let (_, process) = try process(request.id, request.execID)
        // Without a terminal: close the writing end of the process's stdin pipe (runc's shim does the same).
        if request.stdin, let console = locked({ process.console }) { console.closeStdin() }
        if request.stdin, let pipeIO = locked({ process.pipeIO }) { pipeIO.closeStdin() }
        return Google_Protobuf_Empty()
    }

    func connect(_ request: Containerd_Task_V2_ConnectRequest) async throws -> Containerd_Task_V2_ConnectResponse {
        let pid = locked { containers[request.id]?.initProcess.pid ?? 0 }
        return .with {
            $0.shimPid = UInt32(getpid())
            $0.taskPid = UInt32(max(pid, 0))
            $0.version = "veil-shim-v1"
        }
    }

    func shutdown(_ request: Containerd_Task_V2_ShutdownRequest) async throws -> Google_Protobuf_Empty {
        // One shim serves all the containers of a pod: it exits only when none is left.
        let idle = { [self] in locked { containers.isEmpty && creating == 0 } }
        if idle() || request.now {
            let onShutdown = self.onShutdown
            let now = request.now
            Task {
                try? await Task.sleep(for: .milliseconds(50))
                // Another container of the pod may have arrived meanwhile.
                guard now || idle() else { return }
                await onShutdown()
            }
        }
        return Google_Protobuf_Empty()
    }

    /// Registers every method on `server`.
    /// `onRequest` runs when a request arrives and when it is answered (the idle trimmer's clock).
    public func register(on server: TTRPCServer, onRequest: @escaping @Sendable () -> Void = {}) {
        let s = Self.serviceName
        func add<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
            service: String, method: String, _ handler: @escaping @Sendable (Request, TTRPCContext) async throws -> Response
        ) {
            server.register(service: service, method: method) { (request: Request, context: TTRPCContext) in
                onRequest()
                defer { onRequest() }
                return try await handler(request, context)
            }
        }
        add(service: s, method: "Create") { [self] (r: Containerd_Task_V2_CreateTaskRequest, _) in try await create(r) }
        add(service: s, method: "Start") { [self] (r: Containerd_Task_V2_StartRequest, _) in try await start(r) }
        add(service: s, method: "Exec") { [self] (r: Containerd_Task_V2_ExecProcessRequest, _) in try await exec(r) }
        add(service: s, method: "State") { [self] (r: Containerd_Task_V2_StateRequest, _) in try await state(r) }
        add(service: s, method: "Kill") { [self] (r: Containerd_Task_V2_KillRequest, _) in try await kill(r) }
        add(service: s, method: "Wait") { [self] (r: Containerd_Task_V2_WaitRequest, _) in try await wait(r) }
        add(service: s, method: "Delete") { [self] (r: Containerd_Task_V2_DeleteRequest, _) in try await delete(r) }
        add(service: s, method: "Pids") { [self] (r: Containerd_Task_V2_PidsRequest, _) in try await pids(r) }
        add(service: s, method: "Pause") { [self] (r: Containerd_Task_V2_PauseRequest, _) in try await pause(r) }
        add(service: s, method: "Resume") { [self] (r: Containerd_Task_V2_ResumeRequest, _) in try await resume(r) }
        add(service: s, method: "Update") { [self] (r: Containerd_Task_V2_UpdateTaskRequest, _) in try await update(r) }
        add(service: s, method: "ResizePty") { [self] (r: Containerd_Task_V2_ResizePtyRequest, _) in try await resizePty(r) }
        add(service: s, method: "CloseIO") { [self] (r: Containerd_Task_V2_CloseIORequest, _) in try await closeIO(r) }
        add(service: s, method: "Connect") { [self] (r: Containerd_Task_V2_ConnectRequest, _) in try await connect(r) }
        add(service: s, method: "Shutdown") { [self] (r: Containerd_Task_V2_ShutdownRequest, _) in try await shutdown(r) }
        add(service: s, method: "Checkpoint") { (_: Containerd_Task_V2_CheckpointTaskRequest, _) -> Google_Protobuf_Empty in
            throw TTRPCError(.failedPrecondition, "checkpoint: not supported yet")
        }
        add(service: s, method: "Stats") { [self] (r: Containerd_Task_V2_StatsRequest, _) in try await stats(r) }
    }
}

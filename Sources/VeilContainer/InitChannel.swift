import CVeilLinux
import FoundationEssentials
import Glibc
import VeilLinux
import VeilSpec

/// The sync socket between the runtime and a container's first processes, as named calls.
/// Its messages are defined once, in veil_sync.h. The conversation, for `create` and `exec` alike:
///
///     stage 1 (C)  → SCOPE_WAIT        runtime has systemd place it in the scope → ACK   (--systemd-cgroup only)
///     stage 1 (C)  → STAGE1_READY      runtime writes the id maps → ACK   (new user namespace only)
///     runtime      → PLAN               as soon as stage 1 asks nothing more (it reads only ACKs),
///                                       at once to an init cloned without stage 1 (no INIT_PID then)
///     stage 1 (C)  → INIT_PID
///     runtime      → PLAN_LATE (+ mount fds for create)
///     veil init    → runHooks / seccompListener / sandboxListener …   runtime answers each
///     veil init    → ready
///
/// A child that fails before execve sends CHILD_ERROR (`SpawnFailure`); `veil init` sends an `error` message.
struct InitChannel {
    let socket: SyncSocket
    /// Who is on the other side, for error messages: "container init", "the exec'd process".
    let peer: String

    init(_ socket: SyncSocket, peer: String = "container init") {
        self.socket = socket
        self.peer = peer
    }

    /// What `veil init` asks of the runtime before it is ready.
    enum Request {
        /// Run the prestart and createRuntime hooks; the init waits for the answer.
        case runHooks
        /// The listener of linux.seccomp's notifying filter, for linux.seccomp.listenerPath.
        case seccompListener(FileDescriptor)
        /// The listener of the sandbox policy's filter, for the warden.
        case sandboxListener(FileDescriptor)
        /// The listener of the record filter, for the recorder.
        case recordListener(FileDescriptor)
    }

    // MARK: The runtime's side

    /// The plan, encoded, with the number of requests stage 1 makes before it clones the init
    /// (`SpawnRequest.stage1Requests`): stage 1 reads an answer to each, and nothing else may
    /// reach it, so the plan follows the last answer.
    struct PendingPlan {
        let payload: [UInt8]
        var requestsBefore: Int

        init(_ plan: InitPlan, requestsBefore: Int) {
            payload = JSON.encode(plan)
            self.requestsBefore = requestsBefore
        }
    }

    /// Stage 1's part: when it made a user namespace it asks for the id maps (`writeIDMaps`;
    /// a failure there aborts the child), then it reports the init's host pid. The plan goes out
    /// once stage 1 asks nothing more, so it waits for the init when the init starts; then
    /// `whileInitStarts` runs, overlapping stage 1's last steps and the init's decoding of the plan.
    func awaitInitPid(whileInitStarts: () throws(ContainerError) -> Void = {},
                      placeInScope: () throws(ContainerError) -> Void = {},
                      writeIDMaps: () throws(ContainerError) -> Void,
                      sysctlKeys: [String] = [], plan: PendingPlan) throws(ContainerError) -> Int32 {
        var pending: PendingPlan? = plan
        // A failure of `whileInitStarts` waits for the init's pid, so that the init is not left behind.
        var failure: ContainerError?
        while true {
            if let plan = pending, plan.requestsBefore <= 0 {
                try send(plan)
                pending = nil
                do { try whileInitStarts() } catch { failure = error }
            }
            let message: (type: UInt32, payload: [UInt8])
            do { message = try receive(before: "reporting its pid") } catch { throw failure ?? error }
            switch Int(message.type) {
            case VEIL_SYNC_SCOPE_WAIT:
                try proceed(after: placeInScope)
                pending?.requestsBefore -= 1
            case VEIL_SYNC_STAGE1_READY:
                try proceed(after: writeIDMaps)
                pending?.requestsBefore -= 1
            case VEIL_SYNC_INIT_PID:
                guard pending == nil else { throw .initFailed("\(peer) started before its plan could be sent") }
                guard message.payload.count == MemoryLayout<Int32>.size else {
                    throw failure ?? .initFailed("\(peer) reported a malformed pid")
                }
                let pid = message.payload.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                if let failure {
                    kill(pid, SIGKILL)
                    _ = try? Wait.waitpid(pid)
                    throw failure
                }
                return pid
            case VEIL_SYNC_CHILD_ERROR:
                throw failure ?? .initFailed(SpawnFailure(payload: message.payload, sysctlKeys: sysctlKeys).description)
            default:
                throw failure ?? .initFailed("unexpected message \(message.type) from \(peer)")
            }
        }
    }

    /// The plan, to an init cloned without stage 1 or once stage 1 asks nothing more.
    func send(_ plan: PendingPlan) throws(ContainerError) {
        try wrap("sending the plan to \(peer)") { try socket.send(type: UInt32(VEIL_SYNC_PLAN), payload: plan.payload) }
    }

    /// Runs `step` for a waiting stage 1 and lets it go on, or tells it to give up.
    private func proceed(after step: () throws(ContainerError) -> Void) throws(ContainerError) {
        do { try step() } catch {
            try? socket.send(type: UInt32(VEIL_SYNC_ABORT))
            throw error
        }
        try send(VEIL_SYNC_ACK)
    }

    /// The rest of the plan, followed by descriptors the init attaches in its mount namespace
    /// (SCM_RIGHTS, in the order `late` lists them; `label` travels as the message body).
    func deliver(_ late: InitPlan.Late, fds: [(label: String, fd: FileDescriptor)] = []) throws(ContainerError) {
        let payload = JSON.encode(late)
        try wrap("sending the plan to \(peer)") {
            try socket.send(type: UInt32(VEIL_SYNC_PLAN_LATE), payload: payload)
            for (label, fd) in fds { try UnixSocket.sendFD(socket: socket.fd.raw, fd: fd.raw, message: label) }
        }
    }

    /// Answers the init's requests until it reports ready. A listener handed to `answer` is
    /// closed after it returns.
    func serveUntilReady(_ answer: (Request) throws(ContainerError) -> Void) throws(ContainerError) {
        while true {
            guard let reply = try decode(try receive(before: "it was ready")) else {
                throw .initFailed("malformed message from \(peer)")
            }
            switch reply.kind {
            case .ready, .error:  // `decode` threw the error
                return
            case .runHooks:
                try answering { () throws(ContainerError) in try answer(.runHooks) }
                try send(VEIL_SYNC_ACK)
            case .seccompListener, .sandboxListener, .recordListener:
                let (listener, _) = try wrap("receiving a seccomp listener from \(peer)") {
                    try UnixSocket.receiveFD(socket: socket.fd.raw)
                }
                defer { listener.close() }
                try answering { () throws(ContainerError) in
                    switch reply.kind {
                    case .seccompListener: try answer(.seccompListener(listener))
                    case .sandboxListener: try answer(.sandboxListener(listener))
                    default: try answer(.recordListener(listener))
                    }
                }
            }
        }
    }

    /// Runs one step of the runtime's while the init works; if it fails, an error the init has
    /// already reported wins: the init does not wait for the runtime, and once it is gone (a bad
    /// process.user after its filters went in, a mount refused while the warden starts) the step
    /// fails for that reason only (the init's namespaces are gone).
    func answering(_ body: () throws(ContainerError) -> Void) throws(ContainerError) {
        do { try body() } catch {
            var ready = pollfd(fd: socket.fd.raw, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 100) == 1, let message = try? socket.receive() { _ = try decode(message) }
            throw error
        }
    }

    /// A message from the init: stage 1's failure or the init's reported error is thrown, anything
    /// else decoded (nil when it is not one of the init's messages).
    private func decode(_ message: (type: UInt32, payload: [UInt8])) throws(ContainerError) -> InitMessage? {
        if Int(message.type) == VEIL_SYNC_CHILD_ERROR { throw .initFailed(SpawnFailure(payload: message.payload).description) }
        guard Int(message.type) == VEIL_SYNC_INIT_MESSAGE, let reply = InitMessage(payload: message.payload) else { return nil }
        if reply.kind == .error { throw .initFailed(reply.message ?? "\(peer) failed") }
        return reply
    }

    // MARK: `veil init`'s side

    /// The first thing the init reads: what to build and run (the plan, then its late part).
    func receivePlan() throws(ContainerError) -> (InitPlan, InitPlan.Late) {
        let plan = try receiveJSON(InitPlan.self, type: VEIL_SYNC_PLAN)
        return (plan, try receiveJSON(InitPlan.Late.self, type: VEIL_SYNC_PLAN_LATE))
    }

    private func receiveJSON<T: Decodable>(_: T.Type, type: Int) throws(ContainerError) -> T {
        guard let message = try wrap("reading the plan", { try socket.receive() }), Int(message.type) == type else {
            throw .initFailed("no plan from the runtime")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(message.payload)) } catch {
            throw .initFailed("malformed plan from the runtime: \(error)")
        }
    }

    /// One of the descriptors `deliver` sent after the plan.
    func receiveDelivered(_ what: String) throws(ContainerError) -> FileDescriptor {
        try wrap("receiving \(what)") { try UnixSocket.receiveFD(socket: socket.fd.raw).0 }
    }

    /// Asks the runtime to run the prestart and createRuntime hooks, and waits until it has.
    func askForHooks() throws(ContainerError) {
        try tell(.runHooks)
        let answer = try receive(before: "the hooks ran")
        guard Int(answer.type) == VEIL_SYNC_ACK else {
            throw .initFailed("the runtime did not run the prestart and createRuntime hooks")
        }
    }

    /// Hands a seccomp listener to the runtime (`kind` says whose).
    func handOver(listener: Int32, as kind: InitMessage.Kind) throws(ContainerError) {
        try tell(kind)
        try wrap("sending the seccomp listener") {
            try UnixSocket.sendFD(socket: socket.fd.raw, fd: listener, message: kind.rawValue)
        }
    }

    /// The record filter's listener: its announcement is framed before the filter goes in
    /// (`framed`), so that handing it over makes only the calls the filter lets through unseen.
    func handOver(recordListener listener: Int32, framed: [UInt8]) throws(ContainerError) {
        try wrap("writing to the runtime") { try socket.sendFramed(framed) }
        try wrap("sending the record listener") {
            try UnixSocket.sendFD(socket: socket.fd.raw, fd: listener, message: "r")
        }
    }

    /// `kind`'s message as the bytes `handOver(recordListener:framed:)` sends.
    func frame(_ kind: InitMessage.Kind) -> [UInt8] {
        SyncSocket.frame(type: UInt32(VEIL_SYNC_INIT_MESSAGE), payload: InitMessage(kind: kind).payload)
    }

    func tell(_ kind: InitMessage.Kind, message: String? = nil) throws(ContainerError) {
        let payload = InitMessage(kind: kind, message: message).payload
        try wrap("writing to the runtime") { try socket.send(type: UInt32(VEIL_SYNC_INIT_MESSAGE), payload: payload) }
    }

    // MARK: Framing

    private func receive(before what: String) throws(ContainerError) -> (type: UInt32, payload: [UInt8]) {
        guard let message = try wrap("reading from \(peer)", { try socket.receive() }) else {
            throw .initFailed("\(peer) exited before \(what)")
        }
        return message
    }

    private func send(_ type: Int) throws(ContainerError) {
        try wrap("writing to \(peer)") { try socket.send(type: UInt32(type)) }
    }
}

/// What a child reported when it failed before execve (struct veil_child_error).
struct SpawnFailure: CustomStringConvertible {
    var error: Int32 = 0
    var step: Int32 = 0
    var detail: Int32 = 0
    /// The `net.*` sysctls stage 1 wrote, to name the one a network step's detail points at.
    var sysctlKeys: [String] = []
    private var malformed = false

    init(payload: [UInt8], sysctlKeys: [String] = []) {
        self.sysctlKeys = sysctlKeys
        guard payload.count == MemoryLayout<veil_child_error>.size else { malformed = true; return }
        let raw = payload.withUnsafeBytes { $0.loadUnaligned(as: veil_child_error.self) }
        (error, step, detail) = (raw.error, raw.step, raw.detail)
    }

    var description: String {
        if malformed { return "container init failed (malformed error report)" }
        let doing = veil_spawn_step_description(step).map { String(cString: $0) } ?? "step \(step)"
        var what = LinuxNamespaceType(cloneFlag: detail).map { " (\($0.rawValue) namespace)" } ?? ""
        if step == Int32(VEIL_STEP_NETWORK.rawValue) {
            let index = Int(detail) - 1
            what = detail == 0 ? " (bringing up lo)" : sysctlKeys.indices.contains(index) ? " (linux.sysctl \"\(sysctlKeys[index])\")" : ""
        }
        return "container init failed \(doing)\(what): \(String(cString: strerror(error)))"
    }
}

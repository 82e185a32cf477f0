import Foundation
import SwiftProtobuf
import TTRPC
import VeilShimProtocol

// The methods live by concern: TaskService+Lifecycle (create, start, delete, connect, shutdown),
// +Exits (exit reports, state, kill, wait), +Exec (exec processes and their terminals),
// +Stats (pids, stats, pause, resume, update), +Checkpoint (checkpoint, and restore at Start) and
// +Veil (running veil with a process's stdio).

/// containerd.task.v2.Task, driving the veil binary.
public final class TaskService: @unchecked Sendable {
    public static let serviceName = "containerd.task.v2.Task"

    let namespace: String
    /// The veil binary, unless a container's settings name another.
    let veil: String
    let events: EventPublisher
    let onShutdown: @Sendable () async -> Void
    /// Guards `containers`, `creating` and the processes' mutable fields (see `locked`).
    let lock = NSLock()
    var containers: [String: ShimContainer] = [:]
    /// Creates under way (a pod's shim serves several containers: Shutdown waits for them too).
    var creating = 0

    init(namespace: String, veil: String, events: EventPublisher, onShutdown: @escaping @Sendable () async -> Void) {
        self.namespace = namespace
        self.veil = veil
        self.events = events
        self.onShutdown = onShutdown
    }

    func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: lookups

    func container(_ id: String) throws -> ShimContainer {
        guard let container = locked({ containers[id] }) else { throw TTRPCError(.notFound, "container \(id): not found") }
        return container
    }

    func process(_ id: String, _ execID: String) throws -> (ShimContainer, ShimProcess) {
        let container = try container(id)
        if execID.isEmpty { return (container, container.initProcess) }
        guard let process = locked({ container.execs[execID] }) else {
            throw TTRPCError(.notFound, "process \(execID): not found")
        }
        return (container, process)
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
        add(service: s, method: "Checkpoint") { [self] (r: Containerd_Task_V2_CheckpointTaskRequest, _) in try await checkpoint(r) }
        add(service: s, method: "Stats") { [self] (r: Containerd_Task_V2_StatsRequest, _) in try await stats(r) }
    }
}

import Foundation
import SwiftProtobuf
import TTRPC
import VeilExchange
import VeilShimProtocol

/// What containerd asks of a running container's cgroup through veil: Pids (`veil ps`), Stats
/// (`veil events --stats`), Pause, Resume and Update.
extension TaskService {
    func pids(_ request: Containerd_Task_V2_PidsRequest) async throws -> Containerd_Task_V2_PidsResponse {
        let container = try container(request.id)
        let output = try await runVeil(["ps", "--format", "json", request.id], bundle: container.bundle, settings: container.settings)
        let pids: [Int32]
        do { pids = try JSONDecoder().decode(ProcessList.self, from: Data(output.utf8)).pids } catch {
            throw TTRPCError(.internal, "veil ps: unexpected output \(output): \(error)")
        }
        let execsByPid: [Int32: String] = locked {
            Dictionary(container.execs.values.filter { $0.pid > 0 }.map { ($0.pid, $0.execID) }, uniquingKeysWith: { a, _ in a })
        }
        return .with {
            $0.processes = pids.map { pid in
                Containerd_V1_Types_ProcessInfo.with { info in
                    info.pid = UInt32(truncatingIfNeeded: pid)
                    if let execID = execsByPid[pid],
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
        let metrics = try StatsConverter.metrics(StatsConverter.stats(fromEventsOutput: output))
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
}

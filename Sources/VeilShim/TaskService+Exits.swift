import Foundation
import Glibc
import SwiftProtobuf
import TTRPC
import VeilLinux
import VeilShimProtocol

/// Exits (reaped, reported once the output is copied), and the methods that wait for or cause
/// them: State, Kill, Wait.
extension TaskService {
    func watchExit(_ process: ShimProcess, pid: Int32, since: Date) {
        Reaper.shared.watch(pid, since: since) { [self] status in handleExit(process, status: status) }
    }

    func handleExit(_ process: ShimProcess, status: Int32) {
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
}

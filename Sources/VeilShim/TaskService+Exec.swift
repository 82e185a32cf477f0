import Foundation
import Glibc
import SwiftProtobuf
import TTRPC
import VeilShimProtocol

/// Exec processes (`veil exec --detach` with the process spec containerd sent) and the terminal
/// and stdin calls of any process: ResizePty, CloseIO.
extension TaskService {
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

    func safeName(_ execID: String) -> String {
        String(execID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    func startExec(_ container: ShimContainer, _ process: ShimProcess) async throws -> Int32 {
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
}

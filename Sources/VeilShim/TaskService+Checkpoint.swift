import Foundation
import Glibc
import SwiftProtobuf
import TTRPC
import VeilLinux
import VeilShimProtocol

/// Checkpoint (`ctr c checkpoint --task`, CRI's CheckpointContainer) and restore: a Create that
/// carries a checkpoint makes no container yet; its Start runs `veil restore`, as runc's shim
/// restores at Start.
extension TaskService {
    func checkpoint(_ request: Containerd_Task_V2_CheckpointTaskRequest) async throws -> Google_Protobuf_Empty {
        let (container, process) = try process(request.id, "")
        guard !request.path.isEmpty else { throw TTRPCError(.invalidArgument, "checkpoint \(request.id): no image path") }
        let options = try Self.checkpointOptions(request.hasOptions ? request.options : nil)
        guard locked({ process.exitStatus == nil && process.pid > 0 && process.state != .created }) else {
            throw TTRPCError(.failedPrecondition, "checkpoint \(request.id): the container is not running")
        }
        // CRIU's log and work files go beside the bundle, not into the images containerd archives
        // (runc's shim does the same); a work path from the options is kept.
        let work = options.workPath.isEmpty ? container.bundle + "/criu-work" : options.workPath
        defer { if options.workPath.isEmpty { try? FS.removeAll(work) } }
        var arguments = ["checkpoint", "--image-path", request.path, "--work-path", work]
        // containerd's default is to leave the task running (`ctr c checkpoint` pauses it around
        // the call and resumes it after); `exit` stops it, as runc's shim does.
        if !options.exit { arguments.append("--leave-running") }
        if options.openTcp { arguments.append("--tcp-established") }
        if options.externalUnixSockets { arguments.append("--ext-unix-sk") }
        if options.terminal { arguments.append("--shell-job") }
        if options.fileLocks { arguments.append("--file-locks") }
        for namespace in options.emptyNamespaces { arguments += ["--empty-ns", namespace] }
        if !options.cgroupsMode.isEmpty { arguments += ["--manage-cgroups-mode", options.cgroupsMode] }
        try await runVeil(arguments + [request.id], bundle: container.bundle, settings: container.settings)
        return Google_Protobuf_Empty()
    }

    /// The checkpoint options containerd sends (runc's CheckpointOptions, whatever the runtime);
    /// none means containerd's defaults.
    static func checkpointOptions(_ any: Google_Protobuf_Any?) throws -> Containerd_Runc_V1_CheckpointOptions {
        guard let any, !(any.typeURL.isEmpty && any.value.isEmpty) else { return Containerd_Runc_V1_CheckpointOptions() }
        let name = any.typeURL.split(separator: "/").last.map(String.init) ?? ""
        guard name == Containerd_Runc_V1_CheckpointOptions.protoMessageName else {
            throw TTRPCError(.invalidArgument, "checkpoint options of type \"\(any.typeURL)\": expected \(Containerd_Runc_V1_CheckpointOptions.protoMessageName)")
        }
        do { return try Containerd_Runc_V1_CheckpointOptions(serializedBytes: any.value) } catch {
            throw TTRPCError(.invalidArgument, "checkpoint options: \(error)")
        }
    }

    /// Start of a container created from a checkpoint: `veil restore --detach` with fresh pipes
    /// for its stdio (veil hands them to CRIU in place of the pipes the checkpoint saved); the
    /// restored init is reparented to this shim, a subreaper, when CRIU exits.
    func restoreInit(_ container: ShimContainer, _ process: ShimProcess, images: String) async throws -> Int32 {
        let pidFile = container.bundle + "/init.pid"
        unlink(pidFile)
        let since = Date()
        let arguments = ["restore", "--detach", "--image-path", images, "--pid-file", pidFile, "--bundle", container.bundle, container.id]
        let pipeIO = try await runWithPipes(arguments, bundle: container.bundle, settings: container.settings,
                                            stdin: process.stdin, stdout: process.stdout, stderr: process.stderr)
        guard let pid = readPid(pidFile) else {
            pipeIO.cleanup()
            _ = try? await runVeil(["delete", "--force", container.id], bundle: container.bundle, settings: container.settings)
            throw TTRPCError(.internal, "veil restore wrote no pid file")
        }
        shimLog("container \(container.id): restored from \(images), pid \(pid)")
        pipeIO.startStdinCopy()
        let oomWatcher = watchOOM(containerID: container.id, pid: pid)
        locked {
            process.pipeIO = pipeIO
            process.pid = pid
            container.oomWatcher = oomWatcher
            container.restoreImages = nil
        }
        watchExit(process, pid: pid, since: since)
        return pid
    }
}

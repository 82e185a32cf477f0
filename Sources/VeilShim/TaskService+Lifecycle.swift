import Foundation
import Glibc
import SwiftProtobuf
import TTRPC
import VeilExchange
import VeilLinux
import VeilShimProtocol

/// A container's life: Create (rootfs, `veil create`), Start, Delete, and the shim's own Connect
/// and Shutdown.
extension TaskService {
    /// The isolation level in veil's state record of a created container ("unknown" if unreadable).
    func isolationLevel(id: String, settings: RuntimeSettings) -> String {
        let path = settings.runtimeRoot(namespace: namespace) + "/" + id + "/" + StateRecordSummary.fileName
        guard let data = FileManager.default.contents(atPath: path),
              let record = try? JSONDecoder().decode(StateRecordSummary.self, from: data) else { return "unknown" }
        return record.isolationLevel
    }

    func create(_ request: Containerd_Task_V2_CreateTaskRequest) async throws -> Containerd_Task_V2_CreateTaskResponse {
        guard !request.id.isEmpty, !request.bundle.isEmpty else { throw TTRPCError(.invalidArgument, "id and bundle are required") }
        if !request.checkpoint.isEmpty {
            // veil restores a container's stdio as pipes (a terminal stays with the checkpoint's).
            guard !request.terminal else { throw TTRPCError(.failedPrecondition, "restore of a container with a terminal is not supported: veil restores stdio as pipes") }
            guard request.parentCheckpoint.isEmpty else { throw TTRPCError(.failedPrecondition, "restore from a parent checkpoint chain is not supported: restore the last checkpoint, whose images name their parent") }
        }
        // Bad options fail the Create before anything exists.
        var settings: RuntimeSettings
        do {
            settings = try RuntimeSettings.from(options: request.hasOptions ? request.options : nil)
            settings.inferSystemdCgroup(cgroupsPath: BundleCgroupsPath.read(bundle: request.bundle), systemdRunning: BundleCgroupsPath.systemdRunning)
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
        if !request.checkpoint.isEmpty {
            let container = ShimContainer(id: request.id, bundle: bundle, settings: settings, rootfsMounted: mounted, initProcess: process)
            container.restoreImages = request.checkpoint
            locked { containers[request.id] = container }
            publishCreate(request, pid: 0)
            return .with { $0.pid = 0 }
        }
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
        guard let pid = readPid(pidFile) else {
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
        let oomWatcher = watchOOM(containerID: request.id, pid: pid)
        locked {
            process.pid = pid
            container.oomWatcher = oomWatcher
            containers[request.id] = container
        }
        watchExit(process, pid: pid, since: since)
        publishCreate(request, pid: pid)
        return .with { $0.pid = UInt32(pid) }
    }

    /// The pid veil's create or restore wrote to `path`; nil without one.
    func readPid(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return nil }
        return pid
    }

    /// Watches the cgroup of `pid` for OOM kills, published to containerd as the container's (nil where nothing can be watched).
    func watchOOM(containerID: String, pid: Int32) -> OOMWatcher? {
        let events = self.events
        return OOMWatcher(pid: pid) { events.publish("/tasks/oom", Containerd_Events_TaskOOM.with { $0.containerID = containerID }) }
    }

    func publishCreate(_ request: Containerd_Task_V2_CreateTaskRequest, pid: Int32) {
        var event = Containerd_Events_TaskCreate()
        event.containerID = request.id
        event.bundle = request.bundle
        event.rootfs = request.rootfs
        event.io.stdin = request.stdin
        event.io.stdout = request.stdout
        event.io.stderr = request.stderr
        event.io.terminal = request.terminal
        event.pid = UInt32(pid)
        events.publish("/tasks/create", event)
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
            if request.execID.isEmpty, let images = locked({ container.restoreImages }) {
                pid = try await restoreInit(container, process, images: images)
            } else if request.execID.isEmpty {
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
}

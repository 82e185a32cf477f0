import Foundation
import Glibc
import SwiftProtobuf
import Testing
import VeilShimProtocol

@testable import TTRPC

/// Go's ttrpc on the other end of this package's TTRPC module, through a private containerd
/// (Debian's, started by ContainerdRig): containerd serves containerd.services.events.ttrpc.v1.Events
/// on "<address>.ttrpc", the way a shim publishes events, and drives a shim's task service.
@Suite(.enabled(if: getuid() == 0 || veilRequired, "needs root and Debian's containerd"))
struct ContainerdInteropTests {
    @Test func forwardEventToContainerd() async throws {
        let rig = try ContainerdRig(namespace: "veiltest", importsImage: false)
        defer { rig.stop() }
        let ttrpcAddress = rig.address + ".ttrpc"
        #expect(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: ttrpcAddress) }, "no \(ttrpcAddress)\n\(rig.log)")

        // `ctr events` prints what containerd received, decoded by its own types.
        let events = try EventWatcher(rig)
        defer { events.stop() }

        let client = try await TTRPCClient.connect(unixPath: ttrpcAddress)
        var exit = Containerd_Events_TaskExit()
        exit.containerID = "veil-c1"
        exit.id = "veil-c1"
        exit.pid = 4242
        exit.exitStatus = 137
        exit.exitedAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000)
        var forward = Containerd_Services_Events_Ttrpc_V1_ForwardRequest()
        forward.envelope.timestamp = Google_Protobuf_Timestamp(date: Date())
        forward.envelope.namespace = "veiltest"
        forward.envelope.topic = "/tasks/exit"
        forward.envelope.event = try Google_Protobuf_Any(containerdPacking: exit)
        let service = "containerd.services.events.ttrpc.v1.Events"
        _ = try await client.call(
            service: service, method: "Forward", request: forward, as: Google_Protobuf_Empty.self,
            timeout: .seconds(10), metadata: [TTRPCMetadata.containerdNamespaceKey: "veiltest"])

        // Go ttrpc's own statuses come back as TTRPCError with their code and message.
        let unknown = await ttrpcError { _ = try await client.call(service: service, method: "Publish", request: Data()) }
        #expect(unknown?.code == .unimplemented && unknown?.message == "method Publish", "\(String(describing: unknown))")
        var invalid = forward
        invalid.envelope.namespace = ""
        let refused = await ttrpcError {
            _ = try await client.call(service: service, method: "Forward", request: invalid, as: Google_Protobuf_Empty.self)
        }
        #expect(refused?.code == .invalidArgument, "\(String(describing: refused))")
        await client.close()

        let delivered = waitUntil(timeout: 10) { events.text.contains("veiltest /tasks/exit") }
        let output = events.text
        #expect(delivered, "ctr events never showed the forwarded event: \(output)\n\(rig.log)")
        #expect(output.contains("\"container_id\":\"veil-c1\""), "\(output)")
        #expect(output.contains("\"pid\":4242"), "\(output)")
        #expect(output.contains("\"exit_status\":137"), "\(output)")
    }

    /// Go's ttrpc as the client: containerd drives a stand-in shim whose task service is a
    /// TTRPCServer in this process (the shim binary is a script that prints its address).
    @Test func containerdDrivesTaskService() async throws {
        let scratch = try TempDir(prefix: "vi")
        defer { scratch.remove() }
        let dir = scratch.path
        let socket = dir + "/shim.sock"
        let binDir = dir + "/bin"
        try FileManager.default.createDirectory(atPath: binDir + "/../rootfs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: binDir, withIntermediateDirectories: true)
        let script = """
            #!/bin/sh
            case " $* " in
            *" start "*) echo "unix://\(socket)"; exit 0 ;;
            *" delete "*) exit 0 ;;
            esac
            exit 1
            """
        FileManager.default.createFile(atPath: binDir + "/containerd-shim-veiltest-v1", contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])

        struct Call: Sendable {
            var method: String
            var namespace: String?
            var detail: String
        }
        let calls = Locked<[Call]>([])
        let exited = Locked<Bool>(false)
        let service = "containerd.task.v2.Task"
        let server = TTRPCServer()
        @Sendable func record(_ method: String, _ context: TTRPCContext, _ detail: String) {
            calls.withLock { $0.append(Call(method: method, namespace: context.namespace, detail: detail)) }
        }
        server.register(service: service, method: "Create") { (request: Containerd_Task_V2_CreateTaskRequest, context) in
            record("Create", context, "\(request.id) \(request.bundle.hasSuffix("/veiltest/c1")) terminal=\(request.terminal) stdout=\(!request.stdout.isEmpty)")
            return Containerd_Task_V2_CreateTaskResponse.with { $0.pid = 4242 }
        }
        server.register(service: service, method: "Start") { (request: Containerd_Task_V2_StartRequest, context) in
            record("Start", context, request.id)
            return Containerd_Task_V2_StartResponse.with { $0.pid = 4242 }
        }
        server.register(service: service, method: "State") { (request: Containerd_Task_V2_StateRequest, context) in
            record("State", context, request.id)
            let stopped = exited.withLock { $0 }
            return Containerd_Task_V2_StateResponse.with {
                $0.id = request.id
                $0.pid = 4242
                $0.status = stopped ? .stopped : .running
                if stopped {
                    $0.exitStatus = 137
                    $0.exitedAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000)
                }
            }
        }
        server.register(service: service, method: "Kill") { (request: Containerd_Task_V2_KillRequest, context) in
            record("Kill", context, "\(request.id) \(request.signal)")
            exited.withLock { $0 = true }
            return Google_Protobuf_Empty()
        }
        server.register(service: service, method: "Delete") { (request: Containerd_Task_V2_DeleteRequest, context) in
            record("Delete", context, request.id)
            return Containerd_Task_V2_DeleteResponse.with {
                $0.pid = 4242
                $0.exitStatus = 137
                $0.exitedAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000)
            }
        }
        server.register(service: service, method: "Connect") { (request: Containerd_Task_V2_ConnectRequest, context) in
            record("Connect", context, request.id)
            return Containerd_Task_V2_ConnectResponse.with {
                $0.shimPid = UInt32(getpid())
                $0.taskPid = 4242
            }
        }
        server.register(service: service, method: "Shutdown") { (request: Containerd_Task_V2_ShutdownRequest, context) in
            record("Shutdown", context, request.id)
            return Google_Protobuf_Empty()
        }
        try await server.bind(unixPath: socket)

        let rig = try ContainerdRig(namespace: "veiltest", extraPath: binDir, importsImage: false)
        defer { rig.stop() }
        var result = try rig.ctr(["run", "-d", "--runtime", "io.containerd.veiltest.v1", "--rootfs", dir + "/rootfs", "c1", "/bin/true"])
        #expect(result.succeeded, "\(result)\n\(rig.log)")
        // Under load a State call can miss ctr's deadline (the task then shows UNKNOWN): ask again,
        // and take the pid from the listing that shows it running.
        var listed: (pid: Int32, status: String)?
        let running = try waitUntil(timeout: 10) {
            listed = try rig.task("c1")
            return listed?.status == "RUNNING"
        }
        #expect(running && listed?.pid == 4242, "\(String(describing: listed))\n\(rig.log)")
        result = try rig.ctr(["task", "kill", "-s", "SIGKILL", "c1"])
        #expect(result.succeeded, "\(result)")
        #expect(try rig.waitForTask("c1", status: "STOPPED"), "\(String(describing: try? rig.task("c1")))")
        result = try rig.ctr(["task", "rm", "c1"])
        #expect(result.succeeded, "\(result)\n\(rig.log)")
        rig.stop()
        await server.close()

        let seen = calls.withLock { $0 }
        let methods = seen.map(\.method)
        // containerd 1.6: Create, Connect, Start, then State for each `ctr task ls`, Kill, Delete, Shutdown.
        #expect(methods.first == "Create", "\(methods)")
        #expect(Array(methods.filter { $0 != "State" && $0 != "Connect" }) == ["Create", "Start", "Kill", "Delete", "Shutdown"], "\(methods)")
        #expect(seen.first { $0.method == "Create" }?.detail == "c1 true terminal=false stdout=true")
        #expect(seen.contains { $0.method == "Kill" && $0.detail == "c1 9" }, "\(methods)")
        // containerd 1.6 sends no namespace metadata to shims (the shim has it from -namespace);
        // newer ones do. Either way nothing else may arrive there.
        #expect(seen.allSatisfy { $0.namespace == nil || $0.namespace == "veiltest" })
    }
}

/// The TTRPCError that `body` throws; nil (and an issue) when it succeeds or throws something else.
private func ttrpcError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> TTRPCError? {
    do {
        try await body()
    } catch let error as TTRPCError {
        return error
    } catch {
        Issue.record("not a TTRPCError: \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("expected a TTRPCError, the call succeeded", sourceLocation: sourceLocation)
    return nil
}

import Foundation
import Glibc
import SwiftProtobuf
import Testing
import VeilShimProtocol

@testable import TTRPC

private let containerdBinary = "/usr/bin/containerd"
private let ctrBinary = "/usr/bin/ctr"
private let canRunContainerd = getuid() == 0
    && FileManager.default.isExecutableFile(atPath: containerdBinary)
    && FileManager.default.isExecutableFile(atPath: ctrBinary)

/// Go's ttrpc on the other end: a private containerd (Debian's) serves
/// containerd.services.events.ttrpc.v1.Events on "<address>.ttrpc", the way a shim publishes events.
@Suite(.enabled(if: canRunContainerd, "needs root and Debian's containerd"))
struct ContainerdInteropTests {
    private func waitForSocket(_ path: String, _ process: Process) async throws {
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: path) { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TTRPCError(.unavailable, "containerd did not create \(path)")
    }

    /// SIGKILL: the test process may run with SIGTERM blocked on some threads, which children inherit.
    private func stop(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Starts a private containerd in `dir` (CRI off), `extraPath` prepended to its PATH.
    private func startContainerd(_ dir: String, extraPath: String? = nil) async throws -> (Process, String) {
        let address = dir + "/c.sock"
        let config = """
            version = 2
            root = "\(dir)/root"
            state = "\(dir)/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "\(address)"
            """
        try config.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        let containerd = Process()
        containerd.executableURL = URL(fileURLWithPath: containerdBinary)
        containerd.arguments = ["--config", dir + "/config.toml"]
        var environment = ProcessInfo.processInfo.environment
        if let extraPath { environment["PATH"] = extraPath + ":" + (environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin") }
        containerd.environment = environment
        containerd.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        FileManager.default.createFile(atPath: dir + "/containerd.log", contents: nil)
        containerd.standardError = FileHandle(forWritingAtPath: dir + "/containerd.log")
        try containerd.run()
        do {
            try await waitForSocket(address + ".ttrpc", containerd)
            try await waitForSocket(address, containerd)
        } catch {
            stop(containerd)
            throw error
        }
        return (containerd, address)
    }

    /// Runs ctr against `address`; returns its exit status and output.
    private func ctr(_ address: String, _ arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ctrBinary)
        process.arguments = ["--address", address] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func forwardEventToContainerd() async throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let (containerd, address) = try await startContainerd(dir)
        defer {
            stop(containerd)
        }

        // `ctr events` prints what containerd received, decoded by its own types.
        let events = Process()
        events.executableURL = URL(fileURLWithPath: ctrBinary)
        events.arguments = ["--address", address, "events"]
        let pipe = Pipe()
        events.standardOutput = pipe
        events.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try events.run()
        try await Task.sleep(for: .milliseconds(500))

        let client = try await TTRPCClient.connect(unixPath: address + ".ttrpc")
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
        let unknown = await expectTTRPCError(.unimplemented) {
            _ = try await client.call(service: service, method: "Publish", request: Data())
        }
        #expect(unknown?.message == "method Publish")
        var invalid = forward
        invalid.envelope.namespace = ""
        await expectTTRPCError(.invalidArgument) {
            _ = try await client.call(service: service, method: "Forward", request: invalid, as: Google_Protobuf_Empty.self)
        }
        await client.close()

        try await Task.sleep(for: .milliseconds(500))
        stop(events)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("veiltest /tasks/exit"), "\(output)")
        #expect(output.contains("\"container_id\":\"veil-c1\""), "\(output)")
        #expect(output.contains("\"pid\":4242"), "\(output)")
        #expect(output.contains("\"exit_status\":137"), "\(output)")
    }

    /// Go's ttrpc as the client: containerd drives a stand-in shim whose task service is a
    /// TTRPCServer in this process (the shim binary is a script that prints its address).
    @Test func containerdDrivesTaskService() async throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
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

        let (containerd, address) = try await startContainerd(dir, extraPath: binDir)
        defer {
            stop(containerd)
        }
        let log = { (try? String(contentsOfFile: dir + "/containerd.log", encoding: .utf8)) ?? "" }
        var (status, output) = try await ctr(address, [
            "-n", "veiltest", "run", "-d", "--runtime", "io.containerd.veiltest.v1", "--rootfs", dir + "/rootfs", "c1", "/bin/true",
        ])
        #expect(status == 0, "\(output)\n\(log())")
        // Under load a State call can miss ctr's deadline (the task then shows UNKNOWN): ask again.
        for _ in 0..<10 {
            (status, output) = try await ctr(address, ["-n", "veiltest", "task", "ls"])
            if output.contains("RUNNING") { break }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        #expect(status == 0)
        #expect(output.contains("c1") && output.contains("4242") && output.contains("RUNNING"), "\(output)")
        (status, output) = try await ctr(address, ["-n", "veiltest", "task", "kill", "-s", "SIGKILL", "c1"])
        #expect(status == 0, "\(output)")
        for _ in 0..<10 {
            (status, output) = try await ctr(address, ["-n", "veiltest", "task", "ls"])
            if output.contains("STOPPED") { break }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        #expect(output.contains("STOPPED"), "\(output)")
        (status, output) = try await ctr(address, ["-n", "veiltest", "task", "rm", "c1"])
        #expect(status == 0, "\(output)\n\(log())")
        stop(containerd)
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

import Foundation
import SwiftProtobuf
import Testing
import VeilShimProtocol

@testable import TTRPC

/// containerd decodes what the shim sends with its own generated code, so field numbers, wire types
/// and full names must be exactly containerd's. These check the bytes by hand (tag = field << 3 | wire type).
@Suite struct WireFormatTests {
    private func bytes(_ message: some SwiftProtobuf.Message) throws -> [UInt8] {
        try message.serializedBytes()
    }

    @Test func ttrpcRequestAndResponse() throws {
        var request = Ttrpc_Request()
        request.service = "s"
        request.method = "m"
        request.payload = Data([0xFF])
        request.timeoutNano = 1
        var kv = Ttrpc_KeyValue()
        kv.key = "k"
        kv.value = "v"
        request.metadata = [kv]
        #expect(try bytes(request) == [0x0A, 1, 0x73, 0x12, 1, 0x6D, 0x1A, 1, 0xFF, 0x20, 1, 0x2A, 6, 0x0A, 1, 0x6B, 0x12, 1, 0x76])

        var response = Ttrpc_Response()
        response.status = TTRPCError(.notFound, "x").status
        response.payload = Data([1])
        #expect(try bytes(response) == [0x0A, 5, 0x08, 5, 0x12, 1, 0x78, 0x12, 1, 1])
    }

    @Test func taskServiceMessages() throws {
        var state = Containerd_Task_V2_StateRequest()
        state.id = "a"
        state.execID = "b"
        #expect(try bytes(state) == [0x0A, 1, 0x61, 0x12, 1, 0x62])

        var stateResponse = Containerd_Task_V2_StateResponse()
        stateResponse.status = .paused
        stateResponse.exitStatus = 137
        stateResponse.execID = "e"
        #expect(try bytes(stateResponse) == [0x20, 4, 0x48, 0x89, 0x01, 0x5A, 1, 0x65])

        var create = Containerd_Task_V2_CreateTaskRequest()
        var mount = Containerd_Types_Mount()
        mount.type = "overlay"
        mount.options = ["ro"]
        create.rootfs = [mount]
        create.terminal = true
        create.options = try Google_Protobuf_Any(containerdPacking: Runtimeoptions_V1_Options.with { $0.configPath = "/c" })
        #expect(try bytes(create) == [
            0x1A, 13, 0x0A, 7] + Array("overlay".utf8) + [0x22, 2, 0x72, 0x6F,
            0x20, 1,
            0x52, 33, 0x0A, 25] + Array("runtimeoptions.v1.Options".utf8) + [0x12, 4, 0x12, 2, 0x2F, 0x63,
        ])

        var kill = Containerd_Task_V2_KillRequest()
        kill.signal = 9
        kill.all = true
        #expect(try bytes(kill) == [0x18, 9, 0x20, 1])

        var connect = Containerd_Task_V2_ConnectResponse()
        connect.shimPid = 1
        connect.taskPid = 2
        connect.version = "v"
        #expect(try bytes(connect) == [0x08, 1, 0x10, 2, 0x1A, 1, 0x76])

        var wait = Containerd_Task_V2_WaitResponse()
        wait.exitStatus = 3
        wait.exitedAt = Google_Protobuf_Timestamp(seconds: 1, nanos: 2)
        #expect(try bytes(wait) == [0x08, 3, 0x12, 4, 0x08, 1, 0x10, 2])

        #expect(Containerd_V1_Types_Status.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5])
        #expect(Containerd_Task_V2_StateRequest.protoMessageName == "containerd.task.v2.StateRequest")
    }

    @Test func eventsAndEnvelope() throws {
        var exit = Containerd_Events_TaskExit()
        exit.containerID = "c"
        exit.id = "c"
        exit.pid = 42
        exit.exitStatus = 1
        exit.exitedAt = Google_Protobuf_Timestamp(seconds: 5)
        #expect(try bytes(exit) == [0x0A, 1, 0x63, 0x12, 1, 0x63, 0x18, 42, 0x20, 1, 0x2A, 2, 0x08, 5])

        var forward = Containerd_Services_Events_Ttrpc_V1_ForwardRequest()
        forward.envelope.namespace = "n"
        forward.envelope.topic = "/tasks/exit"
        forward.envelope.event = try Google_Protobuf_Any(containerdPacking: exit)
        #expect(forward.envelope.event.typeURL == "containerd.events.TaskExit")
        let encoded = try bytes(forward)
        #expect(Array(encoded.prefix(5)) == [0x0A, UInt8(encoded.count - 2), 0x12, 1, 0x6E])
        // Either type URL form unpacks.
        #expect(try Containerd_Events_TaskExit(unpackingAny: forward.envelope.event) == exit)
        var prefixed = forward.envelope.event
        prefixed.typeURL = "type.googleapis.com/containerd.events.TaskExit"
        #expect(try Containerd_Events_TaskExit(unpackingAny: prefixed) == exit)

        let names = [
            Containerd_Events_TaskCreate.protoMessageName, Containerd_Events_TaskStart.protoMessageName,
            Containerd_Events_TaskDelete.protoMessageName, Containerd_Events_TaskOOM.protoMessageName,
            Containerd_Events_TaskExecAdded.protoMessageName, Containerd_Events_TaskExecStarted.protoMessageName,
            Containerd_Events_TaskPaused.protoMessageName, Containerd_Events_TaskResumed.protoMessageName,
            Containerd_Events_TaskCheckpointed.protoMessageName, Containerd_Events_TaskIO.protoMessageName,
        ]
        #expect(names == [
            "containerd.events.TaskCreate", "containerd.events.TaskStart", "containerd.events.TaskDelete",
            "containerd.events.TaskOOM", "containerd.events.TaskExecAdded", "containerd.events.TaskExecStarted",
            "containerd.events.TaskPaused", "containerd.events.TaskResumed", "containerd.events.TaskCheckpointed",
            "containerd.events.TaskIO",
        ])
    }

    @Test func cgroupMetrics() throws {
        var v1 = Io_Containerd_Cgroups_V1_Metrics()
        v1.pids.current = 3
        v1.memory.usage.usage = 4096
        v1.memoryOomControl.oomKill = 1
        let v1Bytes = try bytes(v1)
        // pids = 2 (len), memory = 4 (len) holding usage = 33 (two-byte tag 0x8A 0x02), memory_oom_control = 9.
        #expect(v1Bytes == [0x12, 2, 0x08, 3, 0x22, 6, 0x8A, 0x02, 3, 0x10, 0x80, 0x20, 0x4A, 2, 0x18, 1])
        #expect(Io_Containerd_Cgroups_V1_Metrics.protoMessageName == "io.containerd.cgroups.v1.Metrics")

        var v2 = Io_Containerd_Cgroups_V2_Metrics()
        v2.memory.usage = 1
        v2.memory.swapMaxUsage = 2
        v2.cpu.usageUsec = 3
        // cpu = 2 holding usage_usec = 3; memory = 4 holding usage = 32 (tag 0x80 0x02) and swap_max_usage = 37 (0xA8 0x02).
        #expect(try bytes(v2) == [0x12, 2, 0x08, 3, 0x22, 6, 0x80, 0x02, 1, 0xA8, 0x02, 2])
        #expect(Io_Containerd_Cgroups_V2_Metrics.protoMessageName == "io.containerd.cgroups.v2.Metrics")
    }

    @Test func runcOptions() throws {
        var options = Containerd_Runc_V1_Options()
        options.binaryName = "veil"
        options.root = "/r"
        options.systemdCgroup = true
        #expect(try bytes(options) == [0x32, 4] + Array("veil".utf8) + [0x3A, 2, 0x2F, 0x72, 0x48, 1])
        #expect(Containerd_Runc_V1_Options.protoMessageName == "containerd.runc.v1.Options")
        var details = Containerd_Runc_V1_ProcessDetails()
        details.execID = "x"
        #expect(try bytes(details) == [0x0A, 1, 0x78])
    }
}

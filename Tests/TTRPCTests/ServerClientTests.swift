import Foundation
import SwiftProtobuf
import Testing
import VeilShimProtocol

@testable import TTRPC

private let taskService = "containerd.task.v2.Task"

private actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }

    /// Calls blocked in `wait()`.
    var waiting: Int { waiters.count }
}

private struct ContainerBusy: TTRPCStatusConvertible {
    var ttrpcError: TTRPCError { .failedPrecondition("container is running") }
}

private struct PlainError: Error, CustomStringConvertible {
    var description: String { "plain failure" }
}

private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// A server on a socket in a temp dir with the methods the tests call, and a client connected to it.
private struct Fixture {
    let dir: String
    let path: String
    let server: TTRPCServer
    let client: TTRPCClient
    let gate = Gate()
    let cancelled = Flag()

    init() async throws {
        dir = try makeTempDir()
        path = dir + "/ttrpc.sock"
        server = TTRPCServer()
        let gate = gate
        let cancelled = cancelled
        server.register(service: taskService, method: "State") { (request: Containerd_Task_V2_StateRequest, context) in
            guard request.id == "c1" else { throw TTRPCError.notFound("container \(request.id): not found") }
            var response = Containerd_Task_V2_StateResponse()
            response.id = request.id
            response.execID = request.execID
            response.bundle = "/run/\(context.namespace ?? "-")/\(request.id)"
            response.pid = 42
            response.status = .running
            response.exitedAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 5)
            return response
        }
        server.register(service: "test.Echo", method: "Delay") { payload, _ in
            let ms = Int(String(decoding: payload, as: UTF8.self)) ?? 0
            try await Task.sleep(for: .milliseconds(ms))
            return payload
        }
        server.register(service: "test.Echo", method: "Context") { _, context in
            Data("\(context.service) \(context.method) \(context.streamID) \(context.metadata["k"]) \(context.deadline != nil)".utf8)
        }
        server.register(service: "test.Gate", method: "Wait") { _, _ in
            await gate.wait()
            return Data("passed".utf8)
        }
        server.register(service: "test.Gate", method: "Open") { _, _ in
            await gate.open()
            return Data()
        }
        server.register(service: "test.Errors", method: "NotFound") { _, _ in throw TTRPCError.notFound("container x: not found") }
        server.register(service: "test.Errors", method: "Custom") { _, _ in throw ContainerBusy() }
        server.register(service: "test.Errors", method: "Plain") { _, _ in throw PlainError() }
        server.register(service: "test.Errors", method: "Big") { _, _ in Data(count: TTRPCFrameHeader.maxPayloadLength) }
        server.register(service: "test.Slow", method: "Sleep") { _, _ in
            do {
                try await Task.sleep(for: .seconds(30))
            } catch {
                cancelled.set()
                throw error
            }
            return Data()
        }
        try await server.bind(unixPath: path)
        client = try await TTRPCClient.connect(unixPath: path)
    }

    func tearDown() async {
        await client.close()
        await server.close()
        removeTree(dir)
    }
}

@Suite struct ServerClientTests {
    @Test func taskStateRoundTrip() async throws {
        let f = try await Fixture()
        var request = Containerd_Task_V2_StateRequest()
        request.id = "c1"
        request.execID = "e1"
        let response = try await f.client.call(
            service: taskService, method: "State", request: request, as: Containerd_Task_V2_StateResponse.self,
            metadata: [TTRPCMetadata.containerdNamespaceKey: "k8s.io"])
        #expect(response.id == "c1")
        #expect(response.execID == "e1")
        #expect(response.pid == 42)
        #expect(response.status == .running)
        #expect(response.bundle == "/run/k8s.io/c1")
        #expect(response.exitedAt == Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 5))
        #expect(f.server.methods.contains("containerd.task.v2.Task/State"))

        request.id = "nope"
        let error = await expectTTRPCError(.notFound) {
            _ = try await f.client.call(service: taskService, method: "State", request: request, as: Containerd_Task_V2_StateResponse.self)
        }
        #expect(error?.message == "container nope: not found")
        await f.tearDown()
    }

    @Test func contextCarriesCallDetails() async throws {
        let f = try await Fixture()
        var metadata: TTRPCMetadata = [:]
        metadata.append("k", "a")
        metadata.append("k", "b")
        let first = try await f.client.call(service: "test.Echo", method: "Context", request: Data(), metadata: metadata)
        #expect(String(decoding: first, as: UTF8.self) == #"test.Echo Context 1 ["a", "b"] false"#)
        let second = try await f.client.call(service: "test.Echo", method: "Context", request: Data(), timeout: .seconds(5))
        #expect(String(decoding: second, as: UTF8.self) == "test.Echo Context 3 [] true")
        await f.tearDown()
    }

    @Test func concurrentCallsOnOneConnection() async throws {
        let f = try await Fixture()
        // Later calls finish first: responses must still reach their own callers.
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<40 {
                group.addTask {
                    let ms = 200 - i * 5
                    // A generous deadline: this checks delivery, and the runner may be starved on 2 cores.
                    let reply = try await f.client.call(service: "test.Echo", method: "Delay", request: Data("\(ms)".utf8), timeout: .seconds(120))
                    return (i, String(decoding: reply, as: UTF8.self))
                }
            }
            var results: [Int: String] = [:]
            for try await (i, reply) in group { results[i] = reply }
            return results
        }
        #expect(results.count == 40)
        for (i, reply) in results { #expect(reply == "\(200 - i * 5)") }

        // A call blocked in its handler does not hold up the next one on the same connection.
        async let waiting = f.client.call(service: "test.Gate", method: "Wait", request: Data())
        // Only a call that is blocked proves the point: wait until the handler waits (10 s at most).
        var polls = 0
        while await f.gate.waiting == 0 && polls < 1000 {
            try await Task.sleep(for: .milliseconds(10))
            polls += 1
        }
        #expect(await f.gate.waiting == 1)
        _ = try await f.client.call(service: "test.Gate", method: "Open", request: Data(), timeout: .seconds(5))
        #expect(String(decoding: try await waiting, as: UTF8.self) == "passed")
        await f.tearDown()
    }

    @Test func manyClients() async throws {
        let f = try await Fixture()
        let path = f.path
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<8 {
                group.addTask {
                    let client = try await TTRPCClient.connect(unixPath: path)
                    for i in 0..<10 {
                        let reply = try await client.call(service: "test.Echo", method: "Delay", request: Data("\(c + i)".utf8))
                        #expect(String(decoding: reply, as: UTF8.self) == "\(c + i)")
                    }
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        await f.tearDown()
    }

    @Test func unknownServiceOrMethodIsUnimplemented() async throws {
        let f = try await Fixture()
        let service = await expectTTRPCError(.unimplemented) {
            _ = try await f.client.call(service: "containerd.task.v3.Task", method: "State", request: Data())
        }
        #expect(service?.message == "service containerd.task.v3.Task")
        let method = await expectTTRPCError(.unimplemented) {
            _ = try await f.client.call(service: taskService, method: "Frobnicate", request: Data())
        }
        #expect(method?.message == "method Frobnicate")
        // The connection is still fine.
        #expect(try await f.client.call(service: "test.Echo", method: "Delay", request: Data("1".utf8)) == Data("1".utf8))
        await f.tearDown()
    }

    @Test func handlerErrorsKeepTheirCode() async throws {
        let f = try await Fixture()
        let notFound = await expectTTRPCError(.notFound) {
            _ = try await f.client.call(service: "test.Errors", method: "NotFound", request: Data())
        }
        #expect(notFound?.message == "container x: not found")
        let custom = await expectTTRPCError(.failedPrecondition) {
            _ = try await f.client.call(service: "test.Errors", method: "Custom", request: Data())
        }
        #expect(custom?.message == "container is running")
        let plain = await expectTTRPCError(.unknown) {
            _ = try await f.client.call(service: "test.Errors", method: "Plain", request: Data())
        }
        #expect(plain?.message == "plain failure")
        // A request payload that is not the method's message: INTERNAL, as ttrpc.
        await expectTTRPCError(.internal) {
            _ = try await f.client.call(service: taskService, method: "State", request: Data([0xFF, 0xFF, 0xFF]))
        }
        // A response too large for one frame is replaced by RESOURCE_EXHAUSTED.
        await expectTTRPCError(.resourceExhausted) {
            _ = try await f.client.call(service: "test.Errors", method: "Big", request: Data())
        }
        await f.tearDown()
    }

    @Test func deadlineCancelsTheHandler() async throws {
        let f = try await Fixture()
        let started = ContinuousClock.now
        await expectTTRPCError(.deadlineExceeded) {
            _ = try await f.client.call(service: "test.Slow", method: "Sleep", request: Data(), timeout: .milliseconds(100))
        }
        // Well before the handler's own 30 s: the deadline ended the call (the bound is loose, as
        // the whole suite shares two cores and the runner's cooperative threads).
        #expect(ContinuousClock.now - started < .seconds(25))
        // The server answers the deadline on its own too (raw peer: no client-side timer).
        let raw = try RawConnection(path: f.path)
        try await raw.send(requestFrame(streamID: 1, service: "test.Slow", method: "Sleep", timeoutNano: 100_000_000))
        let (stream, response) = try await raw.receiveResponse()
        #expect(stream == 1)
        #expect(response.status.code == TTRPCCode.deadlineExceeded.rawValue)
        // The handler's task is cancelled right after the answer (10 s at most).
        for _ in 0..<1000 where !f.cancelled.isSet { try await Task.sleep(for: .milliseconds(10)) }
        #expect(f.cancelled.isSet)
        await f.tearDown()
    }

    @Test func rawPeerProtocolErrors() async throws {
        let f = try await Fixture()
        let raw = try RawConnection(path: f.path)

        // An oversized request is discarded and answered RESOURCE_EXHAUSTED; the connection survives.
        let big = Array(repeating: UInt8(0x41), count: TTRPCFrameHeader.maxPayloadLength + 100)
        try await raw.send([0, 0x40, 0, 100, 0, 0, 0, 1, 1, 0] + big)
        var (stream, response) = try await raw.receiveResponse()
        #expect(stream == 1)
        #expect(response.status.code == TTRPCCode.resourceExhausted.rawValue)
        #expect(response.status.message == "message length 4194404 exceed maximum message size of 4194304")

        // Even stream ids belong to the server.
        try await raw.send(requestFrame(streamID: 4, service: "test.Echo", method: "Delay"))
        (stream, response) = try await raw.receiveResponse()
        #expect(stream == 4)
        #expect(response.status.code == TTRPCCode.invalidArgument.rawValue)

        // A good call, its bytes split across writes.
        let good = try requestFrame(streamID: 5, service: "test.Echo", method: "Delay", payload: Data("7".utf8)).encoded()
        try await raw.send(Array(good[0..<3]))
        try await Task.sleep(for: .milliseconds(20))  // not a wait for anything: the server reads the halves apart
        try await raw.send(Array(good[3...]))
        (stream, response) = try await raw.receiveResponse()
        #expect(stream == 5)
        #expect(response.status.code == 0)
        #expect(response.payload == Data("7".utf8))

        // Stream ids must increase.
        try await raw.send(requestFrame(streamID: 5, service: "test.Echo", method: "Delay"))
        (stream, response) = try await raw.receiveResponse()
        #expect(stream == 5)
        #expect(response.status.code == TTRPCCode.invalidArgument.rawValue)
        #expect(response.status.message == "StreamID cannot be re-used and must increment")

        // A request frame whose payload is not a Request.
        try await raw.send(TTRPCFrame(streamID: 7, type: .request, payload: [0xFF, 0xFF]))
        (stream, response) = try await raw.receiveResponse()
        #expect(stream == 7)
        #expect(response.status.code == TTRPCCode.invalidArgument.rawValue)

        // Two requests in one write, answered on their own streams.
        try await raw.send(
            requestFrame(streamID: 9, service: "test.Echo", method: "Delay", payload: Data("30".utf8)).encoded()
                + requestFrame(streamID: 11, service: "test.Echo", method: "Delay", payload: Data("0".utf8)).encoded())
        var answers: [UInt32: Data] = [:]
        for _ in 0..<2 {
            (stream, response) = try await raw.receiveResponse()
            answers[stream] = response.payload
        }
        #expect(answers == [9: Data("30".utf8), 11: Data("0".utf8)])
        await f.tearDown()
    }

    @Test func bindToAnInheritedSocket() async throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/inherited.sock"
        let fd = try makeListeningSocket(path)
        let server = TTRPCServer()
        server.register(service: taskService, method: "Connect") { (request: Containerd_Task_V2_ConnectRequest, _) in
            var response = Containerd_Task_V2_ConnectResponse()
            response.shimPid = 7
            response.version = "2"
            return response
        }
        try await server.bind(fd: fd)
        let client = try await TTRPCClient.connect(unixPath: path)
        let response = try await client.call(
            service: taskService, method: "Connect", request: Containerd_Task_V2_ConnectRequest.with { $0.id = "c" },
            as: Containerd_Task_V2_ConnectResponse.self)
        #expect(response.shimPid == 7)
        #expect(response.version == "2")
        await client.close()
        await server.close()
        await server.waitForClose()
    }

    @Test func closingEndsPendingCalls() async throws {
        let f = try await Fixture()
        // Server closes while a call is in its handler: the caller gets UNAVAILABLE, not a hang.
        async let pending: Data = f.client.call(service: "test.Gate", method: "Wait", request: Data())
        // Wait for the server to have the connection (a fixed sleep lost the race on a loaded machine).
        for _ in 0..<200 where f.server.connectionCount == 0 { try await Task.sleep(for: .milliseconds(25)) }
        #expect(f.server.connectionCount == 1)
        await f.server.close()
        let outcome: Result<Data, any Error>
        do { outcome = .success(try await pending) } catch { outcome = .failure(error) }
        await expectTTRPCError(.unavailable) { _ = try outcome.get() }
        await expectTTRPCError(.unavailable) {
            _ = try await f.client.call(service: "test.Echo", method: "Delay", request: Data())
        }
        // Nothing listens any more.
        await #expect(throws: (any Error).self) { _ = try await TTRPCClient.connect(unixPath: f.path) }
        await f.gate.open()
        await f.tearDown()
    }

    @Test func publishEventThroughForward() async throws {
        // What the shim does to tell containerd about an exit, against a stand-in for containerd.
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/containerd.sock.ttrpc"
        let received = Locked<[Containerd_Types_Envelope]>([])
        let containerd = TTRPCServer()
        containerd.register(service: "containerd.services.events.ttrpc.v1.Events", method: "Forward") {
            (request: Containerd_Services_Events_Ttrpc_V1_ForwardRequest, _) in
            received.withLock { $0.append(request.envelope) }
            return Google_Protobuf_Empty()
        }
        try await containerd.bind(unixPath: path)
        let client = try await TTRPCClient.connect(unixPath: path)
        var exit = Containerd_Events_TaskExit()
        exit.containerID = "c1"
        exit.id = "c1"
        exit.pid = 99
        exit.exitStatus = 137
        var forward = Containerd_Services_Events_Ttrpc_V1_ForwardRequest()
        forward.envelope.timestamp = Google_Protobuf_Timestamp(date: Date())
        forward.envelope.namespace = "default"
        forward.envelope.topic = "/tasks/exit"
        forward.envelope.event = try Google_Protobuf_Any(containerdPacking: exit)
        _ = try await client.call(
            service: "containerd.services.events.ttrpc.v1.Events", method: "Forward", request: forward,
            as: Google_Protobuf_Empty.self, metadata: [TTRPCMetadata.containerdNamespaceKey: "default"])
        let envelopes = received.withLock { $0 }
        #expect(envelopes.count == 1)
        #expect(envelopes.first?.topic == "/tasks/exit")
        #expect(envelopes.first?.event.typeURL == "containerd.events.TaskExit")
        #expect(try Containerd_Events_TaskExit(unpackingAny: envelopes[0].event) == exit)
        await client.close()
        await containerd.close()
    }
}

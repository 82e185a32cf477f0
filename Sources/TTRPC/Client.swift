import Foundation
import NIOCore
import NIOPosix
import SwiftProtobuf

/// A ttrpc client over a unix socket (a shim publishing events to containerd, tests).
/// Calls may be made concurrently from any task; each gets its own odd stream id.
public final class TTRPCClient: Sendable {
    private let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    /// Connects to the ttrpc server listening at `unixPath`.
    public static func connect(unixPath: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TTRPCClient {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(TTRPCFrameDecoder()),
                        MessageToByteHandler(TTRPCFrameEncoder()),
                        ClientConnectionHandler()
                    )
                }
            }
            .connect(unixDomainSocketPath: unixPath).get()
        return TTRPCClient(channel: channel)
    }

    /// Calls `service`/`method` with a serialized request; returns the serialized response or throws
    /// the server's status as `TTRPCError`. A `timeout` is sent to the server (`timeout_nano`) and
    /// also ends the wait here with DEADLINE_EXCEEDED.
    public func call(service: String, method: String, request: Data, timeout: Duration? = nil, metadata: TTRPCMetadata = [:]) async throws -> Data {
        var message = Ttrpc_Request()
        message.service = service
        message.method = method
        message.payload = request
        message.metadata = metadata.keyValues
        let promise = channel.eventLoop.makePromise(of: Data.self)
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            let nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
            message.timeoutNano = max(nanos, 1)
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(max(nanos, 1))) {
                promise.fail(TTRPCError(.deadlineExceeded, "context deadline exceeded"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        channel.writeAndFlush(PendingCall(request: message, promise: promise)).whenFailure { error in
            promise.fail(error is ChannelError ? TTRPCError(.unavailable, "ttrpc: closed") : error)
        }
        return try await promise.futureResult.get()
    }

    /// Calls a method with generated messages.
    public func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        service: String, method: String, request: Request, as: Response.Type = Response.self,
        timeout: Duration? = nil, metadata: TTRPCMetadata = [:]
    ) async throws -> Response {
        let payload: Data = try request.serializedBytes()
        let response = try await call(service: service, method: method, request: payload, timeout: timeout, metadata: metadata)
        do {
            return try Response(serializedBytes: response)
        } catch {
            throw TTRPCError(.internal, "ttrpc: error unmarshalling response: \(error)")
        }
    }

    /// Closes the connection; calls still waiting fail with UNAVAILABLE.
    public func close() async {
        try? await channel.close()
    }
}

/// A call on its way to the connection handler, which gives it a stream id.
private struct PendingCall: Sendable {
    var request: Ttrpc_Request
    var promise: EventLoopPromise<Data>
}

/// Assigns stream ids (on the event loop, so they reach the server in increasing order) and matches
/// responses to their calls.
private final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = TTRPCInbound
    typealias OutboundIn = PendingCall
    typealias OutboundOut = TTRPCFrame

    private var nextStreamID: UInt32 = 1
    private var pending: [UInt32: EventLoopPromise<Data>] = [:]
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let call = unwrapOutboundIn(data)
        guard !closed else {
            call.promise.fail(TTRPCError(.unavailable, "ttrpc: closed"))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let payload: [UInt8]
        do {
            payload = try call.request.serializedBytes()
        } catch {
            call.promise.fail(error)
            promise?.fail(error)
            return
        }
        guard payload.count <= TTRPCFrameHeader.maxPayloadLength else {
            let error = TTRPCError.messageTooLarge(payload.count)
            call.promise.fail(error)
            promise?.fail(error)
            return
        }
        let streamID = nextStreamID
        nextStreamID &+= 2
        pending[streamID] = call.promise
        context.write(wrapOutboundOut(TTRPCFrame(streamID: streamID, type: .request, payload: payload)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .oversized(let header):
            if header.type == .response, let promise = pending.removeValue(forKey: header.streamID) {
                promise.fail(TTRPCError.messageTooLarge(Int(header.length)))
            }
        case .frame(let frame):
            guard frame.type == .response, let promise = pending.removeValue(forKey: frame.streamID) else { return }
            do {
                let response = try Ttrpc_Response(serializedBytes: frame.payloadBytes)
                if response.hasStatus && response.status.code != 0 {
                    promise.fail(TTRPCError(status: response.status))
                } else {
                    promise.succeed(response.payload)
                }
            } catch {
                promise.fail(TTRPCError(.internal, "ttrpc: unmarshal response error: \(error)"))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        let waiting = pending
        pending = [:]
        for promise in waiting.values {
            promise.fail(TTRPCError(.unavailable, "ttrpc: closed"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

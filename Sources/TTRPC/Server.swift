import Foundation
import NIOCore
import NIOPosix
import SwiftProtobuf

/// What a handler knows about the call it serves.
public struct TTRPCContext: Sendable {
    /// e.g. "containerd.task.v2.Task".
    public var service: String
    /// e.g. "Create".
    public var method: String
    public var streamID: UInt32
    public var metadata: TTRPCMetadata
    /// From the request's `timeout_nano`; past it the client has been answered DEADLINE_EXCEEDED
    /// and the handler's task is cancelled.
    public var deadline: ContinuousClock.Instant?

    public init(service: String, method: String, streamID: UInt32 = 1, metadata: TTRPCMetadata = [:], deadline: ContinuousClock.Instant? = nil) {
        self.service = service
        self.method = method
        self.streamID = streamID
        self.metadata = metadata
        self.deadline = deadline
    }

    /// The containerd namespace the call was made in ("containerd-namespace-ttrpc" metadata), when the
    /// caller sends it: containerd 1.6 does not on shim calls, so a shim takes it from `-namespace`.
    public var namespace: String? { metadata.first(TTRPCMetadata.containerdNamespaceKey) }
}

/// A unary method: serialized request in, serialized response out. Throw `TTRPCError` (or a
/// `TTRPCStatusConvertible`) to choose the status code; any other error is UNKNOWN.
public typealias TTRPCHandler = @Sendable (Data, TTRPCContext) async throws -> Data

/// A ttrpc server on unix sockets. Register methods, then bind one or more listeners.
/// Calls on one connection run concurrently, each in its own task.
public final class TTRPCServer: Sendable {
    private struct State {
        var services: [String: [String: TTRPCHandler]] = [:]
        var listeners: [Channel] = []
        var connections: [ObjectIdentifier: Channel] = [:]
        var closed = false
    }

    private let group: any EventLoopGroup
    private let state = Locked(State())

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Registers (or replaces) `service`/`method`.
    public func register(service: String, method: String, handler: @escaping TTRPCHandler) {
        state.withLock { $0.services[service, default: [:]][method] = handler }
    }

    /// Registers a method over generated messages; a request that does not decode is answered INTERNAL
    /// (as ttrpc does).
    public func register<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        service: String, method: String,
        _ handler: @escaping @Sendable (Request, TTRPCContext) async throws -> Response
    ) {
        register(service: service, method: method) { payload, context in
            let request: Request
            do {
                request = try Request(serializedBytes: payload)
            } catch {
                throw TTRPCError(.internal, "ttrpc: error unmarshalling payload: \(error)")
            }
            return try await handler(request, context).serializedBytes()
        }
    }

    /// Every registered "service/method".
    public var methods: [String] {
        state.withLock { state in state.services.flatMap { service, methods in methods.keys.map { "\(service)/\($0)" } }.sorted() }
    }

    /// Listens on a new unix socket at `unixPath` (an existing socket file there is replaced).
    public func bind(unixPath: String) async throws {
        let channel = try await bootstrap().bind(unixDomainSocketPath: unixPath, cleanupExistingSocketFile: true).get()
        try await adopt(listener: channel)
    }

    /// Serves on a socket that is already bound (and possibly listening), e.g. the one a shim's
    /// `start` hands to the long-lived shim process. The server owns `fd` from now on.
    public func bind(fd: Int32) async throws {
        let channel = try await bootstrap().withBoundSocket(fd).get()
        try await adopt(listener: channel)
    }

    /// Stops listening and closes every connection.
    public func close() async {
        let channels = state.withLock { state -> [Channel] in
            state.closed = true
            defer {
                state.listeners = []
                state.connections = [:]
            }
            return state.listeners + Array(state.connections.values)
        }
        for channel in channels {
            try? await channel.close()
        }
    }

    /// Returns when every listener has been closed (by `close()` or an error).
    public func waitForClose() async {
        let listeners = state.withLock { $0.listeners }
        for listener in listeners {
            try? await listener.closeFuture.get()
        }
    }

    /// Open connections.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    private func adopt(listener: Channel) async throws {
        let closed = state.withLock { state -> Bool in
            if !state.closed { state.listeners.append(listener) }
            return state.closed
        }
        if closed {
            try? await listener.close()
            throw TTRPCError(.unavailable, "ttrpc: server closed")
        }
    }

    private func bootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(TTRPCFrameDecoder()),
                        MessageToByteHandler(TTRPCFrameEncoder()),
                        ServerConnectionHandler(server: self)
                    )
                }
            }
    }

    // MARK: connection bookkeeping and dispatch (called by ServerConnectionHandler)

    fileprivate func connectionOpened(_ channel: Channel) -> Bool {
        state.withLock { state in
            if state.closed { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    fileprivate func connectionClosed(_ channel: Channel) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    fileprivate func lookup(service: String, method: String) -> Result<TTRPCHandler, TTRPCError> {
        state.withLock { state in
            guard let methods = state.services[service] else {
                return .failure(TTRPCError(.unimplemented, "service \(service)"))
            }
            guard let handler = methods[method] else {
                return .failure(TTRPCError(.unimplemented, "method \(method)"))
            }
            return .success(handler)
        }
    }
}

/// Sends the one response of a stream, whichever comes first: the handler's result or the deadline.
private final class Responder: Sendable {
    let channel: Channel
    let streamID: UInt32
    private let sent = Locked(false)

    init(channel: Channel, streamID: UInt32) {
        self.channel = channel
        self.streamID = streamID
    }

    @discardableResult
    func send(_ result: Result<Data, TTRPCError>) -> Bool {
        let first = sent.withLock { sent -> Bool in
            defer { sent = true }
            return !sent
        }
        guard first else { return false }
        channel.writeAndFlush(Self.frame(streamID: streamID, result: result), promise: nil)
        return true
    }

    static func frame(streamID: UInt32, result: Result<Data, TTRPCError>) -> TTRPCFrame {
        var response = Ttrpc_Response()
        switch result {
        case .success(let payload):
            response.status = Google_Rpc_Status()  // code 0
            response.payload = payload
        case .failure(let error):
            response.status = error.status
        }
        var bytes: [UInt8] = (try? response.serializedBytes()) ?? []
        if bytes.count > TTRPCFrameHeader.maxPayloadLength {
            var tooLarge = Ttrpc_Response()
            tooLarge.status = TTRPCError.messageTooLarge(bytes.count).status
            bytes = (try? tooLarge.serializedBytes()) ?? []
        }
        return TTRPCFrame(streamID: streamID, type: .response, payload: bytes)
    }
}

/// One per connection: checks stream ids, decodes requests and starts their handlers.
private final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = TTRPCInbound
    typealias OutboundOut = TTRPCFrame

    private let server: TTRPCServer
    private var lastStreamID: UInt32 = 0

    init(server: TTRPCServer) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        if !server.connectionOpened(context.channel) {
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func reply(_ context: ChannelHandlerContext, _ streamID: UInt32, _ error: TTRPCError) {
        context.writeAndFlush(wrapOutboundOut(Responder.frame(streamID: streamID, result: .failure(error))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame: TTRPCFrame
        switch unwrapInboundIn(data) {
        case .oversized(let header):
            if header.type == .request {
                reply(context, header.streamID, .messageTooLarge(Int(header.length)))
            }
            return
        case .frame(let f):
            frame = f
        }
        // Only unary calls are served: data frames (streaming) have no method to go to.
        guard frame.type == .request else { return }
        guard frame.streamID % 2 == 1 else {
            reply(context, frame.streamID, .invalidArgument("StreamID must be odd for client initiated streams"))
            return
        }
        guard frame.streamID > lastStreamID else {
            reply(context, frame.streamID, .invalidArgument("StreamID cannot be re-used and must increment"))
            return
        }
        lastStreamID = frame.streamID

        let request: Ttrpc_Request
        do {
            request = try Ttrpc_Request(serializedBytes: frame.payloadBytes)
        } catch {
            reply(context, frame.streamID, .invalidArgument("unmarshal request error: \(error)"))
            return
        }
        let handler: TTRPCHandler
        switch server.lookup(service: request.service, method: request.method) {
        case .failure(let error):
            reply(context, frame.streamID, error)
            return
        case .success(let h):
            handler = h
        }

        var timeout: Duration?
        var deadline: ContinuousClock.Instant?
        if request.timeoutNano > 0 {
            timeout = .nanoseconds(request.timeoutNano)
            deadline = .now + .nanoseconds(request.timeoutNano)
        }
        let callContext = TTRPCContext(
            service: request.service, method: request.method, streamID: frame.streamID,
            metadata: TTRPCMetadata(request.metadata), deadline: deadline)
        let responder = Responder(channel: context.channel, streamID: frame.streamID)
        let payload = request.payload
        Task {
            let work = Task { try await handler(payload, callContext) }
            var timer: Task<Void, Never>?
            if let timeout {
                timer = Task {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    if responder.send(.failure(TTRPCError(.deadlineExceeded, "context deadline exceeded"))) {
                        work.cancel()
                    }
                }
            }
            let result = await work.result
            timer?.cancel()
            responder.send(result.mapError { TTRPCError(from: $0) })
        }
    }
}

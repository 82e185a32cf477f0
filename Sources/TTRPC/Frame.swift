import NIOCore

// ttrpc's framing: every message is a 10-byte header followed by its payload.
//
//   bytes 0..<4   payload length, big-endian (at most 4 MiB, so byte 0 is always 0)
//   bytes 4..<8   stream id, big-endian (odd: opened by the client)
//   byte  8       message type (1 request, 2 response, 3 data)
//   byte  9       flags, meaning defined by the type
//
// A unary call is one request frame carrying a `Ttrpc_Request` and one response frame on the same
// stream carrying a `Ttrpc_Response`.

/// The kind of a ttrpc frame.
public struct TTRPCMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Opens a stream: a `Ttrpc_Request`.
    public static let request = TTRPCMessageType(rawValue: 1)
    /// Ends a stream: a `Ttrpc_Response`.
    public static let response = TTRPCMessageType(rawValue: 2)
    /// Stream data (streaming RPCs; containerd's task API does not use them).
    public static let data = TTRPCMessageType(rawValue: 3)

    public var description: String {
        switch self {
        case .request: "request"
        case .response: "response"
        case .data: "data"
        default: "type \(rawValue)"
        }
    }
}

/// Frame flags (their meaning depends on the message type).
public enum TTRPCFlags {
    /// Request/data: no more data will come from the sender.
    public static let remoteClosed: UInt8 = 0x1
    /// Request: the sender will send data frames.
    public static let remoteOpen: UInt8 = 0x2
    /// Data: the frame carries no data.
    public static let noData: UInt8 = 0x4
}

/// A frame header.
public struct TTRPCFrameHeader: Hashable, Sendable {
    public static let size = 10
    /// Largest payload either side accepts (4 MiB, as ttrpc).
    public static let maxPayloadLength = 4 << 20

    public var length: UInt32
    public var streamID: UInt32
    public var type: TTRPCMessageType
    public var flags: UInt8

    public init(length: UInt32, streamID: UInt32, type: TTRPCMessageType, flags: UInt8 = 0) {
        self.length = length
        self.streamID = streamID
        self.type = type
        self.flags = flags
    }
}

/// A complete frame.
public struct TTRPCFrame: Hashable, Sendable {
    public var streamID: UInt32
    public var type: TTRPCMessageType
    public var flags: UInt8
    public var payload: ByteBuffer

    public init(streamID: UInt32, type: TTRPCMessageType, flags: UInt8 = 0, payload: ByteBuffer) {
        self.streamID = streamID
        self.type = type
        self.flags = flags
        self.payload = payload
    }

    public init(streamID: UInt32, type: TTRPCMessageType, flags: UInt8 = 0, payload: [UInt8]) {
        self.init(streamID: streamID, type: type, flags: flags, payload: ByteBuffer(bytes: payload))
    }

    public var header: TTRPCFrameHeader {
        TTRPCFrameHeader(length: UInt32(payload.readableBytes), streamID: streamID, type: type, flags: flags)
    }

    /// The payload as bytes.
    public var payloadBytes: [UInt8] { Array(payload.readableBytesView) }

    /// Appends header and payload to `buffer`; refuses a payload over the limit.
    public func encode(into buffer: inout ByteBuffer) throws {
        let length = payload.readableBytes
        guard length <= TTRPCFrameHeader.maxPayloadLength else {
            throw TTRPCError.messageTooLarge(length)
        }
        buffer.reserveCapacity(minimumWritableBytes: TTRPCFrameHeader.size + length)
        buffer.writeInteger(UInt32(length), endianness: .big)
        buffer.writeInteger(streamID, endianness: .big)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags)
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    /// The frame as bytes.
    public func encoded() throws -> [UInt8] {
        var buffer = ByteBuffer()
        try encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }
}

/// What the frame parser produces.
public enum TTRPCInbound: Hashable, Sendable {
    /// A complete frame.
    case frame(TTRPCFrame)
    /// A frame whose payload was over `TTRPCFrameHeader.maxPayloadLength`: its payload was read and
    /// thrown away, the connection stays usable, and the receiver answers the stream with
    /// RESOURCE_EXHAUSTED (as ttrpc does).
    case oversized(TTRPCFrameHeader)
}

/// Incremental frame parser: feed it bytes as they arrive (any split), take frames out.
public struct TTRPCFrameParser: Sendable {
    private var buffer = ByteBuffer()
    /// Bytes of an oversized payload still to discard, and its header.
    private var discarding: (remaining: Int, header: TTRPCFrameHeader)?

    public init() {}

    /// Bytes buffered but not yet part of a complete frame.
    public var bufferedBytes: Int { buffer.readableBytes }

    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.writeBytes(bytes)
    }

    /// The next complete frame (or oversize notice), or nil until more bytes arrive.
    public mutating func next() -> TTRPCInbound? {
        let result = Self.parse(&buffer, discarding: &discarding)
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        return result
    }

    /// The parsing step shared with the NIO decoder, which owns its own buffer.
    static func parse(_ buffer: inout ByteBuffer, discarding: inout (remaining: Int, header: TTRPCFrameHeader)?) -> TTRPCInbound? {
        if var skip = discarding {
            let n = min(skip.remaining, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: n)
            skip.remaining -= n
            if skip.remaining > 0 {
                discarding = skip
                return nil
            }
            discarding = nil
            return .oversized(skip.header)
        }
        guard buffer.readableBytes >= TTRPCFrameHeader.size,
            let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self),
            let streamID = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .big, as: UInt32.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt8.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 9, as: UInt8.self)
        else { return nil }
        let header = TTRPCFrameHeader(length: length, streamID: streamID, type: TTRPCMessageType(rawValue: type), flags: flags)
        if Int(length) > TTRPCFrameHeader.maxPayloadLength {
            buffer.moveReaderIndex(forwardBy: TTRPCFrameHeader.size)
            discarding = (Int(length), header)
            return parse(&buffer, discarding: &discarding)
        }
        guard buffer.readableBytes >= TTRPCFrameHeader.size + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: TTRPCFrameHeader.size)
        // Cannot fail: the length was checked against readableBytes just above.
        guard let payload = buffer.readSlice(length: Int(length)) else { return nil }
        return .frame(TTRPCFrame(streamID: streamID, type: header.type, flags: flags, payload: payload))
    }
}

/// NIO decoder: bytes → `TTRPCInbound`.
public struct TTRPCFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = TTRPCInbound
    private var discarding: (remaining: Int, header: TTRPCFrameHeader)?

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let inbound = TTRPCFrameParser.parse(&buffer, discarding: &discarding) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(inbound))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let inbound = TTRPCFrameParser.parse(&buffer, discarding: &discarding) {
            context.fireChannelRead(Self.wrapInboundOut(inbound))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)  // a truncated last frame is dropped
        return .needMoreData
    }
}

/// NIO encoder: `TTRPCFrame` → bytes.
public struct TTRPCFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = TTRPCFrame
    public init() {}
    public func encode(data: TTRPCFrame, out: inout ByteBuffer) throws {
        try data.encode(into: &out)
    }
}

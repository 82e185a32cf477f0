// A minimal WebSocket client (RFC 6455) for the CRI streaming server's channel protocol, which
// containerd serves at the URLs its Exec and PortForward calls return (what kubectl reaches
// through the kubelet): subprotocol v4.channel.k8s.io, every binary message is one channel byte
// followed by that channel's data.
//
//   let socket = try ChannelWebSocket(url: answer["url"], query: "port=80")
//   try socket.send(channel: 0, Array("GET / HTTP/1.0\r\n\r\n".utf8))
//   let received = try socket.receive(timeout: 20) { channels in ... }   // bytes per channel
//
// Exec's channels: 0 stdin, 1 stdout, 2 stderr, 3 the final status (JSON). PortForward's: 0 the
// port's data, 1 its errors, each opened with the port number (two bytes, little-endian).
// Blocking socket calls with a receive timeout: the suites that use it run serialized.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ChannelWebSocket {
    static let channelProtocol = "v4.channel.k8s.io"
    private let descriptor: Int32
    /// Bytes read past the last whole frame.
    private var pending: [UInt8] = []
    private(set) var closed = false

    /// Connects to an http:// URL of the streaming server and upgrades the connection.
    init(url: String, query: String? = nil, timeout: TimeInterval = 10) throws {
        guard let components = URLComponents(string: url), components.scheme == "http",
              let host = components.host, let port = components.port else {
            throw SupportError("not an http URL with a host and port: \(url)")
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw SupportError("not an IPv4 address: \(host) in \(url)") }
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SupportError("socket: errno \(errno)") }
        var wait = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            Glibc.close(descriptor)
            throw SupportError("connect to \(host):\(port): errno \(error)")
        }

        var target = components.percentEncodedPath
        let queries = [components.percentEncodedQuery, query].compactMap { $0 }.filter { !$0.isEmpty }
        if !queries.isEmpty { target += "?" + queries.joined(separator: "&") }
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let request = "GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \(Self.channelProtocol)\r\n"
            + "Origin: http://\(host)\r\n\r\n"
        do {
            try writeAll(Array(request.utf8))
            let header = try readHeader(deadline: Date().addingTimeInterval(timeout))
            guard header.hasPrefix("HTTP/1.1 101") else { throw SupportError("the streaming server refused the upgrade:\n\(header)") }
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }

    deinit { Glibc.close(descriptor) }

    /// One binary message on `channel` (masked, as a client must).
    func send(channel: UInt8, _ data: [UInt8]) throws {
        let payload = [channel] + data
        var frame: [UInt8] = [0x82]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        default: frame.append(0x80 | 127); frame += (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (UInt64($0) * 8)) & 0xff) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try writeAll(frame)
    }

    /// Reads messages, collecting each channel's bytes, until the server closes the connection,
    /// `done` says enough, or the timeout passes; what arrived by then.
    func receive(timeout: TimeInterval, until done: ([UInt8: [UInt8]]) -> Bool = { _ in false }) throws -> [UInt8: [UInt8]] {
        let deadline = Date().addingTimeInterval(timeout)
        var channels: [UInt8: [UInt8]] = [:]
        while !done(channels) {
            guard let (opcode, payload) = try nextFrame() else {
                if closed || Date() >= deadline { break }
                try fill()
                continue
            }
            switch opcode {
            case 0x0, 0x1, 0x2:
                // Binary (or continuation of it): the channel byte, then data.
                if let channel = payload.first { channels[channel, default: []] += payload.dropFirst() }
            case 0x8:
                closed = true
            case 0x9:
                try writeAll([0x8a, 0x80 | UInt8(min(payload.count, 125)), 0, 0, 0, 0] + payload.prefix(125))
            default:
                break
            }
        }
        return channels
    }

    /// The next whole frame in `pending`, or nil when more bytes are needed.
    private func nextFrame() throws -> (opcode: UInt8, payload: [UInt8])? {
        guard pending.count >= 2 else { return nil }
        let opcode = pending[0] & 0x0f
        let masked = pending[1] & 0x80 != 0
        var length = Int(pending[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard pending.count >= 4 else { return nil }
            length = Int(pending[2]) << 8 | Int(pending[3])
            offset = 4
        } else if length == 127 {
            guard pending.count >= 10 else { return nil }
            length = pending[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        let maskKey = masked ? Array(pending[offset..<min(offset + 4, pending.count)]) : []
        if masked { offset += 4 }
        guard pending.count >= offset + length else { return nil }
        var payload = Array(pending[offset..<offset + length])
        if masked, maskKey.count == 4 { payload = payload.enumerated().map { $0.element ^ maskKey[$0.offset % 4] } }
        pending.removeFirst(offset + length)
        return (opcode, payload)
    }

    /// Reads what is there (waiting at most the socket's receive timeout); end of stream counts as closed.
    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            pending += buffer[0..<count]
        } else if count == 0 {
            closed = true
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            throw SupportError("recv from the streaming server: errno \(errno)")
        }
    }

    /// The HTTP response's header; bytes after it stay in `pending` (the first frames).
    private func readHeader(deadline: Date) throws -> String {
        let end = Array("\r\n\r\n".utf8)
        while Date() < deadline {
            if let range = pending.firstRange(of: end) {
                let header = String(decoding: pending[..<range.lowerBound], as: UTF8.self)
                pending.removeFirst(range.upperBound)
                return header
            }
            try fill()
            if closed { throw SupportError("the streaming server closed the connection: \(String(decoding: pending, as: UTF8.self))") }
        }
        throw SupportError("no answer to the upgrade request: \(String(decoding: pending, as: UTF8.self))")
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw SupportError("send to the streaming server: errno \(errno)") }
            sent += count
        }
    }
}

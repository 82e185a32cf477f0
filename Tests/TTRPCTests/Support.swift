import Dispatch
import Foundation
import Glibc
import Testing

@testable import TTRPC
import VeilLinux

/// A fresh directory under /tmp for sockets (short enough for sun_path).
func makeTempDir() throws -> String {
    var template = Array("/tmp/veil-ttrpc-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
        guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
        return String(cString: result)
    }
    guard let made else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return made
}

/// Removes a temp dir made by `makeTempDir`, sockets included (Foundation's removeItem stops at them).
func removeTree(_ path: String) {
    guard path.hasPrefix("/tmp/veil-ttrpc-") else { return }
    try? FS.removeAll(path)
}

private func withSockaddr<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    precondition(bytes.count < MemoryLayout.size(ofValue: address.sun_path))
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A bound and listening unix socket, as a shim's `start` would pass it on.
func makeListeningSocket(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    let rc = withSockaddr(path) { bind(fd, $0, $1) }
    guard rc == 0, listen(fd, 16) == 0 else {
        let saved = errno
        close(fd)
        throw POSIXError(.init(rawValue: saved) ?? .EIO)
    }
    return fd
}

/// A blocking byte-level ttrpc peer, to send what TTRPCClient never would. Its blocking calls run
/// on a dispatch queue, away from the cooperative pool the server's handlers use.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var parser = TTRPCFrameParser()
    private let queue = DispatchQueue(label: "raw-ttrpc")

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)  // a loaded CI machine can be slow to answer
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rc = withSockaddr(path) { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    deinit { close(fd) }

    private func onQueue<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await onQueue { [self] in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
                offset += n
            }
        }
    }

    func send(_ frame: TTRPCFrame) async throws {
        try await send(frame.encoded())
    }

    /// The next frame from the server (10 s at most).
    func receive() async throws -> TTRPCFrame {
        try await onQueue { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                if let next = parser.next() {
                    guard case .frame(let frame) = next else { throw TTRPCError(.internal, "oversized frame from server") }
                    return frame
                }
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw POSIXError(.init(rawValue: n == 0 ? ECONNRESET : errno) ?? .EIO) }
                parser.append(chunk[0..<n])
            }
        }
    }

    /// The next response, decoded.
    func receiveResponse() async throws -> (streamID: UInt32, response: Ttrpc_Response) {
        let frame = try await receive()
        #expect(frame.type == .response)
        return (frame.streamID, try Ttrpc_Response(serializedBytes: frame.payloadBytes))
    }
}

func requestFrame(streamID: UInt32, service: String, method: String, payload: Data = Data(), timeoutNano: Int64 = 0) throws -> TTRPCFrame {
    var request = Ttrpc_Request()
    request.service = service
    request.method = method
    request.payload = payload
    request.timeoutNano = timeoutNano
    return TTRPCFrame(streamID: streamID, type: .request, payload: try request.serializedBytes() as [UInt8])
}

/// Expects `body` to throw a TTRPCError with `code`; returns it.
@discardableResult
func expectTTRPCError(_ code: TTRPCCode, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> TTRPCError? {
    do {
        try await body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
    } catch let error as TTRPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected TTRPCError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

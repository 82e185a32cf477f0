import Glibc
import CVeilLinux

/// A stream socket carrying framed messages: a veil_sync_header, then the payload.
public final class SyncSocket {
    public let fd: FileDescriptor

    public init(fd: FileDescriptor) { self.fd = fd }

    /// Two connected ends, both close-on-exec.
    public static func pair() throws(LinuxError) -> (SyncSocket, SyncSocket) {
        var fds: [Int32] = [-1, -1]
        try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return (SyncSocket(fd: FileDescriptor(fds[0])), SyncSocket(fd: FileDescriptor(fds[1])))
    }

    public func send(type: UInt32, payload: [UInt8] = []) throws(LinuxError) {
        try writeAll(Self.frame(type: type, payload: payload))
    }

    /// A message's bytes on the wire, for `sendFramed`.
    public static func frame(type: UInt32, payload: [UInt8] = []) -> [UInt8] {
        var header = veil_sync_header(type: type, length: UInt32(payload.count))
        return withUnsafeBytes(of: &header) { Array($0) } + payload
    }

    /// A message framed beforehand: nothing is allocated while it is sent.
    public func sendFramed(_ bytes: [UInt8]) throws(LinuxError) {
        try writeAll(bytes)
    }

    private func writeAll(_ bytes: [UInt8]) throws(LinuxError) {
        var offset = 0
        while offset < bytes.count {
            let n = try sys("write", "sync socket") {
                bytes.withUnsafeBytes { Glibc.send(fd.raw, $0.baseAddress.map { $0 + offset }, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
            offset += n
        }
    }

    private func readExactly(_ count: Int) throws(LinuxError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = try sys("read", "sync socket") {
                buffer.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress.map { $0 + offset }, count - offset) }
            }
            if n == 0 { return nil }
            offset += n
        }
        return buffer
    }

    /// The next message, or nil when the other side closed.
    public func receive() throws(LinuxError) -> (type: UInt32, payload: [UInt8])? {
        guard let head = try readExactly(MemoryLayout<veil_sync_header>.size) else { return nil }
        let header = head.withUnsafeBytes { $0.loadUnaligned(as: veil_sync_header.self) }
        if header.length == 0 { return (header.type, []) }
        guard header.length < 64 << 20, let body = try readExactly(Int(header.length)) else { return nil }
        return (header.type, body)
    }
}

public enum UnixSocket {
    /// Connects to a unix stream socket at `path` (a console socket).
    public static func connect(path: String) throws(LinuxError) -> FileDescriptor {
        let fd = FileDescriptor(try sys("socket", path) { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) })
        try withAddress(path, "connect") { (address, length) throws(LinuxError) in
            try sys("connect", path) { Glibc.connect(fd.raw, address, length) }
        }
        return fd
    }

    /// A listening unix stream socket bound at `path` (close-on-exec), chmod'ed to `mode` when given.
    public static func listen(path: String, backlog: Int32 = 16, cloexec: Bool = true, mode: mode_t? = nil) throws(LinuxError) -> FileDescriptor {
        let type = Int32(SOCK_STREAM.rawValue) | (cloexec ? Int32(SOCK_CLOEXEC.rawValue) : 0)
        let fd = FileDescriptor(try sys("socket", path) { socket(AF_UNIX, type, 0) })
        try withAddress(path, "bind") { (address, length) throws(LinuxError) in
            try sys("bind", path) { bind(fd.raw, address, length) }
        }
        if let mode { chmod(path, mode) }
        try sys("listen", path) { Glibc.listen(fd.raw, backlog) }
        return fd
    }

    private static func withAddress(_ path: String, _ call: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(LinuxError) -> Void) throws(LinuxError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw LinuxError(call, path, errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let result: Result<Void, LinuxError> = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                do throws(LinuxError) { try body(raw, length); return .success(()) } catch { return .failure(error) }
            }
        }
        try result.get()
    }

    public static func sendFD(socket: Int32, fd: Int32, message: String) throws(LinuxError) {
        try sysNeg("sendmsg", "console socket") { veil_send_fd(socket, fd, message, message.utf8.count) }
    }

    public static func receiveFD(socket: Int32) throws(LinuxError) -> (FileDescriptor, String) {
        var buffer = [CChar](repeating: 0, count: 4096)
        let fd = try sysNeg("recvmsg", "console socket") { veil_recv_fd(socket, &buffer, buffer.count - 1) }
        return (FileDescriptor(fd), String(cString: buffer))
    }
}

import VeilLinux

/// A CRI endpoint: containerd's and CRI-O's gRPC unix socket, as kubelet's
/// `--container-runtime-endpoint` writes it (`unix:///run/containerd/containerd.sock`) or a bare path.
public struct CRIEndpoint: Sendable, Equatable, CustomStringConvertible {
    public static let containerdDefault = "unix:///run/containerd/containerd.sock"

    /// As the user wrote it (for messages).
    public let address: String
    /// The socket's path.
    public let path: String

    public init(_ address: String) throws(CRIError) {
        let path: String
        if address.hasPrefix("unix://") {
            path = String(address.dropFirst("unix://".count))
        } else if address.hasPrefix("/") {
            path = address
        } else {
            throw .badEndpoint(address, reason: "expected unix:///path/to/socket or an absolute path (only unix sockets are supported)")
        }
        guard path.hasPrefix("/") else { throw .badEndpoint(address, reason: "the socket path must be absolute") }
        // sockaddr_un holds 108 bytes with the terminating NUL.
        guard path.utf8.count < 108 else { throw .badEndpoint(address, reason: "socket path longer than 107 bytes") }
        self.address = address
        self.path = path
    }

    public var description: String { address }

    /// Connects once with a plain socket, so "no such socket" or "connection refused" is reported as
    /// such instead of as a gRPC call that timed out while the transport kept retrying.
    public func probe() throws(CRIError) {
        do {
            let socket = try UnixSocket.connect(path: path)
            socket.close()
        } catch {
            throw .unreachable(endpoint: address, reason: error.description)
        }
    }
}

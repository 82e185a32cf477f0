/// What went wrong talking to a CRI endpoint, with enough context to act on.
public enum CRIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `--cri-endpoint` is not a unix socket address.
    case badEndpoint(String, reason: String)
    /// Nothing answers at the socket (missing file, refused connection, permission).
    case unreachable(endpoint: String, reason: String)
    /// A call failed: the gRPC status the runtime returned.
    case rpc(method: String, code: String, message: String)
    /// A call succeeded but its answer lacks what the caller needs.
    case badResponse(method: String, reason: String)

    public var description: String {
        switch self {
        case .badEndpoint(let endpoint, let reason):
            return "--cri-endpoint \(endpoint): \(reason)"
        case .unreachable(let endpoint, let reason):
            return "cannot reach the CRI endpoint \(endpoint): \(reason) (is containerd running with its CRI plugin? see --cri-endpoint)"
        case .rpc(let method, let code, let message):
            return "\(method): \(message) (gRPC \(code))"
        case .badResponse(let method, let reason):
            return "\(method): \(reason)"
        }
    }

    /// The runtime's own message for an RPC failure, else the whole description.
    public var runtimeMessage: String {
        if case .rpc(_, _, let message) = self { return message }
        return description
    }
}

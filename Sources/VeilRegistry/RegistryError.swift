/// Why fetching or publishing an artifact failed; always names the reference.
public struct RegistryError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case invalidReference = "invalid reference"
        case blocked = "registry blocked"
        case configuration = "configuration"
        case unreachable = "registry unreachable"
        case tls = "TLS"
        case timeout = "timed out"
        case unauthorized = "unauthorized"
        case denied = "denied"
        case unknownManifest = "manifest unknown"
        case unknownBlob = "blob unknown"
        case digestMismatch = "digest mismatch"
        case wrongMediaType = "wrong media type"
        case tooLarge = "too large"
        case notAProfile = "not a seccomp profile"
        case protocolError = "registry protocol error"
        case cache = "cache"
        case io = "I/O"
    }

    /// The reference as the user gave it (or normalised, once parsed).
    public let reference: String
    public let kind: Kind
    public let detail: String

    public init(_ reference: String, _ kind: Kind, _ detail: String) {
        self.reference = reference
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(reference): \(kind.rawValue): \(detail)" }
}

import SwiftProtobuf

/// A gRPC status code, as carried in a ttrpc response's `google.rpc.Status.code`.
/// containerd maps them onto its errdefs (5 → not found, 6 → already exists, 9 → failed precondition,
/// 12 → not implemented, ...), so a shim should pick them with care.
public struct TTRPCCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let ok = TTRPCCode(rawValue: 0)
    public static let cancelled = TTRPCCode(rawValue: 1)
    public static let unknown = TTRPCCode(rawValue: 2)
    public static let invalidArgument = TTRPCCode(rawValue: 3)
    public static let deadlineExceeded = TTRPCCode(rawValue: 4)
    public static let notFound = TTRPCCode(rawValue: 5)
    public static let alreadyExists = TTRPCCode(rawValue: 6)
    public static let permissionDenied = TTRPCCode(rawValue: 7)
    public static let resourceExhausted = TTRPCCode(rawValue: 8)
    public static let failedPrecondition = TTRPCCode(rawValue: 9)
    public static let aborted = TTRPCCode(rawValue: 10)
    public static let outOfRange = TTRPCCode(rawValue: 11)
    public static let unimplemented = TTRPCCode(rawValue: 12)
    public static let `internal` = TTRPCCode(rawValue: 13)
    public static let unavailable = TTRPCCode(rawValue: 14)
    public static let dataLoss = TTRPCCode(rawValue: 15)
    public static let unauthenticated = TTRPCCode(rawValue: 16)

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    public var description: String {
        rawValue >= 0 && Int(rawValue) < Self.names.count ? Self.names[Int(rawValue)] : "CODE(\(rawValue))"
    }
}

/// An error with a status code: what a handler throws to choose the code containerd sees, and what
/// a client call throws when the server answered with a non-OK status.
public struct TTRPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: TTRPCCode
    public var message: String
    /// `google.rpc.Status.details`, passed through untouched.
    public var details: [Google_Protobuf_Any]

    public init(_ code: TTRPCCode, _ message: String, details: [Google_Protobuf_Any] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public init(code: TTRPCCode, message: String) {
        self.init(code, message)
    }

    public var description: String { "ttrpc: \(code): \(message)" }

    public static func unknown(_ message: String) -> TTRPCError { TTRPCError(.unknown, message) }
    public static func invalidArgument(_ message: String) -> TTRPCError { TTRPCError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> TTRPCError { TTRPCError(.notFound, message) }
    public static func alreadyExists(_ message: String) -> TTRPCError { TTRPCError(.alreadyExists, message) }
    public static func failedPrecondition(_ message: String) -> TTRPCError { TTRPCError(.failedPrecondition, message) }
    public static func unimplemented(_ message: String) -> TTRPCError { TTRPCError(.unimplemented, message) }
    public static func `internal`(_ message: String) -> TTRPCError { TTRPCError(.internal, message) }
    public static func unavailable(_ message: String) -> TTRPCError { TTRPCError(.unavailable, message) }

    static func messageTooLarge(_ length: Int) -> TTRPCError {
        TTRPCError(.resourceExhausted, "message length \(length) exceed maximum message size of \(TTRPCFrameHeader.maxPayloadLength)")
    }

    /// The status sent for `error` thrown by a handler.
    public init(from error: any Error) {
        switch error {
        case let error as TTRPCError: self = error
        case let error as any TTRPCStatusConvertible: self = error.ttrpcError
        case is CancellationError: self.init(.cancelled, "context canceled")
        default: self.init(.unknown, String(describing: error))
        }
    }

    init(status: Google_Rpc_Status) {
        self.init(TTRPCCode(rawValue: status.code), status.message, details: status.details)
    }

    var status: Google_Rpc_Status {
        var status = Google_Rpc_Status()
        status.code = code.rawValue
        status.message = message
        status.details = details
        return status
    }
}

/// Errors of other modules can choose their status code by conforming to this.
public protocol TTRPCStatusConvertible: Error {
    var ttrpcError: TTRPCError { get }
}

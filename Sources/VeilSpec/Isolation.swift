/// How much of the host kernel a container may reach (README, "Isolation levels").
public enum IsolationLevel: String, Sendable, Codable, CaseIterable {
    /// runc semantics: exactly what config.json asks for.
    case native
    /// native plus a user namespace, a deny-by-default seccomp policy and the warden.
    case sandbox

    /// The annotation that picks the level for one container (`dev.veil.isolation=native`).
    public static let annotation = "dev.veil.isolation"

    /// The level every entry point uses when nothing else is said.
    public static let `default` = IsolationLevel.sandbox

    /// The container's level: its annotation wins over the runtime-wide `fallback` (`--isolation`, the shim's ConfigPath).
    public static func resolve(annotations: [String: String]?, fallback: IsolationLevel?) throws(IsolationError) -> IsolationLevel {
        if let value = annotations?[annotation] {
            guard let level = IsolationLevel(rawValue: value) else { throw IsolationError(value: value, source: "annotations[\"\(annotation)\"]") }
            return level
        }
        return fallback ?? .default
    }

    public static func parse(_ value: String, source: String) throws(IsolationError) -> IsolationLevel {
        guard let level = IsolationLevel(rawValue: value) else { throw IsolationError(value: value, source: source) }
        return level
    }
}

public struct IsolationError: Error, CustomStringConvertible, Equatable {
    public let value: String
    public let source: String
    public var description: String {
        "\(source): unknown isolation level \"\(value)\" (expected one of: \(IsolationLevel.allCases.map(\.rawValue).joined(separator: ", ")))"
    }
}

/// How much of the host kernel a container may reach (README, "Isolation levels"). Ordered:
/// native < sandbox.
public enum IsolationLevel: String, Sendable, Codable, CaseIterable, Comparable {
    /// runc semantics: exactly what config.json asks for.
    case native
    /// native plus a user namespace, a deny-by-default seccomp policy and the warden.
    case sandbox

    /// The annotation with which a container may ask for another level (`dev.veil.isolation=sandbox`).
    public static let annotation = "dev.veil.isolation"

    /// The level every entry point uses when nothing else is said.
    public static let `default` = IsolationLevel.sandbox

    /// The operator's setting that lets an annotation lower the level: veil's global flag, and the
    /// shim's ConfigPath TOML key (which the shim turns into that flag).
    public static let allowLoweringFlag = "--allow-lower-isolation"
    public static let allowLoweringKey = "allow_lower_isolation"

    var rank: Int {
        switch self {
        case .native: return 0
        case .sandbox: return 1
        }
    }

    public static func < (a: IsolationLevel, b: IsolationLevel) -> Bool { a.rank < b.rank }

    /// The container's level. The operator's level (`floor`: `veil --isolation`, the shim's
    /// ConfigPath TOML; sandbox when unset) is a floor: the annotation, which tenants control
    /// (CRI copies pod annotations into config.json), may raise it and never lower it, unless the
    /// same operator said lowering is allowed (`allowLowering`).
    public static func resolve(annotations: [String: String]?, floor: IsolationLevel?, allowLowering: Bool) throws(IsolationError) -> IsolationLevel {
        let operatorLevel = floor ?? .default
        guard let value = annotations?[annotation] else { return operatorLevel }
        let source = "annotations[\"\(annotation)\"]"
        guard let requested = IsolationLevel(rawValue: value) else { throw .unknownLevel(value: value, source: source) }
        if requested < operatorLevel && !allowLowering {
            throw .loweringRefused(requested: requested, floor: operatorLevel, source: source)
        }
        return requested
    }

    public static func parse(_ value: String, source: String) throws(IsolationError) -> IsolationLevel {
        guard let level = IsolationLevel(rawValue: value) else { throw .unknownLevel(value: value, source: source) }
        return level
    }
}

public enum IsolationError: Error, CustomStringConvertible, Equatable {
    /// Not a level veil knows.
    case unknownLevel(value: String, source: String)
    /// The annotation asked for less isolation than the operator set, who did not allow lowering.
    case loweringRefused(requested: IsolationLevel, floor: IsolationLevel, source: String)

    /// Where the value came from (a config.json field or a flag).
    public var source: String {
        switch self {
        case .unknownLevel(_, let source), .loweringRefused(_, _, let source): return source
        }
    }

    public var description: String {
        switch self {
        case .unknownLevel(let value, let source):
            return "\(source): unknown isolation level \"\(value)\" (expected one of: \(IsolationLevel.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .loweringRefused(let requested, let floor, let source):
            return "\(source) = \"\(requested.rawValue)\" asks for less isolation than the operator's level \"\(floor.rawValue)\", "
                + "and an annotation may only raise it: the operator runs \(requested.rawValue) containers through "
                + "the veil-\(requested.rawValue) runtime handler (veil --isolation \(requested.rawValue)), or lets annotations lower "
                + "the level with \(IsolationLevel.allowLoweringKey) = true in the shim's ConfigPath TOML (veil \(IsolationLevel.allowLoweringFlag))"
        }
    }
}

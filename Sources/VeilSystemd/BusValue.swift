/// A D-Bus value of a unit property, as systemd's StartTransientUnit and SetUnitProperties take
/// them (`a(sv)`): each case knows its signature; SystemdBus appends it with sd-bus.
public enum BusValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case string(String)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case byte(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case objectPath(String)
    /// `ay`: AllowedCPUs, AllowedMemoryNodes.
    case bytes([UInt8])
    /// `au`: PIDs.
    case uint32s([UInt32])
    /// `as`: After, Wants.
    case strings([String])
    /// `a(ss)`: DeviceAllow.
    case stringPairs([(String, String)])
    /// `a(st)`: IODeviceWeight.
    case stringUInt64Pairs([(String, UInt64)])

    public var signature: String {
        switch self {
        case .bool: return "b"
        case .string: return "s"
        case .int32: return "i"
        case .uint32: return "u"
        case .int64: return "x"
        case .uint64: return "t"
        case .double: return "d"
        case .byte: return "y"
        case .int16: return "n"
        case .uint16: return "q"
        case .objectPath: return "o"
        case .bytes: return "ay"
        case .uint32s: return "au"
        case .strings: return "as"
        case .stringPairs: return "a(ss)"
        case .stringUInt64Pairs: return "a(st)"
        }
    }

    /// systemd's `show` style, for logs and test failures.
    public var description: String {
        switch self {
        case .bool(let v): return v ? "yes" : "no"
        case .string(let v), .objectPath(let v): return v
        case .int32(let v): return String(v)
        case .uint32(let v): return String(v)
        case .int64(let v): return String(v)
        case .uint64(let v): return v == .max ? "infinity" : String(v)
        case .double(let v): return String(v)
        case .byte(let v): return String(v)
        case .int16(let v): return String(v)
        case .uint16(let v): return String(v)
        case .bytes(let v): return "[" + v.map { String($0) }.joined(separator: ",") + "]"
        case .uint32s(let v): return v.map(String.init).joined(separator: " ")
        case .strings(let v): return v.joined(separator: " ")
        case .stringPairs(let v): return v.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        case .stringUInt64Pairs(let v): return v.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        }
    }

    public static func == (a: BusValue, b: BusValue) -> Bool {
        switch (a, b) {
        case (.stringPairs(let x), .stringPairs(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.stringUInt64Pairs(let x), .stringUInt64Pairs(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)), (.objectPath(let x), .objectPath(let y)): return x == y
        case (.int32(let x), .int32(let y)): return x == y
        case (.uint32(let x), .uint32(let y)): return x == y
        case (.int64(let x), .int64(let y)): return x == y
        case (.uint64(let x), .uint64(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.byte(let x), .byte(let y)): return x == y
        case (.int16(let x), .int16(let y)): return x == y
        case (.uint16(let x), .uint16(let y)): return x == y
        case (.bytes(let x), .bytes(let y)): return x == y
        case (.uint32s(let x), .uint32s(let y)): return x == y
        case (.strings(let x), .strings(let y)): return x == y
        default: return false
        }
    }
}

/// One unit property: a name and its value.
public struct UnitProperty: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var value: BusValue

    public init(_ name: String, _ value: BusValue) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=\(value)" }
}

/// `org.systemd.property.<Name>` annotations: extra unit properties for the container's scope, as
/// runc takes them. The value is GVariant text (the subset runtimes and CRI-O use: booleans,
/// integers with an optional type keyword or `@sig`, doubles, quoted strings, arrays of strings).
public enum SystemdAnnotations {
    public static let prefix = "org.systemd.property."

    /// What CRI-O and podman send for every container (timeouts, garbage collection, ordering, the
    /// description): all a tenant may set at the sandbox level unless the operator allows more.
    /// Resource, slice, device and delegation properties would lift the limits the node set.
    public static let sandboxAllowed: Set<String> = [
        "TimeoutStopUSec", "CollectMode", "DefaultDependencies", "After", "Before", "Wants", "Description",
    ]

    /// The annotations' properties, in key order. `restricted` (the sandbox level without the
    /// operator's allowance) refuses any property outside `sandboxAllowed`.
    public static func properties(_ annotations: [String: String], restricted: Bool) throws(SystemdError) -> [UnitProperty] {
        var result: [UnitProperty] = []
        for key in annotations.keys.sorted() where key.hasPrefix(prefix) {
            var name = String(key.dropFirst(prefix.count))
            guard name.count >= 3, name.unicodeScalars.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") }) else {
                throw .invalidAnnotation(key: key, reason: "a unit property name is three or more ASCII letters")
            }
            var value: BusValue
            do { value = try GVariantText.parse(annotations[key] ?? "") } catch {
                throw .invalidAnnotation(key: key, reason: "\(error)")
            }
            // runc's convenience: "…Sec" in seconds becomes systemd's "…USec" in microseconds.
            if name.hasSuffix("Sec"), let before = name.dropLast(3).last, before.isLowercase {
                name = String(name.dropLast(3)) + "USec"
                guard let seconds = value.numeric else {
                    throw .invalidAnnotation(key: key, reason: "a …Sec property takes a number of seconds")
                }
                guard seconds >= 0, seconds < Double(UInt64.max / 1_000_000) else {
                    throw .invalidAnnotation(key: key, reason: "\(seconds) seconds is out of range")
                }
                value = .uint64(UInt64(seconds * 1_000_000))
            }
            if restricted && !sandboxAllowed.contains(name) { throw .propertyNotAllowed(key: key) }
            result.append(UnitProperty(name, value))
        }
        return result
    }
}

extension BusValue {
    var numeric: Double? {
        switch self {
        case .int32(let v): return Double(v)
        case .uint32(let v): return Double(v)
        case .int64(let v): return Double(v)
        case .uint64(let v): return Double(v)
        case .double(let v): return v
        case .byte(let v): return Double(v)
        case .int16(let v): return Double(v)
        case .uint16(let v): return Double(v)
        default: return nil
        }
    }
}

/// GVariant's text format, the part unit properties need.
public enum GVariantText {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> BusValue {
        var s = text.trimmingSpaces
        var type: String?
        // "uint64 5" or "@t 5": the type first.
        let keywords: [String: String] = ["boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
                                          "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o"]
        if s.hasPrefix("@") {
            let parts = s.dropFirst().split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { throw ParseError(description: "\(text): @TYPE needs a value after it") }
            type = String(parts[0])
            s = String(parts[1]).trimmingSpaces
        } else if let space = s.firstIndex(of: " "), let sig = keywords[String(s[..<space])] {
            type = sig
            s = String(s[s.index(after: space)...]).trimmingSpaces
        }
        if s.hasPrefix("[") {
            guard s.hasSuffix("]") else { throw ParseError(description: "\(text): an array must end with ]") }
            guard type == nil || type == "as" else { throw ParseError(description: "\(text): only arrays of strings are supported") }
            let inner = String(s.dropFirst().dropLast()).trimmingSpaces
            if inner.isEmpty { return .strings([]) }
            var items: [String] = []
            for element in try splitTopLevel(inner, text) {
                guard let item = quoted(element.trimmingSpaces) else {
                    throw ParseError(description: "\(text): only arrays of quoted strings are supported")
                }
                items.append(item)
            }
            return .strings(items)
        }
        if let string = quoted(s) {
            switch type {
            case nil, "s": return .string(string)
            case "o": return .objectPath(string)
            default: throw ParseError(description: "\(text): a quoted string is not a \(type ?? "")")
            }
        }
        if s == "true" || s == "false" {
            guard type == nil || type == "b" else { throw ParseError(description: "\(text): a boolean is not a \(type ?? "")") }
            return .bool(s == "true")
        }
        func integer<T: FixedWidthInteger>(_: T.Type) throws(ParseError) -> T {
            guard let v = T(s) else { throw ParseError(description: "\(text): \(s) is not a valid \(T.self)") }
            return v
        }
        switch type {
        case "y": return .byte(try integer(UInt8.self))
        case "n": return .int16(try integer(Int16.self))
        case "q": return .uint16(try integer(UInt16.self))
        case "i": return .int32(try integer(Int32.self))
        case "u": return .uint32(try integer(UInt32.self))
        case "x": return .int64(try integer(Int64.self))
        case "t": return .uint64(try integer(UInt64.self))
        case "d":
            guard let d = Double(s) else { throw ParseError(description: "\(text): \(s) is not a number") }
            return .double(d)
        case nil:
            if let i = Int32(s) { return .int32(i) }
            if s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(s) { return .double(d) }
            throw ParseError(description: "\(text): not a GVariant value (true/false, a number, 'string', ['a','b'], uint64 N, @t N)")
        default:
            throw ParseError(description: "\(text): type \(type ?? "") is not supported")
        }
    }

    /// 'x' or "x" without the quotes (GVariant's escapes: \' \" \\).
    static func quoted(_ s: String) -> String? {
        guard s.count >= 2, let q = s.first, q == "'" || q == "\"", s.last == q else { return nil }
        var result = ""
        var escaped = false
        for c in s.dropFirst().dropLast() {
            if escaped { result.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == q { return nil } else { result.append(c) }
        }
        return escaped ? nil : result
    }

    /// Splits "'a', 'b,c'" on the commas outside quotes.
    static func splitTopLevel(_ s: String, _ text: String) throws(ParseError) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        var escaped = false
        for c in s {
            if escaped { current.append(c); escaped = false; continue }
            if c == "\\" { current.append(c); escaped = true; continue }
            if let q = quote {
                if c == q { quote = nil }
                current.append(c)
            } else if c == "'" || c == "\"" {
                quote = c
                current.append(c)
            } else if c == "," {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        guard quote == nil else { throw ParseError(description: "\(text): an unterminated string") }
        parts.append(current)
        return parts
    }
}

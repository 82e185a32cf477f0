// JSONEncoder in FoundationEssentials emits object keys in hash order, so `veil spec`
// output would differ run to run and look nothing like runc's. This small encoder keeps
// the declaration order of struct fields (Go's order, since Spec mirrors config.go),
// sorts map keys (as Go does), and prints like `json.MarshalIndent(v, "", "\t")`.

/// Encoded JSON tree. Objects and arrays are reference types so containers handed out
/// by the encoder can keep appending after the call that created them returns.
enum OrderedJSON {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case object(ObjectNode)
    case array(ArrayNode)
}

final class ObjectNode {
    var keys: [String] = []
    /// A `[String: V]`'s object: Go sorts map keys, and Dictionary iterates in hash order.
    var sortsKeys = false
    var values: [String: OrderedJSON] = [:]

    func set(_ key: String, _ value: OrderedJSON) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }
}

final class ArrayNode {
    var items: [OrderedJSON] = []
}

public enum OrderedJSONEncoder {
    /// How the bytes are laid out: Go's `json.MarshalIndent` with a tab (`runc spec`) or two
    /// spaces (`runc state`), or `json.Marshal`'s single line (`runc list --format json`, `events`).
    public enum Layout: Sendable {
        case tabs, twoSpaces, compact

        var indent: [UInt8]? {
            switch self {
            case .tabs: [0x09]
            case .twoSpaces: [0x20, 0x20]
            case .compact: nil
            }
        }
    }

    /// The bytes of `value` with a trailing newline, keys in declaration order.
    public static func encode<T: Encodable>(_ value: T, layout: Layout = .tabs) throws -> [UInt8] {
        let tree = try encodeValue(value, codingPath: [])
        var out: [UInt8] = []
        write(tree, depth: 0, indent: layout.indent, into: &out)
        out.append(0x0A)
        return out
    }

    fileprivate static func encodeValue<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws -> OrderedJSON {
        let encoder = TreeEncoder(codingPath: codingPath)
        try value.encode(to: encoder)
        // A type that encodes nothing becomes `{}`, as with JSONEncoder.
        let result = encoder.storage ?? .object(ObjectNode())
        if case .object(let node) = result, node.sortsKeys { node.keys.sort() }
        return result
    }

    // MARK: Writer

    private static func write(_ value: OrderedJSON, depth: Int, indent: [UInt8]?, into out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s): writeString(s, into: &out)
        case .object(let node):
            if node.keys.isEmpty {
                out += Array("{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            for (i, key) in node.keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1, indent, &out)
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(0x20) }
                write(node.values[key] ?? .null, depth: depth + 1, indent: indent, into: &out)
            }
            newline(depth, indent, &out)
            out.append(UInt8(ascii: "}"))
        case .array(let node):
            if node.items.isEmpty {
                out += Array("[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (i, item) in node.items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1, indent, &out)
                write(item, depth: depth + 1, indent: indent, into: &out)
            }
            newline(depth, indent, &out)
            out.append(UInt8(ascii: "]"))
        }
    }

    private static func newline(_ depth: Int, _ indent: [UInt8]?, _ out: inout [UInt8]) {
        guard let indent else { return }
        out.append(0x0A)
        for _ in 0..<depth { out += indent }
    }

    /// Escapes like Go's encoding/json, including its HTML-safe \u003c \u003e \u0026.
    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case "\\": out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case "\n": out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case "\r": out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case "\t": out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += Array(unicodeEscape(scalar.value).utf8)
            default:
                if scalar.value < 0x20 {
                    out += Array(unicodeEscape(scalar.value).utf8)
                } else {
                    out += Array(String(scalar).utf8)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func unicodeEscape(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

// MARK: - Encoder plumbing

private final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var storage: OrderedJSON?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let node = objectNode()
        // Dictionary<String, V> encodes through the standard library's own key type. Asked by
        // name: a dynamic cast (`value is SomeMarkerProtocol`) would scan all of the binary's
        // conformance records once per encoded type (~50 µs each, at every `veil state`).
        if _typeName(Key.self, qualified: true) == "Swift._DictionaryCodingKey" { node.sortsKeys = true }
        return KeyedEncodingContainer(KeyedTreeContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedTreeContainer(node: arrayNode(), codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleTreeContainer(encoder: self)
    }

    /// Reuses the object if a container was already requested (Encodable allows that).
    func objectNode() -> ObjectNode {
        if case .object(let node)? = storage { return node }
        let node = ObjectNode()
        storage = .object(node)
        return node
    }

    func arrayNode() -> ArrayNode {
        if case .array(let node)? = storage { return node }
        let node = ArrayNode()
        storage = .array(node)
        return node
    }
}

private func number<T: FloatingPoint>(_ value: T, _ codingPath: [any CodingKey]) throws -> OrderedJSON {
    guard value.isFinite else {
        throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "non-finite number"))
    }
    return .number("\(value)")
}

private struct SingleTreeContainer: SingleValueEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.storage = .null }
    mutating func encode(_ value: Bool) throws { encoder.storage = .bool(value) }
    mutating func encode(_ value: String) throws { encoder.storage = .string(value) }
    mutating func encode(_ value: Double) throws { encoder.storage = try number(value, codingPath) }
    mutating func encode(_ value: Float) throws { encoder.storage = try number(value, codingPath) }
    mutating func encode(_ value: Int) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: Int8) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: Int16) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: Int32) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: Int64) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: UInt) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: UInt8) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: UInt16) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: UInt32) throws { encoder.storage = .number(String(value)) }
    mutating func encode(_ value: UInt64) throws { encoder.storage = .number(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.storage = try OrderedJSONEncoder.encodeValue(value, codingPath: codingPath)
    }
}

private struct KeyedTreeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: ObjectNode
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.set(key.stringValue, .null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        node.set(key.stringValue, try OrderedJSONEncoder.encodeValue(value, codingPath: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let child = ObjectNode()
        node.set(key.stringValue, .object(child))
        return KeyedEncodingContainer(KeyedTreeContainer<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = ArrayNode()
        node.set(key.stringValue, .array(child))
        return UnkeyedTreeContainer(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        // Only class hierarchies use this; Spec has none. Encode into a "super" key like JSONEncoder.
        SuperEncoder(codingPath: codingPath) { [node] value in node.set("super", value) }
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SuperEncoder(codingPath: codingPath + [key]) { [node] value in node.set(key.stringValue, value) }
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
    let index: Int
    init(_ index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.index = intValue }
}

private struct UnkeyedTreeContainer: UnkeyedEncodingContainer {
    let node: ArrayNode
    let codingPath: [any CodingKey]
    var count: Int { node.items.count }

    mutating func encodeNil() throws { node.items.append(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        node.items.append(try OrderedJSONEncoder.encodeValue(value, codingPath: codingPath + [IndexKey(count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = ObjectNode()
        let path = codingPath + [IndexKey(count)]
        node.items.append(.object(child))
        return KeyedEncodingContainer(KeyedTreeContainer<NestedKey>(node: child, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = ArrayNode()
        let path = codingPath + [IndexKey(count)]
        node.items.append(.array(child))
        return UnkeyedTreeContainer(node: child, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let index = node.items.count
        node.items.append(.null)
        return SuperEncoder(codingPath: codingPath + [IndexKey(index)]) { [node] value in node.items[index] = value }
    }
}

/// An encoder whose result is stored back by `commit` once each container write happens.
/// Writes go through a TreeEncoder; the commit runs on every container request so the
/// parent always sees the (reference-typed) node.
private final class SuperEncoder: Encoder {
    let inner: TreeEncoder
    let commit: (OrderedJSON) -> Void
    var codingPath: [any CodingKey] { inner.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(codingPath: [any CodingKey], commit: @escaping (OrderedJSON) -> Void) {
        inner = TreeEncoder(codingPath: codingPath)
        self.commit = commit
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let c = inner.container(keyedBy: type)
        commit(.object(inner.objectNode()))
        return c
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let c = inner.unkeyedContainer()
        commit(.array(inner.arrayNode()))
        return c
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        CommittingSingleContainer(inner: inner, commit: commit)
    }
}

private struct CommittingSingleContainer: SingleValueEncodingContainer {
    let inner: TreeEncoder
    let commit: (OrderedJSON) -> Void
    var codingPath: [any CodingKey] { inner.codingPath }

    private func store(_ body: (inout SingleTreeContainer) throws -> Void) throws {
        var c = SingleTreeContainer(encoder: inner)
        try body(&c)
        commit(inner.storage ?? .null)
    }

    mutating func encodeNil() throws { try store { try $0.encodeNil() } }
    mutating func encode(_ value: Bool) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: String) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Double) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Float) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Int) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Int8) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Int16) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Int32) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: Int64) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: UInt) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: UInt8) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: UInt16) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: UInt32) throws { try store { try $0.encode(value) } }
    mutating func encode(_ value: UInt64) throws { try store { try $0.encode(value) } }
    mutating func encode<T: Encodable>(_ value: T) throws { try store { try $0.encode(value) } }
}

import VeilSpec
/// A JSON value that keeps the order of object keys and the source text of numbers and strings,
/// so rewriting daemon.json changes only what veil adds.
public indirect enum JSONValue: Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    /// A string, kept as its source text including the quotes (escapes unchanged).
    case string(raw: String)
    /// A number, kept as its source text.
    case number(raw: String)
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let a), .array(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    public static func string(_ value: String) -> JSONValue { .string(raw: JSONValue.quote(value)) }

    /// The decoded string, for a `.string`.
    public var stringValue: String? {
        guard case .string(let raw) = self else { return nil }
        return JSONValue.unquote(raw)
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    /// Sets (replacing in place, or appending) a member of an object.
    public mutating func set(_ key: String, _ value: JSONValue) {
        guard case .object(var members) = self else { return }
        if let index = members.lastIndex(where: { $0.0 == key }) { members[index].1 = value } else { members.append((key, value)) }
        self = .object(members)
    }

    public mutating func remove(_ key: String) {
        guard case .object(let members) = self else { return }
        self = .object(members.filter { $0.0 != key })
    }

    public var isEmptyObject: Bool {
        if case .object(let m) = self { return m.isEmpty }
        return false
    }

    // MARK: Printing

    /// Pretty-printed with `indent` per level and a final newline.
    public func render(indent: String = "  ") -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0)
        return out + "\n"
    }

    private func write(into out: inout String, indent: String, level: Int) {
        let pad = String(repeating: indent, count: level + 1), closing = String(repeating: indent, count: level)
        switch self {
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += pad + JSONValue.quote(key) + ": "
                value.write(into: &out, indent: indent, level: level + 1)
                out += i == members.count - 1 ? "\n" : ",\n"
            }
            out += closing + "}"
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, value) in items.enumerated() {
                out += pad
                value.write(into: &out, indent: indent, level: level + 1)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += closing + "]"
        case .string(let raw): out += raw
        case .number(let raw): out += raw
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    static func quote(_ s: String) -> String { quoted(s) }

    static func unquote(_ raw: String) -> String? {
        var parser = JSONParser(Array(raw.utf8), file: "")
        return try? parser.parseStringContents()
    }

    // MARK: Parsing

    public static func parse(_ bytes: [UInt8], file: String) throws(InstallError) -> JSONValue {
        var parser = JSONParser(bytes, file: file)
        return try parser.parseDocument()
    }

    /// The indentation of the first indented line of `text` (two spaces when there is none).
    public static func detectIndent(_ text: String) -> String {
        for line in text.split(separator: "\n") {
            let lead = line.prefix { $0 == " " || $0 == "\t" }
            if !lead.isEmpty && lead.count < line.count { return String(lead) }
        }
        return "  "
    }
}

struct JSONParser {
    let bytes: [UInt8]
    let file: String
    var i = 0

    init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    func fail(_ message: String) -> InstallError { .jsonSyntax(file: file, message: message, offset: i) }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
    }

    mutating func parseDocument() throws(InstallError) -> JSONValue {
        skipSpace()
        let value = try parseValue(depth: 0)
        skipSpace()
        guard i == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    mutating func parseValue(depth: Int) throws(InstallError) -> JSONValue {
        guard depth < 200 else { throw fail("nested too deeply") }
        guard i < bytes.count else { throw fail("unexpected end of file") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(String, JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let start = i
                _ = try parseStringContents()
                guard let key = JSONValue.unquote(String(decoding: bytes[start..<i], as: UTF8.self)) else { throw fail("bad key") }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
                i += 1
                skipSpace()
                members.append((key, try parseValue(depth: depth + 1)))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of file in an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of file in an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""):
            let start = i
            _ = try parseStringContents()
            return .string(raw: String(decoding: bytes[start..<i], as: UTF8.self))
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default:
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            let digitsStart = i
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) || bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e")
                || bytes[i] == UInt8(ascii: "E") || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i > digitsStart, (0x30...0x39).contains(bytes[digitsStart]) else { i = start; throw fail("unexpected character") }
            return .number(raw: String(decoding: bytes[start..<i], as: UTF8.self))
        }
    }

    mutating func literal(_ word: String, _ value: JSONValue) throws(InstallError) -> JSONValue {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("unexpected character") }
        i += w.count
        return value
    }

    /// Parses a quoted string starting at `i` and returns its decoded contents.
    mutating func parseStringContents() throws(InstallError) -> String {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        i += 1
        var scalars = String.UnicodeScalarView()
        var pendingHigh: UInt32?
        var run: [UInt8] = []
        func flush() {
            scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
            run.removeAll()
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; flush(); return String(scalars) }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") { run.append(c); i += 1; continue }
            flush()
            i += 1
            guard i < bytes.count else { break }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{8}")
            case UInt8(ascii: "f"): scalars.append("\u{c}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                    throw fail("bad \\u escape")
                }
                i += 4
                if (0xD800...0xDBFF).contains(code) { pendingHigh = code; continue }
                if (0xDC00...0xDFFF).contains(code), let high = pendingHigh {
                    if let s = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)) { scalars.append(s) }
                } else if let s = Unicode.Scalar(code) {
                    scalars.append(s)
                }
                pendingHigh = nil
            default: throw fail("bad escape")
            }
        }
        throw fail("unterminated string")
    }
}

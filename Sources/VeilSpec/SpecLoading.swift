import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a config could not be loaded or is unusable. Descriptions follow runc's style:
/// `<file>: <json.path>: <problem>`.
public enum SpecError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call on the config file failed (`operation` is e.g. "open", "read").
    case cannotRead(operation: String, path: String, errno: Int32)
    /// The bytes are not JSON. `line`/`column` are 1-based; 0 when unknown.
    case malformedJSON(file: String, line: Int, column: Int, reason: String)
    /// A value has the wrong JSON type, e.g. expected "a number", found "a string".
    case typeMismatch(file: String, path: String, expected: String, found: String)
    /// A required key is absent.
    case missingField(file: String, path: String)
    /// A value has the right JSON type but is not acceptable (unknown enum value,
    /// number out of range, ...).
    case invalidValue(file: String, path: String, reason: String)
    /// `Spec.validate()` rejected the decoded config.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(operation, path, errno):
            return "\(operation) \(path): \(errnoText(errno))"
        case let .malformedJSON(file, line, column, reason):
            if line > 0 {
                return "\(file): malformed JSON at line \(line) column \(column): \(reason)"
            }
            return "\(file): malformed JSON: \(reason)"
        case let .typeMismatch(file, path, expected, found):
            return prefixed(file, path, "expected \(expected), found \(found)")
        case let .missingField(file, path):
            return prefixed(file, path, "required field missing")
        case let .invalidValue(file, path, reason):
            return prefixed(file, path, reason)
        case let .invalid(path, reason):
            return path.isEmpty ? reason : "\(path): \(reason)"
        }
    }
}

private func prefixed(_ file: String, _ path: String, _ message: String) -> String {
    path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
}

/// Go-style lower-case strerror text ("no such file or directory"), as runc prints it.
private func errnoText(_ code: Int32) -> String {
    guard let p = strerror(code) else { return "errno \(code)" }
    let s = String(cString: p)
    guard let first = s.first else { return "errno \(code)" }
    return first.lowercased() + s.dropFirst()
}

extension Spec {
    /// Reads and decodes `<bundle>/config.json`. Errors name the file as `config.json`
    /// (JSON problems) or by full path (I/O problems), like runc.
    public static func load(bundle: String) throws(SpecError) -> Spec {
        let path = bundle.hasSuffix("/") ? bundle + "config.json" : bundle + "/config.json"
        let bytes = try readFile(path)
        return try decode(bytes, file: "config.json")
    }

    /// Decodes a config, mapping decoder failures to `SpecError` with a jq-style path.
    public static func decode(_ bytes: [UInt8], file: String) throws(SpecError) -> Spec {
        try decode(Data(bytes), file: file)
    }

    /// Decodes a config, mapping decoder failures to `SpecError` with a jq-style path.
    public static func decode(_ data: Data, file: String) throws(SpecError) -> Spec {
        do {
            return try JSONDecoder().decode(Spec.self, from: data)
        } catch let error as DecodingError {
            throw mapDecodingError(error, data: data, file: file)
        } catch {
            // JSONDecoder only throws DecodingError; keep whatever else it says.
            throw .malformedJSON(file: file, line: 0, column: 0, reason: String(describing: error))
        }
    }

    /// Pretty-printed JSON laid out like Go's `json.MarshalIndent(v, "", "\t")` (fields in
    /// config.go order, map keys sorted, trailing newline) so `veil spec` matches `runc spec`.
    public func encodedPretty() throws(SpecError) -> [UInt8] {
        do {
            return try OrderedJSONEncoder.encode(self)
        } catch {
            // Only non-finite floats can fail, and Spec has none; report rather than trap.
            throw .invalid(path: "", reason: "cannot encode spec: \(error)")
        }
    }
}

/// Reads a whole file with plain syscalls so errors carry the errno runc would show.
private func readFile(_ path: String) throws(SpecError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw .cannotRead(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .cannotRead(operation: "read", path: path, errno: errno)
        }
        if n == 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return out
}

// MARK: - Decoding error mapping

/// jq-style path: `linux.namespaces[2].type`, `linux.sysctl["net.ipv4.ip_forward"]`.
func jsonPath(_ codingPath: [any CodingKey]) -> String {
    jsonPath(codingPath.map { key in key.intValue.map(JSONPathComponent.index) ?? .key(key.stringValue) })
}

enum JSONPathComponent: Equatable {
    case key(String)
    case index(Int)
}

func jsonPath(_ components: [JSONPathComponent]) -> String {
    var out = ""
    for component in components {
        switch component {
        case .index(let index):
            out += "[\(index)]"
        case .key(let key) where isIdentifier(key):
            out += out.isEmpty ? key : "." + key
        case .key(let key):
            out += "[\(quoted(key))]"
        }
    }
    return out
}

private func isIdentifier(_ s: String) -> Bool {
    guard let first = s.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else {
        return false
    }
    return s.utf8.allSatisfy { c in
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
    }
}

/// Human name of the JSON type a Swift type decodes from.
private func jsonKind(of type: Any.Type) -> String {
    switch type {
    case is String.Type, is Substring.Type: return "a string"
    case is Bool.Type: return "a boolean"
    case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
        is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type,
        is Double.Type, is Float.Type:
        return "a number"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
        if name.hasPrefix("Dictionary") { return "an object" }
        // Keyed containers of our structs.
        return "an object"
    }
}

/// Pulls "a string" out of the decoder's "... but found a string instead." text.
private func foundKind(_ debugDescription: String) -> String {
    // Plain string scanning: CharacterSet and range(of:) are not in FoundationEssentials.
    let parts = debugDescription.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    guard let at = parts.lastIndex(of: "found") else { return "a different type" }
    var words = Array(parts[(at + 1)...])
    if let end = words.firstIndex(where: { $0.hasPrefix("instead") }) { words = Array(words[..<end]) }
    var text = words.joined(separator: " ")
    while text.hasSuffix(".") { text.removeLast() }
    // The decoder is inconsistent ("a string", "number", "a dictionary"); normalise.
    if text.hasPrefix("a ") { text.removeFirst(2) } else if text.hasPrefix("an ") { text.removeFirst(3) }
    switch text {
    case "dictionary", "object": return "an object"
    case "array": return "an array"
    case "bool", "boolean": return "a boolean"
    case "null value", "null": return "null"
    case "string": return "a string"
    case "number": return "a number"
    case "": return "a different type"
    default: return text
    }
}

private func mapDecodingError(_ error: DecodingError, data: Data, file: String) -> SpecError {
    switch error {
    case let .typeMismatch(type, context):
        return .typeMismatch(
            file: file, path: jsonPath(context.codingPath), expected: jsonKind(of: type),
            found: foundKind(context.debugDescription))
    case let .valueNotFound(type, context):
        // An explicit null where a value is required.
        return .typeMismatch(file: file, path: jsonPath(context.codingPath), expected: jsonKind(of: type), found: "null")
    case let .keyNotFound(key, context):
        return .missingField(file: file, path: jsonPath(context.codingPath + [key]))
    case let .dataCorrupted(context):
        if !context.codingPath.isEmpty {
            return .invalidValue(file: file, path: jsonPath(context.codingPath), reason: context.debugDescription)
        }
        // The decoder reports syntax errors without a position; find it ourselves.
        let bytes = Array(data)
        if let syntax = JSONSyntaxChecker.firstError(in: bytes) {
            return .malformedJSON(file: file, line: syntax.line, column: syntax.column, reason: syntax.reason)
        }
        // Syntactically fine JSON that the decoder still calls invalid: in practice a
        // number that does not fit the field (negative uid, 1.5 for an integer, overflow),
        // for which the decoder drops the path. Find it by trial.
        if let culprit = findUnfitNumber(bytes) {
            let text = String(decoding: bytes[culprit.range], as: UTF8.self)
            return .invalidValue(
                file: file, path: jsonPath(culprit.path),
                reason: "number \(text) does not fit the field's type (negative, fractional or too large)")
        }
        return .invalidValue(
            file: file, path: "",
            reason: "a number does not fit its field (negative, fractional or too large for the field's type)")
    @unknown default:
        return .malformedJSON(file: file, line: 0, column: 0, reason: String(describing: error))
    }
}

/// Finds the number that makes otherwise-valid JSON fail with a path-less error: with
/// every suspect number zeroed the document should decode, so putting back one suspect
/// at a time shows which ones the decoder rejects. Only runs on the error path, and the
/// suspect count is capped to bound the work.
private func findUnfitNumber(_ bytes: [UInt8]) -> JSONSyntaxChecker.SuspectNumber? {
    let suspects = Array(JSONSyntaxChecker.suspectNumbers(in: bytes).prefix(64))
    guard !suspects.isEmpty else { return nil }

    func document(keeping kept: Int?) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var last = 0
        for (n, suspect) in suspects.enumerated() {
            out += bytes[last..<suspect.range.lowerBound]
            out += n == kept ? Array(bytes[suspect.range]) : [UInt8(ascii: "0")]
            last = suspect.range.upperBound
        }
        out += bytes[last...]
        return Data(out)
    }

    func failsWithoutPath(_ data: Data) -> Bool {
        do {
            _ = try JSONDecoder().decode(Spec.self, from: data)
            return false
        } catch DecodingError.dataCorrupted(let context) {
            return context.codingPath.isEmpty
        } catch {
            return false
        }
    }

    // If zeroing every suspect does not help, the problem is elsewhere.
    guard !failsWithoutPath(document(keeping: nil)) else { return nil }
    for n in suspects.indices where failsWithoutPath(document(keeping: n)) {
        return suspects[n]
    }
    return nil
}

// MARK: - JSON syntax checker

/// Minimal RFC 8259 syntax scanner used only after a decode failure, to give the line and
/// column JSONDecoder does not report. Iterative so deep nesting cannot overflow the stack.
enum JSONSyntaxChecker {
    struct Failure: Equatable {
        var line: Int
        var column: Int
        var reason: String
    }

    /// A number literal that may not fit an integer field: negative, fractional,
    /// exponent form, or too many digits.
    struct SuspectNumber: Equatable {
        var range: Range<Int>
        var path: [JSONPathComponent]
    }

    private enum Kind { case object, array }

    private struct Frame {
        var kind: Kind
        var key = ""
        var index = 0
    }

    /// Position of the first syntax error, or nil if `bytes` is one valid JSON value.
    static func firstError(in bytes: [UInt8]) -> Failure? {
        scan(bytes).failure
    }

    /// Numbers worth blaming when valid JSON fails to decode, in document order.
    static func suspectNumbers(in bytes: [UInt8]) -> [SuspectNumber] {
        scan(bytes).suspects
    }

    private static func scan(_ bytes: [UInt8]) -> (failure: Failure?, suspects: [SuspectNumber]) {
        var i = 0
        var stack: [Frame] = []
        var suspects: [SuspectNumber] = []

        func currentPath() -> [JSONPathComponent] {
            stack.map { $0.kind == .object ? .key($0.key) : .index($0.index) }
        }

        func fail(_ reason: String, at offset: Int) -> Failure {
            let (line, column) = lineColumn(bytes, offset)
            return Failure(line: line, column: column, reason: reason)
        }
        func unexpected(at offset: Int) -> Failure {
            guard offset < bytes.count else { return fail("unexpected end of input", at: offset) }
            return fail("unexpected character \(describeByte(bytes[offset]))", at: offset)
        }
        func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        // Scans one string starting at the opening quote.
        func scanString() -> Failure? {
            i += 1
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; return nil }
                if c < 0x20 { return fail("control character in string", at: i) }
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        for k in 1...4 {
                            guard i + k < bytes.count, isHex(bytes[i + k]) else {
                                return fail("invalid \\u escape in string", at: i - 1)
                            }
                        }
                        i += 5
                    default:
                        return fail("invalid escape in string", at: i - 1)
                    }
                    continue
                }
                i += 1
            }
            return fail("unterminated string", at: bytes.count)
        }

        func scanNumber() -> Failure? {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { return fail("invalid number", at: start) }
            if bytes[i] == UInt8(ascii: "0") {
                i += 1
            } else {
                while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard i < bytes.count, isDigit(bytes[i]) else { return fail("invalid number", at: start) }
                while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count, isDigit(bytes[i]) else { return fail("invalid number", at: start) }
                while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            }
            let text = bytes[start..<i]
            if text.contains(where: { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
                || text.count >= 19
            {
                suspects.append(SuspectNumber(range: start..<i, path: currentPath()))
            }
            return nil
        }

        func scanLiteral(_ word: String) -> Failure? {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
                return unexpected(at: i)
            }
            i += w.count
            return nil
        }

        // Parses a value; containers push and return so the loop below handles their bodies.
        func scanValue() -> Failure? {
            skipSpace()
            guard i < bytes.count else { return unexpected(at: i) }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return nil }
                stack.append(Frame(kind: .object))
                return scanKey()
            case UInt8(ascii: "["):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return nil }
                stack.append(Frame(kind: .array))
                return scanValue()
            case UInt8(ascii: "\""): return scanString()
            case UInt8(ascii: "t"): return scanLiteral("true")
            case UInt8(ascii: "f"): return scanLiteral("false")
            case UInt8(ascii: "n"): return scanLiteral("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return scanNumber()
            default: return unexpected(at: i)
            }
        }

        // `"key" :` then the value.
        func scanKey() -> Failure? {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                return i < bytes.count ? fail("expected a string object key", at: i) : unexpected(at: i)
            }
            let keyStart = i + 1
            if let f = scanString() { return f }
            // Raw key text; escapes in keys are rare enough not to decode for a message.
            if !stack.isEmpty {
                stack[stack.count - 1].key = String(decoding: bytes[keyStart..<(i - 1)], as: UTF8.self)
            }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                return i < bytes.count ? fail("expected ':' after object key", at: i) : unexpected(at: i)
            }
            i += 1
            return scanValue()
        }

        if let f = scanValue() { return (f, suspects) }
        while let top = stack.last?.kind {
            skipSpace()
            guard i < bytes.count else { return (unexpected(at: i), suspects) }
            let c = bytes[i]
            switch (top, c) {
            case (.object, UInt8(ascii: ",")):
                i += 1
                if let f = scanKey() { return (f, suspects) }
            case (.array, UInt8(ascii: ",")):
                i += 1
                stack[stack.count - 1].index += 1
                if let f = scanValue() { return (f, suspects) }
            case (.object, UInt8(ascii: "}")), (.array, UInt8(ascii: "]")):
                i += 1
                stack.removeLast()
            default:
                let want = top == .object ? "',' or '}'" : "',' or ']'"
                return (fail("expected \(want), found \(describeByte(c))", at: i), suspects)
            }
        }
        skipSpace()
        if i < bytes.count { return (fail("unexpected \(describeByte(bytes[i])) after top-level value", at: i), suspects) }
        return (nil, suspects)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func isHex(_ c: UInt8) -> Bool {
        isDigit(c) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
    }

    private static func describeByte(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x" + String(c, radix: 16)
    }

    /// 1-based line and column (in characters, counting UTF-8 lead bytes only).
    static func lineColumn(_ bytes: [UInt8], _ offset: Int) -> (Int, Int) {
        var line = 1
        var column = 1
        for b in bytes[0..<min(offset, bytes.count)] {
            if b == 0x0A {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}

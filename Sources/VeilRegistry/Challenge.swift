/// One challenge of a `WWW-Authenticate` header (RFC 7235): a scheme and its parameters,
/// e.g. `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
public struct Challenge: Sendable, Equatable {
    /// Lower-cased: "bearer", "basic", ...
    public var scheme: String
    /// Parameter names lower-cased; values unquoted.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Every challenge in one header value (several may be listed, comma separated).
    public static func parse(_ header: String) -> [Challenge] {
        var scanner = Scanner(Array(header.utf8))
        var challenges: [Challenge] = []
        while true {
            scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: ",") }
            guard let scheme = scanner.token(), !scheme.isEmpty else { break }
            var challenge = Challenge(scheme: scheme.lowercased(), parameters: [:])
            // Parameters follow until a token that is not followed by "=" (the next scheme).
            while true {
                let mark = scanner.position
                scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: ",") }
                guard let name = scanner.token(), !name.isEmpty else { scanner.position = mark; break }
                scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                guard scanner.peek() == UInt8(ascii: "=") else { scanner.position = mark; break }
                scanner.position += 1
                scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                let value = scanner.peek() == UInt8(ascii: "\"") ? scanner.quoted() : (scanner.token68() ?? "")
                challenge.parameters[name.lowercased()] = value
            }
            challenges.append(challenge)
        }
        return challenges
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skip(while predicate: (UInt8) -> Bool) {
            while let byte = peek(), predicate(byte) { position += 1 }
        }

        static func isTokenByte(_ byte: UInt8) -> Bool {
            if (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) { return true }
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }

        mutating func token() -> String? {
            let start = position
            skip(while: Scanner.isTokenByte)
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// A bare value: token characters plus `/` and `=` (token68 and sloppy servers' URLs).
        mutating func token68() -> String? {
            let start = position
            skip { Scanner.isTokenByte($0) || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ":") }
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// A quoted-string with backslash escapes; an unterminated one runs to the end.
        mutating func quoted() -> String {
            position += 1
            var out: [UInt8] = []
            while let byte = peek() {
                position += 1
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\"), let next = peek() {
                    out.append(next)
                    position += 1
                } else {
                    out.append(byte)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

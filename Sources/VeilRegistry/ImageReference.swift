/// A fully qualified image or artifact reference: `host[:port]/path[:tag][@sha256:hex]`.
/// Short names (`busybox`, `library/busybox`) are refused: searching registries for them would
/// let whoever answers first decide which profile a container gets.
public struct ImageReference: Sendable, Equatable, CustomStringConvertible {
    /// `host[:port]` as written (docker.io normalised from index.docker.io).
    public var registry: String
    /// The repository path, e.g. `library/busybox`.
    public var repository: String
    /// nil when the reference is by digest only.
    public var tag: String?
    /// `sha256:<64 hex>` when pinned.
    public var digest: String?

    public init(registry: String, repository: String, tag: String?, digest: String?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// `registry/repository`, what registries.conf prefixes and auth.json keys match against.
    public var name: String { registry + "/" + repository }

    /// The tag or digest to ask the registry for (a digest wins when both are given).
    public var manifestReference: String { digest ?? tag ?? "latest" }

    public var description: String {
        var text = name
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest }
        return text
    }

    public static func parse(_ text: String) throws(RegistryError) -> ImageReference {
        func fail(_ reason: String) -> RegistryError { RegistryError(text, .invalidReference, reason) }
        guard !text.isEmpty else { throw fail("empty reference") }
        guard text.count <= 4096, !text.contains(where: { $0.isWhitespace }) else { throw fail("contains white space or is too long") }
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let value = String(rest[rest.index(after: at)...])
            guard isSHA256Digest(value) else { throw fail("digest \"\(value)\" is not sha256:<64 lowercase hex digits>") }
            digest = value
            rest = rest[..<at]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw fail("short names are not supported: give the registry, e.g. docker.io/library/\(rest) or 127.0.0.1:5000/\(rest)")
        }
        var registry = String(rest[..<slash])
        var path = rest[rest.index(after: slash)...]
        guard registry.contains(".") || registry.contains(":") || registry == "localhost" || registry.hasPrefix("[") else {
            throw fail("short names are not supported: \"\(registry)\" is not a registry host (give e.g. docker.io/\(rest))")
        }
        guard isValidHost(registry) else { throw fail("\"\(registry)\" is not a valid registry host[:port]") }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = "docker.io" }
        var tag: String?
        // A colon after the last slash separates the tag (the host's port is before the first slash).
        if let colon = path.lastIndex(of: ":"), !path[colon...].contains("/") {
            let value = String(path[path.index(after: colon)...])
            guard isValidTag(value) else { throw fail("tag \"\(value)\" is not valid ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})") }
            tag = value
            path = path[..<colon]
        }
        var repository = String(path)
        guard !repository.isEmpty else { throw fail("no repository after the registry") }
        for component in repository.split(separator: "/", omittingEmptySubsequences: false) {
            guard isValidComponent(component) else {
                throw fail("repository component \"\(component)\" is not valid (lower-case letters, digits and . _ - separators)")
            }
        }
        if registry == "docker.io" && !repository.contains("/") { repository = "library/" + repository }
        if tag == nil && digest == nil { tag = "latest" }
        return ImageReference(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    static func isSHA256Digest(_ value: String) -> Bool {
        guard value.hasPrefix("sha256:") else { return false }
        let hex = value.utf8.dropFirst(7)
        return hex.count == 64 && hex.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    private static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128, isWord(first) else { return false }
        return bytes.allSatisfy { isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isWord(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == UInt8(ascii: "_")
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isValidComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 97 && b <= 122) }
        guard let first = bytes.first, let last = bytes.last, alnum(first), alnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            if alnum(bytes[index]) { index += 1; continue }
            var end = index
            while end < bytes.count && !alnum(bytes[end]) { end += 1 }
            let separator = String(decoding: bytes[index..<end], as: UTF8.self)
            guard separator == "." || separator == "_" || separator == "__" || separator.allSatisfy({ $0 == "-" }) else { return false }
            index = end
        }
        return true
    }

    private static func isValidHost(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let after = name[name.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else { return false }
            return true
        }
        if let colon = name.firstIndex(of: ":") {
            guard let port = Int(name[name.index(after: colon)...]), (1...65535).contains(port) else { return false }
            name = name[..<colon]
        }
        return !name.isEmpty && name.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
        }
    }
}

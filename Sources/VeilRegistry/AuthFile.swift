import FoundationEssentials

/// Credentials from a containers-auth.json(5) file: `{"auths": {"<key>": {"auth": base64("user:pass")}}}`,
/// keys being `host[:port]` or `host[:port]/namespace/...`, the most specific match winning.
/// Credential helpers and OAuth identity tokens are not supported (said so when met).
public struct AuthFile: Sendable, Equatable {
    public struct Credentials: Sendable, Equatable {
        public var username: String
        public var password: String
    }

    /// The file the entries came from (nil when none exists).
    public var path: String?
    var entries: [String: Entry] = [:]

    enum Entry: Sendable, Equatable {
        case credentials(Credentials)
        case unsupported(String)
        case invalid(String)
    }

    public init() {}

    /// The explicit path if given (it must exist), else the first that exists of
    /// `$REGISTRY_AUTH_FILE`, /etc/containers/auth.json, /run/containers/0/auth.json.
    public static func resolvePath(explicit: String?, environment: [String: String]) throws(RegistryError) -> String? {
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw RegistryError(explicit, .configuration, "auth file does not exist")
            }
            return explicit
        }
        if let fromEnvironment = environment["REGISTRY_AUTH_FILE"], !fromEnvironment.isEmpty {
            guard FileManager.default.fileExists(atPath: fromEnvironment) else {
                throw RegistryError(fromEnvironment, .configuration, "auth file named by REGISTRY_AUTH_FILE does not exist")
            }
            return fromEnvironment
        }
        return ["/etc/containers/auth.json", "/run/containers/0/auth.json"].first { FileManager.default.fileExists(atPath: $0) }
    }

    public static func load(path: String?) throws(RegistryError) -> AuthFile {
        guard let path else { return AuthFile() }
        guard let bytes = readSmallFile(path, limit: 1 << 20) else {
            throw RegistryError(path, .configuration, "cannot read the auth file (or it is over 1 MiB)")
        }
        var file = try parse(bytes, source: path)
        file.path = path
        return file
    }

    public static func parse(_ bytes: [UInt8], source: String) throws(RegistryError) -> AuthFile {
        func fail(_ reason: String) -> RegistryError { RegistryError(source, .configuration, reason) }
        let object: JSONValue
        do { object = try JSONValue.parse(bytes) } catch { throw fail("not valid JSON: \(error)") }
        guard let root = object.object else { throw fail("the top level is not an object") }
        var file = AuthFile()
        guard let auths = root["auths"] else { return file }
        guard let table = auths.object else { throw fail("\"auths\" is not an object") }
        for (rawKey, value) in table {
            let key = normaliseKey(rawKey)
            guard let entry = value.object else { throw fail("auths[\"\(rawKey)\"] is not an object") }
            if let auth = entry["auth"]?.string, !auth.isEmpty {
                guard let decoded = Data(base64Encoded: auth), let text = String(data: decoded, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    file.entries[key] = .invalid("auths[\"\(rawKey)\"].auth is not base64 of user:password")
                    continue
                }
                file.entries[key] = .credentials(Credentials(username: String(text[..<colon]),
                                                             password: String(text[text.index(after: colon)...])))
            } else if entry["identitytoken"] != nil {
                file.entries[key] = .unsupported("auths[\"\(rawKey)\"] holds an identitytoken (OAuth), which veil does not support")
            }
        }
        return file
    }

    /// Docker's config.json writes docker.io as https://index.docker.io/v1/.
    static func normaliseKey(_ key: String) -> String {
        var text = key
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = String(text.dropFirst(scheme.count)) }
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix("/v1") || text.hasSuffix("/v2") { text = String(text.dropLast(3)) }
        if text == "index.docker.io" || text == "registry-1.docker.io" { text = "docker.io" }
        return text
    }

    /// Credentials for `host/repository`: `host/a/b/c`, then `host/a/b`, `host/a`, `host`.
    public func credentials(host: String, repository: String, reference: String) throws(RegistryError) -> Credentials? {
        var candidate = host + "/" + repository
        while true {
            switch entries[candidate] {
            case .credentials(let credentials): return credentials
            case .unsupported(let reason), .invalid(let reason):
                throw RegistryError(reference, .configuration, "\(path ?? "auth file"): \(reason)")
            case nil: break
            }
            guard let slash = candidate.lastIndex(of: "/") else { return nil }
            candidate = String(candidate[..<slash])
        }
    }
}

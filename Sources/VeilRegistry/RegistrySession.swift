import FoundationEssentials
import NIOHTTP1
import VeilLinux
import VeilSpec

/// The distribution API against one endpoint (host + repository) for one reference: picks the
/// scheme, answers Bearer and Basic challenges, follows redirects (never sending credentials to
/// another host) and turns registry errors into `RegistryError`s that name the reference.
final class RegistrySession {
    let transport: HTTPTransport
    let endpoint: RegistriesConf.Endpoint
    let reference: String
    let credentials: AuthFile.Credentials?
    let certDirectory: String
    /// `pull` or `pull,push`.
    let actions: String
    private var scheme: String?
    private var authorization: String?

    static let manifestTypes = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
    static let maxManifestBytes = 4 << 20

    init(transport: HTTPTransport, endpoint: RegistriesConf.Endpoint, reference: String, credentials: AuthFile.Credentials?,
         certDirectory: String, actions: String) {
        self.transport = transport
        self.endpoint = endpoint
        self.reference = reference
        self.credentials = credentials
        self.certDirectory = certDirectory
        self.actions = actions
    }

    func fail(_ kind: RegistryError.Kind, _ detail: String) -> RegistryError {
        RegistryError(reference, kind, detail + (endpoint.isMirror ? " (mirror \(endpoint.host))" : ""))
    }

    // MARK: - requests

    /// One API call on this endpoint; `path` starts with /v2/ (or is an absolute upload URL).
    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                 maxBody: Int, followRedirects: Bool = false) throws(RegistryError) -> HTTPResponse {
        var url = try url(path)
        var method = method
        var body = body
        var answeredChallenge = false
        var redirects = 0
        while true {
            var all = headers
            // Credentials go to the registry only, never to a redirect's or an upload's other host.
            if let authorization, url.authority == homeAuthority { all.append(("Authorization", authorization)) }
            let response = try send(method, url, headers: all, body: body, maxBody: maxBody)
            if response.status == 401 && url.authority == homeAuthority && !answeredChallenge {
                answeredChallenge = true
                try authenticate(response)
                continue
            }
            if response.status == 401 {
                throw fail(.unauthorized, "\(url.authority) refused the request\(credentials == nil ? " (no credentials for \(endpoint.host) in the auth file)" : " with the configured credentials")\(Self.errorSummary(response))")
            }
            if followRedirects, [301, 302, 303, 307, 308].contains(response.status), let location = response.header("Location") {
                redirects += 1
                guard redirects <= 5, let next = HTTPURL.parse(location, relativeTo: url) else {
                    throw fail(.protocolError, "too many redirects or a bad Location \"\(location)\"")
                }
                if response.status == 303 { method = .GET; body = nil }
                url = next
                continue
            }
            return response
        }
    }

    /// The registry's `host[:port]` as URLs spell it (a default port left out).
    private var homeAuthority: String {
        HTTPURL(scheme: scheme ?? "https", authority: endpoint.host, target: "/")?.authority ?? endpoint.host
    }

    private func url(_ path: String) throws(RegistryError) -> HTTPURL {
        if path.hasPrefix("http://") || path.hasPrefix("https://") {
            guard let absolute = HTTPURL.parse(path) else { throw fail(.protocolError, "bad URL \"\(path)\"") }
            return absolute
        }
        let chosen = try chooseScheme()
        guard let url = HTTPURL(scheme: chosen, authority: endpoint.host, target: path) else {
            throw fail(.invalidReference, "\"\(endpoint.host)\" is not a usable host[:port]")
        }
        return url
    }

    /// https, verified, unless the endpoint is insecure: then unverified https, falling back to
    /// plain http when the port does not speak TLS (what podman and CRI-O do).
    private func chooseScheme() throws(RegistryError) -> String {
        if let scheme { return scheme }
        guard endpoint.insecure else {
            scheme = "https"
            return "https"
        }
        guard let probe = HTTPURL(scheme: "https", authority: endpoint.host, target: "/v2/") else {
            throw fail(.invalidReference, "\"\(endpoint.host)\" is not a usable host[:port]")
        }
        do throws(HTTPFailure) {
            _ = try transport.send(method: .GET, url: probe, headers: [], body: nil, maxBody: 1 << 16,
                                   tls: TLSOptions(verify: false, certDirectory: certDirectory))
            scheme = "https"
        } catch {
            switch error {
            case .tls, .protocolError: scheme = "http"
            default: throw map(error, probe)
            }
        }
        return scheme ?? "http"
    }

    private func send(_ method: HTTPMethod, _ url: HTTPURL, headers: [(String, String)], body: [UInt8]?,
                      maxBody: Int) throws(RegistryError) -> HTTPResponse {
        let verify = !(endpoint.insecure && url.authority == homeAuthority)
        do throws(HTTPFailure) {
            return try transport.send(method: method, url: url, headers: headers, body: body, maxBody: maxBody,
                                      tls: TLSOptions(verify: verify, certDirectory: certDirectory))
        } catch {
            throw map(error, url)
        }
    }

    private func map(_ failure: HTTPFailure, _ url: HTTPURL) -> RegistryError {
        switch failure {
        case .connect(let reason): return fail(.unreachable, reason)
        case .tls(let reason):
            if reason.contains("WRONG_VERSION_NUMBER") {
                return fail(.tls, "\(url.authority) does not speak TLS (for a plain-HTTP registry: insecure = true in registries.conf, or --insecure)")
            }
            return fail(.tls, reason + (url.isTLS ? " (CA certificates for \(url.authority) go in \(certDirectory)/\(url.authority)/*.crt)" : ""))
        case .timeout: return fail(.timeout, "\(url.authority) did not answer before the deadline")
        case .tooLarge(let limit): return fail(.tooLarge, "\(url.description): the answer exceeds \(limit) bytes")
        case .protocolError(let reason): return fail(.protocolError, reason)
        }
    }

    // MARK: - authentication

    private func authenticate(_ response: HTTPResponse) throws(RegistryError) {
        let challenges = response.headers(named: "WWW-Authenticate").flatMap { Challenge.parse($0) }
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
            authorization = "Bearer " + (try fetchToken(bearer))
        } else if challenges.contains(where: { $0.scheme == "basic" }) {
            guard let credentials else {
                throw fail(.unauthorized, "\(endpoint.host) requires credentials (Basic) and the auth file has none for it")
            }
            authorization = "Basic " + Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
        } else {
            throw fail(.unauthorized, "\(endpoint.host) answered 401 without a usable WWW-Authenticate challenge\(Self.errorSummary(response))")
        }
    }

    private func fetchToken(_ challenge: Challenge) throws(RegistryError) -> String {
        guard let realm = challenge.parameters["realm"], let base = HTTPURL.parse(realm) else {
            throw fail(.protocolError, "Bearer challenge without a usable realm")
        }
        var query = [("scope", "repository:\(endpoint.repository):\(actions)")]
        if let service = challenge.parameters["service"] { query.insert(("service", service), at: 0) }
        if let credentials { query.append(("account", credentials.username)) }
        let encoded = query.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        var url = base
        url.target += (url.target.contains("?") ? "&" : "?") + encoded
        var headers: [(String, String)] = []
        if let credentials {
            headers.append(("Authorization", "Basic " + Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()))
        }
        let response: HTTPResponse
        do throws(HTTPFailure) {
            response = try transport.send(method: .GET, url: url, headers: headers, body: nil, maxBody: 1 << 16,
                                          tls: TLSOptions(verify: !endpoint.insecure, certDirectory: certDirectory))
        } catch {
            throw map(error, url)
        }
        guard response.status == 200 else {
            throw fail(.unauthorized, "the token service \(url.authority) answered \(response.status)\(Self.errorSummary(response))")
        }
        guard let object = (try? JSONValue.parse(response.body))?.object,
              let token = object["token"]?.string ?? object["access_token"]?.string, !token.isEmpty else {
            throw fail(.protocolError, "the token service \(url.authority) returned no token")
        }
        return token
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(UnicodeScalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) } else { out += "%" + hexByte(byte) }
        }
        return out
    }

    /// Two upper-case hex digits, as percent-encoding writes them.
    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    /// `: CODE: message` from a registry's `{"errors":[...]}` body, or the status.
    static func errorSummary(_ response: HTTPResponse) -> String {
        errorSummary(response, first: errorObjects(response).first)
    }

    /// `first`: the body's first error object, parsed once by the caller.
    static func errorSummary(_ response: HTTPResponse, first: [String: JSONValue]?) -> String {
        guard let first else { return " (HTTP \(response.status))" }
        return ": \(first["code"]?.string ?? "?") \(first["message"]?.string ?? "") (HTTP \(response.status))"
    }

    /// The objects of a registry's `{"errors":[...]}` body (none when it has no such list).
    static func errorObjects(_ response: HTTPResponse) -> [[String: JSONValue]] {
        ((try? JSONValue.parse(response.body))?.object?["errors"]?.array ?? []).compactMap(\.object)
    }

    /// A non-success answer as the matching error kind.
    func failure(_ response: HTTPResponse, _ what: String) -> RegistryError {
        let first = Self.errorObjects(response).first
        let summary = Self.errorSummary(response, first: first)
        let code = first?["code"]?.string
        if code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN" || (code == nil && response.status == 404 && what.hasPrefix("manifest")) {
            return fail(.unknownManifest, "\(what) not found on \(endpoint)\(summary)")
        }
        if code == "BLOB_UNKNOWN" || (code == nil && response.status == 404) {
            return fail(.unknownBlob, "\(what) not found on \(endpoint)\(summary)")
        }
        if code == "DENIED" || response.status == 403 {
            return fail(.denied, "\(what): access denied by \(endpoint.host)\(summary)")
        }
        if code == "UNAUTHORIZED" { return fail(.unauthorized, "\(what)\(summary)") }
        if response.status == 400 || response.status == 413 {
            return fail(.protocolError, "\(what) refused by \(endpoint.host)\(summary)")
        }
        return fail(.protocolError, "\(what): unexpected answer from \(endpoint.host)\(summary)")
    }

    // MARK: - the calls a pull and a push make

    struct FetchedManifest {
        var digest: String
        var mediaType: String
        var bytes: [UInt8]
        var manifest: OCIManifest
    }

    /// GET a manifest by tag or digest; verifies its digest (against the pinned one and the
    /// registry's Docker-Content-Digest) and that its mediaType agrees with Content-Type.
    func manifest(_ tagOrDigest: String) throws(RegistryError) -> FetchedManifest {
        let response = try request(.GET, "/v2/\(endpoint.repository)/manifests/\(tagOrDigest)",
                                   headers: [("Accept", Self.manifestTypes.joined(separator: ", "))],
                                   maxBody: Self.maxManifestBytes, followRedirects: true)
        guard response.status == 200 else { throw failure(response, "manifest \(tagOrDigest)") }
        let digest = "sha256:" + SHA256.hex(response.body)
        if ImageReference.isSHA256Digest(tagOrDigest), digest != tagOrDigest {
            throw fail(.digestMismatch, "manifest \(tagOrDigest) has digest \(digest)")
        }
        if let claimed = response.header("Docker-Content-Digest"), claimed.hasPrefix("sha256:"), claimed != digest {
            throw fail(.digestMismatch, "the registry calls manifest \(tagOrDigest) \(claimed), its bytes have digest \(digest)")
        }
        let manifest: OCIManifest
        do {
            manifest = try JSONDecoder().decode(OCIManifest.self, from: Data(response.body))
        } catch {
            throw fail(.protocolError, "manifest \(tagOrDigest) is not a valid manifest: \(error)")
        }
        let contentType = response.header("Content-Type").map { $0.split(separator: ";")[0].trimmingWhitespace }
        if let declared = manifest.mediaType, let contentType, declared != contentType {
            throw fail(.wrongMediaType, "manifest \(tagOrDigest) says mediaType \(declared) but was served as \(contentType)")
        }
        guard let mediaType = manifest.mediaType ?? contentType, Self.manifestTypes.contains(mediaType) else {
            throw fail(.wrongMediaType, "manifest \(tagOrDigest) has media type \(manifest.mediaType ?? contentType ?? "(none)"), not an OCI or Docker v2 manifest or index")
        }
        return FetchedManifest(digest: digest, mediaType: mediaType, bytes: response.body, manifest: manifest)
    }

    /// An index resolved to this machine's linux platform; a plain manifest as it is.
    func platformManifest(_ tagOrDigest: String) throws(RegistryError) -> FetchedManifest {
        let top = try manifest(tagOrDigest)
        guard top.mediaType.hasSuffix("index.v1+json") || top.mediaType.hasSuffix("list.v2+json") else { return top }
        let entries = top.manifest.manifests ?? []
        guard let chosen = entries.first(where: { $0.platform?.os == "linux" && $0.platform?.architecture == hostArchitecture })
                ?? (entries.count == 1 && entries[0].platform == nil ? entries[0] : nil) else {
            let platforms = entries.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
            throw fail(.unknownManifest, "index \(top.digest) has no linux/\(hostArchitecture) manifest (it lists \(platforms.isEmpty ? "none" : platforms.joined(separator: ", ")))")
        }
        let resolved = try manifest(chosen.digest)
        guard !(resolved.mediaType.hasSuffix("index.v1+json") || resolved.mediaType.hasSuffix("list.v2+json")) else {
            throw fail(.wrongMediaType, "index \(top.digest) points to another index \(chosen.digest)")
        }
        return resolved
    }

    /// GET a blob (following redirects), verifying its size and digest.
    func blob(_ descriptor: OCIDescriptor, limit: Int) throws(RegistryError) -> [UInt8] {
        guard descriptor.size <= limit else {
            throw fail(.tooLarge, "blob \(descriptor.digest) is \(descriptor.size) bytes, over the limit of \(limit)")
        }
        let response = try request(.GET, "/v2/\(endpoint.repository)/blobs/\(descriptor.digest)", maxBody: limit, followRedirects: true)
        guard response.status == 200 else { throw failure(response, "blob \(descriptor.digest)") }
        guard response.body.count == descriptor.size else {
            throw fail(.digestMismatch, "blob \(descriptor.digest) has \(response.body.count) bytes, the manifest says \(descriptor.size)")
        }
        let digest = "sha256:" + SHA256.hex(response.body)
        guard digest == descriptor.digest else {
            throw fail(.digestMismatch, "blob \(descriptor.digest) has digest \(digest)")
        }
        return response.body
    }

    /// Uploads a blob unless the registry has it (monolithic: POST, then PUT with the digest).
    func upload(_ bytes: [UInt8], digest: String) throws(RegistryError) {
        let limit = 1 << 16
        let present = try request(.HEAD, "/v2/\(endpoint.repository)/blobs/\(digest)", maxBody: limit)
        if present.status == 200 { return }
        let started = try request(.POST, "/v2/\(endpoint.repository)/blobs/uploads/", maxBody: limit)
        guard started.status == 202, let location = started.header("Location") else {
            throw failure(started, "starting the upload of \(digest)")
        }
        let target: String
        if location.hasPrefix("http://") || location.hasPrefix("https://") || location.hasPrefix("/") {
            target = location + (location.contains("?") ? "&" : "?") + "digest=" + Self.percentEncode(digest)
        } else {
            throw fail(.protocolError, "upload Location \"\(location)\" is neither absolute nor a path")
        }
        let finished = try request(.PUT, target, headers: [("Content-Type", "application/octet-stream")], body: bytes, maxBody: limit)
        guard finished.status == 201 else { throw failure(finished, "uploading \(digest)") }
    }

    /// PUTs a manifest under a tag (or its digest); checks the digest the registry reports.
    func putManifest(_ bytes: [UInt8], mediaType: String, tagOrDigest: String) throws(RegistryError) -> String {
        let digest = "sha256:" + SHA256.hex(bytes)
        let response = try request(.PUT, "/v2/\(endpoint.repository)/manifests/\(tagOrDigest)",
                                   headers: [("Content-Type", mediaType)], body: bytes, maxBody: 1 << 16)
        guard response.status == 201 else { throw failure(response, "manifest \(tagOrDigest)") }
        if let claimed = response.header("Docker-Content-Digest"), claimed != digest {
            throw fail(.digestMismatch, "the registry stored the manifest as \(claimed), its bytes have digest \(digest)")
        }
        return digest
    }
}

/// GOARCH naming, as OCI platforms use it.
var hostArchitecture: String {
    #if arch(x86_64)
    return "amd64"
    #elseif arch(arm64)
    return "arm64"
    #elseif arch(s390x)
    return "s390x"
    #elseif arch(powerpc64le)
    return "ppc64le"
    #else
    return "unknown"
    #endif
}

struct OCIPlatform: Codable, Sendable, Equatable {
    var architecture: String
    var os: String
    var variant: String?
}

struct OCIDescriptor: Codable, Sendable, Equatable {
    var mediaType: String?
    var digest: String
    var size: Int
    var annotations: [String: String]?
    var platform: OCIPlatform?
    var artifactType: String?
}

struct OCIManifest: Codable, Sendable, Equatable {
    var schemaVersion: Int?
    var mediaType: String?
    var artifactType: String?
    var config: OCIDescriptor?
    var layers: [OCIDescriptor]?
    var manifests: [OCIDescriptor]?
    var annotations: [String: String]?
}

import FoundationEssentials
import VeilLinux
import VeilSpec

/// Where registry configuration comes from and the limits of one pull or push.
public struct RegistrySettings: Sendable {
    /// nil: $REGISTRY_AUTH_FILE, then /etc/containers/auth.json, /run/containers/0/auth.json.
    public var authFile: String?
    /// containers-registries.conf(5), plus `<name>.d/*.conf` drop-ins.
    public var registriesConf: String = "/etc/containers/registries.conf"
    /// Per-registry CAs (`<host:port>/*.crt`) and client certificates (`*.cert` + `*.key`).
    public var certDirectory: String = "/etc/containers/certs.d"
    /// Plain HTTP / unverified TLS for every registry (registries.conf can say so per registry).
    public var insecure: Bool = false
    /// The overall deadline of one pull or push.
    public var timeoutSeconds: Double = 30
    public var maxProfileBytes: Int = 1 << 20
    public var cacheDirectory: String = "/run/veil-cache/seccomp"
    /// How long a tag's digest is reused without asking the registry; 0 = ask every time.
    public var tagTTLSeconds: Double = 600

    public init() {}
}

/// A profile fetched (or found in the cache), verified and checked.
public struct PulledProfile: Sendable {
    /// Normalised (`host/repo:tag` or `host/repo@sha256:…`).
    public let reference: String
    public let manifestDigest: String
    public let layerDigest: String
    public let configMediaType: String
    /// The manifest's artifactType, when it has one.
    public let artifactType: String?
    public let layerMediaType: String?
    /// The layer, verified against its digest.
    public let bytes: [UInt8]
    public let profile: LinuxSeccomp
    /// True when no registry request was made.
    public let fromCache: Bool
}

/// Seccomp profiles as OCI artifacts: pull (with cache), push, and an image's annotations.
/// Synchronous: the event loop thread lives only while the network is used, so a caller that
/// forks afterwards (create) has no extra threads.
public enum SeccompArtifact {
    public static func pull(_ reference: String, settings: RegistrySettings) throws(RegistryError) -> PulledProfile {
        let parsed = try ImageReference.parse(reference)
        let name = parsed.description
        guard let cache = ProfileCache(directory: settings.cacheDirectory) else {
            return try fetchProfile(parsed, settings: settings, cache: nil)
        }
        return try cache.withLock("profile " + name) { () throws(RegistryError) -> PulledProfile in
            if let entry = cache.profileEntry(name), isFresh(entry.fetchedAt, pinned: parsed.digest != nil, settings: settings),
               let bytes = cache.readBlob(entry.layerDigest, limit: settings.maxProfileBytes) {
                let profile = try ProfileArtifact.decodeProfile(bytes, reference: name)
                return PulledProfile(reference: name, manifestDigest: entry.manifestDigest, layerDigest: entry.layerDigest,
                                     configMediaType: entry.configMediaType, artifactType: entry.artifactType,
                                     layerMediaType: entry.layerMediaType, bytes: bytes, profile: profile, fromCache: true)
            }
            return try fetchProfile(parsed, settings: settings, cache: cache)
        }
    }

    public static func push(_ reference: String, profile bytes: [UInt8], title: String, settings: RegistrySettings) throws(RegistryError) -> String {
        let parsed = try ImageReference.parse(reference)
        let name = parsed.description
        guard bytes.count <= settings.maxProfileBytes else {
            throw RegistryError(name, .tooLarge, "the profile is \(bytes.count) bytes, over the limit of \(settings.maxProfileBytes)")
        }
        _ = try ProfileArtifact.decodeProfile(bytes, reference: name)
        let manifest = ProfileArtifact.manifest(layer: bytes, title: title)
        let conf = try RegistriesConf.load(path: settings.registriesConf)
        let endpoints = try conf.endpoints(for: parsed, pull: false, insecure: settings.insecure)
        guard let endpoint = endpoints.last else { throw RegistryError(name, .configuration, "no registry to push to") }
        let auth = try AuthFile.load(path: AuthFile.resolvePath(explicit: settings.authFile, environment: ProcessInfo.processInfo.environment))
        let credentials = try auth.credentials(host: endpoint.host, repository: endpoint.repository, reference: name)
        let transport = HTTPTransport(timeoutSeconds: settings.timeoutSeconds)
        defer { transport.shutdown() }
        let session = RegistrySession(transport: transport, endpoint: endpoint, reference: name, credentials: credentials,
                                      certDirectory: settings.certDirectory, actions: "pull,push")
        try session.upload(ProfileArtifact.emptyConfig, digest: "sha256:" + hex(ProfileArtifact.emptyConfig))
        try session.upload(bytes, digest: "sha256:" + hex(bytes))
        let digest = try session.putManifest(manifest, mediaType: ProfileArtifact.manifestType, tagOrDigest: parsed.manifestReference)
        if let pinned = parsed.digest, pinned != digest {
            throw RegistryError(name, .digestMismatch, "the pushed manifest has digest \(digest), not \(pinned)")
        }
        return digest
    }

    /// The annotations of an image's manifest (index → the linux manifest of this machine's
    /// architecture), for the image-side lookup; cached like profiles.
    public static func imageAnnotations(_ imageReference: String, settings: RegistrySettings) throws(RegistryError) -> [String: String] {
        let parsed = try ImageReference.parse(imageReference)
        let name = parsed.description
        guard let cache = ProfileCache(directory: settings.cacheDirectory) else {
            return try fetchAnnotations(parsed, settings: settings, cache: nil)
        }
        return try cache.withLock("image " + name) { () throws(RegistryError) -> [String: String] in
            if let entry = cache.imageEntry(name), isFresh(entry.fetchedAt, pinned: parsed.digest != nil, settings: settings) {
                return entry.annotations
            }
            return try fetchAnnotations(parsed, settings: settings, cache: cache)
        }
    }

    // MARK: -

    private static func hex(_ bytes: [UInt8]) -> String { SHA256.hex(bytes) }

    private static func isFresh(_ fetchedAt: Double, pinned: Bool, settings: RegistrySettings) -> Bool {
        if pinned { return true }
        let age = Date().timeIntervalSince1970 - fetchedAt
        return age >= 0 && age < settings.tagTTLSeconds
    }

    /// Tries each endpoint (mirrors, then the primary) and reports the last failure.
    private static func eachEndpoint<T>(_ reference: ImageReference, settings: RegistrySettings,
                                        _ body: (RegistrySession) throws(RegistryError) -> T) throws(RegistryError) -> T {
        let name = reference.description
        let conf = try RegistriesConf.load(path: settings.registriesConf)
        let endpoints = try conf.endpoints(for: reference, pull: true, insecure: settings.insecure)
        let auth = try AuthFile.load(path: AuthFile.resolvePath(explicit: settings.authFile, environment: ProcessInfo.processInfo.environment))
        let transport = HTTPTransport(timeoutSeconds: settings.timeoutSeconds)
        defer { transport.shutdown() }
        var lastError = RegistryError(name, .configuration, "no registry to pull from")
        for endpoint in endpoints {
            do throws(RegistryError) {
                let credentials = try auth.credentials(host: endpoint.host, repository: endpoint.repository, reference: name)
                let session = RegistrySession(transport: transport, endpoint: endpoint, reference: name, credentials: credentials,
                                              certDirectory: settings.certDirectory, actions: "pull")
                return try body(session)
            } catch {
                lastError = error
                // Only a timeout stops the search: the deadline is shared.
                if error.kind == .timeout { break }
            }
        }
        throw lastError
    }

    private static func fetchProfile(_ reference: ImageReference, settings: RegistrySettings, cache: ProfileCache?) throws(RegistryError) -> PulledProfile {
        let name = reference.description
        return try eachEndpoint(reference, settings: settings) { (session) throws(RegistryError) -> PulledProfile in
            let fetched = try session.platformManifest(reference.manifestReference)
            let selection = try ProfileArtifact.select(fetched.manifest, reference: name, maxProfileBytes: settings.maxProfileBytes)
            let bytes: [UInt8]
            if let cached = cache?.readBlob(selection.layerDigest, limit: settings.maxProfileBytes) {
                bytes = cached
            } else {
                bytes = try session.blob(OCIDescriptor(digest: selection.layerDigest, size: selection.layerSize), limit: settings.maxProfileBytes)
            }
            let profile = try ProfileArtifact.decodeProfile(bytes, reference: name)
            cache?.writeBlob(bytes, digest: selection.layerDigest)
            cache?.store(ProfileCache.ProfileEntry(
                reference: name, manifestDigest: fetched.digest, layerDigest: selection.layerDigest, layerSize: selection.layerSize,
                layerMediaType: selection.layerMediaType, configMediaType: selection.configMediaType,
                artifactType: selection.artifactType, fetchedAt: Date().timeIntervalSince1970))
            return PulledProfile(reference: name, manifestDigest: fetched.digest, layerDigest: selection.layerDigest,
                                 configMediaType: selection.configMediaType, artifactType: selection.artifactType,
                                 layerMediaType: selection.layerMediaType, bytes: bytes, profile: profile, fromCache: false)
        }
    }

    private static func fetchAnnotations(_ reference: ImageReference, settings: RegistrySettings, cache: ProfileCache?) throws(RegistryError) -> [String: String] {
        let name = reference.description
        return try eachEndpoint(reference, settings: settings) { (session) throws(RegistryError) -> [String: String] in
            let fetched = try session.platformManifest(reference.manifestReference)
            let annotations = fetched.manifest.annotations ?? [:]
            cache?.store(ProfileCache.ImageEntry(reference: name, manifestDigest: fetched.digest, annotations: annotations,
                                                 fetchedAt: Date().timeIntervalSince1970))
            return annotations
        }
    }
}

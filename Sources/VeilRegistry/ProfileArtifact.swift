import FoundationEssentials
import VeilLinux
import VeilSeccomp
import VeilSpec

/// What makes an OCI artifact a seccomp profile, and how veil publishes one.
/// Accepted (study §1): an OCI (or Docker v2) image manifest whose config media type is the cncf
/// seccomp type or the older generic `application/vnd.unknown.config.v1+json`, or the OCI 1.1 empty
/// config with one of those as `artifactType`; exactly one layer, the raw JSON profile. CRI-O
/// releases accept only the cncf type; veil is more lenient on purpose (SPO's older pushes).
public enum ProfileArtifact {
    public static let seccompConfigType = "application/vnd.cncf.seccomp-profile.config.v1+json"
    public static let unknownConfigType = "application/vnd.unknown.config.v1+json"
    public static let emptyConfigType = "application/vnd.oci.empty.v1+json"
    public static let layerType = "application/vnd.oci.image.layer.v1.tar"
    public static let manifestType = "application/vnd.oci.image.manifest.v1+json"
    public static let acceptedTypes = [seccompConfigType, unknownConfigType]
    /// `{}`, the config blob oras, SPO and veil push.
    public static let emptyConfig: [UInt8] = Array("{}".utf8)

    /// The profile layer of an artifact manifest, and the media type that identified it.
    public struct Selection: Sendable, Equatable {
        public var layerDigest: String
        public var layerSize: Int
        public var layerMediaType: String?
        public var configMediaType: String
        public var artifactType: String?
    }

    /// Checks a manifest's JSON against the artifact rules and the size cap.
    public static func select(manifest bytes: [UInt8], reference: String, maxProfileBytes: Int) throws(RegistryError) -> Selection {
        let manifest: OCIManifest
        do {
            manifest = try JSONDecoder().decode(OCIManifest.self, from: Data(bytes))
        } catch {
            throw RegistryError(reference, .protocolError, "the manifest is not valid JSON: \(error)")
        }
        return try select(manifest, reference: reference, maxProfileBytes: maxProfileBytes)
    }

    static func select(_ manifest: OCIManifest, reference: String, maxProfileBytes: Int) throws(RegistryError) -> Selection {
        func fail(_ kind: RegistryError.Kind, _ detail: String) -> RegistryError { RegistryError(reference, kind, detail) }
        if let mediaType = manifest.mediaType, mediaType != manifestType, mediaType != "application/vnd.docker.distribution.manifest.v2+json" {
            throw fail(.wrongMediaType, "manifest media type \(mediaType) is not an image manifest")
        }
        guard let config = manifest.config, let configType = config.mediaType else {
            throw fail(.wrongMediaType, "the manifest has no config media type: not a seccomp profile artifact")
        }
        let identified = acceptedTypes.contains(configType)
            || (configType == emptyConfigType && manifest.artifactType.map(acceptedTypes.contains) == true)
        guard identified else {
            let artifact = manifest.artifactType.map { ", artifactType \($0)" } ?? ""
            throw fail(.wrongMediaType, "config media type \(configType)\(artifact) is not a seccomp profile (expected \(seccompConfigType) or \(unknownConfigType), or the empty config with one of them as artifactType)")
        }
        let layers = manifest.layers ?? []
        guard layers.count == 1 else {
            throw fail(.notAProfile, "a profile artifact has exactly one layer, this one has \(layers.count)")
        }
        let layer = layers[0]
        guard ImageReference.isSHA256Digest(layer.digest) else {
            throw fail(.protocolError, "layer digest \(layer.digest) is not a sha256 digest")
        }
        guard layer.size >= 0 else { throw fail(.protocolError, "layer size \(layer.size) is negative") }
        guard layer.size <= maxProfileBytes else {
            throw fail(.tooLarge, "the profile layer is \(layer.size) bytes, over the limit of \(maxProfileBytes)")
        }
        return Selection(layerDigest: layer.digest, layerSize: layer.size, layerMediaType: layer.mediaType,
                         configMediaType: configType, artifactType: manifest.artifactType)
    }

    /// Decodes a profile and refuses what a pulled profile must not do: open a notify channel
    /// (SCMP_ACT_NOTIFY, listenerPath, listenerMetadata), use the containers-common format whose
    /// conditions veil would ignore, or fail to compile.
    public static func decodeProfile(_ bytes: [UInt8], reference: String) throws(RegistryError) -> LinuxSeccomp {
        func fail(_ detail: String) -> RegistryError { RegistryError(reference, .notAProfile, detail) }
        let object: JSONValue
        do { object = try JSONValue.parse(bytes) } catch { throw fail("the layer is not JSON: \(error)") }
        guard let root = object.object else { throw fail("the layer is not a JSON object") }
        if root["archMap"] != nil {
            throw fail("containers-common profiles (archMap, includes/excludes) are not supported; give an OCI LinuxSeccomp (architectures, syscalls)")
        }
        for rule in (root["syscalls"]?.array ?? []).compactMap(\.object) {
            for key in ["includes", "excludes"] {
                if let condition = rule[key]?.object, !condition.isEmpty {
                    throw fail("syscall rules with \"\(key)\" (containers-common format) are not supported")
                }
            }
        }
        let profile: LinuxSeccomp
        do {
            profile = try JSONDecoder().decode(LinuxSeccomp.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw fail("not an OCI LinuxSeccomp: \(describe(error))")
        } catch {
            throw fail("not an OCI LinuxSeccomp: \(error)")
        }
        if profile.listenerPath != nil { throw fail("listenerPath is not allowed in a pulled profile") }
        if profile.listenerMetadata != nil { throw fail("listenerMetadata is not allowed in a pulled profile") }
        if profile.defaultAction == "SCMP_ACT_NOTIFY" { throw fail("SCMP_ACT_NOTIFY is not allowed in a pulled profile") }
        for (index, rule) in (profile.syscalls ?? []).enumerated() where rule.action == "SCMP_ACT_NOTIFY" {
            throw fail("syscalls[\(index)]: SCMP_ACT_NOTIFY is not allowed in a pulled profile")
        }
        do throws(SeccompError) {
            _ = try SeccompProgram.compile(profile, field: "")
        } catch {
            let at = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
            throw fail("it does not compile: \(at.isEmpty ? "" : at + ": ")\(error.reason)")
        }
        return profile
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "" : "\(text): "
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return path(context) + context.debugDescription
        case .keyNotFound(let key, let context):
            return path(context) + "missing \"\(key.stringValue)\""
        @unknown default:
            return "\(error)"
        }
    }

    /// The manifest veil pushes: oras/SPO style (config `{}` with the cncf type, the same type as
    /// artifactType, one layer titled for `oras pull`), created fixed at the epoch so the same
    /// profile always has the same digest.
    public static func manifest(layer: [UInt8], title: String, created: String = "1970-01-01T00:00:00Z") -> [UInt8] {
        let text = """
            {"schemaVersion":2,"mediaType":"\(manifestType)","artifactType":"\(seccompConfigType)",\
            "config":{"mediaType":"\(seccompConfigType)","digest":"sha256:\(SHA256.hex(emptyConfig))","size":\(emptyConfig.count)},\
            "layers":[{"mediaType":"\(layerType)","digest":"sha256:\(SHA256.hex(layer))","size":\(layer.count),\
            "annotations":{"org.opencontainers.image.title":\(quoted(title))}}],\
            "annotations":{"org.opencontainers.image.created":\(quoted(created))}}
            """
        return Array(text.utf8)
    }
}

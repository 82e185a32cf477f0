// Hermetic: reference parsing, registries.conf, auth.json, WWW-Authenticate, artifact rules.

import Foundation
import Testing
@testable import VeilRegistry
import VeilSpec

@Suite struct ImageReferenceTests {
    @Test(arguments: [
        ("127.0.0.1:5000/profiles/nginx:v1", "127.0.0.1:5000", "profiles/nginx", "v1", nil),
        ("registry.example.com/a/b/c", "registry.example.com", "a/b/c", "latest", nil),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", nil),
        ("index.docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", nil),
        ("localhost/p:x", "localhost", "p", "x", nil),
        ("quay.io/ns/p@sha256:" + String(repeating: "a", count: 64), "quay.io", "ns/p", nil, "sha256:" + String(repeating: "a", count: 64)),
        ("quay.io/ns/p:t@sha256:" + String(repeating: "b", count: 64), "quay.io", "ns/p", "t", "sha256:" + String(repeating: "b", count: 64)),
        ("[::1]:5000/p:t", "[::1]:5000", "p", "t", nil),
    ] as [(String, String, String, String?, String?)])
    func parses(_ text: String, _ registry: String, _ repository: String, _ tag: String?, _ digest: String?) throws {
        let reference = try ImageReference.parse(text)
        #expect(reference.registry == registry)
        #expect(reference.repository == repository)
        #expect(reference.tag == tag)
        #expect(reference.digest == digest)
    }

    @Test func normalisedForm() throws {
        #expect(try ImageReference.parse("docker.io/busybox").description == "docker.io/library/busybox:latest")
        #expect(try ImageReference.parse("127.0.0.1:5000/p").manifestReference == "latest")
        let pinned = try ImageReference.parse("h.io/p:t@sha256:" + String(repeating: "c", count: 64))
        #expect(pinned.manifestReference == "sha256:" + String(repeating: "c", count: 64))
    }

    @Test(arguments: [
        ("busybox", "short names are not supported"),
        ("library/busybox", "short names are not supported"),
        ("", "empty reference"),
        ("h.io/UPPER:t", "repository component"),
        ("h.io/p:bad/tag", "repository component"),
        ("h.io/p@sha256:abc", "digest"),
        ("h.io/p@md5:" + String(repeating: "a", count: 32), "digest"),
        ("h.io:99999/p", "not a valid registry"),
        ("h.io/p:-x", "tag"),
        ("h.io/a b", "white space"),
        ("h.io/", "no repository"),
    ])
    func refuses(_ text: String, _ reason: String) {
        #expect {
            _ = try ImageReference.parse(text)
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.kind == .invalidReference && error.description.contains(reason) && error.reference == text
        }
    }
}

@Suite struct RegistriesConfTests {
    let conf = """
        unqualified-search-registries = ["docker.io"]

        [[registry]]
        prefix = "example.com"
        location = "primary.example.com:5000"

        [[registry]]
        prefix = "example.com/team"
        location = "team.internal/mirrored/team"
        insecure = true
        [[registry.mirror]]
        location = "mirror-a.internal/team"
        [[registry.mirror]]
        location = "mirror-d.internal/team"
        pull-from-mirror = "digest-only"
        insecure = true
        [[registry.mirror]]
        location = "mirror-t.internal/team"
        pull-from-mirror = "tag-only"

        [[registry]]
        prefix = "*.blocked.io"
        blocked = true

        [[registry]]
        location = "plain.local:8080"
        insecure = true
        """

    @Test func longestPrefixAndRewrite() throws {
        let parsed = try RegistriesConf.parse(conf, source: "test.conf")
        let reference = try ImageReference.parse("example.com/other/p:v1")
        let endpoints = try parsed.endpoints(for: reference, pull: true, insecure: false)
        #expect(endpoints == [RegistriesConf.Endpoint(host: "primary.example.com:5000", repository: "other/p", insecure: false, isMirror: false)])
        let team = try parsed.endpoints(for: try ImageReference.parse("example.com/team/p:v1"), pull: true, insecure: false)
        #expect(team.map(\.description) == ["mirror-a.internal/team/p", "mirror-t.internal/team/p", "team.internal/mirrored/team/p"])
        #expect(team.map(\.insecure) == [false, false, true])
    }

    @Test func mirrorsByDigestAndPushesSkipMirrors() throws {
        let parsed = try RegistriesConf.parse(conf, source: "test.conf")
        let digest = try ImageReference.parse("example.com/team/p@sha256:" + String(repeating: "d", count: 64))
        let pulls = try parsed.endpoints(for: digest, pull: true, insecure: false)
        #expect(pulls.map(\.host) == ["mirror-a.internal", "mirror-d.internal", "team.internal"])
        #expect(pulls[1].insecure)
        let pushes = try parsed.endpoints(for: digest, pull: false, insecure: false)
        #expect(pushes.map(\.host) == ["team.internal"])
    }

    @Test func blockedWildcard() throws {
        let parsed = try RegistriesConf.parse(conf, source: "test.conf")
        #expect {
            _ = try parsed.endpoints(for: try ImageReference.parse("reg.blocked.io/p:t"), pull: true, insecure: false)
        } throws: { ($0 as? RegistryError)?.kind == .blocked }
    }

    @Test func insecureAndUnmatched() throws {
        let parsed = try RegistriesConf.parse(conf, source: "test.conf")
        let plain = try parsed.endpoints(for: try ImageReference.parse("plain.local:8080/p:t"), pull: true, insecure: false)
        #expect(plain == [RegistriesConf.Endpoint(host: "plain.local:8080", repository: "p", insecure: true, isMirror: false)])
        let other = try parsed.endpoints(for: try ImageReference.parse("quay.io/p:t"), pull: true, insecure: true)
        #expect(other == [RegistriesConf.Endpoint(host: "quay.io", repository: "p", insecure: true, isMirror: false)])
        // "example.com" must not match "example.community".
        let near = try parsed.endpoints(for: try ImageReference.parse("example.community/p:t"), pull: true, insecure: false)
        #expect(near.map(\.host) == ["example.community"])
    }

    @Test func badFilesAreNamed() {
        for text in ["[[registry]]\ninsecure = \"yes\"\nprefix = \"a.io\"", "[[registry]]\nprefix = \"a.io\"\n[[registry.mirror]]\npull-from-mirror = \"x\"\nlocation = \"m\"", "registry = 3", "[[registry"] {
            #expect {
                _ = try RegistriesConf.parse(text, source: "/etc/bad.conf")
            } throws: { error in
                guard let error = error as? RegistryError else { return false }
                return error.kind == .configuration && error.reference == "/etc/bad.conf"
            }
        }
    }

    @Test func dropInsReplaceByPrefix() throws {
        let dir = NSTemporaryDirectory() + "veil-regconf-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/registries.conf.d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "[[registry]]\nprefix = \"a.io\"\nlocation = \"one.io\"\n".write(toFile: dir + "/registries.conf", atomically: true, encoding: .utf8)
        try "[[registry]]\nprefix = \"a.io\"\nlocation = \"two.io\"\n".write(toFile: dir + "/registries.conf.d/50-a.conf", atomically: true, encoding: .utf8)
        let loaded = try RegistriesConf.load(path: dir + "/registries.conf")
        #expect(try loaded.endpoints(for: try ImageReference.parse("a.io/p"), pull: true, insecure: false).map(\.host) == ["two.io"])
        // A missing file means no rewrites.
        #expect(try RegistriesConf.load(path: dir + "/nothing.conf").registries.isEmpty)
    }
}

@Suite struct AuthFileTests {
    func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func mostSpecificKeyWins() throws {
        let json = """
            {"auths": {
              "reg.io": {"auth": "\(base64("host:pw1"))"},
              "reg.io/team": {"auth": "\(base64("team:pw:with:colons"))"},
              "https://index.docker.io/v1/": {"auth": "\(base64("hub:pw3"))"}
            }}
            """
        let file = try AuthFile.parse(Array(json.utf8), source: "auth.json")
        #expect(try file.credentials(host: "reg.io", repository: "team/p", reference: "r") == .init(username: "team", password: "pw:with:colons"))
        #expect(try file.credentials(host: "reg.io", repository: "other/p", reference: "r") == .init(username: "host", password: "pw1"))
        #expect(try file.credentials(host: "docker.io", repository: "library/busybox", reference: "r") == .init(username: "hub", password: "pw3"))
        #expect(try file.credentials(host: "else.io", repository: "p", reference: "r") == nil)
    }

    @Test func badEntriesFailOnlyWhenUsed() throws {
        let json = """
            {"auths": {"bad.io": {"auth": "%%%"}, "token.io": {"identitytoken": "x"}, "ok.io": {"auth": "\(base64("u:p"))"}}}
            """
        let file = try AuthFile.parse(Array(json.utf8), source: "auth.json")
        #expect(try file.credentials(host: "ok.io", repository: "p", reference: "r") != nil)
        #expect { _ = try file.credentials(host: "bad.io", repository: "p", reference: "r") } throws: {
            ($0 as? RegistryError)?.description.contains("not base64") == true
        }
        #expect { _ = try file.credentials(host: "token.io", repository: "p", reference: "r") } throws: {
            ($0 as? RegistryError)?.description.contains("identitytoken") == true
        }
        #expect(throws: RegistryError.self) { _ = try AuthFile.parse(Array("[1]".utf8), source: "a.json") }
        #expect(throws: RegistryError.self) { _ = try AuthFile.parse(Array("{".utf8), source: "a.json") }
    }

    @Test func pathOrder() throws {
        #expect(throws: RegistryError.self) { _ = try AuthFile.resolvePath(explicit: "/nonexistent/auth.json", environment: [:]) }
        #expect(throws: RegistryError.self) {
            _ = try AuthFile.resolvePath(explicit: nil, environment: ["REGISTRY_AUTH_FILE": "/nonexistent/auth.json"])
        }
        let path = NSTemporaryDirectory() + "veil-auth-\(getpid()).json"
        try "{}".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect(try AuthFile.resolvePath(explicit: nil, environment: ["REGISTRY_AUTH_FILE": path]) == path)
        #expect(try AuthFile.resolvePath(explicit: path, environment: ["REGISTRY_AUTH_FILE": "/x"]) == path)
    }
}

@Suite struct ChallengeTests {
    @Test func bearerWithQuotedCommas() {
        let challenges = Challenge.parse(#"Bearer realm="https://auth.io/token",service="reg.io",scope="repository:a/b:pull,push""#)
        #expect(challenges == [Challenge(scheme: "bearer", parameters: [
            "realm": "https://auth.io/token", "service": "reg.io", "scope": "repository:a/b:pull,push"])])
    }

    @Test func severalChallengesAndBareValues() {
        let challenges = Challenge.parse(#"Basic realm="Registry Realm", Bearer realm=https://t.io/token, service="s\"q""#)
        #expect(challenges.count == 2)
        #expect(challenges.first == Challenge(scheme: "basic", parameters: ["realm": "Registry Realm"]))
        #expect(challenges.last == Challenge(scheme: "bearer", parameters: ["realm": "https://t.io/token", "service": "s\"q"]))
        #expect(Challenge.parse("") == [])
        #expect(Challenge.parse("Negotiate") == [Challenge(scheme: "negotiate", parameters: [:])])
        #expect(Challenge.parse(#"Bearer error="insufficient_scope",realm="r""#).first?.parameters["error"] == "insufficient_scope")
    }
}

@Suite struct ArtifactRulesTests {
    static let digest = "sha256:" + String(repeating: "e", count: 64)

    func manifest(config: String, artifactType: String? = nil, layers: Int = 1, size: Int = 100, mediaType: String = "application/vnd.oci.image.manifest.v1+json") -> [UInt8] {
        let layer = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(Self.digest)","size":\#(size)}"#
        let artifact = artifactType.map { #","artifactType":"\#($0)""# } ?? ""
        return Array(#"""
            {"schemaVersion":2,"mediaType":"\#(mediaType)"\#(artifact),"config":{"mediaType":"\#(config)","digest":"\#(Self.digest)","size":2},"layers":[\#(Array(repeating: layer, count: layers).joined(separator: ","))]}
            """#.utf8)
    }

    func refusal(_ bytes: [UInt8], limit: Int = 1 << 20) -> RegistryError? {
        do throws(RegistryError) {
            _ = try ProfileArtifact.select(manifest: bytes, reference: "r.io/p:t", maxProfileBytes: limit)
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptedTypes() throws {
        for bytes in [manifest(config: ProfileArtifact.seccompConfigType), manifest(config: ProfileArtifact.unknownConfigType),
                      manifest(config: ProfileArtifact.emptyConfigType, artifactType: ProfileArtifact.seccompConfigType),
                      manifest(config: ProfileArtifact.emptyConfigType, artifactType: ProfileArtifact.unknownConfigType),
                      manifest(config: ProfileArtifact.seccompConfigType, mediaType: "application/vnd.docker.distribution.manifest.v2+json")] {
            let selection = try ProfileArtifact.select(manifest: bytes, reference: "r.io/p:t", maxProfileBytes: 1 << 20)
            #expect(selection.layerDigest == Self.digest)
            #expect(selection.layerSize == 100)
        }
    }

    @Test func refusedArtifacts() {
        #expect(refusal(manifest(config: "application/vnd.oci.image.config.v1+json"))?.kind == .wrongMediaType)
        #expect(refusal(manifest(config: ProfileArtifact.emptyConfigType))?.kind == .wrongMediaType)
        #expect(refusal(manifest(config: ProfileArtifact.emptyConfigType, artifactType: "application/vnd.unknown.artifact.v1"))?.kind == .wrongMediaType)
        #expect(refusal(manifest(config: ProfileArtifact.seccompConfigType, layers: 0))?.kind == .notAProfile)
        #expect(refusal(manifest(config: ProfileArtifact.seccompConfigType, layers: 2))?.kind == .notAProfile)
        #expect(refusal(manifest(config: ProfileArtifact.seccompConfigType, size: 2000), limit: 1000)?.kind == .tooLarge)
        #expect(refusal(manifest(config: ProfileArtifact.seccompConfigType, mediaType: "application/vnd.oci.image.index.v1+json"))?.kind == .wrongMediaType)
        #expect(refusal(Array("not json".utf8))?.kind == .protocolError)
        let error = refusal(manifest(config: "text/plain"))
        #expect(error?.description.hasPrefix("r.io/p:t: wrong media type: config media type text/plain") == true, "\(String(describing: error))")
    }

    func profileRefusal(_ json: String) -> RegistryError? {
        do throws(RegistryError) {
            _ = try ProfileArtifact.decodeProfile(Array(json.utf8), reference: "r.io/p:t")
            return nil
        } catch {
            return error
        }
    }

    @Test func profiles() throws {
        let good = #"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#
        #expect(try ProfileArtifact.decodeProfile(Array(good.utf8), reference: "r").syscalls?.count == 1)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#)?.description.contains("listenerPath") == true)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"x"}"#)?.description.contains("listenerMetadata") == true)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#)?.description.contains("SCMP_ACT_NOTIFY") == true)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_BOGUS"}"#)?.description.contains("does not compile") == true)
        #expect(profileRefusal(#"{"syscalls":[]}"#)?.kind == .notAProfile)
        #expect(profileRefusal("[]")?.kind == .notAProfile)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[],"syscalls":[]}"#)?.description.contains("containers-common") == true)
        #expect(profileRefusal(#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}}]}"#)?.kind == .notAProfile)
    }

    @Test func pushedManifestIsReproducibleAndAccepted() throws {
        let layer = Array(#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.utf8)
        let first = ProfileArtifact.manifest(layer: layer, title: "my \"profile\".json")
        #expect(first == ProfileArtifact.manifest(layer: layer, title: "my \"profile\".json"))
        let object = try JSONSerialization.jsonObject(with: Data(first)) as? [String: Any]
        #expect(object?["artifactType"] as? String == ProfileArtifact.seccompConfigType)
        let layers = object?["layers"] as? [[String: Any]]
        #expect((layers?.first?["annotations"] as? [String: String])?["org.opencontainers.image.title"] == "my \"profile\".json")
        #expect((object?["annotations"] as? [String: String])?["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z")
        // The empty config's well-known digest.
        #expect((object?["config"] as? [String: Any])?["digest"] as? String == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        let selection = try ProfileArtifact.select(manifest: first, reference: "r", maxProfileBytes: 1 << 20)
        #expect(selection.layerSize == layer.count)
    }
}

@Suite struct HTTPURLTests {
    @Test func parsesAndResolves() throws {
        let url = try #require(HTTPURL.parse("https://Reg.io:8443/v2/x/blobs/uploads/abc?_state=q"))
        #expect(url.host == "Reg.io" && url.port == 8443 && url.target == "/v2/x/blobs/uploads/abc?_state=q" && url.authority == "Reg.io:8443")
        #expect(HTTPURL.parse("http://h.io")?.target == "/")
        #expect(HTTPURL.parse("https://[::1]:5000/v2/")?.host == "::1")
        #expect(HTTPURL.parse("https://h.io/")?.authority == "h.io")
        #expect(HTTPURL.parse("/v2/p/blobs/x", relativeTo: url)?.description == "https://Reg.io:8443/v2/p/blobs/x")
        #expect(HTTPURL.parse("ftp://h.io/") == nil)
        #expect(HTTPURL.parse("https://user@h.io/") == nil)
        #expect(HTTPURL.parse("https://h.io:0/") == nil)
    }
}

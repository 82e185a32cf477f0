// Seccomp profiles as OCI artifacts against a real registry (Debian's docker-registry, see
// SupportRegistry.swift): veil seccomp push/pull/inspect over plain HTTP, HTTPS with a test CA and
// htpasswd auth; interop with skopeo both ways; every refusal names the reference and the cause;
// the cache makes a second pull of a tag cost no request.

import Foundation
import Testing

@Suite("SeccompRegistry", .serialized)
struct SeccompRegistryTests {
    /// The rig itself (the lead's containerd/CRI tests use pushImage): an image with manifest
    /// annotations lands in a TLS + htpasswd registry and reads back with skopeo.
    @Test func rigPushesAnImageWithAnnotations() throws {
        let rig = try RegistryRig.start(tls: true, htpasswd: (user: "veil", password: "s3cret"))
        defer { rig.stop() }
        let reference = try rig.pushImage(repo: "busybox", tag: "annotated", annotations: ["example.com/key": "value"])
        let raw = try runCommand("skopeo", ["inspect", "--raw"] + rig.skopeoFlags(prefix: "") + ["docker://" + reference])
        #expect(raw.succeeded, "\(raw)")
        #expect(raw.stdout.contains("\"example.com/key\":\"value\""), "\(raw)")
        #expect(rig.requestCount(pathContaining: "PUT /v2/busybox/manifests/annotated") == 1, "\(rig.log())")
        // Without credentials the registry refuses.
        let anonymous = try runCommand("skopeo", ["inspect", "--raw", "--cert-dir", rig.certDirectory + "/" + rig.host, "docker://" + reference])
        #expect(!anonymous.succeeded, "\(anonymous)")
    }

    // MARK: - veil seccomp push / pull / inspect

    static let profileJSON = """
        {"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],\
        "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1},{"names":["chroot"],"action":"SCMP_ACT_ERRNO"}]}
        """

    /// veil with the rig's registry files and a cache of the test's own.
    func veil(_ rig: RegistryRig, _ arguments: [String], cache: String? = nil, extra: [String] = []) throws -> CommandResult {
        let veil = try requireVeil()
        let cacheDirectory = cache ?? rig.directory.file("cache-\(UInt32.random(in: 0...UInt32.max))")
        return try runCommand(veil, ["seccomp"] + arguments + rig.settingsArguments + ["--cache-dir", cacheDirectory] + extra, timeout: 60)
    }

    /// A failed command whose message names the reference and the cause.
    func expectRefusal(_ result: CommandResult, reference: String, cause: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.succeeded, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains(reference), "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains(cause), "\(result)", sourceLocation: sourceLocation)
    }

    func pushPullInspect(_ rig: RegistryRig) throws {
        let reference = rig.reference("profiles/deny-mkdir", "v1")
        let digest = try rig.pushProfile(repo: "profiles/deny-mkdir", tag: "v1", json: Self.profileJSON)
        // Same profile, same digest (created is fixed).
        #expect(try rig.pushProfile(repo: "profiles/deny-mkdir", tag: "v1", json: Self.profileJSON) == digest)
        let output = rig.directory.file("pulled.json")
        let pulled = try veil(rig, ["pull", reference, "-o", output])
        #expect(pulled.succeeded, "\(pulled)")
        #expect(pulled.stdout == digest + "\n", "\(pulled)")
        #expect((try? String(contentsOfFile: output, encoding: .utf8)) == Self.profileJSON)
        let inspected = try veil(rig, ["inspect", reference, "--format", "json"])
        #expect(inspected.succeeded, "\(inspected)")
        let json = try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any]
        #expect(json?["manifestDigest"] as? String == digest)
        #expect(json?["configMediaType"] as? String == "application/vnd.cncf.seccomp-profile.config.v1+json")
        #expect(json?["layerMediaType"] as? String == "application/vnd.oci.image.layer.v1.tar")
        #expect(json?["layerSize"] as? Int == Self.profileJSON.utf8.count)
        #expect(json?["defaultAction"] as? String == "SCMP_ACT_ALLOW")
        #expect(json?["architectures"] as? [String] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        #expect(json?["syscallRules"] as? Int == 2)
        #expect(json?["syscallNames"] as? Int == 3)
        let text = try veil(rig, ["inspect", reference])
        #expect(text.succeeded && text.stdout.contains("Default action:  SCMP_ACT_ALLOW") && text.stdout.contains(digest), "\(text)")
    }

    @Test func plainHTTP() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        try pushPullInspect(rig)
        // Without registries.conf's `insecure = true`, veil insists on verified TLS; --insecure allows plain HTTP.
        let strict = rig.directory.file("strict.conf")
        try RegistryRig.write("", to: strict)
        let reference = rig.reference("profiles/deny-mkdir", "v1")
        let refused = try veil(rig, ["pull", reference], extra: ["--registries-conf", strict])
        expectRefusal(refused, reference: reference, cause: "TLS")
        let allowed = try veil(rig, ["pull", reference, "--insecure"], extra: ["--registries-conf", strict])
        #expect(allowed.succeeded, "\(allowed)")
    }

    @Test func httpsWithTestCA() throws {
        let rig = try RegistryRig.start(tls: true)
        defer { rig.stop() }
        try pushPullInspect(rig)
        // The CA is only trusted through certs.d.
        let reference = rig.reference("profiles/deny-mkdir", "v1")
        let empty = rig.directory.file("no-certs")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let untrusted = try veil(rig, ["pull", reference], extra: ["--cert-dir", empty])
        expectRefusal(untrusted, reference: reference, cause: "TLS")
    }

    @Test func htpasswdOverHTTPS() throws {
        let rig = try RegistryRig.start(tls: true, htpasswd: (user: "veil", password: "s3cret"))
        defer { rig.stop() }
        try pushPullInspect(rig)
        let reference = rig.reference("profiles/deny-mkdir", "v1")
        let noCredentials = rig.directory.file("empty-auth.json")
        try RegistryRig.write("{\"auths\":{}}", to: noCredentials)
        expectRefusal(try veil(rig, ["pull", reference], extra: ["--authfile", noCredentials]), reference: reference, cause: "unauthorized")
        let wrong = rig.directory.file("wrong-auth.json")
        let token = Data("veil:wrong".utf8).base64EncodedString()
        try RegistryRig.write("{\"auths\":{\"\(rig.host)\":{\"auth\":\"\(token)\"}}}", to: wrong)
        expectRefusal(try veil(rig, ["pull", reference], extra: ["--authfile", wrong]), reference: reference, cause: "unauthorized")
        // $REGISTRY_AUTH_FILE is honoured when --authfile is not given.
        let veilPath = try requireVeil()
        let environment = try runCommand(veilPath, ["seccomp", "pull", reference, "--registries-conf", rig.registriesConf,
                                                    "--cert-dir", rig.certDirectory, "--cache-dir", rig.directory.file("env-cache")],
                                         environment: ["REGISTRY_AUTH_FILE": rig.authFile])
        #expect(environment.succeeded, "\(environment)")
    }

    // MARK: - interop with skopeo

    /// An artifact layout as oras or SPO write it, copied in by skopeo.
    func copyArtifact(_ rig: RegistryRig, repo: String, tag: String, config: String, configBytes: String = "{}",
                      artifactType: String? = nil, layer: Data) throws -> String {
        let work = try TempDir(prefix: "veil-artifact")
        defer { work.remove() }
        let layout = OCILayout(directory: work.file("layout"))
        let configDescriptor = try layout.addBlob(Data(configBytes.utf8), mediaType: config)
        let layerDescriptor = try layout.addBlob(layer, mediaType: "application/vnd.oci.image.layer.v1.tar")
        var manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": configDescriptor.json(),
            "layers": [layerDescriptor.json(annotations: ["org.opencontainers.image.title": "profile.json"])],
        ]
        if let artifactType { manifest["artifactType"] = artifactType }
        try layout.addManifest(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]), tag: tag)
        try layout.write()
        try rig.copyLayout(layout.directory, tag: tag, repo: repo, destinationTag: tag)
        return rig.reference(repo, tag)
    }

    @Test func skopeoCopiedArtifactsPull() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let layer = Data(Self.profileJSON.utf8)
        let cases: [(String, String, String?)] = [
            ("cncf", "application/vnd.cncf.seccomp-profile.config.v1+json", nil),
            ("older", "application/vnd.unknown.config.v1+json", nil),
            ("empty", "application/vnd.oci.empty.v1+json", "application/vnd.unknown.config.v1+json"),
        ]
        for (tag, config, artifactType) in cases {
            let reference = try copyArtifact(rig, repo: "layouts/p", tag: tag, config: config, artifactType: artifactType, layer: layer)
            let output = rig.directory.file("\(tag).json")
            let pulled = try veil(rig, ["pull", reference, "-o", output])
            #expect(pulled.succeeded, "\(tag): \(pulled)")
            #expect((try? String(contentsOfFile: output, encoding: .utf8)) == Self.profileJSON, "\(tag)")
        }
    }

    @Test func skopeoReadsWhatVeilPushed() throws {
        let rig = try RegistryRig.start(tls: true, htpasswd: (user: "u", password: "p"))
        defer { rig.stop() }
        let digest = try rig.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        let raw = try runCommand("skopeo", ["inspect", "--raw"] + rig.skopeoFlags(prefix: "") + ["docker://" + rig.reference("profiles/x", "v1")])
        #expect(raw.succeeded, "\(raw)")
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any]
        #expect(manifest?["artifactType"] as? String == "application/vnd.cncf.seccomp-profile.config.v1+json")
        #expect((manifest?["config"] as? [String: Any])?["mediaType"] as? String == "application/vnd.cncf.seccomp-profile.config.v1+json")
        let layers = manifest?["layers"] as? [[String: Any]]
        #expect(layers?.count == 1)
        #expect((layers?.first?["annotations"] as? [String: String])?["org.opencontainers.image.title"] == "seccomp.json")
        #expect("sha256:" + (try sha256Hex(Data(raw.stdout.utf8))) == digest)
        // skopeo can copy the artifact out byte for byte, too.
        let out = rig.directory.file("out")
        let copied = try runCommand("skopeo", ["copy", "--preserve-digests"] + rig.skopeoFlags(prefix: "src")
                                    + ["docker://" + rig.reference("profiles/x", "v1"), "oci:\(out):v1"], timeout: 60)
        #expect(copied.succeeded, "\(copied)")
        let layerDigest = (layers?.first?["digest"] as? String ?? "").replacingOccurrences(of: "sha256:", with: "")
        #expect((try? String(contentsOfFile: out + "/blobs/sha256/" + layerDigest, encoding: .utf8)) == Self.profileJSON)
    }

    // MARK: - refusals

    @Test func refusalsNameTheReferenceAndCause() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let veilPath = try requireVeil()
        // Nothing listens on the port.
        let closed = "127.0.0.1:1/profiles/x:v1"
        expectRefusal(try veil(rig, ["pull", closed, "--insecure", "--timeout", "10"]), reference: closed, cause: "unreachable")
        // Unknown tag.
        _ = try rig.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        let unknown = rig.reference("profiles/x", "nope")
        expectRefusal(try veil(rig, ["pull", unknown]), reference: unknown, cause: "manifest unknown")
        // An image is not a profile.
        let image = try rig.pushImage(repo: "images/busybox", tag: "v1", annotations: [:])
        expectRefusal(try veil(rig, ["pull", image]), reference: image, cause: "wrong media type")
        // A layer over the cap (the registry's size is believed first; then the cap on the body).
        let big = try copyArtifact(rig, repo: "layouts/big", tag: "v1", config: "application/vnd.cncf.seccomp-profile.config.v1+json",
                                   layer: Data(repeating: UInt8(ascii: " "), count: (1 << 20) + 1))
        expectRefusal(try veil(rig, ["pull", big]), reference: big, cause: "too large")
        let small = rig.reference("profiles/x", "v1")
        expectRefusal(try veil(rig, ["pull", small, "--max-profile-bytes", "64"]), reference: small, cause: "too large")
        // A profile that does not compile, published by someone else.
        let bogus = try copyArtifact(rig, repo: "layouts/bogus", tag: "v1", config: "application/vnd.cncf.seccomp-profile.config.v1+json",
                                     layer: Data(#"{"defaultAction":"SCMP_ACT_BOGUS"}"#.utf8))
        expectRefusal(try veil(rig, ["pull", bogus]), reference: bogus, cause: "not a seccomp profile")
        let notify = try copyArtifact(rig, repo: "layouts/notify", tag: "v1", config: "application/vnd.cncf.seccomp-profile.config.v1+json",
                                      layer: Data(#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#.utf8))
        expectRefusal(try veil(rig, ["pull", notify]), reference: notify, cause: "listenerPath")
        // veil push refuses it before any request.
        let file = rig.directory.file("bogus.json")
        try RegistryRig.write(#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, to: file)
        let before = rig.requestCount(pathContaining: "/v2/")
        let pushed = try runCommand(veilPath, ["seccomp", "push", rig.reference("profiles/bogus", "v1"), file] + rig.settingsArguments)
        #expect(!pushed.succeeded && pushed.stderr.contains(file) && pushed.stderr.contains("SCMP_ACT_BOGUS"), "\(pushed)")
        #expect(rig.requestCount(pathContaining: "/v2/") == before)
        // A short name.
        expectRefusal(try veil(rig, ["pull", "deny-mkdir:v1"]), reference: "deny-mkdir:v1", cause: "short names")
    }

    @Test func tamperedBlobIsRefused() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let reference = rig.reference("profiles/x", "v1")
        _ = try rig.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        let layerDigest = "sha256:" + (try sha256Hex(Data(Self.profileJSON.utf8)))
        let path = rig.blobPath(digest: layerDigest)
        let original = try String(contentsOfFile: path, encoding: .utf8)
        // Same length, different content: only the digest can tell.
        try RegistryRig.write(original.replacingOccurrences(of: "mkdirat", with: "rmdirat"), to: path)
        expectRefusal(try veil(rig, ["pull", reference]), reference: reference, cause: "digest mismatch")
    }

    // MARK: - cache

    @Test func secondPullMakesNoRequest() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let reference = rig.reference("profiles/x", "v1")
        let digest = try rig.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        let cache = rig.directory.file("cache")
        let first = try veil(rig, ["inspect", reference, "--format", "json"], cache: cache)
        #expect(first.succeeded && first.stdout.contains("\"fromCache\" : false"), "\(first)")
        let requests = rig.requestCount(pathContaining: "/v2/")
        #expect(rig.requestCount(pathContaining: "GET /v2/profiles/x/manifests/v1") == 1, "\(rig.log())")
        let second = try veil(rig, ["inspect", reference, "--format", "json"], cache: cache)
        #expect(second.succeeded && second.stdout.contains("\"fromCache\" : true") && second.stdout.contains(digest), "\(second)")
        #expect(rig.requestCount(pathContaining: "/v2/") == requests, "\(rig.log())")
        // Digest references never ask again either.
        let pinned = rig.reference("profiles/x", "v1") + "@" + digest
        #expect(try veil(rig, ["pull", pinned], cache: cache).succeeded)
        let afterPinned = rig.requestCount(pathContaining: "/v2/")
        #expect(try veil(rig, ["pull", pinned], cache: cache).succeeded)
        #expect(rig.requestCount(pathContaining: "/v2/") == afterPinned)
        // A TTL of 0 asks for the manifest again but reuses the blob.
        let blobsBefore = rig.requestCount(pathContaining: "/blobs/")
        let revalidated = try veil(rig, ["pull", reference, "--tag-ttl", "0"], cache: cache)
        #expect(revalidated.succeeded, "\(revalidated)")
        #expect(rig.requestCount(pathContaining: "GET /v2/profiles/x/manifests/v1") == 2)
        #expect(rig.requestCount(pathContaining: "/blobs/") == blobsBefore)
        // A corrupt cache entry is noticed, removed and fetched again.
        let cached = cache + "/blobs/sha256/" + (try sha256Hex(Data(Self.profileJSON.utf8)))
        try RegistryRig.write("{\"defaultAction\":\"SCMP_ACT_KILL\"}", to: cached)
        let refetched = try veil(rig, ["pull", reference, "-o", rig.directory.file("again.json")], cache: cache)
        #expect(refetched.succeeded, "\(refetched)")
        #expect((try? String(contentsOfFile: rig.directory.file("again.json"), encoding: .utf8)) == Self.profileJSON)
        #expect((try? String(contentsOfFile: cached, encoding: .utf8)) == Self.profileJSON)
    }

    @Test func concurrentPullsShareOneFetch() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let reference = rig.reference("profiles/x", "v1")
        _ = try rig.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        let cache = rig.directory.file("cache")
        let veilPath = try requireVeil()
        let processes = (0..<4).map { _ -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: veilPath)
            process.arguments = ["seccomp", "pull", reference, "--cache-dir", cache] + rig.settingsArguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in processes { try process.run() }
        let statuses = processes.map { waitForExit($0, timeout: 60) }
        #expect(statuses.allSatisfy { $0 == 0 }, "\(statuses)")
        // The flock makes the three others wait and then read the cache.
        #expect(rig.requestCount(pathContaining: "GET /v2/profiles/x/manifests/v1") == 1, "\(rig.log())")
    }

    // MARK: - image annotations (the image-side lookup)

    @Test func imageAnnotationsAreReadAndCached() throws {
        let rig = try RegistryRig.start(tls: true, htpasswd: (user: "u", password: "p"))
        defer { rig.stop() }
        let key = "seccomp-profile.kubernetes.cri-o.io/POD"
        let image = try rig.pushImage(repo: "images/annotated", tag: "v1", annotations: [key: rig.reference("profiles/x", "v1")])
        let cache = rig.directory.file("cache")
        let first = try veil(rig, ["image-annotations", image], cache: cache)
        #expect(first.succeeded, "\(first)")
        let annotations = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: String]
        #expect(annotations?[key] == rig.reference("profiles/x", "v1"), "\(first)")
        let requests = rig.requestCount(pathContaining: "/v2/")
        let second = try veil(rig, ["image-annotations", image], cache: cache)
        #expect(second.stdout == first.stdout)
        #expect(rig.requestCount(pathContaining: "/v2/") == requests)
        // An image without annotations has none; an unknown image says so.
        let plain = try rig.pushImage(repo: "images/plain", tag: "v1", annotations: [:])
        let none = try veil(rig, ["image-annotations", plain])
        let noneParsed = try? JSONSerialization.jsonObject(with: Data(none.stdout.utf8)) as? [String: String]
        #expect(none.succeeded && noneParsed == [:], "\(none)")
        let missing = rig.reference("images/missing", "v1")
        expectRefusal(try veil(rig, ["image-annotations", missing]), reference: missing, cause: "manifest unknown")
    }

    /// A profile behind an image index: veil picks linux/amd64.
    @Test func profileBehindAnIndex() throws {
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let work = try TempDir(prefix: "veil-index")
        defer { work.remove() }
        let layout = OCILayout(directory: work.file("layout"))
        let config = try layout.addBlob(Data("{}".utf8), mediaType: "application/vnd.cncf.seccomp-profile.config.v1+json")
        var entries: [[String: Any]] = []
        for (architecture, action) in [("arm64", "SCMP_ACT_LOG"), ("amd64", "SCMP_ACT_ALLOW")] {
            let layer = try layout.addBlob(Data("{\"defaultAction\":\"\(action)\"}".utf8), mediaType: "application/vnd.oci.image.layer.v1.tar")
            let manifest: [String: Any] = ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "config": config.json(), "layers": [layer.json()]]
            let blob = try layout.addBlob(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]),
                                          mediaType: "application/vnd.oci.image.manifest.v1+json")
            var entry = blob.json()
            entry["platform"] = ["os": "linux", "architecture": architecture]
            entries.append(entry)
        }
        let index: [String: Any] = ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries]
        try layout.addManifest(try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]), tag: "multi",
                               mediaType: "application/vnd.oci.image.index.v1+json")
        try layout.write()
        let copied = try runCommand("skopeo", ["copy", "--all", "--preserve-digests"] + rig.skopeoFlags(prefix: "dest")
                                    + ["oci:\(layout.directory):multi", "docker://" + rig.reference("profiles/multi", "v1")], timeout: 60)
        #expect(copied.succeeded, "\(copied)")
        let inspected = try veil(rig, ["inspect", rig.reference("profiles/multi", "v1"), "--format", "json"])
        #expect(inspected.succeeded && inspected.stdout.contains("\"defaultAction\" : \"SCMP_ACT_ALLOW\""), "\(inspected)")
    }

    // MARK: - registries.conf

    /// A location rewrite, a mirror tried before the primary (and skipped when down), a blocked prefix.
    @Test func registriesConfRewriteMirrorsAndBlocks() throws {
        let primary = try RegistryRig.start()
        defer { primary.stop() }
        let mirror = try RegistryRig.start()
        defer { mirror.stop() }
        _ = try primary.pushProfile(repo: "profiles/x", tag: "v1", json: Self.profileJSON)
        _ = try mirror.pushProfile(repo: "cache/profiles/x", tag: "v1", json: Self.profileJSON)
        let conf = primary.directory.file("mirrors.conf")
        try RegistryRig.write("""
            [[registry]]
            prefix = "profiles.example.test"
            location = "\(primary.host)/profiles"
            insecure = true
            [[registry.mirror]]
            location = "127.0.0.1:1/down"
            insecure = true
            [[registry.mirror]]
            location = "\(mirror.host)/cache/profiles"
            insecure = true

            [[registry]]
            prefix = "blocked.example.test"
            location = "\(primary.host)"
            blocked = true
            """, to: conf)
        let reference = "profiles.example.test/x:v1"
        let pulled = try veil(primary, ["pull", reference], extra: ["--registries-conf", conf])
        #expect(pulled.succeeded, "\(pulled)")
        #expect(mirror.requestCount(pathContaining: "GET /v2/cache/profiles/x/manifests/v1") == 1, "\(mirror.log())")
        #expect(primary.requestCount(pathContaining: "GET /v2/profiles/x/manifests/v1") == 0, "\(primary.log())")
        // With the mirror gone, the primary answers.
        mirror.stop()
        let fallback = try veil(primary, ["pull", reference], extra: ["--registries-conf", conf])
        #expect(fallback.succeeded, "\(fallback)")
        #expect(primary.requestCount(pathContaining: "GET /v2/profiles/x/manifests/v1") == 1, "\(primary.log())")
        // Pushes never go to mirrors.
        let pushedBefore = primary.requestCount(pathContaining: "PUT /v2/profiles/y/manifests/v1")
        let file = primary.directory.file("seccomp.json")
        try RegistryRig.write(Self.profileJSON, to: file)
        let pushed = try runCommand(try requireVeil(), ["seccomp", "push", "profiles.example.test/y:v1", file,
                                                        "--registries-conf", conf, "--cache-dir", primary.directory.file("c")])
        #expect(pushed.succeeded, "\(pushed)")
        #expect(primary.requestCount(pathContaining: "PUT /v2/profiles/y/manifests/v1") == pushedBefore + 1)
        expectRefusal(try veil(primary, ["pull", "blocked.example.test/profiles/x:v1"], extra: ["--registries-conf", conf]),
                      reference: "blocked.example.test/profiles/x:v1", cause: "blocked")
    }

    /// What the containerd/CRI tests rely on: containerd pulls the rig's image through hosts.toml.
    @Test(arguments: [false, true])
    func containerdPullsTheRigsImage(tls: Bool) throws {
        let registry = try RegistryRig.start(tls: tls, htpasswd: tls ? (user: "u", password: "p") : nil)
        defer { registry.stop() }
        let image = try registry.pushImage(repo: "images/busybox", tag: "v1", annotations: ["example.com/k": "v"])
        let containerd = try ContainerdRig(importsImage: false)
        defer { containerd.stop() }
        let hosts = registry.directory.file("containerd-hosts")
        try registry.writeContainerdHosts(to: hosts)
        let pulled = try containerd.ctr(["images", "pull", "--hosts-dir", hosts] + (tls ? ["--user", "u:p"] : []) + [image], timeout: 60)
        #expect(pulled.succeeded, "\(pulled)")
        let listed = try containerd.ctr(["images", "ls", "-q"])
        #expect(listed.stdout.contains(image), "\(listed)")
    }
}

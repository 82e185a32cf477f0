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
}

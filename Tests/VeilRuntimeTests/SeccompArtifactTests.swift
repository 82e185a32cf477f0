// Seccomp profiles named by CRI-O's annotations and pulled from a real registry (Debian's
// docker-registry, SupportRegistry.swift) when a container is created by `veil run`, at both
// levels: which annotation wins, when the annotation is ignored, what a pulled profile does at
// the sandbox level, the cache, and the errors (create fails naming the annotation and the
// reference, and leaves nothing behind).

import Foundation
import Testing

private let registryAvailable = findExecutable("docker-registry") != nil && findExecutable("skopeo") != nil

/// veil and veil-native: runc has no such annotations.
private var veilLevels: [RuntimeUnderTest] { RuntimeUnderTest.all.filter(\.isVeil) }

private let podKey = "seccomp-profile.kubernetes.cri-o.io/POD"

/// Allows everything except `calls`, which fail with ENOSYS ("Function not implemented").
func refusingProfile(_ calls: [String]) -> String {
    """
    {"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
     "syscalls":[{"names":[\(calls.map { "\"\($0)\"" }.joined(separator: ","))],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}
    """
}

@Suite("seccomp profiles from a registry, by annotation (veil run)", .serialized,
       .enabled(if: registryAvailable || veilRequired, "needs docker-registry and skopeo (make deps)"))
struct SeccompArtifactTests {
    /// veil's global flags that point it at the rig's registries.conf, auth file and certs.d.
    static func registryFlags(_ rig: RegistryRig) -> [String] {
        ["--registries-conf", rig.registriesConf, "--registry-auth-file", rig.authFile, "--registry-cert-dir", rig.certDirectory]
    }

    /// A bundle whose config.json carries `annotations` and a writable rootfs.
    static func bundle(_ args: [String], annotations: [String: String]) throws -> TestBundle {
        let bundle = try TestBundle(args)
        try bundle.edit { config in
            config["root"] = ["path": "rootfs", "readonly": false]
            config["annotations"] = annotations
        }
        return bundle
    }

    @Test("the POD annotation's profile refuses in the container and in exec, and state names it", arguments: veilLevels)
    func podAnnotation(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let digest = try rig.pushProfile(repo: "profiles/no-mkdir", tag: "v1", json: refusingProfile(["mkdir", "mkdirat"]))
        let reference = rig.reference("profiles/no-mkdir", "v1")
        let bundle = try Self.bundle(["sh", "-c", "mkdir /tmp/x; echo status=$?; grep Seccomp: /proc/self/status; exec sleep 100"],
                                     annotations: [podKey: reference])
        defer { bundle.remove() }
        let flags = Self.registryFlags(rig)
        let run = try bundle.runtime(bin, flags + ["run", "-d", bundle.id])
        try #require(run.succeeded, "\(run)")
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let state = try #require(try bundle.state(bin))
        let annotations = state["annotations"] as? [String: String] ?? [:]
        #expect(annotations["dev.veil.seccomp-artifact"] == "\(reference)@\(digest)", "\(state)")
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "mkdir", "/tmp/y"])
        #expect(!exec.succeeded && exec.stderr.contains("Function not implemented"), "\(exec)")
        let touch = try bundle.runtime(bin, ["exec", bundle.id, "touch", "/tmp/z"])
        #expect(touch.succeeded, "only the profile's calls are refused: \(touch)")
    }

    @Test("the container's own key beats the POD key; another container gets the POD profile", arguments: veilLevels)
    func containerKeyWins(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        _ = try rig.pushProfile(repo: "profiles/pod", tag: "v1", json: refusingProfile(["mkdir", "mkdirat"]))
        _ = try rig.pushProfile(repo: "profiles/web", tag: "v1", json: refusingProfile(["chdir"]))
        let annotations = [podKey: rig.reference("profiles/pod", "v1"),
                           "seccomp-profile.kubernetes.cri-o.io/web": rig.reference("profiles/web", "v1")]
        let script = "mkdir /tmp/x && echo mkdir=ok; cd /tmp && echo cd=ok || echo cd=refused"
        for (name, expected) in [("web", ["mkdir=ok", "cd=refused"]), ("db", ["Function not implemented", "cd=ok"])] {
            let bundle = try Self.bundle(["sh", "-c", script], annotations: annotations.merging(["io.kubernetes.cri.container-name": name]) { $1 })
            defer { bundle.remove() }
            let run = try bundle.runtime(bin, Self.registryFlags(rig) + ["run", bundle.id])
            for text in expected { #expect((run.stdout + run.stderr).contains(text), "\(name): \(run)") }
        }
    }

    @Test("ignored when config.json has its own profile, when switched off, and for a pod's sandbox container", arguments: veilLevels)
    func ignored(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        _ = try rig.pushProfile(repo: "profiles/no-mkdir", tag: "v1", json: refusingProfile(["mkdir", "mkdirat"]))
        let annotations = [podKey: rig.reference("profiles/no-mkdir", "v1")]
        let script = ["sh", "-c", "mkdir /tmp/x && echo mkdir=ok"]
        let cases: [(String, [String], [String: String], [String: Any]?)] = [
            ("own profile", [], annotations, ["defaultAction": "SCMP_ACT_ALLOW", "syscalls": [["names": ["acct"], "action": "SCMP_ACT_ERRNO"]]]),
            ("switched off", ["--seccomp-artifacts=false"], annotations, nil),
            ("sandbox container", [], annotations.merging(["io.kubernetes.cri.container-type": "sandbox"]) { $1 }, nil),
        ]
        for (label, extra, annotations, profile) in cases {
            let bundle = try Self.bundle(script, annotations: annotations)
            defer { bundle.remove() }
            if let profile {
                try bundle.edit { config in
                    var linux = config["linux"] as? [String: Any] ?? [:]
                    linux["seccomp"] = profile
                    config["linux"] = linux
                }
            }
            let run = try bundle.runtime(bin, Self.registryFlags(rig) + extra + ["run", bundle.id])
            #expect(run.succeeded && run.stdout.contains("mkdir=ok"), "\(label): \(run)")
        }
        #expect(rig.requestCount(pathContaining: "GET /v2/profiles/no-mkdir/manifests/") == 0, "nothing may be pulled:\n\(rig.log())")
    }

    @Test("at the sandbox level the pulled profile stacks on the policy: it refuses more, never allows more")
    func stacksOnTheSandboxPolicy() throws {
        let bin = try requireVeil()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        // Allows everything: the sandbox still refuses what its policy refuses (mount, unshare).
        _ = try rig.pushProfile(repo: "profiles/allow-all", tag: "v1", json: #"{"defaultAction":"SCMP_ACT_ALLOW"}"#)
        // Refuses syslog (dmesg), which the sandbox's warden would answer.
        _ = try rig.pushProfile(repo: "profiles/no-syslog", tag: "v1", json: refusingProfile(["syslog"]))
        let allowAll = try Self.bundle(["sh", "-c", "mount -t tmpfs none /mnt && echo mounted; unshare -m true && echo unshared; dmesg | head -n1; echo done"],
                                       annotations: [podKey: rig.reference("profiles/allow-all", "v1")])
        defer { allowAll.remove() }
        let run = try allowAll.runtime(bin, Self.registryFlags(rig) + ["run", allowAll.id])
        #expect(run.stdout.contains("done") && !run.stdout.contains("mounted") && !run.stdout.contains("unshared"), "\(run)")
        #expect(run.stdout.contains("Starting veil"), "the warden still answers dmesg: \(run)")
        let noSyslog = try Self.bundle(["sh", "-c", "dmesg >/dev/null && echo dmesg=ok || echo dmesg=refused"],
                                       annotations: [podKey: rig.reference("profiles/no-syslog", "v1")])
        defer { noSyslog.remove() }
        let refused = try noSyslog.runtime(bin, Self.registryFlags(rig) + ["run", noSyslog.id])
        #expect(refused.stdout.contains("dmesg=refused") && refused.stderr.contains("Function not implemented"), "\(refused)")
    }

    @Test("a second container with the same reference makes no registry request")
    func cached() throws {
        let bin = try requireVeil()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        _ = try rig.pushProfile(repo: "profiles/cached", tag: "v1", json: refusingProfile(["mkdir", "mkdirat"]))
        let before = rig.requestCount(pathContaining: "/v2/profiles/cached/")
        var counts: [Int] = []
        for _ in 0..<2 {
            let bundle = try Self.bundle(["true"], annotations: [podKey: rig.reference("profiles/cached", "v1")])
            defer { bundle.remove() }
            let run = try bundle.runtime(bin, Self.registryFlags(rig) + ["run", bundle.id])
            #expect(run.succeeded, "\(run)")
            counts.append(rig.requestCount(pathContaining: "/v2/profiles/cached/"))
        }
        #expect(counts[0] > before, "the first container pulls: \(counts)\n\(rig.log())")
        #expect(counts[1] == counts[0], "the second one pulls nothing: \(counts)\n\(rig.log())")
    }

    @Test("an unreachable registry, an unknown tag or a profile that does not compile fails create, named, with nothing left",
          arguments: veilLevels)
    func errors(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        // A profile libseccomp cannot compile, pushed by skopeo (veil's push refuses it).
        let layout = OCILayout(directory: rig.directory.file("bad-layout"))
        let config = try layout.addBlob(Data("{}".utf8), mediaType: "application/vnd.cncf.seccomp-profile.config.v1+json")
        let layer = try layout.addBlob(Data(#"{"defaultAction":"SCMP_ACT_EXPLODE"}"#.utf8), mediaType: "application/vnd.oci.image.layer.v1.tar")
        let manifest: [String: Any] = ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "config": config.json(), "layers": [layer.json(annotations: ["org.opencontainers.image.title": "bad.json"])]]
        try layout.addManifest(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]), tag: "v1")
        try layout.write()
        try rig.copyLayout(layout.directory, tag: "v1", repo: "profiles/bad", destinationTag: "v1")

        let cases = [("127.0.0.1:1/profiles/none:v1", "127.0.0.1:1"),
                     (rig.reference("profiles/absent", "v1"), "profiles/absent"),
                     (rig.reference("profiles/bad", "v1"), "SCMP_ACT_EXPLODE")]
        for (reference, cause) in cases {
            let bundle = try Self.bundle(["true"], annotations: [podKey: reference])
            defer { bundle.remove() }
            let run = try bundle.runtime(bin, Self.registryFlags(rig) + ["run", bundle.id])
            #expect(!run.succeeded, "\(reference): \(run)")
            #expect(run.stderr.contains(podKey) && run.stderr.contains(reference) && run.stderr.contains(cause), "\(reference): \(run)")
            #expect(bundle.leftovers().isEmpty, "\(reference): \(bundle.leftovers())")
        }
    }
}

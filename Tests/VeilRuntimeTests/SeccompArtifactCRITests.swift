// Seccomp profiles from a registry through Kubernetes' path: containerd 1.6's CRI plugin and the
// veil shim, registered by `veil install --containerd --pass-seccomp-annotations` (the only way
// pods' seccomp-profile annotations reach the runtime), for the handlers veil and veil-native.
// A pod's POD annotation, a container's own annotation, an annotation on the image's manifest
// (image pulled by ctr from the same registry), and a RuntimeDefault container that
// keeps its profile.

import Foundation
import Testing

@Suite("CRI: seccomp profiles from a registry, by pod and image annotation", .serialized,
       .enabled(if: (canRunCRITests && findExecutable("docker-registry") != nil) || veilRequired,
                "needs root, docker-registry and the release build of veil and its shim"))
struct SeccompArtifactCRITests {
    static let base = "seccomp-profile.kubernetes.cri-o.io"

    /// containerd with CRI whose veil handlers pass the seccomp annotations, read registries as
    /// the registry rig says, and keep their state under the rig (so a test can ask `veil state`).
    /// `images` are pulled from the registry with ctr before the test's pods start.
    static func makeRig(registry: RegistryRig, images: [String]) throws -> ContainerdRig {
        let veil = try requireVeil()
        guard FileManager.default.isExecutableFile(atPath: shimBinary), FileManager.default.isExecutableFile(atPath: criDriverBinary) else {
            throw SupportError("the shim and veil-cri-driver must be built (swift build -c release; swift build --build-tests)")
        }
        let setup = CRISetup { configPath in
            let directory = (configPath as NSString).deletingLastPathComponent
            let registrySettings = """
                root = "\(directory)/r"
                registries_conf = "\(registry.registriesConf)"
                registry_auth_file = "\(registry.authFile)"
                registry_cert_dir = "\(registry.certDirectory)"
                seccomp_artifacts_from_images = true

                """
            try registrySettings.write(toFile: directory + "/veil.toml", atomically: true, encoding: .utf8)
            try ("isolation = \"native\"\n" + registrySettings).write(toFile: directory + "/veil-native.toml", atomically: true, encoding: .utf8)
            let installed = try runCommand(veil, ["install", "--containerd", "--config", configPath, "--config-path", directory + "/veil.toml",
                                                  "--native-config-path", directory + "/veil-native.toml", "--pass-seccomp-annotations",
                                                  "--no-binaries", "--no-restart"],
                                           environment: ["VEIL_INSTALL_STATE": directory + "/install.json"], timeout: 30)
            guard installed.succeeded else { throw SupportError("veil install --containerd failed:\n\(installed)") }
            // ctr pulls the annotated image from the same registry, over plain HTTP.
            try registry.writeContainerdHosts(to: directory + "/hosts")
        }
        let rig = try ContainerdRig(extraPath: (shimBinary as NSString).deletingLastPathComponent, cri: setup)
        do {
            try waitForCRI(rig)
            // The CRI plugin of containerd 1.6 sees images ctr adds once it restarts (as the rig's own imports).
            for image in images {
                let pulled = try rig.ctr(["images", "pull", "--hosts-dir", rig.directory + "/hosts", image], timeout: 120)
                guard pulled.succeeded else { throw SupportError("ctr images pull \(image): \(pulled)") }
            }
            if !images.isEmpty {
                try rig.restart()
                try waitForCRI(rig)
            }
        } catch {
            rig.stop()
            throw error
        }
        return rig
    }

    static func waitForCRI(_ rig: ContainerdRig) throws {
        let calls = CRICalls(socket: rig.address)
        let ready = try waitUntil(timeout: 120) { (try? calls.attempt("Version", [:], timeout: 10).get()) != nil }
        guard ready else { throw SupportError("the CRI plugin did not answer within 120 s\n\(rig.log)") }
    }

    static func podConfig(name: String, annotations: [String: String], logs: String, parent: String) -> [String: Any] {
        ["metadata": ["name": name, "uid": randomName(12), "namespace": "veil-test", "attempt": 0],
         "logDirectory": logs, "annotations": annotations,
         "linux": ["cgroupParent": parent, "securityContext": ["namespaceOptions": ["network": "NODE"]]] as [String: Any]]
    }

    /// Starts `name` (sleep) in the pod; its id.
    static func start(_ calls: CRICalls, pod: (id: String, config: [String: Any]), name: String, image: String,
                      security: [String: Any] = [:]) throws -> String {
        let config: [String: Any] = ["metadata": ["name": name, "attempt": 0], "image": ["image": image], "command": ["sleep", "1000"],
                                     "logPath": name + ".log", "linux": ["securityContext": security]]
        let created = try calls.call("CreateContainer", ["podSandboxId": pod.id, "config": config, "sandboxConfig": pod.config])
        guard let id = created["containerId"] as? String else { throw SupportError("CreateContainer: no id in \(created)") }
        try calls.call("StartContainer", ["containerId": id])
        return id
    }

    /// What `veil state` says the container runs under (the dev.veil.seccomp-artifact annotation).
    static func appliedProfile(_ rig: ContainerdRig, _ container: String) throws -> String? {
        let state = try runCommand(try requireVeil(), ["--root", rig.directory + "/r/k8s.io", "state", container])
        guard state.succeeded, let object = try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any] else {
            throw SupportError("veil state \(container): \(state)")
        }
        return (object["annotations"] as? [String: String])?["dev.veil.seccomp-artifact"]
    }

    @Test("pod, container and image annotations give the profile; RuntimeDefault keeps its own", arguments: ["veil", "veil-native"])
    func annotations(handler: String) throws {
        let registry = try RegistryRig.start()
        defer { registry.stop() }
        let noMkdir = registry.reference("profiles/no-mkdir", "v1"), noChdir = registry.reference("profiles/no-chdir", "v1")
        let noMkdirDigest = try registry.pushProfile(repo: "profiles/no-mkdir", tag: "v1", json: refusingProfile(["mkdir", "mkdirat"]))
        _ = try registry.pushProfile(repo: "profiles/no-chdir", tag: "v1", json: refusingProfile(["chdir"]))
        let image = try registry.pushImage(repo: "apps/annotated", tag: "1", annotations: [Self.base + "/POD": noMkdir])

        let rig = try Self.makeRig(registry: registry, images: [image])
        defer { rig.stop() }
        let calls = CRICalls(socket: rig.address)
        let parent = "/veil-test/cri-" + randomName(8)
        defer { removeCgroups(parent) }

        let podConfig = Self.podConfig(name: "annotated", annotations: [Self.base + "/POD": noMkdir, Self.base + "/web": noChdir],
                                       logs: rig.directory + "/logs", parent: parent)
        let podID = try #require(try calls.call("RunPodSandbox", ["config": podConfig, "runtimeHandler": handler])["podSandboxId"] as? String)
        defer {
            _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": podID])
            _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": podID])
        }
        let pod = (id: podID, config: podConfig)

        // The container's own key: chdir refused, mkdir allowed.
        let web = try Self.start(calls, pod: pod, name: "web", image: rig.image)
        let webChdir = try calls.exec(web, ["sh", "-c", "cd /tmp"])
        #expect(webChdir.status != 0 && webChdir.stderr.contains("Function not implemented"), "\(handler): cd in web: \(webChdir)")
        #expect(try calls.exec(web, ["mkdir", "/tmp/web"]).status == 0, "\(handler): mkdir in web")
        #expect(try Self.appliedProfile(rig, web)?.hasPrefix(noChdir + "@sha256:") == true, "\(handler): web's state")

        // Any other container: the POD key.
        let other = try Self.start(calls, pod: pod, name: "other", image: rig.image)
        let otherMkdir = try calls.exec(other, ["mkdir", "/tmp/other"])
        #expect(otherMkdir.status != 0 && otherMkdir.stderr.contains("Function not implemented"), "\(handler): mkdir in other: \(otherMkdir)")
        #expect(try Self.appliedProfile(rig, other) == noMkdir + "@" + noMkdirDigest, "\(handler): other's state")

        // A profile the pod asked for itself wins.
        let own = try Self.start(calls, pod: pod, name: "own", image: rig.image, security: ["seccomp": ["profileType": "RuntimeDefault"]])
        #expect(try calls.exec(own, ["mkdir", "/tmp/own"]).status == 0, "\(handler): RuntimeDefault container")
        #expect(try calls.exec(own, ["unshare", "-U", "true"]).status != 0, "\(handler): RuntimeDefault still refuses unshare")
        #expect(try Self.appliedProfile(rig, own) == nil, "\(handler): RuntimeDefault container's state")

        // The image's manifest names the profile; a pod without annotations.
        let plainConfig = Self.podConfig(name: "plain", annotations: [:], logs: rig.directory + "/logs-plain", parent: parent)
        let plainID = try #require(try calls.call("RunPodSandbox", ["config": plainConfig, "runtimeHandler": handler])["podSandboxId"] as? String)
        defer {
            _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": plainID])
            _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": plainID])
        }
        let fromImage = try Self.start(calls, pod: (plainID, plainConfig), name: "app", image: image)
        let imageMkdir = try calls.exec(fromImage, ["mkdir", "/tmp/app"])
        #expect(imageMkdir.status != 0 && imageMkdir.stderr.contains("Function not implemented"), "\(handler): mkdir under the image's profile: \(imageMkdir)")
        let plain = try Self.start(calls, pod: (plainID, plainConfig), name: "busybox", image: rig.image)
        #expect(try calls.exec(plain, ["mkdir", "/tmp/plain"]).status == 0, "\(handler): an image without the annotation")
    }
}

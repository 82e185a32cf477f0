// `veil verify` against containerd 1.6's CRI plugin on a private socket: the containerd config is
// a base config edited by `veil install --containerd` (so the `veil` handler comes from the
// installer), containerd finds containerd-shim-veil-v1 and veil first on its PATH, and the pod
// sandbox image is a locally built pause image. Afterwards nothing may be left: no pod (asked with
// ListPodSandbox through VeilCRI's client), no containerd container, no shim, no cgroup.

import Foundation
import Testing
import VeilCRI
#if canImport(Glibc)
import Glibc
#endif

/// As the other end-to-end suites: runs as root whenever a veil binary is named or built, and then
/// fails (never skips) when something it needs is missing.
private let canRunVerifyTests = veilRequired || getuid() == 0
    && (ProcessInfo.processInfo.environment["VEIL_BINARY"] != nil || FileManager.default.isExecutableFile(atPath: veilBinary))

@Suite("veil verify through containerd's CRI plugin", .serialized,
       .enabled(if: canRunVerifyTests, "needs root and the release build of veil and its shim (VEIL_BINARY)"))
struct VerifyTests {
    /// A CRI-enabled rig whose config.toml got its `veil` runtime from `veil install --containerd`.
    private func makeRig() async throws -> ContainerdRig {
        let veil = try requireVeil()
        guard FileManager.default.isExecutableFile(atPath: shimBinary) else {
            throw SupportError("shim not found at \(shimBinary) (build with `swift build -c release`)")
        }
        let setup = CRISetup { configPath in
            let state = (configPath as NSString).deletingLastPathComponent + "/install.json"
            let installed = try runCommand(veil, ["install", "--containerd", "--config", configPath, "--no-binaries", "--no-restart"],
                                           environment: ["VEIL_INSTALL_STATE": state], timeout: 30)
            guard installed.succeeded else { throw SupportError("veil install --containerd failed:\n\(installed)") }
            let text = try String(contentsOfFile: configPath, encoding: .utf8)
            guard text.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]"),
                  text.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil-native]"),
                  text.contains("runtime_type = \"io.containerd.veil.v1\"") else {
                throw SupportError("veil install did not register the veil runtime in \(configPath):\n\(text)")
            }
        }
        let rig = try ContainerdRig(extraPath: (shimBinary as NSString).deletingLastPathComponent, cri: setup)
        do {
            try waitForCRI(rig)
        } catch {
            rig.stop()
            throw error
        }
        return rig
    }

    /// The CRI plugin answers a little after containerd's own services. Asked through `ctr`, a
    /// process of its own: an in-process async client would wait for a thread of the test runner's
    /// small cooperative pool, which the suites' blocking calls can hold for minutes on 2 cores.
    private func waitForCRI(_ rig: ContainerdRig) throws {
        var last = ""
        let ready = try waitUntil(timeout: 120) {
            let plugins = try rig.ctr(["plugins", "ls"])
            last = plugins.stdout + plugins.stderr
            return plugins.succeeded && plugins.stdout.split(separator: "\n").contains { line in
                let columns = line.split(separator: " ", omittingEmptySubsequences: true)
                return columns.first == "io.containerd.grpc.v1" && columns.dropFirst().first == "cri" && columns.last == "ok"
            }
        }
        guard ready else { throw SupportError("containerd's CRI plugin was not ok within 120 s:\n\(last)\n\(rig.log)") }
    }

    private func verify(_ rig: ContainerdRig, _ flags: [String], cgroupParent: String) throws -> CommandResult {
        try runCommand(try requireVeil(), ["verify", "--cri-endpoint", "unix://" + rig.address, "--image", rig.image,
                                           "--cgroup-parent", cgroupParent] + flags, timeout: 240)
    }

    /// name -> (status, detail) from `--format json`.
    private func checks(_ result: CommandResult) throws -> [String: (status: String, detail: String)] {
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let list = object["checks"] as? [[String: String]] else { throw SupportError("not verify's JSON:\n\(result)") }
        var byName: [String: (status: String, detail: String)] = [:]
        for item in list {
            guard let name = item["name"], let status = item["status"], let detail = item["detail"] else { throw SupportError("bad check in \(result)") }
            byName[name] = (status, detail)
        }
        #expect(list.map { $0["name"] ?? "" } == Verifier.Check.allCases.map(\.rawValue), "\(result)")
        #expect((object["ok"] as? Bool) == result.succeeded, "\(result)")
        return byName
    }

    /// No containerd container in k8s.io (a pod's sandbox is one too), no shim, no container cgroup under the parent.
    private func expectNothingLeft(_ rig: ContainerdRig, cgroupParent: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let containers = try rig.ctr(["containers", "ls", "-q"])
        #expect(containers.succeeded && containers.stdout.isEmpty, "containers left:\n\(containers)", sourceLocation: sourceLocation)
        let clean = waitUntil(timeout: 5) { rig.shimProcesses().isEmpty && cgroupChildren(cgroupParent).isEmpty }
        #expect(clean, "left behind: shims \(rig.shimProcesses()), cgroups \(cgroupChildren(cgroupParent))", sourceLocation: sourceLocation)
        removeCgroups(cgroupParent)
    }

    @Test("--isolation native: every check passes through the veil-native handler (dmesg is the host's); an unknown handler and a missing image fail clearly; nothing is left")
    func nativeHandlerAndImage() async throws {
        let rig = try await makeRig()
        defer { rig.stop() }
        let parent = "/veil-test/verify-" + randomName(8)
        defer { removeCgroups(parent) }

        // --isolation native picks the veil-native handler veil install registered.
        let passed = try verify(rig, ["--isolation", "native", "--format", "json"], cgroupParent: parent)
        #expect(passed.succeeded, "\(passed)\n\(rig.log)")
        let found = try checks(passed)
        for check in Verifier.Check.allCases {
            #expect(found[check.rawValue]?.status == "pass", "\(check.rawValue): \(String(describing: found[check.rawValue]))\n\(passed)")
        }
        // The veil-native handler's ConfigPath TOML says isolation = "native": the host's kernel log, not veil's.
        #expect(found["sandbox-marker"]?.detail.contains("isolation native") == true, "\(passed)")
        #expect(found["pod"]?.detail.contains("veil-native") == true, "\(passed)")
        #expect(found["runtime-type"]?.detail.contains("io.containerd.veil.v1") == true, "\(passed)")
        #expect(found["shim"]?.detail.contains("containerd-shim-veil-v1") == true, "\(passed)")
        try await expectNothingLeft(rig, cgroupParent: parent)

        let unknown = try verify(rig, ["--handler", "nosuch", "--isolation", "native", "--format", "json"], cgroupParent: parent)
        #expect(unknown.status == 1, "\(unknown)")
        let refused = try checks(unknown)
        #expect(refused["pod"]?.status == "fail", "\(unknown)")
        #expect(refused["pod"]?.detail.contains("no runtime handler \"nosuch\"") == true, "\(unknown)")
        #expect(refused["exec"]?.status == "skip", "\(unknown)")
        #expect(refused["cleanup"]?.status == "pass", "\(unknown)")
        try await expectNothingLeft(rig, cgroupParent: parent)

        let absent = "localhost/veil-test/absent:1"
        let missing = try runCommand(try requireVeil(), ["verify", "--cri-endpoint", rig.address, "--isolation", "native", "--image", absent],
                                     timeout: 120)
        #expect(missing.status == 1, "\(missing)")
        let imageLine = missing.stdout.split(separator: "\n").first { $0.hasPrefix("image ") }.map(String.init) ?? ""
        #expect(imageLine.contains("fail") && imageLine.contains("\(absent) is not on the node and pulling it failed"), "\(missing)")
        #expect(!missing.stdout.split(separator: "\n").contains { $0.hasPrefix("pod ") && $0.contains("pass") }, "\(missing)")
        try await expectNothingLeft(rig, cgroupParent: parent)
    }

    @Test("the default --isolation sandbox: every check passes, dmesg inside the pod shows veil's boot log")
    func sandboxMarker() async throws {
        let rig = try await makeRig()
        defer { rig.stop() }
        let parent = "/veil-test/verify-" + randomName(8)
        defer { removeCgroups(parent) }

        let result = try verify(rig, [], cgroupParent: parent)
        #expect(result.status == 0, "\(result)\n\(rig.log)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for check in Verifier.Check.allCases {
            let line = lines.first { $0.hasPrefix(check.rawValue + " ") } ?? ""
            #expect(line.contains(" pass "), "\(check.rawValue) should pass:\n\(result)")
        }
        #expect(lines.last == "9 checks: 9 pass, 0 fail, 0 skip", "\(result)")
        try await expectNothingLeft(rig, cgroupParent: parent)
    }

    @Test("an endpoint with nothing behind it is a clear error and a non-zero exit")
    func missingEndpoint() throws {
        let dir = try TempDir(prefix: "veil-verify")
        defer { dir.remove() }
        let socket = dir.file("absent.sock")
        let result = try runCommand(try requireVeil(), ["verify", "--cri-endpoint", "unix://" + socket], timeout: 30)
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("cannot reach the CRI endpoint unix://\(socket)"), "\(result)")
        #expect(result.stdout.contains("No such file or directory"), "\(result)")

        let scheme = try runCommand(try requireVeil(), ["verify", "--cri-endpoint", "tcp://127.0.0.1:1"], timeout: 30)
        #expect(!scheme.succeeded && scheme.stderr.contains("--cri-endpoint tcp://127.0.0.1:1"), "\(scheme)")
    }
}

/// Container cgroups (any hierarchy) below a cgroup parent.
func cgroupChildren(_ parent: String) -> [String] {
    let base = "/sys/fs/cgroup"
    let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
    return hierarchies.flatMap { hierarchy -> [String] in
        let dir = base + "/" + hierarchy + parent
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return entries.map { dir + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0 + "/cgroup.procs") }
    }
}

/// Removes the parent (and anything below it) in every hierarchy; empty cgroups only.
func removeCgroups(_ parent: String) {
    for dir in cgroupChildren(parent) { rmdir(dir) }
    let base = "/sys/fs/cgroup"
    for hierarchy in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
        rmdir(base + "/" + hierarchy + parent)
    }
}

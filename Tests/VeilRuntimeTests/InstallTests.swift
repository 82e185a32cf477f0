// `veil install` as an operator runs it: the binary against a scratch config, then a real containerd
// (Debian's 1.6, started by ContainerdRig with its CRI plugin) loading what it wrote. The installer's
// planning and TOML editing are unit-tested in VeilInstallTests.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("veil install", .serialized)
struct InstallTests {
    /// The rig's config as `veil install --containerd --prefix` edits it (binaries copied too).
    @Test("containerd loads the config veil wrote, the CRI plugin with it; uninstall restores the file",
          .enabled(if: getuid() == 0 || veilRequired, "needs root and Debian's containerd"))
    func containerdLoadsTheConfigVeilWrote() throws {
        let veil = try requireVeil()
        var install: CommandResult?
        let rig = try ContainerdRig(cri: CRISetup { configPath in
            let directory = (configPath as NSString).deletingLastPathComponent
            install = try runCommand(veil, ["install", "--containerd", "--config", configPath, "--prefix", directory + "/bin", "--no-restart"],
                                     environment: ["VEIL_INSTALL_STATE": directory + "/install.json"])
        }, importsImage: false)
        defer { rig.stop() }
        let d = rig.directory
        let installed = try #require(install)
        #expect(installed.succeeded, "\(installed)")
        #expect(installed.stdout.contains("registered veil as runtimes veil and veil-native (io.containerd.veil.v1, config version 2)"), "\(installed)")
        #expect(FileManager.default.isExecutableFile(atPath: d + "/bin/veil"))
        #expect(FileManager.default.isExecutableFile(atPath: d + "/bin/veil-native"))

        // containerd reads it: the merged config has veil next to the default runc runtime.
        let dump = try runCommand("containerd", ["--config", rig.configPath, "config", "dump"])
        #expect(dump.succeeded, "\(dump)")
        #expect(dump.stdout.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]"))
        #expect(dump.stdout.contains("runtime_type = \"io.containerd.veil.v1\""))
        #expect(dump.stdout.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil-native]"), "\(dump)")
        #expect(dump.stdout.contains("privileged_without_host_devices = true"), "\(dump)")
        #expect(dump.stdout.contains("ConfigPath = \"\(d)/veil-native.toml\""), "\(dump)")
        #expect(dump.stdout.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]"), "CRI's default runtime must survive")
        #expect(dump.stdout.contains("runtime_type = \"io.containerd.runc.v2\""))

        // And runs with it (the rig waited for it to answer), the CRI plugin loaded.
        let plugins = try rig.ctr(["plugins", "ls"], timeout: 10)
        #expect(plugins.succeeded, "\(plugins)\n\(rig.log)")
        let cri = plugins.stdout.split(separator: "\n").first { $0.contains("io.containerd.grpc.v1") && $0.contains(" cri ") }
        #expect(cri?.split(separator: " ").last == "ok", "CRI plugin: \(cri ?? "missing")\n\(plugins)\n\(rig.log)")
        #expect(rig.log.contains("veil"), "containerd logs the CRI runtime config it loaded")

        let uninstall = try runCommand(veil, ["uninstall", "--containerd", "--config", rig.configPath, "--prefix", d + "/bin", "--no-restart"],
                                       environment: ["VEIL_INSTALL_STATE": d + "/install.json"])
        #expect(uninstall.succeeded, "\(uninstall)")
        #expect((try? String(contentsOfFile: rig.configPath, encoding: .utf8)) == rig.baseConfig)
        #expect(!FileManager.default.fileExists(atPath: d + "/bin"))
        #expect(!FileManager.default.fileExists(atPath: d + "/install.json"))
    }

    @Test("a config veil cannot parse is refused naming line and column; --kubernetes and --dry-run write nothing",
          .enabled(if: veilRequired || FileManager.default.isExecutableFile(atPath: veilBinary), "veil is not built"))
    func cliErrorsAndKubernetes() throws {
        let veil = try requireVeil()
        let scratch = try TempDir(prefix: "vi")
        defer { scratch.remove() }
        try "version = 2\n[plugins\n".write(toFile: scratch.file("config.toml"), atomically: false, encoding: .utf8)
        let environment = ["VEIL_INSTALL_STATE": scratch.file("install.json")]
        let listing = { ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).sorted() }
        let bad = try runCommand(veil, ["install", "--containerd", "--config", scratch.file("config.toml"), "--prefix", scratch.file("bin")],
                                 environment: environment)
        #expect(!bad.succeeded)
        #expect(bad.stderr.contains(scratch.file("config.toml") + ": line 2, column "), "\(bad)")
        #expect(listing() == ["config.toml"])

        let yaml = try runCommand(veil, ["install", "--kubernetes", "--node-selector", "veil.dev/installed=true",
                                         "--toleration", "veil.dev/sandbox=true:NoSchedule",
                                         "--overhead-cpu", "100m", "--overhead-memory", "64Mi"], environment: environment)
        #expect(yaml.succeeded, "\(yaml)")
        #expect(yaml.stdout.hasPrefix("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\n"), "\(yaml)")
        #expect(yaml.stdout.contains("    memory: \"64Mi\"\n"))
        #expect(yaml.stdout.contains("\n---\n") && yaml.stdout.contains("  name: veil-native\nhandler: veil-native\n"), "\(yaml)")
        #expect(listing() == ["config.toml"])

        let dry = try runCommand(veil, ["install", "--dry-run", "--crio", "--crio-dir", scratch.file("crio"), "--prefix", scratch.file("bin")],
                                 environment: environment)
        #expect(dry.succeeded, "\(dry)")
        #expect(dry.stdout.contains("+runtime_type = \"oci\"\n"), "\(dry)")
        #expect(listing() == ["config.toml"])
    }
}

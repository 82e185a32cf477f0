import Foundation
import TOMLKit
import Testing
@testable import VeilInstall

@Suite struct ContainerdTests {
    static let v2Path = ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "veil"]
    static let v3Path = ["plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "veil"]

    /// install → install again → uninstall for one config version.
    func roundTrip(original: String, path: [String], version: Int) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", original)
        let options = containerdOptions(scratch)
        let host = FakeHost()

        let first = try Installer(options: options, host: host).install()
        let written = try #require(scratch.read("config.toml"))
        #expect(written != original)
        // Exactly two tables more; every other setting unchanged.
        let after = try TOMLTable(string: written)
        let table = try #require(try TOMLDoc.table(at: path, in: after, file: "t"))
        #expect(table["runtime_type"]?.string == "io.containerd.veil.v1")
        #expect(table.keys.sorted() == ["privileged_without_host_devices", "runtime_type"], "pods' annotations must not reach veil by default")
        #expect(table["privileged_without_host_devices"]?.bool == true)
        let nativePath = Array(path.dropLast()) + ["veil-native"]
        let native = try #require(try TOMLDoc.table(at: nativePath, in: after, file: "t"))
        #expect(native["runtime_type"]?.string == "io.containerd.veil.v1")
        #expect(native.keys.sorted() == ["options", "runtime_type"])
        #expect(native["options"]?["ConfigPath"]?.string == scratch.file("veil-native.toml"))
        let nativeTOML = try TOMLTable(string: try #require(scratch.read("veil-native.toml")))
        // The fixtures' runc handler says SystemdCgroup = true: veil's handlers keep the node's driver.
        #expect(nativeTOML.keys.sorted() == ["isolation", "systemd_cgroup"] && nativeTOML["isolation"]?.string == "native")
        #expect(nativeTOML["systemd_cgroup"]?.bool == true)
        try TOMLDoc.removeTable(at: path, in: after, pruneFrom: nil, file: "t")
        try TOMLDoc.removeTable(at: nativePath, in: after, pruneFrom: nil, file: "t")
        #expect(after == (try TOMLTable(string: original)))
        #expect(after["version"]?.int == version)
        // The file was appended to, so its comments and layout stay.
        #expect(written.hasPrefix(original))
        #expect(first.lines.contains { $0.contains("config version \(version)") })
        #expect(first.lines.contains("restart containerd to load the veil runtime"))
        #expect(host.commands.isEmpty, "no systemctl for a config that is not the default path")
        let backupNames = backups(in: scratch)
        #expect(backupNames == ["config.toml.veil-backup-20240102030405"])
        #expect(scratch.read(backupNames[0]) == original)

        // Again: nothing changes, no second backup.
        host.time = "20250101000000"
        let second = try Installer(options: options, host: host).install()
        #expect(scratch.read("config.toml") == written)
        #expect(backups(in: scratch).count == 1)
        #expect(second.lines.contains { $0.contains("nothing to change") })

        let removed = try Installer(options: options, host: host).uninstall()
        #expect(scratch.read("config.toml") == original)
        #expect(backups(in: scratch).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: options.statePath))
        #expect(removed.lines.contains { $0.contains("restored the original") })
        #expect(scratch.read("veil-native.toml") == nil, "the native handler's TOML veil wrote goes too")
    }

    @Test func versionTwoRoundTrip() throws { try roundTrip(original: containerdV2, path: Self.v2Path, version: 2) }

    @Test func versionThreeRoundTrip() throws { try roundTrip(original: containerdV3, path: Self.v3Path, version: 3) }

    /// `--config-path` (ConfigPath) in config versions 2 and 3.
    @Test(arguments: [2, 3]) func shimConfigGoesInOptions(version: Int) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let original = version == 2 ? containerdV2 : containerdV3
        let path = version == 2 ? Self.v2Path : Self.v3Path
        try scratch.write("config.toml", original)
        var options = containerdOptions(scratch)
        options.shimConfig = "/etc/veil/shim.toml"
        _ = try Installer(options: options, host: FakeHost()).install()
        let after = try TOMLTable(string: try #require(scratch.read("config.toml")))
        let veil = try #require(try TOMLDoc.table(at: path, in: after, file: "t"))
        #expect(veil["runtime_type"]?.string == "io.containerd.veil.v1")
        #expect(veil["options"]?["ConfigPath"]?.string == "/etc/veil/shim.toml")

        // A different ConfigPath is an update of our table, not a second backup; uninstall still restores the original.
        options.shimConfig = "/etc/veil/other.toml"
        _ = try Installer(options: options, host: FakeHost()).install()
        let updated = try TOMLTable(string: try #require(scratch.read("config.toml")))
        #expect(try TOMLDoc.table(at: path + ["options"], in: updated, file: "t")?["ConfigPath"]?.string == "/etc/veil/other.toml")
        #expect(backups(in: scratch).count == 1)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == original)
    }

    /// `--isolation` writes the shim's TOML at ConfigPath when it is missing; uninstall removes it again.
    @Test func isolationWritesTheShimTOML() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        options.shimConfig = scratch.file("veil/runtime.toml")
        options.shimIsolation = "sandbox"
        let report = try Installer(options: options, host: FakeHost()).install()
        let written = try TOMLTable(string: try #require(scratch.read("veil/runtime.toml"), "\(report)"))
        #expect(written["isolation"]?.string == "sandbox")
        #expect(written.keys.sorted() == ["isolation", "systemd_cgroup"])
        let config = try TOMLTable(string: try #require(scratch.read("config.toml")))
        #expect(try TOMLDoc.table(at: Self.v2Path + ["options"], in: config, file: "t")?["ConfigPath"]?.string == scratch.file("veil/runtime.toml"))
        // A second run changes nothing.
        let again = try Installer(options: options, host: FakeHost()).install()
        #expect(again.lines.contains { $0.contains("already sets isolation") }, "\(again)")
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == containerdV2)
        #expect(scratch.read("veil/runtime.toml") == nil)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("veil")))
    }

    /// An existing TOML at ConfigPath is the administrator's: --isolation leaves it, and so does uninstall.
    @Test func isolationLeavesAnExistingTOML() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        let mine = "root = \"/run/mine\"\n"
        try scratch.write("runtime.toml", mine)
        var options = containerdOptions(scratch)
        options.shimConfig = scratch.file("runtime.toml")
        options.shimIsolation = "native"
        let report = try Installer(options: options, host: FakeHost()).install()
        #expect(report.lines.contains { $0.contains("left as it is") }, "\(report)")
        #expect(scratch.read("runtime.toml") == mine)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("runtime.toml") == mine)
        #expect(scratch.read("config.toml") == containerdV2)
    }

    @Test(arguments: [("vm", true), ("sandbox", false)]) func badIsolationIsRefused(value: String, withConfigPath: Bool) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        if withConfigPath { options.shimConfig = scratch.file("runtime.toml") }
        options.shimIsolation = value
        #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(scratch.read("config.toml") == containerdV2)
        #expect(scratch.read("runtime.toml") == nil)
    }

    @Test func relativeConfigPathIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        options.shimConfig = "veil.toml"
        #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(scratch.read("config.toml") == containerdV2)
    }

    @Test func inlineTablesFallBackToTOMLKitSerialization() throws {
        let original = """
            version = 2
            [plugins."io.containerd.grpc.v1.cri".containerd]
            runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }
            """
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", original)
        let options = containerdOptions(scratch)
        _ = try Installer(options: options, host: FakeHost()).install()
        let after = try TOMLTable(string: try #require(scratch.read("config.toml")))
        #expect(try TOMLDoc.table(at: Self.v2Path, in: after, file: "t")?["runtime_type"]?.string == "io.containerd.veil.v1")
        #expect(try TOMLDoc.table(at: ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc"], in: after, file: "t")?["runtime_type"]?.string == "io.containerd.runc.v2")
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == original)
    }

    @Test func editedSinceInstallRemovesOnlyOurTable() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        let options = containerdOptions(scratch)
        _ = try Installer(options: options, host: FakeHost()).install()
        let edited = try #require(scratch.read("config.toml")) + "\n[debug]\n  level = \"debug\"\n"
        try scratch.write("config.toml", edited)

        let report = try Installer(options: options, host: FakeHost()).uninstall()
        let text = try #require(scratch.read("config.toml"))
        #expect(report.lines.contains { $0.contains("changed since veil install: removed only the runtime table") })
        let after = try TOMLTable(string: text)
        #expect(try TOMLDoc.table(at: Self.v2Path, in: after, file: "t") == nil)
        #expect(after["debug"]?["level"]?.string == "debug")
        #expect(try TOMLDoc.table(at: ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "kata"], in: after, file: "t") != nil)
        // Our block was cut out verbatim, so the rest is the user's text.
        #expect(text == containerdV2 + "\n[debug]\n  level = \"debug\"\n")
        #expect(backups(in: scratch).count == 1, "the backup stays when it was not used")
    }

    /// The user takes veil out by hand and edits the file; a new install backs up *that* file, and
    /// uninstall returns to it (not to the file from before the first install).
    @Test func reinstallAfterAHandEditBacksUpTheEditedFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        let options = containerdOptions(scratch)
        let host = FakeHost()
        _ = try Installer(options: options, host: host).install()
        let handEdited = containerdV2 + "\n[debug]\n  level = \"info\"\n"
        try scratch.write("config.toml", handEdited)
        host.time = "20240202000000"
        _ = try Installer(options: options, host: host).install()
        #expect(backups(in: scratch) == ["config.toml.veil-backup-20240102030405", "config.toml.veil-backup-20240202000000"])
        _ = try Installer(options: options, host: host).uninstall()
        #expect(scratch.read("config.toml") == handEdited)
        #expect(backups(in: scratch) == ["config.toml.veil-backup-20240102030405"], "the older backup is the user's to delete")
    }

    @Test func corruptConfigIsRefusedAndNothingIsWritten() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let corrupt = "version = 2\n[plugins\nfoo = \n"
        try scratch.write("config.toml", corrupt)
        let options = containerdOptions(scratch)
        let error = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        guard case .tomlSyntax(let file, _, let line, let column)? = error else {
            Issue.record("expected a TOML syntax error, got \(String(describing: error))")
            return
        }
        #expect(file == scratch.file("config.toml"))
        #expect(line == 2 && column > 0)
        #expect(error?.description.hasPrefix(scratch.file("config.toml") + ": line 2, column ") == true)
        #expect(scratch.read("config.toml") == corrupt)
        #expect(backups(in: scratch).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: options.statePath))
    }

    @Test func wrongTypesNameTheKey() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let options = containerdOptions(scratch)
        try scratch.write("config.toml", "version = \"two\"\n")
        let e1 = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(e1?.description == scratch.file("config.toml") + ": version: expected an integer, found a string")

        try scratch.write("config.toml", "version = 7\n")
        let e2 = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(e2?.description.contains("version: unsupported config version 7") == true)

        try scratch.write("config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = \"runc\"\n")
        let e3 = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(e3?.description == scratch.file("config.toml") + ": plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes: expected a table, found a string")
        #expect(backups(in: scratch).isEmpty)
    }

    @Test(arguments: [
        ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", 2),
        ("containerd containerd.io v2.0.2 c507a0257ea6462fbd6f5ba4f5c74facb04021f4", 3),
        ("containerd github.com/containerd/containerd/v2 v2.1.0 abc", 3),
        ("", 2),
    ])
    func missingConfigGetsAMinimalOne(output: String, version: Int) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = containerdOptions(scratch)
        options.containerdConfig = scratch.file("etc/containerd/config.toml")
        let host = FakeHost()
        host.answers["containerd --version"] = (0, output + "\n")
        _ = try Installer(options: options, host: host).install()
        let text = try #require(scratch.read("etc/containerd/config.toml"))
        let path = version == 2 ? Self.v2Path : Self.v3Path
        let nativePath = Array(path.dropLast()) + ["veil-native"]
        #expect(text == "version = \(version)\n\n# containerd's default runtime: a runtimes table in this file replaces the built-in one.\n"
            + "[\(TOMLDoc.dotted(path.dropLast() + ["runc"]))]\n  runtime_type = \"io.containerd.runc.v2\"\n\n"
            + "[\(TOMLDoc.dotted(path))]\n  runtime_type = \"io.containerd.veil.v1\"\n"
            + "  # A privileged pod gets the sandbox's default /dev, not the host's devices.\n  privileged_without_host_devices = true\n\n"
            + "# veil-native: runc's semantics (no sandbox), for the pods a cluster admin grants its RuntimeClass.\n"
            + "[\(TOMLDoc.dotted(nativePath))]\n  runtime_type = \"io.containerd.veil.v1\"\n\n"
            + "[\(TOMLDoc.dotted(nativePath + ["options"]))]\n  ConfigPath = \"\(scratch.file("etc/containerd/veil-native.toml"))\"\n")
        #expect(backups(in: scratch).isEmpty)

        _ = try Installer(options: options, host: host).uninstall()
        #expect(!FileManager.default.fileExists(atPath: options.containerdConfig))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("etc")), "directories veil made are removed")
    }

    @Test func emptyFileIsTreatedAsNew() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", "")
        let options = containerdOptions(scratch)
        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("config.toml")?.hasPrefix("version = 2\n") == true)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == "")
    }

    @Test func dryRunPrintsADiffAndWritesNothing() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        options.dryRun = true
        let report = try Installer(options: options, host: FakeHost()).install()
        let diff = report.lines.joined(separator: "\n")
        #expect(diff.contains("--- \(scratch.file("config.toml"))\n+++ \(scratch.file("config.toml"))\n@@ "))
        #expect(diff.contains("\n+[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]\n+  runtime_type = \"io.containerd.veil.v1\"\n"))
        #expect(diff.contains("\n   \"io.containerd.timeout.shutdown\" = \"5s\"\n"), "context lines")
        #expect(!diff.split(separator: "\n").contains { $0.hasPrefix("-") && !$0.hasPrefix("---") }, "nothing removed")
        #expect(diff.contains("+++ \(scratch.file("veil-native.toml"))\n") && diff.contains("\n+isolation = \"native\""), "the native handler's TOML")
        #expect(scratch.list() == ["config.toml"])
        #expect(scratch.read("config.toml") == containerdV2)
    }

    @Test func versionOneUsesTheShortPluginName() throws {
        let plan = try ContainerdConfig.planInstall(original: "[plugins.cri]\n  stream_server_port = \"0\"\n", file: "c.toml", registration: .init(name: "veil"), defaultVersion: 2)
        #expect(plan.version == 1)
        #expect(plan.text.hasSuffix("\n[plugins.cri.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\n[plugins.cri.containerd.runtimes.veil]\n  runtime_type = \"io.containerd.veil.v1\"\n"
            + "  # A privileged pod gets the sandbox's default /dev, not the host's devices.\n  privileged_without_host_devices = true\n"))
    }

    /// containerd drops its built-in runc when the file has a runtimes table, so one made by veil lists runc;
    /// an existing runtimes table, or another default runtime, is left as it is.
    @Test func runcIsKeptWhenVeilMakesTheRuntimesTable() throws {
        let debian = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n"
        let plan = try ContainerdConfig.planInstall(original: debian, file: "c.toml", registration: .init(name: "veil"), defaultVersion: 2)
        let table = try TOMLTable(string: plan.text)
        let runtimes = try #require(try TOMLDoc.table(at: Array(Self.v2Path.dropLast()), in: table, file: "t"))
        #expect(runtimes.keys.sorted() == ["runc", "veil"])
        #expect(runtimes["runc"]?["runtime_type"]?.string == "io.containerd.runc.v2")
        #expect(plan.text.hasPrefix(debian))
        // Removing veil's table after an edit elsewhere takes the runc entry it added too.
        let edited = plan.text + "\n[debug]\n  level = \"info\"\n"
        #expect(try ContainerdConfig.planRemoval(text: edited, file: "c.toml", name: "veil", createdDepth: plan.createdDepth) == debian + "\n[debug]\n  level = \"info\"\n")

        let crun = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"crun\"\n"
        let other = try ContainerdConfig.planInstall(original: crun, file: "c.toml", registration: .init(name: "veil"), defaultVersion: 2)
        #expect(try TOMLDoc.table(at: Array(Self.v2Path.dropLast()), in: TOMLTable(string: other.text), file: "t")?.keys == ["veil"])

        let kept = try ContainerdConfig.planInstall(original: containerdV2, file: "c.toml", registration: .init(name: "veil"), defaultVersion: 2)
        #expect(!kept.text.contains("default runtime:"))
    }

    /// --allow-lower-isolation: dev.veil.* passes to the veil handler and its TOML allows lowering; it needs --config-path.
    @Test func allowLowerIsolationPassesAnnotationsAndSaysSo() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        options.allowLowerIsolation = true
        #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(scratch.read("config.toml") == containerdV2)

        options.shimConfig = scratch.file("veil.toml")
        let report = try Installer(options: options, host: FakeHost()).install()
        #expect(report.lines.contains { $0.contains("a pod may lower its level to native") }, "\(report)")
        let config = try TOMLTable(string: try #require(scratch.read("config.toml")))
        let veil = try #require(try TOMLDoc.table(at: Self.v2Path, in: config, file: "t"))
        #expect(veil["pod_annotations"]?.array?.map { $0.string } == ["dev.veil.*"])
        #expect(veil["container_annotations"]?.array?.map { $0.string } == ["dev.veil.*"])
        #expect(veil["options"]?["ConfigPath"]?.string == scratch.file("veil.toml"))
        let shim = try TOMLTable(string: try #require(scratch.read("veil.toml")))
        #expect(shim["allow_lower_isolation"]?.bool == true)
        let native = try #require(try TOMLDoc.table(at: Array(Self.v2Path.dropLast()) + ["veil-native"], in: config, file: "t"))
        #expect(native["pod_annotations"] == nil)

        // The default install takes the pass-through out again (and leaves the administrator's TOML).
        options.allowLowerIsolation = false
        let plain = try Installer(options: options, host: FakeHost()).install()
        #expect(plain.lines.contains { $0.contains("pods' annotations do not reach veil") }, "\(plain)")
        let again = try TOMLTable(string: try #require(scratch.read("config.toml")))
        #expect(try TOMLDoc.table(at: Self.v2Path, in: again, file: "t")?["pod_annotations"] == nil)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == containerdV2)
        #expect(scratch.read("veil.toml") == nil && scratch.read("veil-native.toml") == nil)
    }

    /// --pass-seccomp-annotations: CRI-O's seccomp-profile keys reach both handlers (not dev.veil.*),
    /// beside another operator's pattern; a plain install takes them out again and uninstall restores the file.
    @Test func seccompAnnotationsPassToBothHandlers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        var options = containerdOptions(scratch)
        options.passSeccompAnnotations = true
        _ = try Installer(options: options, host: FakeHost()).install()
        let expected = ["seccomp-profile.kubernetes.cri-o.io/*", "seccomp-profile.crio.io/*"]
        let config = try TOMLTable(string: try #require(scratch.read("config.toml")))
        for name in ["veil", "veil-native"] {
            let table = try #require(try TOMLDoc.table(at: Array(Self.v2Path.dropLast()) + [name], in: config, file: "t"))
            #expect(table["pod_annotations"]?.array?.map { $0.string } == expected, "\(name)")
            #expect(table["container_annotations"]?.array?.map { $0.string } == expected, "\(name)")
        }
        let registration = ContainerdConfig.Registration(name: "veil", nativeShimConfig: "/n.toml", passSeccompAnnotations: true)
        let first = try ContainerdConfig.planInstall(original: containerdV2, file: "c.toml", registration: registration, defaultVersion: 2)
        #expect(first.changed)
        #expect(try !ContainerdConfig.planInstall(original: first.text, file: "c.toml", registration: registration, defaultVersion: 2).changed)

        options.passSeccompAnnotations = false
        _ = try Installer(options: options, host: FakeHost()).install()
        let plain = try TOMLTable(string: try #require(scratch.read("config.toml")))
        #expect(try TOMLDoc.table(at: Self.v2Path, in: plain, file: "t")?["pod_annotations"] == nil)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == containerdV2)
    }

    /// A config written by an older veil (dev.veil.* passed, no native handler) is brought up to date.
    @Test func olderInstallLosesThePassThrough() throws {
        let older = containerdV2 + "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]\n  runtime_type = \"io.containerd.veil.v1\"\n"
            + "  pod_annotations = [\"dev.veil.*\", \"example.com/keep\"]\n  container_annotations = [\"dev.veil.*\"]\n"
        let plan = try ContainerdConfig.planInstall(original: older, file: "c.toml", registration: .init(name: "veil", nativeShimConfig: "/etc/containerd/veil-native.toml"), defaultVersion: 2)
        #expect(plan.changed)
        let table = try TOMLTable(string: plan.text)
        let veil = try #require(try TOMLDoc.table(at: Self.v2Path, in: table, file: "t"))
        #expect(veil["pod_annotations"]?.array?.map { $0.string } == ["example.com/keep"])
        #expect(veil["container_annotations"] == nil)
        #expect(veil["privileged_without_host_devices"]?.bool == true)
        #expect(try TOMLDoc.table(at: Array(Self.v2Path.dropLast()) + ["veil-native", "options"], in: table, file: "t")?["ConfigPath"]?.string == "/etc/containerd/veil-native.toml")
        let again = try ContainerdConfig.planInstall(original: plan.text, file: "c.toml", registration: .init(name: "veil", nativeShimConfig: "/etc/containerd/veil-native.toml"), defaultVersion: 2)
        #expect(!again.changed)
    }

    /// The administrator's own TOML at the native ConfigPath is kept; the report says when it does not say native.
    @Test func existingNativeTOMLIsLeft() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        try scratch.write("native.toml", "log_level = \"debug\"\n")
        var options = containerdOptions(scratch)
        options.nativeShimConfig = scratch.file("native.toml")
        let report = try Installer(options: options, host: FakeHost()).install()
        #expect(report.lines.contains { $0.contains("native.toml: it exists: left as it is (isolation = \"native\", systemd_cgroup = true not applied)") }, "\(report)")
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("native.toml") == "log_level = \"debug\"\n")
        #expect(scratch.read("config.toml") == containerdV2)
    }

    @Test func badRuntimeNameIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = containerdOptions(scratch)
        options.containerd = true
        options.runtimeName = "Veil_1"
        #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
    }

    @Test func restartsOnlyAnActiveSystemdUnit() {
        let host = FakeHost()
        var options = InstallOptions()
        options.containerd = true
        var report = InstallReport()
        Installer(options: options, host: host).restart(service: "containerd", action: "restart", configIsDefault: true, verb: "load", report: &report)
        #expect(report.lines == ["restart containerd to load the veil runtime"])
        #expect(host.commands == [["systemctl", "is-active", "--quiet", "containerd"]])

        host.answers["systemctl is-active --quiet containerd"] = (0, "")
        host.answers["systemctl restart containerd"] = (0, "")
        report = InstallReport()
        Installer(options: options, host: host).restart(service: "containerd", action: "restart", configIsDefault: true, verb: "load", report: &report)
        #expect(report.lines == ["ran systemctl restart containerd"])

        host.answers["systemctl restart containerd"] = (1, "")
        report = InstallReport()
        Installer(options: options, host: host).restart(service: "containerd", action: "restart", configIsDefault: true, verb: "load", report: &report)
        #expect(report.warnings.count == 1)

        options.restart = false
        host.commands = []
        report = InstallReport()
        Installer(options: options, host: host).restart(service: "containerd", action: "restart", configIsDefault: true, verb: "load", report: &report)
        #expect(host.commands.isEmpty)
    }
}

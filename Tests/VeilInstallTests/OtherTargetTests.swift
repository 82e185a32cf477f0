import VeilLinux
import Foundation
import TOMLKit
import Testing
@testable import VeilInstall

@Suite struct CRIOTests {
    @Test func dropInInstallAndUninstall() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = testOptions(scratch)
        options.crio = true
        options.prefix = "/opt/veil/bin"
        let report = try Installer(options: options, host: FakeHost()).install()
        let text = try #require(scratch.read("crio.conf.d/50-veil.conf"))
        let table = try TOMLTable(string: text)
        let veil = try #require(try TOMLDoc.table(at: ["crio", "runtime", "runtimes", "veil"], in: table, file: "t"))
        #expect(veil["runtime_path"]?.string == "/opt/veil/bin/veil")
        #expect(veil["runtime_type"]?.string == "oci")
        #expect(veil["runtime_root"]?.string == "/run/veil")
        #expect(veil["allowed_annotations"]?.array?.map { $0.string } == ["seccomp-profile.kubernetes.cri-o.io"], "no dev.veil.isolation")
        #expect(veil["privileged_without_host_devices"]?.bool == true)
        let native = try #require(try TOMLDoc.table(at: ["crio", "runtime", "runtimes", "veil-native"], in: table, file: "t"))
        #expect(native["runtime_path"]?.string == "/opt/veil/bin/veil-native")
        #expect(native["privileged_without_host_devices"] == nil)
        #expect(report.lines.contains("restart crio to load the veil runtime"))

        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("crio.conf.d/50-veil.conf") == text)
        #expect(scratch.list("crio.conf.d") == ["50-veil.conf"])

        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(!FileManager.default.fileExists(atPath: scratch.file("crio.conf.d")), "the drop-in and the directory veil made are gone")
    }

    /// CRI-O ignores a handler whose allowed_annotations names one it does not know (1.26 refuses
    /// the seccomp-profile annotation, 1.30's): the default list follows the installed CRI-O.
    @Test(arguments: [("crio version 1.26.4\n", [String]()), ("crio version 1.30.0\n", ["seccomp-profile.kubernetes.cri-o.io"])])
    func allowedAnnotationsFollowTheInstalledCRIO(versionOutput: String, expected: [String]) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = testOptions(scratch)
        options.crio = true
        let host = FakeHost()
        host.answers["crio --version"] = (0, versionOutput)
        _ = try Installer(options: options, host: host).install()
        let table = try TOMLTable(string: try #require(scratch.read("crio.conf.d/50-veil.conf")))
        let veil = try #require(try TOMLDoc.table(at: ["crio", "runtime", "runtimes", "veil"], in: table, file: "t"))
        #expect(veil["allowed_annotations"]?.array?.map { $0.string ?? "" } == expected)
    }

    @Test func existingDropInIsBackedUpAndPutBack() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.file("crio.conf.d"), withIntermediateDirectories: true)
        try scratch.write("crio.conf.d/50-veil.conf", "# an older hand-written one\n")
        var options = testOptions(scratch)
        options.crio = true
        options.crioAnnotations = ["seccomp-profile.kubernetes.cri-o.io", "io.kubernetes.cri-o.Devices"]
        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("crio.conf.d/50-veil.conf")?.contains("  \"io.kubernetes.cri-o.Devices\",\n") == true)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.list("crio.conf.d") == ["50-veil.conf"])
        #expect(scratch.read("crio.conf.d/50-veil.conf") == "# an older hand-written one\n")
    }

    @Test func editedDropInKeepsOtherTables() throws {
        let rendered = CRIODropIn.render(name: "veil", runtimePath: "/usr/local/bin/veil", nativeRuntimePath: "/usr/local/bin/veil-native")
        #expect(try TOMLTable(string: rendered)["crio"]?["runtime"]?["drop_infra_ctr"]?.bool == false, "CRI-O keeps pods' infra containers")
        let edited = rendered.replacingOccurrences(of: "drop_infra_ctr = false\n", with: "drop_infra_ctr = false\ndefault_runtime = \"runc\"\n")
        let rest = try #require(try CRIODropIn.planRemoval(text: edited, file: "d.conf", name: "veil"))
        let table = try TOMLTable(string: rest)
        #expect(table["crio"]?["runtime"]?["default_runtime"]?.string == "runc")
        #expect(table["crio"]?["runtime"]?["drop_infra_ctr"] == nil, "veil's setting goes with it")
        #expect(try TOMLDoc.table(at: ["crio", "runtime", "runtimes"], in: table, file: "t") == nil)
        #expect(try CRIODropIn.planRemoval(text: CRIODropIn.render(name: "veil", runtimePath: "/x", nativeRuntimePath: "/y"), file: "d.conf", name: "veil") == nil)
    }
}

@Suite struct DockerTests {
    static let original = """
        {
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "3"},
            "runtimes": {
                "nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}
            },
            "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
            "mtu": 1.45e3,
            "label": "caf\\u00e9"
        }

        """

    @Test func addsTheRuntimeKeepingEverythingElse() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("daemon.json", Self.original)
        var options = testOptions(scratch)
        options.docker = true
        let report = try Installer(options: options, host: FakeHost()).install()
        let text = try #require(scratch.read("daemon.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let before = try #require(try JSONSerialization.jsonObject(with: Data(Self.original.utf8)) as? [String: Any])
        #expect(Set(json.keys) == Set(before.keys))
        let runtimes = try #require(json["runtimes"] as? [String: Any])
        #expect((runtimes["veil"] as? [String: String]) == ["path": scratch.file("bin") + "/veil"])
        #expect(runtimes["nvidia"] != nil)
        #expect(json["mtu"] as? Double == 1450)
        #expect(json["label"] as? String == "café")
        // Key order and the four-space indent stay.
        #expect(text.hasPrefix("{\n    \"log-driver\": \"json-file\",\n    \"log-opts\": {\n"))
        #expect(text.contains("\"mtu\": 1.45e3"))
        #expect(report.lines.contains("reload docker to load the veil runtime"))

        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("daemon.json") == text)
        #expect(backups(in: scratch).count == 1)

        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("daemon.json") == Self.original)
        #expect(backups(in: scratch).isEmpty)
    }

    @Test func createsDaemonJSONAndRemovesItAgain() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = testOptions(scratch)
        options.docker = true
        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("daemon.json") == "{\n  \"runtimes\": {\n    \"veil\": {\n      \"path\": \"\(scratch.file("bin"))/veil\"\n    }\n  }\n}\n")
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(!FileManager.default.fileExists(atPath: scratch.file("daemon.json")))
    }

    @Test func editedSinceInstallRemovesOnlyOurRuntime() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("daemon.json", "{\"debug\": true}\n")
        var options = testOptions(scratch)
        options.docker = true
        _ = try Installer(options: options, host: FakeHost()).install()
        let edited = try #require(scratch.read("daemon.json")).replacingOccurrences(of: "\"debug\": true", with: "\"debug\": false")
        try scratch.write("daemon.json", edited)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("daemon.json") == "{\n  \"debug\": false\n}\n")
    }

    @Test func corruptJSONIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("daemon.json", "{\"debug\": tru}")
        var options = testOptions(scratch)
        options.docker = true
        let error = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(error?.description.hasPrefix(scratch.file("daemon.json") + ": byte 10: ") == true)
        #expect(scratch.read("daemon.json") == "{\"debug\": tru}")
        #expect(backups(in: scratch).isEmpty)

        try scratch.write("daemon.json", "{\"runtimes\": []}")
        let e2 = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(e2?.description == scratch.file("daemon.json") + ": runtimes: expected an object")
    }
}

@Suite struct AllTargetsTests {
    /// Bad input in one target stops the others too: nothing is written.
    @Test func oneBadConfigWritesNothing() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV2)
        try scratch.write("daemon.json", "[1, 2")
        var options = testOptions(scratch)
        options.containerd = true
        options.crio = true
        options.docker = true
        #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(scratch.read("config.toml") == containerdV2)
        #expect(scratch.list() == ["config.toml", "daemon.json"])
    }

    @Test func uninstallAllAndSelectively() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", containerdV3)
        try scratch.write("fake-veil", "#!/bin/sh\n")
        var options = testOptions(scratch)
        options.containerd = true
        options.crio = true
        options.docker = true
        options.binaries = true
        let host = FakeHost(executable: scratch.file("fake-veil"))
        _ = try Installer(options: options, host: host).install()
        #expect(scratch.list("bin") == ["veil", "veil-native"])

        // Removing CRI-O only keeps the binaries, which containerd and Docker still use.
        var crioOnly = options
        crioOnly.containerd = false
        crioOnly.docker = false
        let partial = try Installer(options: crioOnly, host: host).uninstall()
        #expect(scratch.list("bin") == ["veil", "veil-native"])
        #expect(partial.lines.contains { $0.hasPrefix("binaries kept") })

        var all = testOptions(scratch)
        all.all = true
        all.binaries = true
        _ = try Installer(options: all, host: host).uninstall()
        #expect(scratch.read("config.toml") == containerdV3)
        #expect(scratch.list() == ["config.toml", "fake-veil"])
    }

    @Test func nothingSelectedIsAUsageError() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(throws: InstallError.self) { try Installer(options: testOptions(scratch), host: FakeHost()).install() }
        #expect(throws: InstallError.self) { try Installer(options: testOptions(scratch), host: FakeHost()).uninstall() }
    }

    @Test func corruptStateFileIsNamed() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var options = testOptions(scratch)
        options.containerd = true
        try FileManager.default.createDirectory(atPath: scratch.file("state"), withIntermediateDirectories: true)
        try scratch.write("state/install.json", "{not json")
        let error = #expect(throws: InstallError.self) { try Installer(options: options, host: FakeHost()).install() }
        #expect(error?.description.hasPrefix(options.statePath + ": not a veil install record") == true)
        #expect(scratch.list() == ["state"])
    }
}

@Suite struct BinaryTests {
    @Test func copiesSkipsAndRemoves() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.file("build"), withIntermediateDirectories: true)
        try scratch.write("build/veil", "veil binary")
        try scratch.write("build/containerd-shim-veil-v1", "shim binary")
        var options = testOptions(scratch)
        options.containerd = true
        options.binaries = true
        let host = FakeHost(executable: scratch.file("build/veil"))
        let report = try Installer(options: options, host: host).install()
        #expect(scratch.list("bin") == ["containerd-shim-veil-v1", "veil", "veil-native"])
        #expect(scratch.read("bin/veil") == "veil binary")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.file("bin/veil-native")) == "veil", "veil-native: veil under the name that means --isolation native")
        let attributes = try FileManager.default.attributesOfItem(atPath: scratch.file("bin/containerd-shim-veil-v1"))
        #expect((attributes[.posixPermissions] as? Int) == 0o755)
        #expect(report.lines.filter { $0.hasPrefix("copied ") }.count == 2)
        #expect(report.lines.contains("linked \(scratch.file("bin/veil-native")) to veil"), "\(report)")

        let again = try Installer(options: options, host: host).install()
        #expect(!again.lines.contains { $0.hasPrefix("copied ") || $0.hasPrefix("linked ") })

        _ = try Installer(options: options, host: host).uninstall()
        #expect(!FileManager.default.fileExists(atPath: scratch.file("bin")))
        #expect(scratch.list("build") == ["containerd-shim-veil-v1", "veil"])
    }

    @Test func replacedFileIsPutBackAndLinksWork() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.file("bin"), withIntermediateDirectories: true)
        try scratch.write("bin/veil", "an older veil")
        try scratch.write("new-veil", "the new veil")
        var options = testOptions(scratch)
        options.crio = true
        options.binaries = true
        options.link = true
        let host = FakeHost(executable: scratch.file("new-veil"))
        _ = try Installer(options: options, host: host).install()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.file("bin/veil")) == scratch.file("new-veil"))
        #expect(scratch.list("bin") == ["veil", "veil-native", "veil.veil-backup-20240102030405"])
        let again = try Installer(options: options, host: host).install()
        #expect(!again.lines.contains { $0.hasPrefix("linked ") })
        _ = try Installer(options: options, host: host).uninstall()
        #expect(scratch.list("bin") == ["veil"])
        #expect(scratch.read("bin/veil") == "an older veil")
    }

    @Test func binaryReplacedAfterInstallIsLeftAlone() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("new-veil", "the new veil")
        var options = testOptions(scratch)
        options.docker = true
        options.binaries = true
        let host = FakeHost(executable: scratch.file("new-veil"))
        _ = try Installer(options: options, host: host).install()
        try scratch.write("bin/veil", "someone else's veil")
        let report = try Installer(options: options, host: host).uninstall()
        #expect(scratch.read("bin/veil") == "someone else's veil")
        #expect(report.lines.contains { $0.contains("changed since veil installed it; left in place") })
    }
}

@Suite struct RuntimeClassTests {
    @Test func fullRuntimeClass() throws {
        var options = RuntimeClassOptions()
        options.nodeSelector = ["veil.dev/installed=true", "pool=sandbox"]
        options.tolerations = ["veil.dev/sandbox=true:NoSchedule", "dedicated:NoExecute", "spot"]
        options.overheadCPU = "100m"
        options.overheadMemory = "64Mi"
        #expect(try RuntimeClassYAML.render(options) == """
            apiVersion: node.k8s.io/v1
            kind: RuntimeClass
            metadata:
              name: veil
            handler: veil
            scheduling:
              nodeSelector:
                "veil.dev/installed": "true"
                "pool": "sandbox"
              tolerations:
              - key: "veil.dev/sandbox"
                operator: Equal
                value: "true"
                effect: NoSchedule
              - key: "dedicated"
                operator: Exists
                effect: NoExecute
              - key: "spot"
                operator: Exists
            overhead:
              podFixed:
                cpu: "100m"
                memory: "64Mi"

            """)
    }

    @Test func minimalRuntimeClass() throws {
        #expect(try RuntimeClassYAML.render(RuntimeClassOptions()) == "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: veil\nhandler: veil\n")
    }

    @Test(arguments: [
        ("node-selector", "novalue"), ("node-selector", "bad key=x"), ("toleration", "k=v:Sometimes"),
        ("cpu", "lots"), ("memory", "64MB"), ("name", "Veil"),
    ])
    func badValuesAreRefused(field: String, value: String) {
        var options = RuntimeClassOptions()
        switch field {
        case "node-selector": options.nodeSelector = [value]
        case "toleration": options.tolerations = [value]
        case "cpu": options.overheadCPU = value
        case "memory": options.overheadMemory = value
        default: options.name = value
        }
        let error = #expect(throws: InstallError.self) { try RuntimeClassYAML.render(options) }
        #expect(error?.description.contains(value) == true)
    }
}

@Suite struct PieceTests {
    @Test func sha256KnownAnswers() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func unifiedDiff() {
        let diff = LineDiff.unified(old: "a\nb\nc\nd\ne\nf\ng\nh\n", new: "a\nb\nc\nD\ne\nf\ng\nh\ni\n", oldName: "x", newName: "y")
        #expect(diff == """
            --- x
            +++ y
            @@ -1,8 +1,9 @@
             a
             b
             c
            -d
            +D
             e
             f
             g
             h
            +i

            """)
        #expect(LineDiff.unified(old: "same\n", new: "same\n", oldName: "x", newName: "y") == "")
        #expect(LineDiff.unified(old: "", new: "new\n", oldName: "/dev/null", newName: "y") == "--- /dev/null\n+++ y\n@@ -0,0 +1,1 @@\n+new\n")
    }

    @Test func jsonKeepsOrderAndRawValues() throws {
        let text = "{\"b\": 1.50, \"a\": [true, null, \"x\\\"y\"], \"c\": {}}"
        let value = try JSONValue.parse(Array(text.utf8), file: "f.json")
        #expect(value.render() == "{\n  \"b\": 1.50,\n  \"a\": [\n    true,\n    null,\n    \"x\\\"y\"\n  ],\n  \"c\": {}\n}\n")
        #expect(value["a"] != nil && value["zzz"] == nil)
        #expect(JSONValue.string("é\n\"").stringValue == "é\n\"")
        #expect(throws: InstallError.self) { try JSONValue.parse(Array("{\"a\": 1} x".utf8), file: "f.json") }
        #expect(throws: InstallError.self) { try JSONValue.parse(Array("{\"a\" 1}".utf8), file: "f.json") }
    }
}

import Foundation
import SwiftProtobuf
import Testing
import VeilShimProtocol
@testable import VeilShim

/// The runtime options containerd sends in CreateTaskRequest.options (runtimeoptions.v1.Options
/// with a ConfigPath or a config_body) and the TOML they point at.
@Suite struct RuntimeOptionsTests {
    static func options(path: String = "", body: String = "", typeURL: String = RuntimeSettings.optionsTypeName) throws -> Google_Protobuf_Any {
        var message = Runtimeoptions_V1_Options()
        message.configPath = path
        message.configBody = Data(body.utf8)
        var any = Google_Protobuf_Any()
        any.typeURL = typeURL
        any.value = try message.serializedData()
        return any
    }

    static func failure(_ body: () throws -> RuntimeSettings) -> String {
        do {
            let settings = try body()
            return "no error: \(settings)"
        } catch {
            return "\(error)"
        }
    }

    @Test("no options, or an empty message, mean the defaults: veil's root, no extra flags")
    func defaults() throws {
        for given in [nil, Google_Protobuf_Any(), try Self.options()] {
            let settings = try RuntimeSettings.from(options: given)
            #expect(settings == RuntimeSettings())
            #expect(settings.veilFlags.isEmpty)
            #expect(settings.runtimeRoot(namespace: "k8s.io") == "/run/containerd/veil/k8s.io")
        }
    }

    @Test("config_body: every key becomes veil's flag, the root loses its trailing slash")
    func body() throws {
        let toml = """
            isolation = "sandbox"
            allow_lower_isolation = true
            sandbox_devices = ["/dev/fuse", "/dev/net/tun"]
            log_level = "debug"
            root = "/run/veil-k8s/"
            binary = "/bin/sh"
            """
        let settings = try RuntimeSettings.from(options: Self.options(body: toml))
        #expect(settings.veilFlags == ["--debug", "--isolation", "sandbox", "--allow-lower-isolation",
                                       "--sandbox-device", "/dev/fuse", "--sandbox-device", "/dev/net/tun"])
        #expect(settings.runtimeRoot(namespace: "k8s.io") == "/run/veil-k8s/k8s.io")
        #expect(settings.binary == "/bin/sh")
        #expect(settings.source == "runtime options (config_body)" && settings.text == toml)
    }

    @Test("the seccomp-artifact keys become veil's flags of the same names")
    func seccompArtifactKeys() throws {
        let toml = """
            allow_seccomp_record = true
            seccomp_artifacts = false
            seccomp_artifacts_from_images = true
            registry_auth_file = "/etc/veil/auth.json"
            registries_conf = "/etc/veil/registries.conf"
            registry_cert_dir = "/etc/veil/certs.d"
            """
        let settings = try RuntimeSettings.from(options: Self.options(body: toml))
        #expect(settings.veilFlags == ["--allow-seccomp-record", "--seccomp-artifacts=false", "--seccomp-artifacts-from-images",
                                       "--registries-conf", "/etc/veil/registries.conf", "--registry-auth-file", "/etc/veil/auth.json",
                                       "--registry-cert-dir", "/etc/veil/certs.d"])
        #expect(Self.failure { try RuntimeSettings.from(options: Self.options(body: "registry_auth_file = \"auth.json\"")) }.contains("is not an absolute path"))
        #expect(Self.failure { try RuntimeSettings.from(options: Self.options(body: "seccomp_artifacts = \"no\"")) }.contains("must be a boolean"))
    }

    @Test("ConfigPath: the file is read, its path names the errors, and the type URL may carry a prefix")
    func configPath() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/runtime.toml"
        try "isolation = \"native\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let settings = try RuntimeSettings.from(options: Self.options(path: path, typeURL: "type.googleapis.com/runtimeoptions.v1.Options"))
        #expect(settings.isolation == "native" && settings.source == path)
        #expect(settings.veilFlags == ["--isolation", "native"])

        try "isolation = \"vm\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let wrongValue = Self.failure { try RuntimeSettings.from(options: Self.options(path: path)) }
        #expect(wrongValue.contains(path) && wrongValue.contains("unknown value \"vm\""))

        let missing = Self.failure { try RuntimeSettings.from(options: Self.options(path: directory.path + "/absent.toml")) }
        #expect(missing.contains("absent.toml") && missing.contains("No such file"))
        let relative = Self.failure { try RuntimeSettings.from(options: Self.options(path: "runtime.toml")) }
        #expect(relative.contains("must be an absolute path"))
    }

    @Test("containerd's runc options are honoured for the driver, root and binary; other runtimes' are refused by name")
    func runcAndForeignOptions() throws {
        var runc = Containerd_Runc_V1_Options()
        runc.systemdCgroup = true
        runc.root = "/run/veil-runc/"
        var any = Google_Protobuf_Any()
        any.typeURL = "containerd.runc.v1.Options"
        any.value = try runc.serializedData()
        let settings = try RuntimeSettings.from(options: any)
        #expect(settings.systemdCgroup == true && settings.root == "/run/veil-runc")
        #expect(settings.veilFlags.contains("--systemd-cgroup"))
        #expect(settings.text.contains("systemd_cgroup = true"))  // recorded in the bundle for delete

        runc.binaryName = "runc"
        any.value = try runc.serializedData()
        #expect(Self.failure { try RuntimeSettings.from(options: any) }.contains("key \"binary\""))

        var hcs = Google_Protobuf_Any()
        hcs.typeURL = "runhcs.v1.Options"
        let message = Self.failure { try RuntimeSettings.from(options: hcs) }
        #expect(message.contains("are not veil's") && message.contains("runhcs.v1.Options"))

        var garbage = Google_Protobuf_Any()
        garbage.typeURL = RuntimeSettings.optionsTypeName
        garbage.value = Data([0xFF, 0xFF, 0xFF])
        #expect(Self.failure { try RuntimeSettings.from(options: garbage) }.contains("cannot decode"))
    }

    @Test("every bad TOML is an error naming the source, the key and what was expected", arguments: [
        ("isolation = ", "runtime options (config_body):1:"),
        ("colour = \"blue\"", "unknown key \"colour\""),
        ("isolation = 1", "key \"isolation\" must be a string"),
        ("allow_lower_isolation = \"yes\"", "must be a boolean"),
        ("sandbox_devices = [\"/etc/shadow\"]", "is not a path under /dev/"),
        ("sandbox_devices = \"/dev/fuse\"", "must be an array"),
        ("log_level = \"trace\"", "unknown value \"trace\""),
        ("root = \"relative\"", "is not an absolute path"),
        ("binary = \"/nonexistent/veil\"", "is not an executable file"),
    ])
    func badValues(toml: String, expected: String) {
        let message = Self.failure { try RuntimeSettings.from(options: Self.options(body: toml)) }
        #expect(message.contains(expected), "\(toml): \(message)")
        #expect(message.hasPrefix("runtime options (config_body)"), "\(toml): \(message)")
    }

    @Test("the settings recorded in a bundle at Create are those a later `delete` reads back")
    func recordedInBundle() throws {
        let bundle = try TemporaryDirectory()
        #expect(RuntimeSettings.recorded(bundle: bundle.path) == RuntimeSettings())
        let settings = try RuntimeSettings.parse("root = \"/run/veil-test\"\nlog_level = \"debug\"\n", source: "test")
        try settings.record(bundle: bundle.path)
        let recorded = RuntimeSettings.recorded(bundle: bundle.path)
        #expect(recorded.root == "/run/veil-test" && recorded.debug)
        #expect(recorded.source == bundle.path + "/" + RuntimeSettings.bundleFile)
    }
}

/// A directory under /tmp removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "veil-shim-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @Test("systemd_cgroup: the operator's word, else inferred from a slice:prefix:name cgroupsPath where systemd runs")
    func systemdDriver() throws {
        let off = try RuntimeSettings.parse("systemd_cgroup = false\nallow_systemd_properties = true\n", source: "t")
        #expect(off.systemdCgroup == false && off.veilFlags == ["--allow-systemd-properties"])
        var explicit = off
        explicit.inferSystemdCgroup(cgroupsPath: "kubepods-besteffort-pod1.slice:cri-containerd:abc", systemdRunning: true)
        #expect(explicit.systemdCgroup == false)  // the operator said no

        var inferred = RuntimeSettings()
        inferred.inferSystemdCgroup(cgroupsPath: "kubepods-besteffort-pod1.slice:cri-containerd:abc", systemdRunning: true)
        #expect(inferred.systemdCgroup == true && inferred.veilFlags.contains("--systemd-cgroup"))
        #expect(try RuntimeSettings.parse(inferred.text, source: "bundle").systemdCgroup == true)

        for (path, running) in [("/kubepods/besteffort/pod1/abc", true), ("a.slice:p:n", false), ("a:b", true), ("a.slice:p:", true), (nil, true)] as [(String?, Bool)] {
            var settings = RuntimeSettings()
            settings.inferSystemdCgroup(cgroupsPath: path, systemdRunning: running)
            #expect(settings.systemdCgroup == nil, "\(path ?? "nil") \(running)")
        }
    }
}

import Foundation
import Glibc
import Testing
@testable import VeilInstall

/// A real containerd (Debian's 1.6) started on a config that `veil install --containerd` wrote on
/// top of a minimal private one, with the CRI plugin enabled: containerd must parse it, load CRI
/// and list the veil runtime next to runc. No container is run (the shim is another piece of work).
@Suite(.serialized) struct ContainerdEndToEndTests {
    static var containerd: String? { findExecutable("containerd") }

    static func findExecutable(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in path + ["/usr/sbin", "/sbin"] {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// The veil binary: $VEIL_BINARY, else the one built next to this test bundle.
    static var veilBinary: String? {
        if let path = ProcessInfo.processInfo.environment["VEIL_BINARY"], !path.isEmpty, access(path, X_OK) == 0,
           run(path, ["install", "--help"]).status == 0 {
            return path
        }
        guard let exe = SystemHost().executablePath else { return nil }
        var dir = exe
        while let slash = dir.lastIndex(of: "/"), dir != "/" {
            dir = String(dir[..<slash])
            if access(dir + "/veil", X_OK) == 0, !dir.hasSuffix(".xctest") { return dir + "/veil" }
        }
        return nil
    }

    @discardableResult
    static func run(_ program: String, _ args: [String], environment: [String: String] = [:], timeout: Double = 30) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        let outputPath = "/tmp/vi-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil), let out = FileHandle(forWritingAtPath: outputPath) else {
            return (-1, "cannot create \(outputPath)")
        }
        defer { unlink(outputPath) }
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? out.close()
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: getuid() == 0 && ContainerdEndToEndTests.containerd != nil, "needs root and Debian's containerd"))
    func containerdLoadsTheConfigVeilWrote() throws {
        let veil = try #require(Self.veilBinary, "the veil binary (with install) was not built; set VEIL_BINARY")
        let containerd = try #require(Self.containerd)
        let ctr = try #require(Self.findExecutable("ctr"))
        let scratch = try Scratch("vi-")
        defer {
            Glibc.system("umount -R \(scratch.path)/root \(scratch.path)/state 2>/dev/null")
            scratch.remove()
        }
        let d = scratch.path
        let original = """
            version = 2
            root = "\(d)/root"
            state = "\(d)/state"
            disabled_plugins = [
              "io.containerd.snapshotter.v1.aufs",
              "io.containerd.snapshotter.v1.btrfs",
              "io.containerd.snapshotter.v1.devmapper",
              "io.containerd.snapshotter.v1.zfs",
              "io.containerd.tracing.processor.v1.otlp",
            ]

            [grpc]
              address = "\(d)/c.sock"

            [ttrpc]
              address = "\(d)/c.sock.ttrpc"

            [plugins]
              [plugins."io.containerd.grpc.v1.cri"]
                disable_tcp_service = true
                stream_server_address = "127.0.0.1"
                stream_server_port = "0"
                [plugins."io.containerd.grpc.v1.cri".cni]
                  bin_dir = "\(d)/cni/bin"
                  conf_dir = "\(d)/cni/net.d"

            """
        try scratch.write("config.toml", original)
        let environment = ["VEIL_INSTALL_STATE": d + "/install.json"]
        let install = Self.run(veil, ["install", "--containerd", "--config", d + "/config.toml", "--prefix", d + "/bin", "--no-restart"], environment: environment)
        #expect(install.status == 0, "\(install.output)")
        #expect(install.output.contains("registered veil as runtimes veil and veil-native (io.containerd.veil.v1, config version 2)"), "\(install.output)")
        #expect(FileManager.default.isExecutableFile(atPath: d + "/bin/veil"))
        #expect(FileManager.default.isExecutableFile(atPath: d + "/bin/veil-native"))

        // containerd reads it: the merged config has veil next to the default runc runtime.
        let dump = Self.run(containerd, ["--config", d + "/config.toml", "config", "dump"])
        #expect(dump.status == 0, "\(dump.output)")
        #expect(dump.output.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]"))
        #expect(dump.output.contains("runtime_type = \"io.containerd.veil.v1\""))
        #expect(dump.output.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil-native]"), "\(dump.output)")
        #expect(dump.output.contains("privileged_without_host_devices = true"), "\(dump.output)")
        #expect(dump.output.contains("ConfigPath = \"\(d)/veil-native.toml\""), "\(dump.output)")
        #expect(dump.output.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]"), "CRI's default runtime must survive")
        #expect(dump.output.contains("runtime_type = \"io.containerd.runc.v2\""))

        // And starts with it, the CRI plugin loaded.
        let log = FileHandle(forWritingAtPath: "/dev/null")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: containerd)
        daemon.arguments = ["--config", d + "/config.toml", "--log-level", "info"]
        let logPath = d + "/containerd.log"
        #expect(FileManager.default.createFile(atPath: logPath, contents: nil))
        let logHandle = try #require(FileHandle(forWritingAtPath: logPath))
        daemon.standardOutput = logHandle
        daemon.standardError = logHandle
        daemon.standardInput = log
        try daemon.run()
        defer {
            if daemon.isRunning {
                daemon.terminate()
                daemon.waitUntilExit()
            }
        }
        var plugins = (status: Int32(-1), output: "")
        for _ in 0..<200 where daemon.isRunning {
            plugins = Self.run(ctr, ["--address", d + "/c.sock", "plugins", "ls"], timeout: 5)
            if plugins.status == 0 { break }
            usleep(100_000)
        }
        let containerdLog = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(daemon.isRunning, "containerd exited:\n\(containerdLog)")
        #expect(plugins.status == 0, "\(plugins.output)\n\(containerdLog)")
        let cri = plugins.output.split(separator: "\n").first { $0.contains("io.containerd.grpc.v1") && $0.contains(" cri ") }
        #expect(cri?.split(separator: " ").last == "ok", "CRI plugin: \(cri ?? "missing")\n\(plugins.output)\n\(containerdLog)")
        #expect(containerdLog.contains("veil"), "containerd logs the CRI runtime config it loaded")

        daemon.terminate()
        daemon.waitUntilExit()

        let uninstall = Self.run(veil, ["uninstall", "--containerd", "--config", d + "/config.toml", "--prefix", d + "/bin", "--no-restart"], environment: environment)
        #expect(uninstall.status == 0, "\(uninstall.output)")
        #expect(scratch.read("config.toml") == original)
        #expect(!FileManager.default.fileExists(atPath: d + "/bin"))
        #expect(!FileManager.default.fileExists(atPath: d + "/install.json"))
    }

    @Test(.enabled(if: ContainerdEndToEndTests.veilBinary != nil, "needs the veil binary"))
    func cliErrorsAndKubernetes() throws {
        let veil = try #require(Self.veilBinary)
        let scratch = try Scratch("vi-")
        defer { scratch.remove() }
        try scratch.write("config.toml", "version = 2\n[plugins\n")
        let environment = ["VEIL_INSTALL_STATE": scratch.file("install.json")]
        let bad = Self.run(veil, ["install", "--containerd", "--config", scratch.file("config.toml"), "--prefix", scratch.file("bin")], environment: environment)
        #expect(bad.status != 0)
        #expect(bad.output.contains(scratch.file("config.toml") + ": line 2, column "), "\(bad.output)")
        #expect(scratch.list() == ["config.toml"])

        let yaml = Self.run(veil, ["install", "--kubernetes", "--node-selector", "veil.dev/installed=true", "--toleration", "veil.dev/sandbox=true:NoSchedule",
                                   "--overhead-cpu", "100m", "--overhead-memory", "64Mi"], environment: environment)
        #expect(yaml.status == 0)
        #expect(yaml.output.hasPrefix("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\n"))
        #expect(yaml.output.contains("    memory: \"64Mi\"\n"))
        #expect(yaml.output.contains("\n---\n") && yaml.output.contains("  name: veil-native\nhandler: veil-native\n"), "\(yaml.output)")
        #expect(scratch.list() == ["config.toml"])

        let dry = Self.run(veil, ["install", "--dry-run", "--crio", "--crio-dir", scratch.file("crio"), "--prefix", scratch.file("bin")], environment: environment)
        #expect(dry.status == 0)
        #expect(dry.output.contains("+runtime_type = \"oci\"\n"), "\(dry.output)")
        #expect(scratch.list() == ["config.toml"])
    }
}

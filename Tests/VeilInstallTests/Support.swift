import Foundation
import Glibc
@testable import VeilInstall

/// A fresh directory under /tmp, removed by `remove()`.
final class Scratch {
    let path: String

    init(_ prefix: String = "vi-") throws {
        var template = Array("/tmp/\(prefix)XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        path = String(cString: made)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
    }

    func read(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }

    /// Names in the directory (sorted).
    func list(_ sub: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sub.isEmpty ? path : file(sub))) ?? []).sorted()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Records the programs the installer runs and answers with canned results.
final class FakeHost: InstallHost, @unchecked Sendable {
    var commands: [[String]] = []
    var answers: [String: (Int32, String)] = [:]
    var executable: String?
    var time = "20240102030405"

    init(executable: String? = nil) { self.executable = executable }

    func run(_ argv: [String]) -> (status: Int32, output: String)? {
        commands.append(argv)
        guard let answer = answers[argv.joined(separator: " ")] else { return nil }
        return (answer.0, answer.1)
    }

    func timestamp() -> String { time }
    var executablePath: String? { executable }
}

/// Options that touch only `scratch`: state file, prefix, no binaries unless asked.
func testOptions(_ scratch: Scratch) -> InstallOptions {
    var o = InstallOptions()
    o.statePath = scratch.file("state/install.json")
    o.prefix = scratch.file("bin")
    o.containerdConfig = scratch.file("config.toml")
    o.crioDirectory = scratch.file("crio.conf.d")
    o.dockerConfig = scratch.file("daemon.json")
    o.binaries = false
    return o
}

func containerdOptions(_ scratch: Scratch) -> InstallOptions {
    var o = testOptions(scratch)
    o.containerd = true
    return o
}

func backups(in scratch: Scratch) -> [String] { scratch.list().filter { $0.contains(".veil-backup-") } }

let containerdV2 = """
    # containerd 1.7 config with two runtimes already
    version = 2
    root = "/var/lib/containerd"
    state = "/run/containerd"
    oom_score = -999

    [grpc]
      address = "/run/containerd/containerd.sock"
      max_recv_message_size = 16777216

    [plugins]
      [plugins."io.containerd.grpc.v1.cri"]
        sandbox_image = "registry.k8s.io/pause:3.9"
        [plugins."io.containerd.grpc.v1.cri".containerd]
          default_runtime_name = "runc"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
              [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                SystemdCgroup = true
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
              runtime_type = "io.containerd.kata.v2"
              pod_annotations = ["io.katacontainers.*"]
              privileged_without_host_devices = true
      [plugins."io.containerd.internal.v1.opt"]
        path = "/opt/containerd"

    [metrics]
      address = "127.0.0.1:1338"

    [timeouts]
      "io.containerd.timeout.shutdown" = "5s"

    """

let containerdV3 = """
    version = 3
    root = '/var/lib/containerd'

    [plugins.'io.containerd.cri.v1.images']
      snapshotter = 'overlayfs'

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = true

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]
      runtime_type = 'io.containerd.kata.v2'

    [plugins.'io.containerd.grpc.v1.cri']
      disable_tcp_service = true
    """

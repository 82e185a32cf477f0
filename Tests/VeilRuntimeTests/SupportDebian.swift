// Bundles over the cached Debian rootfs (scripts/debian-rootfs.sh, `make rootfs`), for tests that run
// real programs (python3, nginx, redis). The rootfs is shared by every test and never written:
// config.json makes the root read-only and puts a tmpfs wherever a program writes.
//
// API:
//   debianRootfs: $VEIL_DEBIAN_ROOTFS when it names a complete build, else nil.
//   requireDebianRootfs() throws -> String: the path, or an error saying how to get one.
//   debianRootfsAvailable: true when a test should run (a rootfs, or VEIL_REQUIRED=1 so that its
//       absence fails the test instead of skipping it). Use `.enabled(if: debianRootfsAvailable)`.
//   IsolatedRuntime: a runtime plus the `--isolation` level veil gets (runc, veil native, veil sandbox);
//       `IsolatedRuntime.all` for `@Test(arguments:)`.
//   DebianBundle(args, rootfs:, writable:): a bundle dir whose config.json points at the shared rootfs
//       (read-only, tmpfs at each `writable` path), cgroupsPath /veil-test/<id>, Docker's default
//       capabilities; `run(runtime, timeout:)` runs it in the foreground; `forceDelete(runtime)`,
//       `leftovers()`, `remove()`.

import Foundation

var debianRootfs: String? {
    guard let path = ProcessInfo.processInfo.environment["VEIL_DEBIAN_ROOTFS"], !path.isEmpty,
          FileManager.default.fileExists(atPath: path + "/.veil-rootfs-complete") else { return nil }
    return path
}

var debianRootfsAvailable: Bool { debianRootfs != nil || veilRequired }

func requireDebianRootfs() throws -> String {
    if let debianRootfs { return debianRootfs }
    let given = ProcessInfo.processInfo.environment["VEIL_DEBIAN_ROOTFS"] ?? ""
    throw SupportError(given.isEmpty
        ? "VEIL_DEBIAN_ROOTFS is not set: build the rootfs with `make rootfs` (or scripts/debian-rootfs.sh) and export its path"
        : "VEIL_DEBIAN_ROOTFS=\(given) is not a complete rootfs built by scripts/debian-rootfs.sh")
}

/// A runtime binary and, for veil, the isolation level it is asked for with `--isolation`.
struct IsolatedRuntime: Sendable, CustomStringConvertible {
    let runtime: RuntimeUnderTest
    let isolation: String?

    static var all: [IsolatedRuntime] {
        RuntimeUnderTest.all.filter { $0.name != "veil-native" }.flatMap { runtime -> [IsolatedRuntime] in
            runtime.name == "veil"
                ? ["native", "sandbox"].map { IsolatedRuntime(runtime: runtime, isolation: $0) }
                : [IsolatedRuntime(runtime: runtime, isolation: nil)]
        }
    }

    /// The global flags that come before the command.
    var globalFlags: [String] { isolation.map { ["--isolation", $0] } ?? [] }

    var description: String { isolation.map { "\(runtime.name) --isolation \($0)" } ?? runtime.name }
}

final class DebianBundle {
    let dir: TempDir
    let id: String
    var path: String { dir.path }
    var stateRoot: String { dir.path + "/state" }
    var configPath: String { dir.path + "/config.json" }

    /// Capabilities container engines (Docker, containerd's CRI) give by default: real daemons
    /// need them (nginx switches to www-data, redis reads its root-unreadable config).
    static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// - Parameters:
    ///   - args: process.args.
    ///   - writable: directories of the rootfs that get a fresh tmpfs (they must exist in the rootfs,
    ///     which is read-only to everyone).
    ///   - binds: (host path, container path) read-only bind mounts; the container path must exist.
    init(_ args: [String], rootfs: String, writable: [String] = ["/tmp", "/run"], binds: [(String, String)] = []) throws {
        dir = try TempDir(prefix: "veil-debian")
        id = "w\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: stateRoot, withIntermediateDirectories: true)
        // runc's default spec as the base: what both runtimes are measured against.
        let spec = try runCommand(RuntimeUnderTest.runc.binary(), ["spec"], workingDirectory: path)
        guard spec.succeeded else { throw SupportError("runc spec failed: \(spec)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              var process = config["process"] as? [String: Any],
              var linux = config["linux"] as? [String: Any],
              var mounts = config["mounts"] as? [[String: Any]] else {
            throw SupportError("runc spec wrote an unexpected config.json")
        }
        process["args"] = args
        process["terminal"] = false
        process["env"] = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
        ]
        let caps = Self.defaultCapabilities
        process["capabilities"] = ["bounding": caps, "effective": caps, "permitted": caps]
        config["process"] = process
        config["root"] = ["path": rootfs, "readonly": true]
        config["hostname"] = "veil-workload"
        for target in writable {
            mounts.append(["destination": target, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=64m"]])
        }
        for (source, target) in binds {
            mounts.append(["destination": target, "type": "bind", "source": source, "options": ["rbind", "ro"]])
        }
        config["mounts"] = mounts
        linux["cgroupsPath"] = "/veil-test/\(id)"
        config["linux"] = linux
        let out = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try out.write(to: URL(fileURLWithPath: configPath))
    }

    /// `RUNTIME [--isolation L] --root STATE run --bundle DIR ID` in the foreground.
    func run(_ runtime: IsolatedRuntime, timeout: TimeInterval = 120) throws -> CommandResult {
        try runCommand(try runtime.runtime.binary(),
                       runtime.globalFlags + ["--root", stateRoot, "run", "--bundle", path, id],
                       timeout: timeout, workingDirectory: path)
    }

    /// Removes the container if a failed or timed-out run left it behind.
    func forceDelete(_ runtime: IsolatedRuntime) {
        guard let binary = try? runtime.runtime.binary() else { return }
        _ = try? runCommand(binary, ["--root", stateRoot, "delete", "--force", id], timeout: 30)
    }

    /// What a finished container may not leave: its state, its cgroups, mounts under the bundle.
    func leftovers() -> [String] { containerLeftovers(stateRoot: stateRoot, id: id, bundle: path) }

    func remove() { dir.remove() }
}

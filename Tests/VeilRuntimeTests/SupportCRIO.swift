// A private CRI-O (v1.26.4, built once by scripts/build-crio.sh into /var/cache/veil) on a socket
// under a temporary directory, set up by scripts/crio-env.sh (conmon and CNI plugins from Debian,
// the test images loaded with skopeo, runc as its default handler) with veil's handlers as
// `veil install --crio` writes them. Where no CRI-O is cached (CI cannot fetch its source) the
// suites that need it skip, saying so.

import Foundation

/// What the CRI suites need of a rig, containerd's or CRI-O's.
protocol CRIRuntimeRig {
    /// The CRI socket's path.
    var address: String { get }
    /// A directory of the rig's own, for logs and volumes.
    var directory: String { get }
    /// The busybox image, already in the rig's store.
    var image: String { get }
}

extension ContainerdRig: CRIRuntimeRig {}

final class CRIORig: CRIRuntimeRig {
    let directory: String
    let environment: [String: String]
    private let daemon: Process
    let socket: String
    var log: String { (try? String(contentsOfFile: environment["CRIO_LOG"] ?? "", encoding: .utf8)) ?? "" }
    var cgroupParent: String { environment["CRIO_CGROUP_PARENT"] ?? "" }
    var image: String { environment["CRIO_TEST_IMAGE"] ?? "" }
    var address: String { socket }
    /// veil's state root for its handlers (the drop-in's runtime_root, moved under the rig).
    var veilRoot: String { directory + "/run/veil" }

    /// nil when CRI-O is not built here (crio-env.sh's exit status 3); throws on any other failure.
    /// `cni`: "loopback" (pods get only lo), "ptp" or "bridge" (a veth and an address: the pod is reachable).
    static func start(cni: String = "loopback") throws -> CRIORig? {
        let veil = try requireVeil()
        // Short: the socket path must fit a sockaddr_un.
        let directory = "/tmp/vcrio-" + randomName(6)
        let setup = try runCommand(packageRoot + "/scripts/crio-env.sh", [directory], environment: ["CRIO_CNI": cni], timeout: 600)
        if setup.status == 3 { return nil }
        guard setup.succeeded else { throw SupportError("crio-env.sh failed:\n\(setup)") }
        var environment: [String: String] = [:]
        for line in (try String(contentsOfFile: directory + "/crio.env", encoding: .utf8)).split(separator: "\n") {
            guard line.hasPrefix("export "), let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[line.index(line.startIndex, offsetBy: 7)..<eq])
            let raw = String(line[line.index(after: eq)...])
            // printf %q quoting: these values have no spaces or quotes but may be wrapped in '…'.
            environment[key] = raw.hasPrefix("'") && raw.hasSuffix("'") ? String(raw.dropFirst().dropLast()) : raw.replacingOccurrences(of: "\\", with: "")
        }
        // veil's handlers exactly as `veil install --crio` writes them, binaries from a prefix of links.
        let prefix = directory + "/bin"
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: prefix + "/veil", withDestinationPath: veil)
        try FileManager.default.createSymbolicLink(atPath: prefix + "/veil-native", withDestinationPath: veil)
        let dropIns = environment["CRIO_CONFIG_DIR"] ?? directory + "/crio.conf.d"
        // `crio` on PATH, as on a node: the installer asks its version.
        let crioBin = ((environment["CRIO_BINARY"] ?? "") as NSString).deletingLastPathComponent
        let path = crioBin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        let installed = try runCommand(veil, ["install", "--crio", "--crio-dir", dropIns, "--prefix", prefix, "--no-binaries", "--no-restart"],
                                       environment: ["VEIL_INSTALL_STATE": directory + "/install.json", "PATH": path], timeout: 30)
        guard installed.succeeded else { throw SupportError("veil install --crio failed:\n\(installed)") }
        let dropIn = dropIns + "/50-veil.conf"
        let text = try String(contentsOfFile: dropIn, encoding: .utf8)
        try text.replacingOccurrences(of: "runtime_root = \"/run/veil\"", with: "runtime_root = \"\(directory)/run/veil\"")
            .write(toFile: dropIn, atomically: true, encoding: .utf8)

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: environment["CRIO_BINARY"] ?? "")
        daemon.arguments = ["--config", environment["CRIO_CONFIG"] ?? "", "--config-dir", dropIns]
        var processEnvironment = ProcessInfo.processInfo.environment
        for key in ["CONTAINERS_REGISTRIES_CONF", "CONTAINERS_STORAGE_CONF"] { processEnvironment[key] = environment[key] }
        daemon.environment = processEnvironment
        let logPath = environment["CRIO_LOG"] ?? directory + "/crio.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: logPath)
        daemon.standardOutput = logHandle
        daemon.standardError = logHandle
        daemon.standardInput = FileHandle.nullDevice
        try daemon.run()
        let rig = CRIORig(directory: directory, environment: environment, daemon: daemon)
        let calls = CRICalls(socket: rig.socket)
        var last = ""
        let ready = try waitUntil(timeout: 60) {
            switch try calls.attempt("Version", [:], timeout: 10) {
            case .success: return true
            case .failure(let error): last = error.message; return false
            }
        }
        guard ready else {
            rig.stop()
            throw SupportError("CRI-O did not answer within 60 s: \(last)\n\(rig.log)")
        }
        return rig
    }

    private init(directory: String, environment: [String: String], daemon: Process) {
        self.directory = directory
        self.environment = environment
        self.daemon = daemon
        socket = environment["CRIO_SOCKET"] ?? directory + "/crio.sock"
    }

    /// CRI-O leaves containers running when it exits: what veil's handlers ran is deleted with veil,
    /// the rest (runc's, conmon, mounts, the cgroup parent) by crio-env.sh --teardown.
    func stop() {
        if daemon.isRunning {
            daemon.terminate()
            _ = waitUntil(timeout: 10) { !daemon.isRunning }
        }
        if let veil = try? requireVeil(), let listed = try? runCommand(veil, ["--root", veilRoot, "list", "-q"], timeout: 30) {
            for id in listed.stdout.split(separator: "\n") {
                _ = try? runCommand(veil, ["--root", veilRoot, "delete", "-f", String(id)], timeout: 30)
            }
        }
        _ = try? runCommand(packageRoot + "/scripts/crio-env.sh", ["--teardown", directory], timeout: 120)
    }
}

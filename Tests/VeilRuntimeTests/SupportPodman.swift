// An isolated podman (Debian's 4.3, with conmon) driving one runc-compatible runtime.
//
//   let rig = try PodmanRig(runtime: binary)   // fresh storage under /tmp/vp.XXXXXX, busybox image loaded
//   defer { rig.stop() }                       // removes containers, kills conmon, unmounts, deletes
//   rig.podman(["run", "--rm"] + rig.runFlags + [rig.image, "echo", "hi"])
//   rig.arguments([...])                       // full argv for `env`, e.g. for runInPseudoTerminal
//   rig.containerCgroups(id: cid)              // existing cgroup dirs of a container, every hierarchy
//
// Isolation: storage (--root), state (--runroot, --tmpdir), volumes and network configuration all
// live in the rig's directory; cgroups under a per-rig --cgroup-parent (/vp-XXXXXXXX, conmon's
// cgroup is <parent>/conmon); no registry is contacted (the image comes from
// scripts/make-busybox-image.sh through `podman load`). containers.conf (CONTAINERS_CONF) empties
// default_ulimits: podman's defaults raise RLIMIT_NOFILE/NPROC, which needs CAP_SYS_RESOURCE that
// this machine's root lacks. The runtime keeps its state under its default root (/run/runc,
// /run/veil): podman's exit command (`podman container cleanup`, run by conmon) would not carry a
// --runtime-flag root=..., so a private root would strand the cleanup.
// Outside the directory, podman only writes /var/lib/containers/cache (its blob-info cache).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class PodmanRig {
    let directory: String
    let podmanPath: String
    let runtime: String
    let image = "localhost/busybox:latest"
    /// Parent of every container cgroup of this rig (and of conmon's), e.g. /vp-ab12cd34.
    let cgroupParent: String
    let configPath: String
    private var stopped = false

    /// - Parameter runtime: the runtime binary's absolute path (passed as --runtime).
    init(runtime: String) throws {
        guard let podman = findExecutable("podman"), findExecutable("conmon") != nil else {
            throw SupportError("podman and conmon must be installed (apt-get install podman)")
        }
        podmanPath = podman
        self.runtime = runtime
        let dir = try TempDir(prefix: "vp", parent: "/tmp")
        directory = dir.path
        cgroupParent = "/vp-" + randomName(8)
        configPath = directory + "/containers.conf"
        let config = """
            [containers]
            default_ulimits = []

            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"

            """
        guard FileManager.default.createFile(atPath: configPath, contents: Data(config.utf8)) else {
            dir.remove()
            throw SupportError("cannot write \(configPath)")
        }
        do {
            try loadImage()
        } catch {
            stop()
            throw error
        }
    }

    /// podman's global flags: everything podman keeps goes below `directory`.
    var globalArguments: [String] {
        [
            "--root", directory + "/storage", "--runroot", directory + "/run", "--tmpdir", directory + "/tmp",
            "--volumepath", directory + "/volumes", "--network-config-dir", directory + "/net",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay",
            "--runtime", runtime,
        ]
    }

    /// Flags for `podman run` / `create`: no network set-up, cgroups under this rig's parent.
    var runFlags: [String] { ["--network", "none", "--cgroup-parent", cgroupParent] }

    var environment: [String: String] { ["CONTAINERS_CONF": configPath] }

    /// argv for `env`: `CONTAINERS_CONF=... podman GLOBAL... ARGS...` (runInPseudoTerminal takes no
    /// environment).
    func arguments(_ arguments: [String]) -> [String] {
        ["CONTAINERS_CONF=" + configPath, podmanPath] + globalArguments + arguments
    }

    @discardableResult
    func podman(_ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 30) throws -> CommandResult {
        try runCommand(podmanPath, globalArguments + arguments, environment: environment,
                       stdin: stdin, timeout: timeout)
    }

    private func loadImage() throws {
        let tarball = directory + "/busybox-image.tar"
        let built = try runCommand(packageRoot + "/scripts/make-busybox-image.sh", [tarball], timeout: 120)
        guard built.succeeded else { throw SupportError("building the busybox image failed:\n\(built)") }
        let loaded = try podman(["load", "-i", tarball], timeout: 60)
        guard loaded.succeeded, loaded.stdout.contains(image) else {
            throw SupportError("podman load failed:\n\(loaded)")
        }
    }

    /// Existing cgroup directories named `name` below this rig's parent (the parent itself when
    /// nil), one per cgroup v1 hierarchy, or the single v2 one.
    func cgroupDirectories(_ name: String? = nil) -> [String] {
        let relative = String(cgroupParent.dropFirst()) + (name.map { "/" + $0 } ?? "")
        let base = "/sys/fs/cgroup"
        var candidates = [base + "/" + relative]
        if let hierarchies = try? FileManager.default.contentsOfDirectory(atPath: base) {
            candidates += hierarchies.map { base + "/" + $0 + "/" + relative }
        }
        return candidates.filter { FileManager.default.fileExists(atPath: $0 + "/cgroup.procs") }
    }

    /// podman (cgroupfs) puts container CID in <parent>/libpod-CID.
    func containerCgroups(id: String) -> [String] { cgroupDirectories("libpod-" + id) }

    /// Pids in every cgroup below this rig's parent (containers and conmon).
    func cgroupProcesses() -> Set<Int32> {
        var pids = Set<Int32>()
        for top in cgroupDirectories() {
            for dir in [top] + allSubdirectories(of: top) {
                let procs = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
                pids.formUnion(procs.split(separator: "\n").compactMap { Int32($0) })
            }
        }
        return pids
    }

    /// Live conmon processes of this rig (their command line names our storage).
    func conmonProcesses() -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let program = argv.first, program.hasSuffix("conmon") else { return false }
            return argv.contains { $0.hasPrefix(directory + "/") } && processIsAlive(pid)
        }
    }

    /// Tears everything down; safe to call twice; never throws. Order: podman removes its
    /// containers (so the runtime's delete runs), then the runtime's own delete for any container
    /// podman could not remove, then by force conmon, container processes, cgroups and mounts.
    func stop() {
        if stopped { return }
        stopped = true
        let listed = (try? podman(["ps", "-aq", "--no-trunc"], timeout: 10))?.stdout ?? ""
        let ids = listed.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        if !ids.isEmpty {
            _ = try? podman(["rm", "-af", "-t", "0"], timeout: 30)
        }
        for pid in conmonProcesses() { kill(pid, SIGKILL) }
        thawCgroups(cgroupDirectories())
        _ = waitUntil(timeout: 5) {
            let pids = cgroupProcesses()
            for pid in pids { kill(pid, SIGKILL) }
            return pids.isEmpty
        }
        for id in ids {
            _ = try? runCommand(runtime, ["delete", "--force", id], timeout: 10)
        }
        for top in cgroupDirectories() {
            for dir in allSubdirectories(of: top).sorted(by: { $0.count > $1.count }) + [top] { rmdir(dir) }
        }
        removeTree(directory)
    }
}

/// Every directory below `path` (not `path` itself).
private func allSubdirectories(of path: String) -> [String] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
    var result: [String] = []
    for entry in entries {
        let child = path + "/" + entry
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: child, isDirectory: &isDirectory), isDirectory.boolValue {
            result.append(child)
            result += allSubdirectories(of: child)
        }
    }
    return result
}

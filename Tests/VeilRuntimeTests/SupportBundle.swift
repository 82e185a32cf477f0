// Bundles for the end-to-end tests: a busybox rootfs (scripts/make-bundle.sh) whose config.json
// a test edits as a dictionary. Every container gets a unique id and its cgroups under
// /veil-test/<id>, so a test can check that nothing of it is left behind.

import Foundation

final class TestBundle {
    let dir: TempDir
    let id: String
    let stateRoot: String
    var path: String { dir.path }
    var rootfs: String { dir.path + "/rootfs" }
    var configPath: String { dir.path + "/config.json" }

    /// - Parameter args: process.args (terminal off).
    init(_ args: [String], prefix: String = "t") throws {
        dir = try TempDir(prefix: "veil-bundle")
        id = "\(prefix)\(UInt32.random(in: 0...UInt32.max))"
        stateRoot = dir.path + "-state"
        let made = try runCommand(packageRoot + "/scripts/make-bundle.sh", [dir.path] + args, environment: ["VEIL": "/nonexistent"])
        guard made.succeeded else { throw SupportError("make-bundle failed: \(made)") }
        try edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = "/veil-test/\(self.id)"
            config["linux"] = linux
            config["hostname"] = "veil-test-host"
        }
    }

    func edit(_ change: (inout [String: Any]) throws -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SupportError("config.json is not an object")
        }
        try change(&config)
        let out = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try out.write(to: URL(fileURLWithPath: configPath))
    }

    func writeConfig(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// `RUNTIME --root STATE args...` run from the bundle directory.
    func runtime(_ binary: String, _ args: [String], timeout: TimeInterval = 30) throws -> CommandResult {
        try runCommand(binary, ["--root", stateRoot] + args, timeout: timeout, workingDirectory: path)
    }

    /// The runtime's view of the container: its `state` JSON, or nil when it does not exist.
    func state(_ binary: String) throws -> [String: Any]? {
        let result = try runtime(binary, ["state", id])
        guard result.succeeded else { return nil }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    }

    func status(_ binary: String) throws -> String? { try state(binary)?["status"] as? String }

    /// What a failed or finished container may not leave: its state, cgroups, mounts under the bundle.
    func leftovers() -> [String] { containerLeftovers(stateRoot: stateRoot, id: id, bundle: path) }

    func remove() {
        unmountAll(under: path)
        dir.remove()
        removeTree(stateRoot)
    }
}

/// What a finished container may not leave: its state, its cgroups, mounts under its bundle, and
/// at the sandbox level its directory under /run/veil-sandbox and its uid-pool slot.
func containerLeftovers(stateRoot: String, id: String, bundle: String) -> [String] {
    var found: [String] = []
    if FileManager.default.fileExists(atPath: stateRoot + "/" + id) { found.append("state dir \(stateRoot)/\(id)") }
    for controller in ["memory", "pids", "cpu", "freezer", "devices", "unified"] {
        let cg = "/sys/fs/cgroup/\(controller)/veil-test/\(id)"
        if FileManager.default.fileExists(atPath: cg) { found.append("cgroup \(cg)") }
    }
    for point in mountPoints(under: bundle) { found.append("mount \(point)") }
    let sandboxes = (try? FileManager.default.contentsOfDirectory(atPath: "/run/veil-sandbox")) ?? []
    for name in sandboxes where name.hasPrefix(id + "-") { found.append("sandbox directory /run/veil-sandbox/\(name)") }
    for point in mountPoints(under: "/run/veil-sandbox") where point.hasPrefix("/run/veil-sandbox/\(id)-") {
        found.append("mount \(point)")  // the rootfs attach point or the /proc views
    }
    let slots = (try? FileManager.default.contentsOfDirectory(atPath: "/run/veil-idpool")) ?? []
    for slot in slots {
        let owner = (try? String(contentsOfFile: "/run/veil-idpool/" + slot, encoding: .utf8)) ?? ""
        if owner == stateRoot + "/" + id { found.append("uid range slot \(slot)") }
    }
    return found
}

// Bad input gets a clear error naming the file and field, a non-zero exit, and leaves nothing:
// no state directory, cgroup, mount or process.

import Foundation
import Testing

@Suite("bad input")
struct BadInputTests {
    /// Runs `create` on a broken bundle and checks the error and that nothing is left.
    private func expectRefused(_ bundle: TestBundle, mentions: [String], globals: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bin = try requireVeil()
        let result = try bundle.runtime(bin, globals + ["create", "--bundle", bundle.path, bundle.id])
        #expect(!result.succeeded, "\(result)", sourceLocation: sourceLocation)
        for word in mentions {
            #expect(result.stderr.contains(word), "stderr should mention \(word): \(result)", sourceLocation: sourceLocation)
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())", sourceLocation: sourceLocation)
        #expect(try bundle.state(bin) == nil, sourceLocation: sourceLocation)
    }

    /// Where systemd is not PID 1 the systemd cgroup driver has no one to talk to: refused before
    /// anything exists (the qemu guest with systemd runs the driver itself: SystemdGuestTests).
    @Test func systemdDriverWithoutSystemd() throws {
        guard !FileManager.default.fileExists(atPath: "/run/systemd/system") else { return }
        for level in ["sandbox", "native"] {
            let bundle = try TestBundle(["true"])
            defer { bundle.remove() }
            try bundle.edit { config in
                var linux = config["linux"] as? [String: Any] ?? [:]
                linux["cgroupsPath"] = "veil-test.slice:veil:\(bundle.id)"
                config["linux"] = linux
            }
            try expectRefused(bundle, mentions: ["--systemd-cgroup needs systemd as PID 1", "/run/systemd/system"],
                              globals: ["--isolation", level, "--systemd-cgroup"])
        }
    }

    /// runc's systemd form given to the cgroupfs driver: the error says which flag it needs.
    @Test func systemdPathWithoutTheFlag() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = "system.slice:veil:\(bundle.id)"
            config["linux"] = linux
        }
        try expectRefused(bundle, mentions: ["linux.cgroupsPath", "system.slice:veil:", "--systemd-cgroup"])
    }

    @Test func malformedJSON() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.writeConfig("{\"ociVersion\": \"1.1.0\",\n \"process\": {\"args\": [\"true\"]\n")
        try expectRefused(bundle, mentions: ["config.json", "line"])
    }

    @Test func wrongFieldType() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["user"] = ["uid": "root", "gid": 0]
            config["process"] = process
        }
        try expectRefused(bundle, mentions: ["config.json", "process.user.uid"])
    }

    @Test func missingRootfs() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in config["root"] = ["path": "no-such-rootfs"] }
        try expectRefused(bundle, mentions: ["root.path", "no-such-rootfs"])
    }

    @Test func unknownNamespacePath() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            var namespaces = linux["namespaces"] as? [[String: Any]] ?? []
            namespaces.removeAll { $0["type"] as? String == "network" }
            namespaces.append(["type": "network", "path": "/proc/999999999/ns/net"])
            linux["namespaces"] = namespaces
            config["linux"] = linux
        }
        try expectRefused(bundle, mentions: ["linux.namespaces[", "/proc/999999999/ns/net"])
    }

    @Test func unknownNamespaceType() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            var namespaces = linux["namespaces"] as? [[String: Any]] ?? []
            namespaces.append(["type": "bogus"])
            linux["namespaces"] = namespaces
            config["linux"] = linux
        }
        try expectRefused(bundle, mentions: ["linux.namespaces[", "bogus"])
    }

    @Test func mountEscapingThroughSymlink() throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        let outside = try TempDir(prefix: "veil-outside")
        defer { outside.remove() }
        try FileManager.default.createSymbolicLink(atPath: bundle.rootfs + "/escape", withDestinationPath: "../../../../../../.." + outside.path)
        try bundle.edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/escape/target", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]])
            config["mounts"] = mounts
        }
        try expectRefused(bundle, mentions: ["mounts[", "/escape/target"])
        #expect((try? FileManager.default.contentsOfDirectory(atPath: outside.path))?.isEmpty == true, "nothing may be created outside the rootfs")
    }

    @Test func missingExecutable() throws {
        let bundle = try TestBundle(["/no/such/program"])
        defer { bundle.remove() }
        try expectRefused(bundle, mentions: ["process.args", "/no/such/program"])
    }

    @Test func duplicateID() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        #expect(try bundle.runtime(bin, ["create", bundle.id]).succeeded)
        let pid = (try bundle.state(bin)?["pid"] as? Int) ?? 0
        let again = try bundle.runtime(bin, ["create", bundle.id])
        #expect(!again.succeeded && again.stderr.contains(bundle.id) && again.stderr.contains("exists"), "\(again)")
        #expect(try bundle.status(bin) == "created", "the first container must be untouched")
        #expect(try bundle.runtime(bin, ["delete", bundle.id]).succeeded)
        #expect(waitUntil(timeout: 5) { !processIsAlive(Int32(pid)) })
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("unknown id", arguments: [["state"], ["start"], ["kill"], ["delete"], ["kill", "--all"]])
    func unknownID(command: [String]) throws {
        let bin = try requireVeil()
        let root = try TempDir(prefix: "veil-root")
        defer { root.remove() }
        let result = try runCommand(bin, ["--root", root.path] + command + ["nosuchcontainer"])
        #expect(!result.succeeded)
        #expect(result.stderr.contains("\"nosuchcontainer\" does not exist"), "\(result)")
    }

    @Test func invalidID() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        let result = try bundle.runtime(bin, ["create", "../escape"])
        #expect(!result.succeeded && result.stderr.contains("invalid container id"), "\(result)")
    }

    @Test func jsonLogForContainerd() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in config["root"] = ["path": "nope"] }
        let log = bundle.path + "/log.json"
        let result = try runCommand(bin, ["--root", bundle.stateRoot, "--log", log, "--log-format", "json", "create", "--bundle", bundle.path, bundle.id])
        #expect(!result.succeeded)
        let line = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
        let entry = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        #expect(entry?["level"] as? String == "error", "log line: \(line)")
        #expect((entry?["msg"] as? String)?.contains("root.path") == true, "log line: \(line)")
    }

    /// linux.resources that cannot be applied: the error names the field and value; nothing is left.
    @Test("bad resources", arguments: [
        (#"{"memory": {"limit": -5}}"#, "memory"),
        (#"{"devices": [{"allow": true, "type": "x", "access": "rwm"}]}"#, "devices"),
        (#"{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": ""}]}"#, "access"),
        (#"{"unified": {"memory.max": "1000000"}}"#, "unified"),
        (#"{"cpu": {"cpus": "99999"}}"#, "cpuset"),
        (#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1048576}]}"#, "hugetlb"),
    ])
    func badResources(resources: String, mentions: String) throws {
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        let value = try JSONSerialization.jsonObject(with: Data(resources.utf8))
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["resources"] = value
            config["linux"] = linux
        }
        try expectRefused(bundle, mentions: [mentions])
    }
}

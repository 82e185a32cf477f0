// What the OCI runtime-tools `validation/` programs check beyond the other suites: operations in
// the wrong state (and on unknown ids) fail and change nothing, `kill` delivers signals by name and
// number (also to a container not started yet), namespaces are new, the host's, or joined by path
// (a network namespace made with `ip netns add`), sysctls outside the container's namespaces are
// refused, and a failing poststop hook only warns. Each case runs for runc, veil (sandbox) and
// veil native; where the sandbox differs by design the test says so and checks its answer.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("runtime-tools validation")
struct RuntimeToolsValidationTests {
    @Test("state, start, kill, delete: unknown ids and wrong states fail and change nothing", arguments: RuntimeUnderTest.all)
    func wrongStates(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sleep", "1000"], prefix: "vs")
        defer { bundle.remove() }
        try bundle.edit { $0["annotations"] = ["org.veil.test": "kept"] }

        for command in [["state"], ["start"], ["kill"], ["delete"], ["pause"], ["resume"]] {
            let result = try bundle.runtime(bin, command + ["no-such-container"])
            // runc says only "container does not exist"; veil names the id.
            #expect(!result.succeeded && (!runtime.isVeil || result.stderr.contains("no-such-container")), "\(runtime): \(command[0]) of an unknown id: \(result)")
        }

        let create = try bundle.runtime(bin, ["create", "--bundle", bundle.path, bundle.id])
        #expect(create.succeeded, "\(create)")
        let state = try bundle.state(bin)
        #expect(state?["ociVersion"] as? String != nil && state?["annotations"] as? [String: String] == ["org.veil.test": "kept"],
                "\(runtime): state: \(String(describing: state))")
        let again = try bundle.runtime(bin, ["create", "--bundle", bundle.path, bundle.id])
        #expect(!again.succeeded, "\(runtime): a second create with the same id: \(again)")
        let first = try bundle.state(bin)
        #expect(first?["status"] as? String == "created" && first?["pid"] as? Int == state?["pid"] as? Int,
                "\(runtime): the failed create changed the first container: \(String(describing: first))")

        #expect(try bundle.runtime(bin, ["start", bundle.id]).succeeded)
        let twice = try bundle.runtime(bin, ["start", bundle.id])
        #expect(!twice.succeeded, "\(runtime): start of a running container: \(twice)")
        let delete = try bundle.runtime(bin, ["delete", bundle.id])
        let afterDelete = try bundle.status(bin)
        #expect(!delete.succeeded && afterDelete == "running", "\(runtime): delete without --force: \(delete)")

        #expect(try bundle.runtime(bin, ["kill", bundle.id, "KILL"]).succeeded)
        #expect(waitUntil(timeout: 5) { (try? bundle.status(bin)) == "stopped" })
        let stopped = try bundle.state(bin)
        let killStopped = try bundle.runtime(bin, ["kill", bundle.id, "KILL"])
        let startStopped = try bundle.runtime(bin, ["start", bundle.id])
        #expect(!killStopped.succeeded, "\(runtime): kill of a stopped container: \(killStopped)")
        #expect(!startStopped.succeeded, "\(runtime): start of a stopped container: \(startStopped)")
        let unchanged = try bundle.state(bin)
        #expect(unchanged?["status"] as? String == "stopped" && unchanged?["pid"] as? Int == stopped?["pid"] as? Int
                && unchanged?["created"] as? String == stopped?["created"] as? String, "\(runtime): \(String(describing: unchanged))")
        #expect(try bundle.runtime(bin, ["delete", bundle.id]).succeeded)
        #expect(try bundle.state(bin) == nil)
        #expect(bundle.leftovers().isEmpty, "\(runtime): \(bundle.leftovers())")
    }

    @Test("kill: signals by name and number reach the process; TERM ends a created container; unknown signals are refused",
          arguments: RuntimeUnderTest.all)
    func killSignals(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let out = try TempDir(prefix: "veil-sig")
        defer { out.remove() }
        chmod(out.path, 0o777)
        // sh runs a trap once the foreground sleep ends: short sleeps keep that prompt.
        let script = "trap 'echo USR1 >> /out/got' USR1; trap 'echo HUP >> /out/got' HUP; trap 'echo USR2 >> /out/got' USR2; "
            + "echo ready > /out/ready; while :; do sleep 0.1; done"
        let bundle = try TestBundle(["sh", "-c", script], prefix: "vk")
        defer { bundle.remove() }
        try bundle.addMounts([["destination": "/out", "type": "bind", "source": out.path, "options": ["rbind", "rw"]]])
        // The test runner ignores SIGUSR1/SIGUSR2, runc hands ignored signals on to the container
        // (veil resets them), and sh may not trap a signal ignored at entry: start from defaults.
        let run = try runCommand("env", ["--default-signal", bin, "--root", bundle.stateRoot, "run", "-d", bundle.id], workingDirectory: bundle.path)
        #expect(run.succeeded, "\(run)")
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        #expect(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: out.file("ready")) }, "\(runtime): the trap script did not start")

        for (signal, name) in [("SIGUSR1", "USR1"), ("HUP", "HUP"), ("12", "USR2")] {
            let kill = try bundle.runtime(bin, ["kill", bundle.id, signal])
            #expect(kill.succeeded, "\(runtime): kill \(signal): \(kill)")
            let got = waitUntil(timeout: 5) {
                ((try? String(contentsOfFile: out.file("got"), encoding: .utf8)) ?? "").split(separator: "\n").contains(Substring(name))
            }
            #expect(got, "\(runtime): \(signal) did not reach the trap")
        }
        for bad in ["SIGNOPE", "99"] {
            let kill = try bundle.runtime(bin, ["kill", bundle.id, bad])
            #expect(!kill.succeeded, "\(runtime): kill \(bad): \(kill)")
        }
        #expect(try bundle.status(bin) == "running")

        // A container not started yet: its init ends on TERM, as runc's does.
        let second = try TestBundle(["sleep", "1000"], prefix: "vk")
        defer { second.remove() }
        #expect(try second.runtime(bin, ["create", "--bundle", second.path, second.id]).succeeded)
        let term = try second.runtime(bin, ["kill", second.id, "TERM"])
        #expect(term.succeeded, "\(runtime): \(term)")
        #expect(waitUntil(timeout: 5) { (try? second.status(bin)) == "stopped" }, "\(runtime): a created container after TERM is \(String(describing: try? second.status(bin)))")
        #expect(try second.runtime(bin, ["delete", second.id]).succeeded)
        #expect(second.leftovers().isEmpty, "\(runtime): \(second.leftovers())")
    }

    @Test("namespaces: new ones are not the host's, omitted ones are, a path joins an `ip netns add` namespace",
          arguments: RuntimeUnderTest.all)
    func namespaces(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let host = Dictionary(uniqueKeysWithValues: ["pid", "net", "ipc", "uts", "mnt"].map { type in
            (type, (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(type)")) ?? "?")
        })
        let show = "for n in pid net ipc uts mnt; do echo $n $(readlink /proc/self/ns/$n); done"

        // Every namespace new.
        let fresh = try TestBundle(["sh", "-c", show], prefix: "vn")
        defer { fresh.remove() }
        let inFresh = try fresh.run(bin)
        #expect(inFresh.succeeded, "\(inFresh)")
        for line in inFresh.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            #expect(fields.count == 2 && fields[1] != host[fields[0]], "\(runtime): a new namespace is the host's: \(line)")
        }

        // The network namespace omitted: the host's, at every level (hostNetwork).
        let shared = try TestBundle(["sh", "-c", show], prefix: "vn")
        defer { shared.remove() }
        try shared.editLinux { linux in
            linux["namespaces"] = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "network" }
        }
        let inShared = try shared.run(bin)
        #expect(inShared.stdout.contains("net \(host["net"] ?? "?")\n"), "\(runtime): no network namespace: \(inShared)")

        // The pid and IPC namespaces omitted: the host's; the sandbox refuses them up front.
        let hostPid = try TestBundle(["sh", "-c", show], prefix: "vn")
        defer { hostPid.remove() }
        try hostPid.editLinux { linux in
            linux["namespaces"] = (linux["namespaces"] as? [[String: Any]] ?? []).filter { !["pid", "ipc"].contains($0["type"] as? String) }
        }
        let inHostPid = try hostPid.run(bin)
        if runtime.name == "veil" {
            #expect(inHostPid.status == 1 && inHostPid.stderr.contains("config.json: linux.namespaces: no pid namespace")
                    && inHostPid.stderr.contains("veil-native runtime handler (veil --isolation native)"), "\(runtime): \(inHostPid)")
            #expect(hostPid.leftovers().isEmpty, "\(runtime): \(hostPid.leftovers())")
        } else {
            #expect(inHostPid.stdout.contains("pid \(host["pid"] ?? "?")\n") && inHostPid.stdout.contains("ipc \(host["ipc"] ?? "?")\n"),
                    "\(runtime): no pid or ipc namespace: \(inHostPid)")
        }

        // A pid namespace made on the host (unshare), joined by path: the sandbox refuses it (its
        // /proc could not be mounted: the namespace belongs to the host's user namespace).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: findExecutable("unshare") ?? "/usr/bin/unshare")
        holder.arguments = ["--pid", "--fork", "--kill-child", "sleep", "60"]
        try holder.run()
        defer { terminate(holder) }
        var sleeper: Int32 = 0
        _ = waitUntil(timeout: 5) {
            sleeper = descendants(of: holder.processIdentifier).first ?? 0
            return sleeper > 0 && (try? String(contentsOfFile: "/proc/\(sleeper)/comm", encoding: .utf8)) == "sleep\n"
        }
        let pidPath = "/proc/\(sleeper)/ns/pid"
        let joinedPid = try TestBundle(["sh", "-c", "cat /proc/1/comm"], prefix: "vn")
        defer { joinedPid.remove() }
        try joinedPid.setNamespace("pid", path: pidPath)
        let inJoinedPid = try joinedPid.run(bin)
        if runtime.name == "veil" {
            #expect(inJoinedPid.status == 1 && inJoinedPid.stderr.contains("the pid namespace \(pidPath) belongs to another user namespace"),
                    "\(runtime): \(inJoinedPid)")
            #expect(joinedPid.leftovers().isEmpty, "\(runtime): \(joinedPid.leftovers())")
        } else {
            #expect(inJoinedPid.succeeded && inJoinedPid.stdout == "sleep\n", "\(runtime): joining \(pidPath): \(inJoinedPid)")
        }

        // A network namespace made on the host (`ip netns add`), joined by path.
        let name = "veil-vn-" + randomName(6)
        let add = try runCommand("ip", ["netns", "add", name])
        #expect(add.succeeded, "\(add)")
        defer { _ = try? runCommand("ip", ["netns", "delete", name]) }
        let joined = try TestBundle(["sh", "-c", show], prefix: "vn")
        defer { joined.remove() }
        try joined.setNamespace("network", path: "/var/run/netns/" + name)
        let inJoined = try joined.run(bin)
        let expected = (try? FileManager.default.attributesOfItem(atPath: "/var/run/netns/" + name)[.systemFileNumber] as? UInt64) ?? 0
        #expect(inJoined.succeeded && inJoined.stdout.contains("net net:[\(expected)]\n"), "\(runtime): joining \(name): \(inJoined)")
    }

    @Test("linux.sysctl: a key of no namespace, or of the host's network namespace, is refused and nothing is set",
          arguments: RuntimeUnderTest.all)
    func sysctlOutsideNamespaces(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let cases: [(sysctl: [String: String], dropNetwork: Bool)] = [
            (["kernel.pid_max": "4194303"], false),      // no namespace: the host's
            (["net.ipv4.ip_forward": "0"], true),        // the host's network namespace
        ]
        let before = ["kernel/pid_max", "net/ipv4/ip_forward"].map { (try? String(contentsOfFile: "/proc/sys/" + $0, encoding: .utf8)) ?? "?" }
        for (sysctl, dropNetwork) in cases {
            let bundle = try TestBundle(["true"], prefix: "vy")
            defer { bundle.remove() }
            try bundle.editLinux { linux in
                linux["sysctl"] = sysctl
                if dropNetwork {
                    linux["namespaces"] = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "network" }
                }
            }
            let run = try bundle.run(bin)
            let key = sysctl.keys.first ?? ""
            #expect(!run.succeeded && run.stderr.contains(key), "\(runtime): sysctl \(sysctl): \(run)")
            #expect(bundle.leftovers().isEmpty, "\(runtime): \(bundle.leftovers())")
        }
        let after = ["kernel/pid_max", "net/ipv4/ip_forward"].map { (try? String(contentsOfFile: "/proc/sys/" + $0, encoding: .utf8)) ?? "?" }
        #expect(after == before, "\(runtime): the host's sysctls changed: \(before) -> \(after)")
    }

    @Test("a failing poststop hook only warns: delete succeeds and removes the container", arguments: RuntimeUnderTest.all)
    func poststopFailureWarns(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["true"], prefix: "vp")
        defer { bundle.remove() }
        try bundle.edit { $0["hooks"] = ["poststop": [["path": "/bin/false"]]] }
        #expect(try bundle.runtime(bin, ["create", "--bundle", bundle.path, bundle.id]).succeeded)
        #expect(try bundle.runtime(bin, ["start", bundle.id]).succeeded)
        #expect(waitUntil(timeout: 5) { (try? bundle.status(bin)) == "stopped" })
        let delete = try bundle.runtime(bin, ["delete", bundle.id])
        #expect(delete.succeeded, "\(runtime): \(delete)")
        #expect(try bundle.state(bin) == nil)
        #expect(bundle.leftovers().isEmpty, "\(runtime): \(bundle.leftovers())")
    }
}

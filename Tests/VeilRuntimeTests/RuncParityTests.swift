// Issue #12's command-line, logging and lifecycle gaps: each case drives runc 1.1.5 and veil at
// both levels the same way, and asserts what runc's users, scripts and containerd's shim see
// (exit statuses, JSON layouts, log files, states). runc is the oracle: where a case expects a
// value, runc gives it too.

import Foundation
import Testing

private func deleteAndCheck(_ bundle: TestBundle, _ bin: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
    #expect(delete.succeeded, "\(delete)", sourceLocation: sourceLocation)
    #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())", sourceLocation: sourceLocation)
}

/// Whether `keys` appear as object keys (`"key":`) in `json` in this order, each once.
private func keysInOrder(_ keys: [String], _ json: String) -> Bool {
    var positions: [String.Index] = []
    for key in keys {
        let ranges = json.ranges(of: "\"\(key)\":")
        guard ranges.count == 1, let range = ranges.first else { return false }
        positions.append(range.lowerBound)
    }
    return positions == positions.sorted()
}

private let runcStateKeys = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]

@Suite("runc parity: command line, logging and lifecycle", .serialized)
struct RuncParityTests {
    @Test("-v and --version print runc's lines; an unknown command fails, with -h too", arguments: RuntimeUnderTest.all)
    func versionAndUnknownCommand(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let name = runtime.isVeil ? "veil" : "runc"
        for flag in ["-v", "--version"] {
            let result = try runCommand(bin, [flag])
            #expect(result.succeeded, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("\(name) version ") == true, "\(result)")
            for key in ["commit: ", "spec: 1.", "libseccomp: 2."] {
                #expect(lines.contains { $0.hasPrefix(key) }, "\(key) missing: \(result)")
            }
        }
        for args in [["foo"], ["foo", "-h"], ["help", "foo"]] {
            let result = try runCommand(bin, args)
            #expect(result.status != 0, "\(args): \(result)")
            #expect(result.stderr.contains("No help topic for 'foo'"), "\(result)")
        }
    }

    @Test("help reads like runc's: NAME, USAGE, COMMANDS, GLOBAL OPTIONS; a command's help names its usage", arguments: RuntimeUnderTest.all)
    func helpLayout(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let name = runtime.isVeil ? "veil" : "runc"
        for args in [["-h"], ["--help"], ["help"]] {
            let result = try runCommand(bin, args)
            #expect(result.succeeded, "\(result)")
            for section in ["NAME:", "USAGE:", "COMMANDS:", "GLOBAL OPTIONS:"] {
                #expect(result.stdout.split(separator: "\n").contains(Substring(section)), "\(section) missing: \(result)")
            }
            for command in ["create", "start", "run", "exec", "kill", "delete", "state", "list", "ps", "update", "events", "pause", "resume", "spec"] {
                #expect(result.stdout.contains("\n   \(command)"), "\(command) missing from COMMANDS: \(result)")
            }
            #expect(result.stdout.contains("--root value") && result.stdout.contains("--log-format value") && result.stdout.contains("--debug"))
        }
        for args in [["kill", "-h"], ["kill", "--help"], ["help", "kill"]] {
            let result = try runCommand(bin, args)
            #expect(result.succeeded, "\(result)")
            #expect(result.stdout.hasPrefix("NAME:\n   \(name) kill - "), "\(result)")
            #expect(result.stdout.contains("USAGE:\n   \(name) kill "), "\(result)")
            #expect(result.stdout.contains("--all, -a") || result.stdout.contains("-a, --all"), "\(result)")
        }
        // `exec ID sh -h`: the -h is the container command's, not a help request.
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "sh", "-c", "echo args: \"$@\"", "sh", "-h"])
        #expect(exec.succeeded && exec.stdout == "args: -h\n", "\(exec)")
        try deleteAndCheck(bundle, bin)
    }

    @Test("state and list --format json keep runc's key order; list names the owner", arguments: RuntimeUnderTest.all)
    func jsonKeyOrder(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        let state = try bundle.runtime(bin, ["state", bundle.id])
        #expect(state.succeeded, "\(state)")
        #expect(keysInOrder(runcStateKeys, state.stdout), "\(state)")
        #expect(state.stdout.hasPrefix("{\n  \"ociVersion\": "), "two-space indent as runc: \(state)")
        let list = try bundle.runtime(bin, ["list", "--format", "json"])
        #expect(list.succeeded, "\(list)")
        #expect(keysInOrder(runcStateKeys, list.stdout), "\(list)")
        #expect(!list.stdout.trimmingCharacters(in: .whitespacesAndNewlines).contains("\n"), "one line as runc: \(list)")
        let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.first?["owner"] as? String == "root", "\(list)")
        try deleteAndCheck(bundle, bin)
    }

    @Test("--log FILE is created by every command; --debug writes debug lines in the chosen format", arguments: RuntimeUnderTest.all)
    func logFileAndDebug(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["true"], prefix: "log")
        defer { bundle.remove() }
        let json = bundle.path + "/log.json"
        // A command that succeeds and logs nothing still leaves the file (containerd's shim opens it).
        let list = try runCommand(bin, ["--root", bundle.stateRoot, "--log", json, "--log-format", "json", "list"])
        #expect(list.succeeded, "\(list)")
        #expect(FileManager.default.fileExists(atPath: json), "no \(json) after a successful command")
        // An error: one JSON object with level, msg and time.
        let missing = try runCommand(bin, ["--root", bundle.stateRoot, "--log", json, "--log-format", "json", "state", "nosuch"])
        #expect(missing.status != 0)
        let lines = ((try? String(contentsOfFile: json, encoding: .utf8)) ?? "").split(separator: "\n")
        let last = lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(last?["level"] as? String == "error" && (last?["msg"] as? String)?.isEmpty == false && last?["time"] is String, "\(lines)")
        // --debug with a text log: logrus key=value lines at level=debug.
        let text = bundle.path + "/log.txt"
        let run = try runCommand(bin, ["--root", bundle.stateRoot, "--debug", "--log", text, "run", bundle.id], workingDirectory: bundle.path)
        #expect(run.succeeded, "\(run)")
        let debugLines = ((try? String(contentsOfFile: text, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("level=debug") }
        #expect(!debugLines.isEmpty && debugLines.allSatisfy { $0.hasPrefix("time=\"") && $0.contains(" msg=") }, "\(debugLines)")
        // --debug without --log: the debug lines on stderr.
        let stderrRun = try runCommand(bin, ["--root", bundle.stateRoot, "--debug", "run", bundle.id], workingDirectory: bundle.path)
        #expect(stderrRun.succeeded && stderrRun.stderr.contains("level=debug"), "\(stderrRun)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("run --keep leaves the container stopped, its cgroup in place, until delete", arguments: RuntimeUnderTest.all)
    func runKeep(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "exit 3"], prefix: "keep")
        defer { bundle.remove() }
        let run = try bundle.runtime(bin, ["run", "--keep", bundle.id])
        #expect(run.status == 3, "\(run)")
        #expect(try bundle.status(bin) == "stopped")
        #expect(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/veil-test/\(bundle.id)"), "the cgroup must stay until delete")
        let delete = try bundle.runtime(bin, ["delete", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    /// runc's init and exec'd processes lead a session and process group of their own, terminal or
    /// not: conmon's exec timeout (CRI-O's ExecSync) kills the exec'd process's group, which would
    /// otherwise be conmon's.
    @Test("the init and an exec'd process lead their own session and process group", arguments: RuntimeUnderTest.all)
    func sessionLeaders(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "cut -d' ' -f5,6 /proc/1/stat; sleep 100"], prefix: "sid")
        defer { bundle.remove() }
        let run = try bundle.runtime(bin, ["run", "-d", bundle.id])
        #expect(run.succeeded, "\(run)")
        defer { _ = try? bundle.runtime(bin, ["delete", "-f", bundle.id]) }
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "sh", "-c", "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat)"])
        let fields = exec.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        #expect(fields.count == 3 && fields[0] == fields[1] && fields[1] == fields[2], "\(runtime): exec'd sh is its own group and session leader: \(exec)")
        let state = try bundle.state(bin)
        let pid = try #require(state?["pid"] as? Int)
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let afterName = stat[(stat.lastIndex(of: ")") ?? stat.startIndex)...].split(separator: " ").map(String.init)
        // Fields after "(comm)": state, ppid, pgrp, session.
        #expect(afterName.count > 4 && afterName[3] == String(pid) && afterName[4] == String(pid), "\(runtime): the init leads its group and session: \(stat)")
    }

    @Test("kill --all on a stopped container succeeds; after kill KILL, state is stopped and a plain delete works", arguments: RuntimeUnderTest.all)
    func killSemantics(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        let kill = try bundle.runtime(bin, ["kill", bundle.id, "KILL"])
        #expect(kill.succeeded, "\(kill)")
        // No wait: what a script does right after kill.
        #expect(try bundle.status(bin) == "stopped")
        let killAll = try bundle.runtime(bin, ["kill", "--all", bundle.id, "KILL"])
        #expect(killAll.succeeded, "\(killAll)")
        let plain = try bundle.runtime(bin, ["kill", bundle.id, "TERM"])
        #expect(!plain.succeeded, "kill without --all on a stopped container fails for both: \(plain)")
        let delete = try bundle.runtime(bin, ["delete", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("exec into a paused container exits 255; --cgroup runs in a sub-cgroup and refuses ..", arguments: RuntimeUnderTest.all)
    func execStatusAndSubCgroup(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        #expect(try bundle.runtime(bin, ["pause", bundle.id]).succeeded)
        let paused = try bundle.runtime(bin, ["exec", bundle.id, "true"])
        #expect(paused.status == 255, "\(paused)")
        #expect(try bundle.runtime(bin, ["resume", bundle.id]).succeeded)

        let sub = "/sys/fs/cgroup/memory/veil-test/\(bundle.id)/sub"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        let inSub = try bundle.runtime(bin, ["exec", "--cgroup", "memory:sub", bundle.id, "cat", "/proc/self/cgroup"])
        #expect(inSub.succeeded, "\(inSub)")
        #expect(inSub.stdout.split(separator: "\n").contains { $0.contains(":memory:") && $0.hasSuffix("/sub") }, "\(inSub)")
        let escape = try bundle.runtime(bin, ["exec", "--cgroup", "..", bundle.id, "true"])
        #expect(escape.status == 255 && escape.stderr.contains("is not a sub cgroup path"), "\(escape)")
        try deleteAndCheck(bundle, bin)
        #expect(!FileManager.default.fileExists(atPath: sub), "delete --force removes the sub-cgroup")
    }

    @Test("ps takes ps(1) options after the id; -e -x lists the container's processes", arguments: RuntimeUnderTest.all)
    func psArguments(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        for args in [["-e", "-x"], ["-o", "pid,comm"]] + (runtime.isVeil ? [["--", "-e", "-x"]] : []) {
            let ps = try bundle.runtime(bin, ["ps", bundle.id] + args)
            #expect(ps.succeeded, "\(ps)")
            let lines = ps.stdout.split(separator: "\n")
            #expect(lines.first?.contains("PID") == true, "\(ps)")
            #expect(lines.dropFirst().contains { $0.contains("sleep") }, "\(args): \(ps)")
        }
        try deleteAndCheck(bundle, bin)
    }

    @Test("update takes -1 (unlimited) for quota, pids and memory", arguments: RuntimeUnderTest.all)
    func negativeUpdateValues(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par") { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["resources"] = ["cpu": ["quota": 50000, "period": 100000], "pids": ["limit": 50], "memory": ["limit": 268435456]]
            config["linux"] = linux
        }
        defer { bundle.remove() }
        let update = try bundle.runtime(bin, ["update", "--cpu-quota", "-1", "--pids-limit", "-1", "--memory", "-1", bundle.id])
        #expect(update.succeeded, "\(update)")
        let base = "/sys/fs/cgroup"
        func read(_ file: String) -> String {
            ((try? String(contentsOfFile: "\(base)/\(file)", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(read("cpu/veil-test/\(bundle.id)/cpu.cfs_quota_us") == "-1")
        #expect(read("pids/veil-test/\(bundle.id)/pids.max") == "max")
        #expect((UInt64(read("memory/veil-test/\(bundle.id)/memory.limit_in_bytes")) ?? 0) > 1 << 40)
        try deleteAndCheck(bundle, bin)
    }

    @Test("events --stats prints runc's layout: type, id, data with cpu first", arguments: RuntimeUnderTest.all)
    func eventsLayout(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, prefix: "par")
        defer { bundle.remove() }
        let events = try bundle.runtime(bin, ["events", "--stats", bundle.id])
        #expect(events.succeeded, "\(events)")
        #expect(events.stdout.hasPrefix("{\"type\":\"stats\",\"id\":\"\(bundle.id)\",\"data\":{\"cpu\":{\"usage\":"), "\(events.stdout.prefix(120))")
        // runc's omitempty leaves out a zero "cache", so memory starts with it or with usage.
        #expect(events.stdout.contains("\"cpuset\":{\"cpus\":") && events.stdout.contains("\"pids\":{\"current\":"), "\(events.stdout.prefix(400))")
        #expect(events.stdout.contains("\"memory\":{\"usage\":{\"limit\":") || events.stdout.contains("\"memory\":{\"cache\":"), "\(events.stdout.prefix(400))")
        try deleteAndCheck(bundle, bin)
    }

    @Test("create into a cgroup that holds processes warns; into a frozen one is refused without hanging", arguments: RuntimeUnderTest.all)
    func occupiedAndFrozenCgroups(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let name = "veil-test/occupied\(UInt32.random(in: 0...UInt32.max))"
        let hierarchies = ["memory", "pids", "freezer", "devices", "cpu", "cpuacct", "blkio"]
            .filter { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\($0)/cgroup.procs") }
            .map { "/sys/fs/cgroup/\($0)/\(name)" }
        for dir in hierarchies { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        // A host process already in the cgroup, as runc's warning is about.
        let squatter = Process()
        squatter.executableURL = URL(fileURLWithPath: "/bin/sleep")
        squatter.arguments = ["100"]
        try squatter.run()
        defer {
            // SIGKILL: the test runner's blocked signals are inherited, SIGTERM would wait 100 s.
            kill(squatter.processIdentifier, SIGKILL)
            squatter.waitUntilExit()
            for dir in hierarchies { rmdir(dir) }
        }
        for dir in hierarchies { try String(squatter.processIdentifier).write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8) }
        let bundle = try TestBundle(["true"], prefix: "par")
        defer { bundle.remove() }
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = "/" + name
            config["linux"] = linux
        }
        let shared = try bundle.runtime(bin, ["run", bundle.id], timeout: 15)
        #expect(shared.succeeded, "\(shared)")
        #expect(shared.stderr.contains("container's cgroup is not empty"), "\(shared)")
        #expect(squatter.isRunning, "the host process in the cgroup must survive the container")

        let freezer = "/sys/fs/cgroup/freezer/\(name)/freezer.state"
        try "FROZEN".write(toFile: freezer, atomically: false, encoding: .utf8)
        defer { try? "THAWED".write(toFile: freezer, atomically: false, encoding: .utf8) }
        let frozen = try bundle.runtime(bin, ["run", "-d", bundle.id], timeout: 15)
        #expect(!frozen.timedOut && frozen.status != 0, "\(frozen)")
        #expect(frozen.stderr.contains("unexpectedly frozen"), "\(frozen)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/" + bundle.id), "no state left")
    }

    @Test("device rules take runc's access strings: letters beyond r, w, m are ignored; empty is refused", arguments: RuntimeUnderTest.all)
    func deviceAccessStrings(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        for (access, works) in [("rwa", true), ("rwm", true), ("", false)] {
            let bundle = try TestBundle(["sh", "-c", "echo x > /dev/null && echo ok"], prefix: "dev")
            defer { bundle.remove() }
            try bundle.edit { config in
                var linux = config["linux"] as? [String: Any] ?? [:]
                var resources = linux["resources"] as? [String: Any] ?? [:]
                resources["devices"] = [["allow": false, "access": "rwm"], ["allow": true, "type": "c", "major": 1, "minor": 3, "access": access]]
                linux["resources"] = resources
                config["linux"] = linux
            }
            let run = try bundle.runtime(bin, ["run", bundle.id])
            #expect(run.succeeded == works, "access \"\(access)\": \(run)")
            if works { #expect(run.stdout == "ok\n", "\(run)") }
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
    }
}

// containerd's runc shim driving the runtime's task-level commands: exec (plain, detached, with a
// terminal), ps, pause/resume, SIGKILL of a paused task, rm -f, metrics, cgroup limits from
// `ctr run`, OOM events and seccomp.
// Every case runs against runc (the reference: it proves the test) and against veil.
//
// What the shim (containerd-shim-runc-v2, containerd 1.6) asks of the runtime here:
//   ctr task exec     -> RUNTIME exec --process FILE --detach --pid-file F [--console-socket S] ID
//   ctr task ps       -> RUNTIME ps --format json ID
//   ctr task pause    -> RUNTIME pause ID, resume -> RUNTIME resume ID
//   ctr task kill     -> RUNTIME kill ID SIG; `ctr task rm -f` -> RUNTIME kill --all ID 9 (even when
//                        the task has exited: the error must then read as "not running"), delete
//   ctr task metrics  -> nothing: the shim reads the cgroup of the init's pid itself, so the runtime
//                        must have put the container in /<namespace>/<id> (ctr's cgroupsPath)
//   --memory-limit, --cpus, --seccomp -> fields in config.json the runtime must apply
//   OOM events        -> the shim watches memory.oom_control of the init's cgroup (v1) itself
//
// Each test has its own containerd (see ContainerdTests for why); the suite is serialized.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("containerd task commands drive the runtime", .serialized)
struct ContainerdTaskTests {
    /// A detached task whose init is a shell that exits on SIGTERM and otherwise waits (a bare
    /// `sleep` as PID 1 would ignore SIGTERM).
    private static let waitingShell = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]

    /// Starts `waitingShell` (or `command`) detached as task `id` and waits until it is RUNNING.
    private func startTask(_ rig: ContainerdRig, runtime: String, id: String,
                           flags: [String] = [], _ command: [String] = waitingShell) throws {
        let started = try rig.run(runtime: runtime, id: id, flags: ["-d"] + flags, command)
        try #require(started.succeeded, "\(started)\n\(rig.log)")
        let running = try rig.waitForTask(id, status: "RUNNING", timeout: 10)
        let seen = try rig.task(id)
        try #require(running, "task \(id) not RUNNING: \(String(describing: seen))\n\(rig.log)")
    }

    @Test("ctr task exec prints the process's output and exits with its status",
          arguments: RuntimeUnderTest.all)
    func execStatus(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x1")

        let result = try repeatingOnLostOutput(truncated(of: "from-exec\n", status: 3)) { attempt in
            try rig.ctr(["task", "exec", "--exec-id", "e1-\(attempt)", "x1", "sh", "-c", "echo from-exec; exit 3"])
        }
        #expect(!result.timedOut, "\(result)\n\(rig.log)")
        #expect(result.status == 3, "\(result)\n\(rig.log)")
        #expect(result.stdout == "from-exec\n", "\(result)")

        // The exec'd process ran inside the container: same PID namespace as the init, which is PID 1.
        let inside = try rig.ctr(["task", "exec", "--exec-id", "e2", "x1", "sh", "-c",
                                  "readlink /proc/1/ns/pid; readlink /proc/self/ns/pid; cat /proc/1/cmdline"])
        try #require(inside.succeeded, "\(inside)\n\(rig.log)")
        let lines = inside.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 3, "\(inside)")
        #expect(lines[0] == lines[1], "exec not in the init's pid namespace: \(inside)")
        #expect(lines[2].hasPrefix("sh"), "PID 1 is not the task's shell: \(inside)")
        let task = try #require(try rig.task("x1"))
        #expect(task.status == "RUNNING", "the task must outlive its execs: \(task)")
    }

    @Test("a second exec runs while a detached one is still running; kill --exec-id ends only that one",
          arguments: RuntimeUnderTest.all)
    func concurrentExecs(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x2")

        let long = try rig.ctr(["task", "exec", "--detach", "--exec-id", "long", "x2", "sleep", "1234"])
        try #require(long.succeeded, "\(long)\n\(rig.log)")

        // The detached exec shows in `ctr task ps` with its exec id (the shim lists the runtime's
        // `ps --format json` and labels the pids it started).
        var listing = ""
        let listed = try waitUntil(timeout: 5) {
            let ps = try rig.ctr(["task", "ps", "x2"])
            listing = ps.description
            return ps.succeeded && ps.stdout.contains("ExecID:long")
        }
        #expect(listed, "detached exec not in ctr task ps:\n\(listing)\n\(rig.log)")

        let second = try repeatingOnLostOutput({ $0.succeeded && "second\n".hasPrefix($0.stdout) }) { attempt in
            try rig.ctr(["task", "exec", "--exec-id", "second-\(attempt)", "x2", "sh", "-c", "echo second; ps"])
        }
        #expect(second.succeeded, "\(second)\n\(rig.log)")
        #expect(second.stdout.hasPrefix("second\n"), "\(second)")
        #expect(second.stdout.contains("sleep 1234"), "the long exec should be visible from the second:\n\(second)")

        let longPid = try #require(execPids(rig, "x2")["long"], "no pid for exec long:\n\(listing)")
        let killed = try rig.ctr(["task", "kill", "--exec-id", "long", "--signal", "SIGKILL", "x2"])
        #expect(killed.succeeded, "\(killed)\n\(rig.log)")
        #expect(waitUntil(timeout: 5) { !processIsAlive(longPid) }, "exec long (pid \(longPid)) survived SIGKILL")
        #expect(try rig.task("x2")?.status == "RUNNING", "killing an exec must leave the task running")
    }

    @Test("ctr task exec -t gives the process a terminal", arguments: RuntimeUnderTest.all)
    func execTerminal(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x3")

        // Interactive: wait for the prompt, then type; the values follow a marker the echo of the
        // typed line cannot contain ($(...) expands only in the output).
        let report = #"echo "TTY=$(tty) ANS=$((6*7))"; exit 4"#
        let result = try runInPseudoTerminal(
            rig.ctrPath,
            ["--address", rig.address, "-n", rig.namespace, "task", "exec", "-t", "--exec-id", "t1", "x3", "sh"],
            steps: [PTYStep(waitFor: "# ", send: report + "\n")],
            timeout: 20)
        #expect(!result.timedOut, "\(result)\n\(rig.log)")
        #expect(result.status == 4, "\(result)")
        #expect(result.stdout.range(of: #"TTY=/dev/pts/[0-9]+ ANS=42"#, options: .regularExpression) != nil,
                "\(result)")
        #expect(try rig.task("x3")?.status == "RUNNING")
    }

    @Test("ctr task ps lists exactly the container's processes", arguments: RuntimeUnderTest.all)
    func ps(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x4",
                      ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & sleep 1001 & wait"])
        let task = try #require(try rig.task("x4"))

        // The sandbox's warden and its sentinel live in a `veil-warden` child of the container's
        // cgroup (charged to it), and are veil's, not the container's: ps leaves them out.
        func supervisor(_ pid: Int32) -> Bool {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            return comm.hasPrefix("veil-warden") || comm.hasPrefix("veil-sentinel")
        }
        var cgroupPids = Set<Int32>()
        let allStarted = waitUntil(timeout: 5) {
            cgroupPids = rig.cgroupProcesses(id: "x4").filter { !supervisor($0) }
            return cgroupPids.count >= 3
        }
        try #require(allStarted, "cgroup of x4 holds \(cgroupPids), expected the shell and two sleeps")

        let listing = try rig.ctr(["task", "ps", "x4"])
        try #require(listing.succeeded, "\(listing)\n\(rig.log)")
        let listed = Set(listing.stdout.split(separator: "\n").dropFirst().compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).first.flatMap { Int32($0) }
        })
        #expect(listed == cgroupPids, "ctr task ps: \(listed), container cgroup: \(cgroupPids)\n\(listing)")
        #expect(listed.contains(task.pid), "\(listing)")
    }

    @Test("ctr task pause freezes the container, resume thaws it", arguments: RuntimeUnderTest.all)
    func pauseResume(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        // The counter shows whether the container runs: it advances only while thawed.
        try startTask(rig, runtime: binary, id: "x5",
                      ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done"])

        let task = try #require(try rig.task("x5"))
        _ = waitUntil(timeout: 5) { (try? counter(task.pid)) != nil }
        let paused = try rig.ctr(["task", "pause", "x5"])
        try #require(paused.succeeded, "\(paused)\n\(rig.log)")
        #expect(try rig.task("x5")?.status == "PAUSED")
        let freezer = freezerStatePath(rig, id: "x5")
        if let freezer {
            #expect(readTrimmed(freezer) == "FROZEN", "\(freezer)")
        } else {
            Issue.record("no freezer cgroup for x5 under /\(rig.namespace)/x5 (cgroup v2 would need cgroup.freeze)")
        }
        let frozenCount = try counter(task.pid)
        usleep(500_000)
        #expect(try counter(task.pid) == frozenCount, "the counter advanced while paused")

        let resumed = try rig.ctr(["task", "resume", "x5"])
        try #require(resumed.succeeded, "\(resumed)\n\(rig.log)")
        #expect(try rig.task("x5")?.status == "RUNNING")
        if let freezer { #expect(readTrimmed(freezer) == "THAWED", "\(freezer)") }
        let advanced = try waitUntil(timeout: 5) { try counter(task.pid) > frozenCount }
        #expect(advanced, "the counter did not advance after resume")
    }

    @Test("a paused task dies on SIGKILL (kill, and rm -f's kill --all): the runtime thaws it",
          arguments: RuntimeUnderTest.all)
    func killPaused(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        // On cgroup v1 a frozen process cannot act on SIGKILL until thawed; runc 1.1 thaws after
        // sending SIGKILL to a paused container, and `kill --all` freezes, signals and thaws.
        for id in ["k1", "k2"] {
            try startTask(rig, runtime: binary, id: id)
            let paused = try rig.ctr(["task", "pause", id])
            try #require(paused.succeeded, "\(paused)\n\(rig.log)")
        }

        // The shim runs `RUNTIME kill k1 9`.
        let killed = try rig.ctr(["task", "kill", "--signal", "SIGKILL", "k1"])
        #expect(killed.succeeded, "\(killed)\n\(rig.log)")
        let stopped = try rig.waitForTask("k1", status: "STOPPED", timeout: 5)
        let k1 = try rig.task("k1")
        #expect(stopped, "paused task k1 survived SIGKILL: \(String(describing: k1)), freezer \(String(describing: freezerStatePath(rig, id: "k1").flatMap(readTrimmed)))")

        // ctr task rm -f: the shim runs `RUNTIME kill --all k2 9`, waits for the exit, deletes.
        let removed = try rig.ctr(["task", "rm", "-f", "k2"], timeout: 10)
        #expect(removed.succeeded, "\(removed)\n\(rig.log)")
        #expect(try rig.task("k2") == nil)
    }

    @Test("ctr task rm -f of a task that has already exited succeeds", arguments: RuntimeUnderTest.all)
    func forceRemoveExited(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        let started = try rig.run(runtime: binary, id: "r1", flags: ["-d"], ["sh", "-c", "exit 0"])
        try #require(started.succeeded, "\(started)\n\(rig.log)")
        let stopped = try rig.waitForTask("r1", status: "STOPPED", timeout: 10)
        try #require(stopped, "task r1 did not stop: \(String(describing: try? rig.task("r1")))")

        // WithProcessKill sends SIGKILL to the stopped init anyway; the shim maps the runtime's
        // error to "not found" only if it says "container not running" (runc's words), "no such
        // process" or "does not exist" (containerd's checkKillError), and ctr then deletes.
        let removed = try rig.ctr(["task", "rm", "-f", "r1"], timeout: 20)
        #expect(removed.succeeded, "\(removed)\n\(rig.log)")
        #expect(try rig.task("r1") == nil)
    }

    @Test("ctr task metrics reports the container's memory, cpu and pids", arguments: RuntimeUnderTest.all)
    func metrics(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x6")
        let task = try #require(try rig.task("x6"))

        // The shim finds the cgroup from the init's pid; ctr asks for /<namespace>/<id>.
        let memoryCgroup = "/sys/fs/cgroup/memory/\(rig.namespace)/x6"
        if FileManager.default.fileExists(atPath: memoryCgroup) {
            let procs = readTrimmed(memoryCgroup + "/cgroup.procs") ?? ""
            #expect(procs.split(separator: "\n").contains(Substring(String(task.pid))),
                    "init \(task.pid) not in \(memoryCgroup): \(procs)")
        }
        #expect(!rig.cgroupDirectories(id: "x6").isEmpty, "no cgroup /\(rig.namespace)/x6")

        // The shell and its background sleep, both started.
        let bothStarted = waitUntil(timeout: 5) { rig.cgroupProcesses(id: "x6").count >= 2 }
        #expect(bothStarted, "cgroup of x6 holds \(rig.cgroupProcesses(id: "x6"))")

        let result = try rig.ctr(["task", "metrics", "--format", "json", "x6"])
        try #require(result.succeeded, "\(result)\n\(rig.log)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                "\(result)")
        let pids = number(json, "pids", "current")
        let memory = number(json, "memory", "usage", "usage")
        let cpu = number(json, "cpu", "usage", "total")
        #expect(pids.map { $0 >= 2 } == true, "pids.current \(String(describing: pids))\n\(result.stdout)")
        #expect(memory.map { $0 > 0 } == true, "memory usage \(String(describing: memory))\n\(result.stdout)")
        #expect(cpu.map { $0 > 0 } == true, "cpu usage \(String(describing: cpu))\n\(result.stdout)")
    }

    @Test("ctr run --memory-limit and --cpus land in the container's cgroup", arguments: RuntimeUnderTest.all)
    func limits(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        try startTask(rig, runtime: binary, id: "x7", flags: ["--memory-limit", "33554432", "--cpus", "0.5"])

        let dirs = rig.cgroupDirectories(id: "x7")
        if let memory = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/memory.limit_in_bytes") }) {
            #expect(readTrimmed(memory + "/memory.limit_in_bytes") == "33554432", "\(memory)")
        } else if let unified = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/memory.max") }) {
            #expect(readTrimmed(unified + "/memory.max") == "33554432", "\(unified)")
        } else {
            Issue.record("no memory cgroup for x7 among \(dirs)")
        }
        if let cpu = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/cpu.cfs_quota_us") }) {
            #expect(readTrimmed(cpu + "/cpu.cfs_quota_us") == "50000", "\(cpu)")
            #expect(readTrimmed(cpu + "/cpu.cfs_period_us") == "100000", "\(cpu)")
        } else if let unified = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/cpu.max") }) {
            #expect(readTrimmed(unified + "/cpu.max") == "50000 100000", "\(unified)")
        } else {
            Issue.record("no cpu cgroup for x7 among \(dirs)")
        }
    }

    @Test("a task over its memory limit is OOM-killed: exit 137 and a /tasks/oom event",
          arguments: RuntimeUnderTest.all)
    func oom(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        let events = try EventWatcher(rig)
        defer { events.stop() }

        // The shell collects 64 MB in a variable under a 16 MB limit.
        let result = try rig.run(runtime: binary, id: "x8", flags: ["--rm", "--memory-limit", "16777216"],
                                 ["sh", "-c", #"x=$(head -c 64000000 /dev/zero | tr "\0" a); echo survived"#],
                                 timeout: 30)
        #expect(!result.timedOut, "\(result)\n\(rig.log)")
        #expect(result.status == 137, "\(result)\n\(rig.log)")
        #expect(!result.stdout.contains("survived"), "\(result)")

        let sawOOM = waitUntil(timeout: 5) { events.lines.contains { isEvent($0, "/tasks/oom", id: "x8", rig) } }
        #expect(sawOOM, "no /tasks/oom event for x8:\n\(events.lines.joined(separator: "\n"))")
        let sawExit = events.lines.contains { isEvent($0, "/tasks/exit", id: "x8", rig) && $0.contains("\"exit_status\":137") }
        #expect(sawExit, "no /tasks/exit with status 137:\n\(events.lines.joined(separator: "\n"))")
    }

    @Test("ctr run --seccomp: containerd's default profile is installed and the program runs",
          arguments: RuntimeUnderTest.all)
    func seccomp(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }

        // Without CAP_SYS_ADMIN the default profile refuses unshare(2) (EPERM); without the
        // profile, creating a user namespace needs no capability, so it succeeds.
        let script = "echo ok; grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null; echo unshare=$?"
        let filteredOutput = "ok\nSeccomp:\t2\nunshare=1\n"
        let filtered = try repeatingOnLostOutput(truncated(of: filteredOutput)) { attempt in
            try rig.run(runtime: binary, id: "x9-\(attempt)", flags: ["--rm", "--seccomp"], ["sh", "-c", script])
        }
        #expect(filtered.succeeded, "\(filtered)\n\(rig.log)")
        #expect(filtered.stdout == filteredOutput, "\(filtered)")

        // The sandbox level filters every container (its own policy refuses new namespaces too).
        let unfilteredOutput = runtime.name == "veil" ? filteredOutput : "ok\nSeccomp:\t0\nunshare=0\n"
        let unfiltered = try repeatingOnLostOutput(truncated(of: unfilteredOutput)) { attempt in
            try rig.run(runtime: binary, id: "x10-\(attempt)", ["sh", "-c", script])
        }
        #expect(unfiltered.succeeded, "\(unfiltered)\n\(rig.log)")
        #expect(unfiltered.stdout == unfilteredOutput, "\(unfiltered)")
    }
}

// MARK: - helpers

/// A line of `ctr events`: "DATE TIME +0000 UTC NAMESPACE TOPIC {json}".
private func isEvent(_ line: String, _ topic: String, id: String, _ rig: ContainerdRig) -> Bool {
    line.contains(" \(rig.namespace) \(topic) ") && line.contains("\"container_id\":\"\(id)\"")
}

/// Exec id to host pid, from `ctr task ps` ("PID  &ProcessDetails{ExecID:NAME,...}").
private func execPids(_ rig: ContainerdRig, _ id: String) throws -> [String: Int32] {
    let ps = try rig.ctr(["task", "ps", id])
    var result: [String: Int32] = [:]
    for line in ps.stdout.split(separator: "\n") {
        guard let pid = line.split(separator: " ").first.flatMap({ Int32($0) }),
              let start = line.range(of: "ExecID:") else { continue }
        let name = line[start.upperBound...].prefix { $0 != "," && $0 != "}" }
        result[String(name)] = pid
    }
    return result
}

/// The counter a pause test's container writes to /tmp/n, read from the host through the init's
/// root (an exec into a frozen container would freeze too).
private func counter(_ pid: Int32) throws -> Int {
    guard let text = readTrimmed("/proc/\(pid)/root/tmp/n"), let value = Int(text) else {
        throw SupportError("cannot read the counter in /proc/\(pid)/root/tmp/n")
    }
    return value
}

private func freezerStatePath(_ rig: ContainerdRig, id: String) -> String? {
    let path = "/sys/fs/cgroup/freezer/\(rig.namespace)/\(id)/freezer.state"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}

private func readTrimmed(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A number at a key path in decoded JSON.
private func number(_ object: [String: Any], _ keys: String...) -> Double? {
    var current: Any = object
    for key in keys {
        guard let dictionary = current as? [String: Any], let next = dictionary[key] else { return nil }
        current = next
    }
    return (current as? NSNumber)?.doubleValue
}

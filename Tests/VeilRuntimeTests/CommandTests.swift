// runc's management commands end to end: exec, ps, pause/resume, update, events, features, and
// the checkpoint/restore refusals. Each parameterized case runs against runc 1.1.5 too, so a
// difference from the reference shows; features and checkpoint/restore are veil only.

import Foundation
import Testing

// MARK: helpers

/// A container started with `run -d` (default program: `sleep 1000`); the caller deletes it.
func detachedContainer(
    _ bin: String, _ args: [String] = ["sleep", "1000"], prefix: String = "cmd",
    edit: ((inout [String: Any]) throws -> Void)? = nil
) throws -> TestBundle {
    let bundle = try TestBundle(args, prefix: prefix)
    if let edit { try bundle.edit(edit) }
    let run = try bundle.runtime(bin, ["run", "-d", bundle.id], timeout: 10)
    guard run.succeeded else {
        bundle.remove()
        throw SupportError("run -d failed: \(run)")
    }
    return bundle
}

/// Adds a read-write bind mount of a host directory.
private func bindMount(_ config: inout [String: Any], _ source: String, at destination: String) {
    var mounts = config["mounts"] as? [[String: Any]] ?? []
    mounts.append(["destination": destination, "type": "bind", "source": source, "options": ["rbind", "rw"]])
    config["mounts"] = mounts
}

private func initPid(_ bundle: TestBundle, _ bin: String) throws -> Int32 {
    Int32((try bundle.state(bin)?["pid"] as? Int) ?? 0)
}

/// bundle.leftovers() plus every other v1 hierarchy (cpuset, cpuacct, blkio, …).
private func allLeftovers(_ bundle: TestBundle) -> [String] {
    var found = bundle.leftovers()
    let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
    for hierarchy in hierarchies.sorted() {
        let cg = "/sys/fs/cgroup/\(hierarchy)/veil-test/\(bundle.id)"
        if FileManager.default.fileExists(atPath: cg), !found.contains("cgroup \(cg)") { found.append("cgroup \(cg)") }
    }
    return found
}

/// delete --force, then nothing may remain.
private func forceDelete(_ bundle: TestBundle, _ bin: String) throws {
    let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
    #expect(delete.succeeded, "\(delete)")
    #expect(allLeftovers(bundle).isEmpty, "\(allLeftovers(bundle))")
}

/// The lines of /proc/PID/cgroup as the host sees them.
private func hostCgroups(_ pid: Int32) -> [String] {
    ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "")
        .split(separator: "\n").map(String.init)
}

/// The cgroup path of `pid` in one v1 hierarchy ("memory", "pids", …).
private func hostCgroup(_ pid: Int32, controller: String) -> String? {
    for line in hostCgroups(pid) {
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if fields.count == 3, fields[1].split(separator: ",").contains(Substring(controller)) { return String(fields[2]) }
    }
    return nil
}

private func readTrimmed(_ path: String) -> String {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
}

private func cgroupFile(_ controller: String, _ bundle: TestBundle, _ file: String) -> String {
    readTrimmed("/sys/fs/cgroup/\(controller)/veil-test/\(bundle.id)/\(file)")
}

/// The CapEff mask of a `/proc/*/status` text.
private func capEff(_ status: String) -> UInt64? {
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
        return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    }
    return nil
}

private func jsonObject(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// The pids of a table whose header has a PID column (ps(1) output).
private func tablePids(_ text: String) -> (hasHeader: Bool, pids: [Int32]) {
    let lines = text.split(separator: "\n")
    guard let header = lines.first, let column = header.split(separator: " ").firstIndex(of: "PID") else { return (false, []) }
    let pids = lines.dropFirst().compactMap { line -> Int32? in
        let fields = line.split(separator: " ")
        return fields.count > column ? Int32(fields[column]) : nil
    }
    return (true, pids)
}

// MARK: exec

@Suite("commands: exec")
struct ExecCommandTests {
    @Test("exec joins the container: hostname, cgroup, pid, exit status", arguments: RuntimeUnderTest.all)
    func execJoins(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pid = try initPid(bundle, bin)

        let exec = try bundle.runtime(bin, ["exec", bundle.id, "sh", "-c", "echo pid=$$; hostname; cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup"], timeout: 10)
        #expect(exec.succeeded, "\(exec)")
        let lines = exec.stdout.split(separator: "\n").map(String.init)
        let execPid = lines.first.flatMap { $0.hasPrefix("pid=") ? Int($0.dropFirst(4)) : nil } ?? 0
        #expect(execPid > 1, "the exec'd process must not be the container's pid 1: \(exec)")
        #expect(lines.count > 1 && lines[1] == "veil-test-host", "\(exec)")
        let split = lines.firstIndex(of: "---") ?? lines.count
        let own = Array(lines[min(2, split)..<split])
        let initView = Array(lines[min(split + 1, lines.count)...])
        #expect(!own.isEmpty && own == initView, "exec'd process and init are in different cgroups:\n\(exec)")
        #expect(own.contains { $0.hasSuffix(":/veil-test/\(bundle.id)") }, "\(exec)")
        // And as the host sees it: the same cgroups as the init.
        #expect(hostCgroup(pid, controller: "memory") == "/veil-test/\(bundle.id)")

        let status = try bundle.runtime(bin, ["exec", bundle.id, "sh", "-c", "exit 3"], timeout: 10)
        #expect(status.status == 3, "\(status)")
        #expect(try bundle.status(bin) == "running")
        try forceDelete(bundle, bin)
    }

    @Test("exec --env, --cwd, --user, --additional-gids", arguments: RuntimeUnderTest.all)
    func execProcessFlags(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }

        let env = try bundle.runtime(bin, ["exec", "--env", "FOO=bar", bundle.id, "env"], timeout: 10)
        #expect(env.succeeded, "\(env)")
        let vars = Set(env.stdout.split(separator: "\n").map(String.init))
        #expect(vars.contains("FOO=bar"), "\(env)")
        let config = jsonObject((try? String(contentsOfFile: bundle.configPath, encoding: .utf8)) ?? "")
        let configured = ((config?["process"] as? [String: Any])?["env"] as? [String]) ?? []
        #expect(!configured.isEmpty)
        for entry in configured {
            #expect(vars.contains(entry), "the container's env \(entry) is missing: \(env)")
        }

        let cwd = try bundle.runtime(bin, ["exec", "--cwd", "/tmp", bundle.id, "pwd"], timeout: 10)
        #expect(cwd.succeeded && cwd.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "/tmp", "\(cwd)")

        let user = try bundle.runtime(bin, ["exec", "--user", "1000:1000", bundle.id, "id"], timeout: 10)
        #expect(user.succeeded, "\(user)")
        #expect(user.stdout.contains("uid=1000") && user.stdout.contains("gid=1000"), "\(user)")

        let groups = try bundle.runtime(bin, ["exec", "--user", "1000:1000", "--additional-gids", "10", bundle.id, "id", "-G"], timeout: 10)
        #expect(groups.succeeded, "\(groups)")
        let gids = groups.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        #expect(gids.contains("10") && gids.contains("1000"), "\(groups)")
        try forceDelete(bundle, bin)
    }

    @Test("exec -d --pid-file, ps sees it, a concurrent foreground exec works", arguments: RuntimeUnderTest.all)
    func execDetached(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pidFile = bundle.path + "/exec.pid"

        let started = Date()
        let detached = try bundle.runtime(bin, ["exec", "-d", "--pid-file", pidFile, bundle.id, "sleep", "100"], timeout: 10)
        let elapsed = Date().timeIntervalSince(started)
        #expect(detached.succeeded, "\(detached)")
        #expect(elapsed < 2, "exec -d must return at once, took \(elapsed) s")
        let pid = Int32(readTrimmed(pidFile)) ?? 0
        #expect(pid > 0 && processIsAlive(pid), "pid file: \(readTrimmed(pidFile))")
        #expect(hostCgroup(pid, controller: "memory") == "/veil-test/\(bundle.id)", "\(hostCgroups(pid))")
        #expect(hostCgroup(pid, controller: "pids") == "/veil-test/\(bundle.id)", "\(hostCgroups(pid))")

        let ps = try bundle.runtime(bin, ["ps", "--format", "json", bundle.id])
        let pids = ((try? JSONSerialization.jsonObject(with: Data(ps.stdout.utf8))) as? [Int]) ?? []
        #expect(ps.succeeded && pids.contains(Int(pid)), "\(ps)")
        #expect(pids.contains(Int(try initPid(bundle, bin))), "\(ps)")

        // A foreground exec while the detached one runs; it sees it in the container's pid namespace.
        let foreground = try bundle.runtime(bin, ["exec", bundle.id, "ps"], timeout: 10)
        #expect(foreground.succeeded && foreground.stdout.contains("sleep 100"), "\(foreground)")
        #expect(processIsAlive(pid))

        try forceDelete(bundle, bin)
        #expect(waitUntil(timeout: 2) { !processIsAlive(pid) }, "delete --force must kill exec'd processes too")
    }

    @Test("exec --process FILE", arguments: RuntimeUnderTest.all)
    func execProcessFile(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let process: [String: Any] = [
            "terminal": false,
            "args": ["sh", "-c", "echo foo=$FOO; pwd; id -u; id -g"],
            "env": ["FOO=fromfile", "PATH=/bin:/usr/bin"],
            "cwd": "/tmp",
            "user": ["uid": 1000, "gid": 1000],
        ]
        let file = bundle.path + "/process.json"
        try JSONSerialization.data(withJSONObject: process).write(to: URL(fileURLWithPath: file))
        let exec = try bundle.runtime(bin, ["exec", "--process", file, bundle.id], timeout: 10)
        #expect(exec.succeeded, "\(exec)")
        #expect(exec.stdout == "foo=fromfile\n/tmp\n1000\n1000\n", "\(exec)")
        try forceDelete(bundle, bin)
    }

    @Test("exec in a stopped container fails", arguments: RuntimeUnderTest.all)
    func execStopped(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, ["true"])
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        #expect(waitUntil(timeout: 2) { (try? bundle.status(bin)) == "stopped" })
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "echo", "should-not-run"], timeout: 10)
        #expect(!exec.succeeded && !exec.timedOut, "\(exec)")
        #expect(!exec.stdout.contains("should-not-run"), "\(exec)")
        try forceDelete(bundle, bin)
    }

    @Test("exec of a missing binary fails and names it", arguments: RuntimeUnderTest.all)
    func execMissingBinary(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "no-such-binary-xyz"], timeout: 10)
        #expect(!exec.succeeded && !exec.timedOut, "\(exec)")
        #expect(exec.stderr.contains("no-such-binary-xyz"), "\(exec)")
        #expect(try bundle.status(bin) == "running", "a failed exec must not hurt the container")
        try forceDelete(bundle, bin)
    }

    // runc 1.1.5 refuses --console-socket without -d ("cannot use console socket if runc will not
    // detach or allocate tty"): a foreground runc exec proxies its own pty. So, as containerd does, -d.
    @Test("exec -d --tty --console-socket sends a pty master", arguments: RuntimeUnderTest.all)
    func execTTY(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        try checkConsoleExec(bin, bundle, detach: true)
        // Both refuse the foreground form with a console socket.
        let console = try ConsoleSocket()
        defer { console.close() }
        let foreground = try bundle.runtime(bin, ["exec", "--tty", "--console-socket", console.path, bundle.id, "tty"])
        #expect(!foreground.succeeded && foreground.stderr.contains("cannot use console socket"), "\(foreground)")
        try forceDelete(bundle, bin)
    }

    /// `exec [-d] --tty --console-socket SOCK ID tty`: the master arrives and shows /dev/pts/N.
    private func checkConsoleExec(_ bin: String, _ bundle: TestBundle, detach: Bool) throws {
        let console = try ConsoleSocket()
        defer { console.close() }
        let exec = try startCommand(bin, ["--root", bundle.stateRoot, "exec"] + (detach ? ["-d"] : []) +
                                        ["--tty", "--console-socket", console.path, bundle.id, "tty"],
                                    workingDirectory: bundle.path)
        var output = ""
        do {
            let master = try console.receiveMaster(timeout: 3)
            defer { close(master) }
            #expect(isatty(master) == 1, "the fd received is not a terminal")
            output = readTerminal(master, timeout: 3) { exec.hasExited }
        } catch {
            Issue.record("\(error)")
        }
        let result = exec.finish(timeout: 3)
        #expect(result.succeeded, "\(result)")
        #expect(output.contains("/dev/pts/"), "terminal showed: \(output.debugDescription)\n\(result)")
    }

    @Test("exec keeps the container's capabilities; --cap adds one", arguments: RuntimeUnderTest.all)
    func execCapabilities(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pid = try initPid(bundle, bin)
        let initCaps = capEff((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "")
        #expect(initCaps != nil)

        let plain = try bundle.runtime(bin, ["exec", bundle.id, "grep", "CapEff", "/proc/self/status"], timeout: 10)
        #expect(plain.succeeded, "\(plain)")
        #expect(capEff(plain.stdout) == initCaps, "exec CapEff \(plain.stdout) != init's \(String(initCaps ?? 0, radix: 16))")

        let sysAdmin: UInt64 = 1 << 21
        #expect((initCaps ?? 0) & sysAdmin == 0, "the default config must not have CAP_SYS_ADMIN")
        let added = try bundle.runtime(bin, ["exec", "--cap", "CAP_SYS_ADMIN", bundle.id, "grep", "CapEff", "/proc/self/status"], timeout: 10)
        #expect(added.succeeded, "\(added)")
        #expect(capEff(added.stdout) == (initCaps ?? 0) | sysAdmin, "\(added)")
        try forceDelete(bundle, bin)
    }

    @Test("exec'd process sees only stdio", arguments: RuntimeUnderTest.all)
    func execFds(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "ls", "-l", "/proc/self/fd"], timeout: 10)
        #expect(exec.succeeded, "\(exec)")
        // busybox: "lrwx------ 1 root root 64 Nov 26 01:38 3 -> /proc/7/fd"
        let links = exec.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.components(separatedBy: " -> ")
            guard parts.count == 2, let number = parts[0].split(separator: " ").last else { return nil }
            return (String(number), parts[1])
        }
        #expect(Set(links.map(\.0)).isSuperset(of: ["0", "1", "2"]), "\(exec)")
        let extra = links.filter { !["0", "1", "2"].contains($0.0) && !$0.1.hasSuffix("/fd") }
        #expect(extra.isEmpty, "descriptors leaked into the exec'd process: \(extra)")
        try forceDelete(bundle, bin)
    }
}

// MARK: ps

@Suite("commands: ps")
struct PsCommandTests {
    @Test("ps: table, json, ps(1) arguments", arguments: RuntimeUnderTest.all)
    func ps(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pid = try initPid(bundle, bin)

        let table = try bundle.runtime(bin, ["ps", bundle.id])
        #expect(table.succeeded, "\(table)")
        let parsed = tablePids(table.stdout)
        #expect(parsed.hasHeader && parsed.pids.contains(pid), "\(table)")

        let json = try bundle.runtime(bin, ["ps", "--format", "json", bundle.id])
        #expect(json.succeeded, "\(json)")
        let pids = ((try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) as? [Int]) ?? []
        #expect(pids == [Int(pid)], "\(json)")

        // runc's syntax: everything after the id goes to ps(1).
        let custom = try bundle.runtime(bin, ["ps", bundle.id, "-o", "pid,comm"])
        #expect(custom.succeeded, "\(custom)")
        #expect(custom.stdout.contains("COMMAND") && tablePids(custom.stdout).pids.contains(pid), "\(custom)")
        #expect(custom.stdout.split(separator: "\n").contains { $0.split(separator: " ") == ["\(pid)", "sleep"] }, "\(custom)")

        if runtime.isVeil {
            // veil's documented form (`--` before ps's arguments); runc 1.1.5 passes the `--` on to ps(1), which refuses it.
            let dashed = try bundle.runtime(bin, ["ps", bundle.id, "--", "-o", "pid,comm"])
            #expect(dashed.succeeded && tablePids(dashed.stdout).pids.contains(pid), "\(dashed)")
        }
        try forceDelete(bundle, bin)
    }
}

// MARK: pause / resume

@Suite("commands: pause and resume")
struct PauseCommandTests {
    @Test("pause freezes, resume thaws, delete --force of a paused container", arguments: RuntimeUnderTest.all)
    func pauseResume(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let out = try TempDir(prefix: "veil-out")
        defer { out.remove() }
        let counter = "i=0; while :; do i=$((i+1)); echo $i > /out/count; sleep 0.05; done"
        let bundle = try detachedContainer(bin, ["sh", "-c", counter]) { bindMount(&$0, out.path, at: "/out") }
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pid = try initPid(bundle, bin)
        let count = { Int(readTrimmed(out.file("count"))) ?? 0 }
        #expect(waitUntil(timeout: 2) { count() >= 2 }, "the counter never ran")

        let pause = try bundle.runtime(bin, ["pause", bundle.id])
        #expect(pause.succeeded, "\(pause)")
        #expect(try bundle.status(bin) == "paused")
        #expect(cgroupFile("freezer", bundle, "freezer.state") == "FROZEN")
        let frozen = readTrimmed(out.file("count"))
        usleep(400_000)
        #expect(readTrimmed(out.file("count")) == frozen, "the counter advanced while paused")

        let pauseAgain = try bundle.runtime(bin, ["pause", bundle.id])
        #expect(!pauseAgain.succeeded, "pause of a paused container must fail (runc: not running): \(pauseAgain)")
        #expect(try bundle.status(bin) == "paused")

        let resume = try bundle.runtime(bin, ["resume", bundle.id])
        #expect(resume.succeeded, "\(resume)")
        #expect(try bundle.status(bin) == "running")
        #expect(waitUntil(timeout: 2) { let now = readTrimmed(out.file("count")); return !now.isEmpty && now != frozen },
                "the counter did not advance after resume")

        let resumeRunning = try bundle.runtime(bin, ["resume", bundle.id])
        #expect(!resumeRunning.succeeded, "resume of a running container must fail: \(resumeRunning)")

        #expect(try bundle.runtime(bin, ["pause", bundle.id]).succeeded)
        #expect(try bundle.status(bin) == "paused")
        try forceDelete(bundle, bin)
        #expect(waitUntil(timeout: 2) { !processIsAlive(pid) }, "the paused init survived delete --force")
    }

    @Test("pause of a stopped container fails", arguments: RuntimeUnderTest.all)
    func pauseStopped(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin, ["true"])
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        #expect(waitUntil(timeout: 2) { (try? bundle.status(bin)) == "stopped" })
        let pause = try bundle.runtime(bin, ["pause", bundle.id])
        #expect(!pause.succeeded, "\(pause)")
        let resume = try bundle.runtime(bin, ["resume", bundle.id])
        #expect(!resume.succeeded, "\(resume)")
        #expect(try bundle.status(bin) == "stopped")
        try forceDelete(bundle, bin)
    }
}

// MARK: update

@Suite("commands: update")
struct UpdateCommandTests {
    @Test("update flags change the cgroup files", arguments: RuntimeUnderTest.all)
    func updateFlags(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let update = try bundle.runtime(bin, ["update", "--memory", "64m", "--memory-swap", "128m", "--cpu-quota", "50000",
                                              "--cpu-period", "100000", "--pids-limit", "20", "--cpu-share", "512", bundle.id])
        #expect(update.succeeded, "\(update)")
        #expect(cgroupFile("memory", bundle, "memory.limit_in_bytes") == "67108864")
        #expect(cgroupFile("memory", bundle, "memory.memsw.limit_in_bytes") == "134217728")
        #expect(cgroupFile("cpu", bundle, "cpu.cfs_quota_us") == "50000")
        #expect(cgroupFile("cpu", bundle, "cpu.cfs_period_us") == "100000")
        #expect(cgroupFile("cpu", bundle, "cpu.shares") == "512")
        #expect(cgroupFile("pids", bundle, "pids.max") == "20")
        try forceDelete(bundle, bin)
    }

    @Test("update -r FILE and -r - (stdin)", arguments: RuntimeUnderTest.all)
    func updateResourcesJSON(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let file = bundle.path + "/resources.json"
        let resources = #"{"memory": {"limit": 33554432, "swap": 67108864}, "cpu": {"shares": 256, "quota": 20000, "period": 100000}, "pids": {"limit": 30}}"#
        try resources.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try bundle.runtime(bin, ["update", "-r", file, bundle.id])
        #expect(fromFile.succeeded, "\(fromFile)")
        #expect(cgroupFile("memory", bundle, "memory.limit_in_bytes") == "33554432")
        #expect(cgroupFile("memory", bundle, "memory.memsw.limit_in_bytes") == "67108864")
        #expect(cgroupFile("cpu", bundle, "cpu.shares") == "256")
        #expect(cgroupFile("cpu", bundle, "cpu.cfs_quota_us") == "20000")
        #expect(cgroupFile("pids", bundle, "pids.max") == "30")

        let fromStdin = try runCommand(bin, ["--root", bundle.stateRoot, "update", "-r", "-", bundle.id],
                                       stdin: #"{"pids": {"limit": 40}}"#, workingDirectory: bundle.path)
        #expect(fromStdin.succeeded, "\(fromStdin)")
        #expect(cgroupFile("pids", bundle, "pids.max") == "40")
        #expect(cgroupFile("memory", bundle, "memory.limit_in_bytes") == "33554432", "an update of pids must leave memory alone")
        try forceDelete(bundle, bin)
    }

    @Test("update with invalid values fails and changes nothing", arguments: RuntimeUnderTest.all)
    func updateInvalid(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        #expect(try bundle.runtime(bin, ["update", "--memory", "64m", "--pids-limit", "20", bundle.id]).succeeded)
        let cpus = cgroupFile("cpuset", bundle, "cpuset.cpus")
        #expect(!cpus.isEmpty)

        let badMemory = try bundle.runtime(bin, ["update", "--memory", "abc", "--pids-limit", "30", bundle.id])
        #expect(!badMemory.succeeded, "\(badMemory)")
        #expect(cgroupFile("memory", bundle, "memory.limit_in_bytes") == "67108864")
        #expect(cgroupFile("pids", bundle, "pids.max") == "20", "a refused update must not apply its other values")

        let badCpuset = try bundle.runtime(bin, ["update", "--cpuset-cpus", "99999", "--pids-limit", "30", bundle.id])
        #expect(!badCpuset.succeeded, "\(badCpuset)")
        #expect(cgroupFile("cpuset", bundle, "cpuset.cpus") == cpus)
        #expect(cgroupFile("pids", bundle, "pids.max") == "20", "a refused update must not apply its other values")
        #expect(cgroupFile("memory", bundle, "memory.limit_in_bytes") == "67108864")
        #expect(try bundle.status(bin) == "running")
        try forceDelete(bundle, bin)
    }
}

// MARK: events

@Suite("commands: events")
struct EventsCommandTests {
    @Test("events --stats prints one stats line", arguments: RuntimeUnderTest.all)
    func statsOnce(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let events = try bundle.runtime(bin, ["events", "--stats", bundle.id], timeout: 5)
        #expect(events.succeeded, "\(events)")
        let lines = events.stdout.split(separator: "\n")
        #expect(lines.count == 1, "\(events)")
        let event = jsonObject(String(lines.first ?? ""))
        #expect(event?["type"] as? String == "stats")
        #expect(event?["id"] as? String == bundle.id)
        let data = event?["data"] as? [String: Any]
        let memoryUsage = ((data?["memory"] as? [String: Any])?["usage"] as? [String: Any])?["usage"] as? Int ?? 0
        let pidsCurrent = (data?["pids"] as? [String: Any])?["current"] as? Int ?? 0
        let cpuTotal = ((data?["cpu"] as? [String: Any])?["usage"] as? [String: Any])?["total"] as? Int ?? 0
        #expect(memoryUsage > 0, "data.memory.usage.usage: \(events.stdout)")
        #expect(pidsCurrent >= 1, "data.pids.current: \(events.stdout)")
        #expect(cpuTotal > 0, "data.cpu.usage.total: \(events.stdout)")
        try forceDelete(bundle, bin)
    }

    @Test("events --interval prints stats repeatedly", arguments: RuntimeUnderTest.all)
    func statsInterval(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try detachedContainer(bin)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        // Runs until the container stops; the timeout ends it (SIGTERM, then SIGKILL after 1 s: the
        // test runner's children inherit a mask with SIGTERM blocked; runc unblocks it, veil does not).
        let events = try bundle.runtime(bin, ["events", "--interval", "200ms", bundle.id], timeout: 1.0)
        #expect(events.timedOut || events.succeeded, "\(events)")
        let lines = events.stdout.split(separator: "\n").map { jsonObject(String($0)) }
        let stats = lines.filter { $0?["type"] as? String == "stats" && $0?["id"] as? String == bundle.id }
        #expect(stats.count >= 3, "expected several stats lines in ~1 s: \(events)")
        #expect(stats.count == lines.count, "every line must be a stats event: \(events)")
        try forceDelete(bundle, bin)
    }
}

// MARK: features, checkpoint, restore (veil only)

@Suite("commands: features and refusals")
struct FeaturesCommandTests {
    @Test("features: valid JSON with runc's keys")
    func features() throws {
        let veil = try requireVeil()
        let result = try runCommand(veil, ["features"])
        #expect(result.succeeded, "\(result)")
        guard let features = jsonObject(result.stdout) else {
            Issue.record("features is not a JSON object: \(result)")
            return
        }
        #expect((features["ociVersionMin"] as? String)?.isEmpty == false)
        #expect((features["ociVersionMax"] as? String)?.isEmpty == false)
        let hooks = features["hooks"] as? [String] ?? []
        #expect(Set(hooks) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"], "\(hooks)")
        let mountOptions = features["mountOptions"] as? [String] ?? []
        #expect(mountOptions.contains("rbind") && mountOptions.contains("ro"), "\(mountOptions)")
        let linux = features["linux"] as? [String: Any] ?? [:]
        let namespaces = linux["namespaces"] as? [String] ?? []
        #expect(Set(namespaces) == ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"], "\(namespaces)")
        #expect((linux["capabilities"] as? [String] ?? []).contains("CAP_SYS_ADMIN"))
        let seccomp = linux["seccomp"] as? [String: Any] ?? [:]
        #expect(seccomp["enabled"] as? Bool == true)
        #expect((seccomp["actions"] as? [String] ?? []).contains("SCMP_ACT_NOTIFY"))
        #expect((seccomp["archs"] as? [String] ?? []).contains("SCMP_ARCH_X86_64"))
        #expect((linux["cgroup"] as? [String: Any])?["v1"] as? Bool == true)

        // runc 1.1.5 prints the same document: every key it has, veil must have.
        let runc = try runCommand(try RuntimeUnderTest.runc.binary(), ["features"])
        #expect(runc.succeeded, "\(runc)")
        let reference = jsonObject(runc.stdout) ?? [:]
        #expect(!reference.isEmpty)
        let missing = Set(reference.keys).subtracting(features.keys)
        #expect(missing.isEmpty, "top-level keys runc has and veil lacks: \(missing.sorted())")
        let referenceLinux = reference["linux"] as? [String: Any] ?? [:]
        let missingLinux = Set(referenceLinux.keys).subtracting(linux.keys)
        #expect(missingLinux.isEmpty, "linux keys runc has and veil lacks: \(missingLinux.sorted())")
    }

    /// Checkpoint and restore run in the qemu guest (tests/vm/guest-checkpoint-tests.sh): this host's
    /// kernel fails `criu check`. Here: what is refused before CRIU is ever run, and that a refusal
    /// leaves the container as it was and nothing behind.
    @Test("checkpoint and restore: refusals before CRIU")
    func checkpointRestore() throws {
        let veil = try requireVeil()
        let bundle = try detachedContainer(veil)
        defer { bundle.remove() }
        defer { _ = try? bundle.runtime(veil, ["delete", "--force", bundle.id]) }
        let image = bundle.path + "/image"
        // Restore: a console socket only when detached (as run); an --image-path without images; an
        // unknown container for checkpoint.
        let foreground = try bundle.runtime(veil, ["--isolation", "native", "restore", "--console-socket", bundle.path + "/console.sock", "--image-path", image, "restored"])
        #expect(!foreground.succeeded && foreground.stderr.contains("console socket"), "\(foreground)")
        try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: true)
        let empty = try bundle.runtime(veil, ["--isolation", "native", "restore", "-d", "--image-path", image, "--bundle", bundle.path, "restored"])
        #expect(!empty.succeeded && empty.stderr.contains("no inventory.img"), "\(empty)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "a refused restore leaves no state")
        // Restore's own flags, checked before CRIU runs (an inventory.img is all it looks for first).
        try #require(FileManager.default.createFile(atPath: image + "/inventory.img", contents: Data()))
        for (flags, named) in [(["--manage-cgroups-mode", "full"], "--manage-cgroups-mode"), (["--manage-cgroups-mode", "loose"], "must be one of"),
                               (["--empty-ns", "ipc"], "--empty-ns")] {
            let refused = try bundle.runtime(veil, ["--isolation", "native", "restore", "-d"] + flags + ["--image-path", image, "--bundle", bundle.path, "restored"])
            #expect(!refused.succeeded && refused.stderr.contains(named), "\(flags): \(refused)")
            #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "\(flags): a refused restore leaves no state")
        }
        // The level must match the checkpoint's: a sandbox's processes carry its policy, a native
        // checkpoint has none for a sandbox to restore.
        let noPolicy = try bundle.runtime(veil, ["restore", "-d", "--image-path", image, "--bundle", bundle.path, "restored"])
        #expect(!noPolicy.succeeded && noPolicy.stderr.contains("veil-sandbox.json") && noPolicy.stderr.contains("native level"), "\(noPolicy)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "a refused restore leaves no state")
        try #require(FileManager.default.createFile(atPath: image + "/veil-sandbox.json", contents: Data("{\"externals\":[]}".utf8)))
        let sandboxImages = try bundle.runtime(veil, ["--isolation", "native", "restore", "-d", "--image-path", image, "--bundle", bundle.path, "restored"])
        #expect(!sandboxImages.succeeded && sandboxImages.stderr.contains("checkpointed at the sandbox level"), "\(sandboxImages)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "a refused restore leaves no state")
        // Lazy migration is the native level's (README: deliberate differences), refused up front at
        // the sandbox level: CRIU's page server would listen in the sandbox's network namespace.
        let lazyRestore = try bundle.runtime(veil, ["restore", "-d", "--lazy-pages", "--image-path", image, "--bundle", bundle.path, "restored"])
        #expect(!lazyRestore.succeeded && lazyRestore.stderr.contains("--lazy-pages at the sandbox level"), "\(lazyRestore)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "a refused restore leaves no state")
        // runc's org.criu.config names a CRIU configuration, which can make CRIU run host commands:
        // at the sandbox level the annotation is the tenant's, refused before anything exists.
        try bundle.edit { $0["annotations"] = ["org.criu.config": "/etc/hostname"] }
        let criuConfig = try bundle.runtime(veil, ["restore", "-d", "--image-path", image, "--bundle", bundle.path, "restored"])
        #expect(!criuConfig.succeeded && criuConfig.stderr.contains("annotations[org.criu.config]"), "\(criuConfig)")
        #expect(!FileManager.default.fileExists(atPath: bundle.stateRoot + "/restored"), "a refused restore leaves no state")
        let annotated = try detachedContainer(veil, prefix: "criucfg") { $0["annotations"] = ["org.criu.config": "/etc/hostname"] }
        defer { annotated.remove() }
        let refusedConfig = try annotated.runtime(veil, ["checkpoint", "--image-path", annotated.path + "/images", annotated.id])
        #expect(!refusedConfig.succeeded && refusedConfig.stderr.contains("annotations[org.criu.config]"), "\(refusedConfig)")
        #expect(!FileManager.default.fileExists(atPath: annotated.path + "/images"))
        #expect(try annotated.status(veil) == "running")
        try forceDelete(annotated, veil)
        let lazyImages = bundle.path + "/lazy-images"
        for flags in [["--lazy-pages", "--page-server", "127.0.0.1:27277"], ["--page-server", "127.0.0.1:27277"]] {
            let lazy = try bundle.runtime(veil, ["checkpoint"] + flags + ["--image-path", lazyImages, bundle.id])
            #expect(!lazy.succeeded && lazy.stderr.contains("\(flags[0]) at the sandbox level"), "\(flags): \(lazy)")
            #expect(!FileManager.default.fileExists(atPath: lazyImages), "\(flags): a refused checkpoint makes no image directory")
        }
        #expect(try bundle.status(veil) == "running", "refusals must leave the container running")
        let unknown = try bundle.runtime(veil, ["checkpoint", "--image-path", image, "no-such-container"])
        #expect(!unknown.succeeded && unknown.stderr.contains("does not exist"), "\(unknown)")
        // Reading a checkpoint that is not one.
        let notArchive = try bundle.runtime(veil, ["checkpoint", "inspect", bundle.path + "/config.json"])
        #expect(!notArchive.succeeded && notArchive.stderr.contains("not a tar archive"), "\(notArchive)")
        try forceDelete(bundle, veil)
    }
}

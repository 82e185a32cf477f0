import Foundation
import Testing

/// The sandbox level's own promises (README, "Isolation levels"), beyond the suites that run
/// every case at both levels.
@Suite(.serialized) struct SandboxTests {
    private func hostUID(of pid: Int32) -> UInt64? {
        let map = (try? String(contentsOfFile: "/proc/\(pid)/uid_map", encoding: .utf8)) ?? ""
        let fields = map.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count == 3 && fields[0] == "0" ? UInt64(fields[1]) : nil
    }

    @Test("the container's view: identity, boot log, memory limit, cpu quota, uptime, nothing of the host's kernel")
    func containerView() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sh", "-c", """
            uname -r; dmesg | head -1; grep MemTotal /proc/meminfo; free -m | awk '/Mem:/ {print "free-total=" $2}'; \
            nproc; cut -d' ' -f1 /proc/uptime; cat /proc/version; wc -c < /proc/kallsyms; ls /sys/kernel | wc -l; \
            id -u; stat -c '%u' /bin/busybox
            """])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            var resources = linux["resources"] as? [String: Any] ?? [:]
            resources["memory"] = ["limit": 256 << 20]
            resources["cpu"] = ["quota": 100_000, "period": 100_000]
            linux["resources"] = resources
        }
        let run = try bundle.runtime(veil, ["run", bundle.id])
        #expect(run.succeeded, "\(run)")
        let out = run.stdout.split(separator: "\n").map(String.init)
        guard out.count == 11 else { Issue.record("unexpected output: \(run)"); return }
        #expect(out[0].hasSuffix("-veil"), "uname -r: \(out[0])")
        #expect(out[1].hasSuffix("Starting veil..."), "dmesg: \(out[1])")
        #expect(out[2].hasSuffix(" 262144 kB"), "meminfo: \(out[2])")
        #expect(out[3] == "free-total=256", "free: \(out[3])")
        #expect(out[4] == "1", "nproc: \(out[4])")
        #expect((Double(out[5]) ?? 99) < 10, "uptime: \(out[5])")
        #expect(out[6].contains(out[0]), "/proc/version \(out[6]) disagrees with uname \(out[0])")
        #expect(out[7] == "0", "kallsyms: \(out[7]) bytes")
        #expect(out[8] == "0", "/sys/kernel entries: \(out[8])")
        #expect(out[9] == "0" && out[10] == "0", "root in the sandbox, the rootfs owned by it: \(out)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("/proc/meminfo is live: what the sandbox puts in memory shows as it reads it, through read and sendfile")
    func liveMeminfo() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            var resources = linux["resources"] as? [String: Any] ?? [:]
            resources["memory"] = ["limit": 256 << 20]
            linux["resources"] = resources
        }
        try #require(try bundle.runtime(veil, ["run", "-d", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(veil, ["delete", "--force", bundle.id]) }
        func meminfo(_ key: String) throws -> Int? {
            // busybox cat copies with sendfile(2), grep reads: both must see the file's content.
            let read = try bundle.runtime(veil, ["exec", bundle.id, "sh", "-c", "cat /proc/meminfo | grep '^\(key):'"])
            return read.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        }
        let before = try #require(try meminfo("MemFree"))
        let wrote = try bundle.runtime(veil, ["exec", bundle.id, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=32"])
        #expect(wrote.succeeded, "\(wrote)")
        let after = try #require(try meminfo("MemFree"))
        #expect(before - after >= 30 * 1024, "MemFree \(before) kB -> \(after) kB after 32 MiB in /dev/shm")
        #expect(try meminfo("Shmem").map { $0 >= 32 * 1024 } == true)
        #expect(try meminfo("MemTotal") == 262_144)
        // delete unmounts the views (leftovers() looks for mounts under /run/veil-sandbox).
        #expect(try bundle.runtime(veil, ["delete", "--force", bundle.id]).succeeded)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("each sandbox has its own host uid range, freed on delete; state reports the level; the warden serves exec")
    func rangesAndWarden() throws {
        let veil = try requireVeil()
        let first = try TestBundle(["sleep", "1000"]), second = try TestBundle(["sleep", "1000"])
        defer { first.remove(); second.remove() }
        for bundle in [first, second] {
            let started = try bundle.runtime(veil, ["run", "-d", bundle.id])
            try #require(started.succeeded, "\(started)")
        }
        let pids = try [first, second].map { bundle in try #require(bundle.state(veil)?["pid"] as? Int).map(Int32.init) }
        let uids = pids.map { $0.flatMap(hostUID) }
        #expect(uids[0] != nil && uids[1] != nil && uids[0] != uids[1], "host uids \(uids)")
        #expect(uids.allSatisfy { ($0 ?? 0) >= 1 << 30 }, "host uids \(uids)")
        #expect(try first.state(veil)?["isolation"] as? String == "sandbox")
        #expect(wardens(under: first.stateRoot).count == 1)

        // exec joins the sandbox: mediated by the same warden, in the same user namespace.
        let exec = try first.runtime(veil, ["exec", first.id, "sh", "-c", "uname -r; id -u"])
        #expect(exec.succeeded && exec.stdout.hasSuffix("-veil\n0\n"), "\(exec)")
        #expect(wardens(under: first.stateRoot).count == 1)

        for bundle in [first, second] {
            let deleted = try bundle.runtime(veil, ["delete", "--force", bundle.id])
            #expect(deleted.succeeded, "\(deleted)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
            #expect(waitUntil(timeout: 5) { wardens(under: bundle.stateRoot).isEmpty })
        }
    }

    @Test("a warden killed with SIGKILL takes its sandbox with it")
    func wardenDeath() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        try #require(try bundle.runtime(veil, ["run", "-d", bundle.id]).succeeded)
        let pid = try #require(bundle.state(veil)?["pid"] as? Int)
        let warden = try #require(wardens(under: bundle.stateRoot).first)
        // The sentinel keeps nothing of the warden's: no listener or socket (only stdio, its pipe
        // and pidfds), and no mapping but its code, its stack, its TLS block and its guard table's page.
        let sentinel = try #require(sentinels(of: warden).first, "the warden has no veil-sentinel child")
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(sentinel)/fd")) ?? [])
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(sentinel)/fd/\($0)") }
        #expect(!links.isEmpty && links.allSatisfy { $0.hasPrefix("pipe:") || $0 == "anon_inode:[pidfd]" || $0.hasPrefix("/") }, "\(links)")
        // (It sheds them right after the fork, which a loaded machine may not have scheduled yet.)
        var maps = ""
        let shed = waitUntil(timeout: 10) {
            maps = (try? String(contentsOfFile: "/proc/\(sentinel)/maps", encoding: .utf8)) ?? ""
            return maps.split(separator: "\n").filter { !$0.hasSuffix("[vsyscall]") }.count <= 4
        }
        #expect(shed, "\(maps)")
        kill(warden, SIGKILL)
        #expect(waitUntil(timeout: 15) { !processIsAlive(Int32(pid)) }, "the container outlived its warden")
        #expect(try bundle.status(veil) == "stopped")
        #expect(try bundle.runtime(veil, ["delete", bundle.id]).succeeded)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("uname is answered in the exec'd image when the old address space lives on (a vfork child's exec; a thread's exec beside a CLONE_VM child), also under seccomp record",
          arguments: ["vfork", "thread"])
    func unameAcrossExec(mode: String) throws {
        let veil = try requireVeil()
        let dir = try TempDir(prefix: "exec-uname")
        let built = try runCommand(packageRoot + "/scripts/build-static-c.sh",
                                   [packageRoot + "/tests/security/exec-uname.c", dir.file("exec-uname")], timeout: 120)
        try #require(built.succeeded, "\(built)")
        let bundle = try TestBundle(["/exec-uname", mode])
        defer { bundle.remove() }
        try FileManager.default.copyItem(atPath: dir.file("exec-uname"), toPath: bundle.rootfs + "/exec-uname")
        let run = try bundle.runtime(veil, ["run", bundle.id], timeout: 60)
        #expect(run.succeeded && run.stdout.hasPrefix("ok ") && run.stdout.hasSuffix("-veil\n"), "\(run)")
        // The recorder answers uname in place of the warden, with the same handles.
        let recorded = try runCommand(veil, ["--isolation", "sandbox", "--root", bundle.stateRoot, "seccomp", "record",
                                             "--bundle", bundle.path, "-o", dir.file("profile.json"), bundle.id + "rec"], timeout: 60)
        #expect(recorded.succeeded && recorded.stdout.hasPrefix("ok ") && recorded.stdout.hasSuffix("-veil\n"), "\(recorded)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("the warden is the sandbox's root, non-dumpable, under its own filter, in the container's cgroup, out of the sandbox's reach; it still answers")
    func wardenConfined() throws {
        let veil = try requireVeil()
        let dir = try TempDir(prefix: "reach-warden")
        let built = try runCommand(packageRoot + "/scripts/build-static-c.sh",
                                   [packageRoot + "/tests/security/reach-warden.c", dir.file("reach-warden")], timeout: 120)
        try #require(built.succeeded, "\(built)")
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        try FileManager.default.copyItem(atPath: dir.file("reach-warden"), toPath: bundle.rootfs + "/reach-warden")
        try #require(try bundle.runtime(veil, ["run", "-d", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(veil, ["delete", "--force", bundle.id]) }
        let pid = Int32(try #require(bundle.state(veil)?["pid"] as? Int))
        let warden = try #require(wardens(under: bundle.stateRoot).first)
        let sandboxRoot = try #require(hostUID(of: pid))

        // Its ids are the sandbox's (no host group left), no_new_privs and a seccomp filter are set.
        // The warden confines itself as it starts, beside the container's start: wait for its
        // filter (a few ms), then read the whole state once.
        _ = waitUntil(timeout: 5) {
            ((try? String(contentsOfFile: "/proc/\(warden)/status", encoding: .utf8)) ?? "").contains("Seccomp:\t2")
        }
        let status = try String(contentsOfFile: "/proc/\(warden)/status", encoding: .utf8)
        func field(_ name: String) -> [String] {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .map { $0.dropFirst(name.count + 1).split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init) } ?? ["?"]
        }
        #expect(field("Uid") == Array(repeating: String(sandboxRoot), count: 4), "Uid: \(field("Uid"))")
        #expect(field("Gid") == Array(repeating: String(sandboxRoot), count: 4), "Gid: \(field("Gid"))")
        #expect(field("Groups").isEmpty, "Groups: \(field("Groups"))")
        #expect(field("NoNewPrivs") == ["1"] && field("Seccomp") == ["2"], "\(status)")
        #expect(field("Seccomp_filters") == ["1"], "\(status)")
        let wardenUserns = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(warden)/ns/user")
        #expect(wardenUserns == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user")))
        // Its sentinel (the dead man's switch) too is the sandbox's root, with CAP_KILL only.
        let sentinel = try #require(sentinels(of: warden).first)
        #expect(waitUntil(timeout: 10) {
            let text = (try? String(contentsOfFile: "/proc/\(sentinel)/status", encoding: .utf8)) ?? ""
            return text.contains("\nUid:\t\(sandboxRoot)\t\(sandboxRoot)\t\(sandboxRoot)\t\(sandboxRoot)\n")
                && text.contains("\nCapEff:\t0000000000000020\n")
                && text.split(separator: "\n").first { $0.hasPrefix("Groups:") }?.dropFirst(7).allSatisfy { $0 == " " || $0 == "\t" } == true
        }, "sentinel: \((try? String(contentsOfFile: "/proc/\(sentinel)/status", encoding: .utf8)) ?? "")")
        // Non-dumpable: its /proc files belong to host root, so even the sandbox's host uid cannot read them.
        let memOwner = try FileManager.default.attributesOfItem(atPath: "/proc/\(warden)/mem")[.ownerAccountID] as? Int
        #expect(memOwner == 0)

        // Its cgroup is a child of the container's (memory and CPU), and ps leaves it out.
        let cgroups = try String(contentsOfFile: "/proc/\(warden)/cgroup", encoding: .utf8)
        for controller in ["memory", "cpuacct"] {
            let line = cgroups.split(separator: "\n").first { $0.split(separator: ":")[1].split(separator: ",").contains(Substring(controller)) }
            #expect(line?.hasSuffix(":/veil-test/\(bundle.id)/veil-warden") == true, "\(controller): \(cgroups)")
        }
        let ps = try bundle.runtime(veil, ["ps", "--format", "json", bundle.id])
        #expect(ps.succeeded && !ps.stdout.contains("\(warden)") && ps.stdout.contains("\(pid)"), "\(ps)")

        // From inside, the warden cannot be signalled, traced, read or even found.
        let reach = try bundle.runtime(veil, ["exec", bundle.id, "/reach-warden", String(warden)])
        #expect(reach.succeeded, "\(reach)")
        let results = Dictionary(uniqueKeysWithValues: reach.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "\t").map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        })
        #expect(results.count == 7 && !results.values.contains("reached"), "\(reach.stdout)")
        #expect(results["kill"] == "ESRCH" && results["pidfd_open"] == "ESRCH" && results["proc_status"] == "ENOENT", "\(results)")

        // And it still answers, also a caller that is not the sandbox's root (a write through
        // /proc/<tid>/mem of another uid's process).
        let answered = try bundle.runtime(veil, ["exec", "--user", "1000:1000", bundle.id, "sh", "-c",
                                                 "id -u; uname -r; dmesg | head -1; cut -d' ' -f1 /proc/uptime; free | grep -c Mem"])
        let out = answered.stdout.split(separator: "\n").map(String.init)
        #expect(answered.succeeded && out.count == 5 && out[0] == "1000" && out[1].hasSuffix("-veil")
                && out[2].hasSuffix("Starting veil...") && out[4] == "1", "\(answered)")
        #expect(try bundle.runtime(veil, ["delete", "--force", bundle.id]).succeeded)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("/proc shows the sandbox: cmdline, osrelease and version agree with uname, host facts masked, /proc/sys read-only, live /proc/stat and loadavg")
    func procViews() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            var resources = linux["resources"] as? [String: Any] ?? [:]
            resources["cpu"] = ["quota": 200_000, "period": 100_000]
            linux["resources"] = resources
        }
        try #require(try bundle.runtime(veil, ["run", "-d", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(veil, ["delete", "--force", bundle.id]) }
        func inside(_ script: String) throws -> CommandResult { try bundle.runtime(veil, ["exec", bundle.id, "sh", "-c", script]) }

        let identity = try inside("uname -r; uname -v; cat /proc/sys/kernel/osrelease /proc/sys/kernel/version /proc/cmdline")
        let lines = identity.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(identity)")
        if lines.count == 5 {
            #expect(lines[0].hasSuffix("-veil") && lines[2] == lines[0] && lines[3] == lines[1], "\(lines)")
            #expect(lines[4] == "BOOT_IMAGE=/vmlinuz-\(lines[0]) ro", "\(lines[4])")
        }
        let masked = try inside("for f in interrupts softirqs diskstats partitions schedstat zoneinfo buddyinfo; do printf '%s=%s ' $f $(cat /proc/$f 2>/dev/null | wc -c); done; ls /proc/acpi 2>/dev/null | wc -l")
        #expect(masked.succeeded && masked.stdout == "interrupts=0 softirqs=0 diskstats=0 partitions=0 schedstat=0 zoneinfo=0 buddyinfo=0 0\n", "\(masked)")
        let write = try inside("echo 1 > /proc/sys/net/ipv4/ip_forward; echo 2 > /proc/sys/kernel/domainname")
        #expect(write.stderr.components(separatedBy: "Read-only file system").count == 3, "\(write)")

        // /proc/stat: the quota's two CPUs, the cgroup's CPU time (which grows as the sandbox
        // works), the sandbox's boot time, its processes; ps, top, uptime and vmstat-style reads work.
        func stat() throws -> [String: [Int]] {
            let read = try inside("cat /proc/stat")
            var rows: [String: [Int]] = [:]
            for line in read.stdout.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if let name = fields.first { rows[String(name)] = fields.dropFirst().compactMap { Int($0) } }
            }
            return rows
        }
        let before = try stat()
        #expect(before.keys.filter { $0.hasPrefix("cpu") }.sorted() == ["cpu", "cpu0", "cpu1"], "\(before)")
        let now = Int(Date().timeIntervalSince1970)
        let uptime = try Double(inside("cut -d' ' -f1 /proc/uptime").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let btime = before["btime"]?.first ?? 0
        #expect(abs(btime - (now - Int(uptime))) <= 2, "btime \(btime), now \(now), uptime \(uptime)")
        #expect((before["processes"]?.first ?? 0) >= 1 && (before["procs_running"]?.first ?? 0) >= 1, "\(before)")
        let busy = try inside("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
        #expect(busy.succeeded)
        let after = try stat()
        func used(_ rows: [String: [Int]]) -> Int { (rows["cpu"] ?? []).prefix(3).reduce(0, +) }
        #expect(used(after) - used(before) >= 20, "cpu before \(before["cpu"] ?? []), after \(after["cpu"] ?? [])")
        #expect((after["cpu"]?[3] ?? 0) >= (before["cpu"]?[3] ?? 0), "idle went back")
        let tools = try inside("ps -o pid,comm | grep -c sleep; top -bn1 | grep -c '^CPU:'; uptime | grep -c 'up '; cut -d' ' -f1-3 /proc/loadavg")
        #expect(tools.succeeded && tools.stdout == "1\n1\n1\n0.00 0.00 0.00\n", "\(tools)")
        #expect(try bundle.runtime(veil, ["delete", "--force", bundle.id]).succeeded)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("the operator's level is a floor: the annotation may raise it, lowers it only when the operator allows; a bad level is refused naming where it came from")
    func levels() throws {
        let veil = try requireVeil()
        func uidMap(_ result: CommandResult) -> [Substring] { result.stdout.split(separator: " ", omittingEmptySubsequences: true) }

        // A tenant's annotation asking for native under the default level: refused, nothing left behind.
        let lower = try TestBundle(["cat", "/proc/self/uid_map"])
        defer { lower.remove() }
        try lower.edit { config in config["annotations"] = ["dev.veil.isolation": "native"] }
        for command in [["create", lower.id], ["run", lower.id]] {
            let refused = try lower.runtime(veil, command)
            #expect(!refused.succeeded && refused.stderr.contains("annotations[\"dev.veil.isolation\"]") && refused.stderr.contains("\"native\"")
                    && refused.stderr.contains("allow_lower_isolation = true") && refused.stderr.contains("--allow-lower-isolation"), "\(refused)")
            #expect(lower.leftovers().isEmpty, "\(lower.leftovers())")
        }
        // Also when the operator named the sandbox level itself.
        let named = try lower.runtime(veil, ["--isolation", "sandbox", "run", lower.id])
        #expect(!named.succeeded && named.stderr.contains("dev.veil.isolation"), "\(named)")
        #expect(lower.leftovers().isEmpty, "\(lower.leftovers())")
        // The operator allows lowering: native, runc's identity map.
        let allowed = try lower.runtime(veil, ["--allow-lower-isolation", "run", lower.id])
        #expect(allowed.succeeded && uidMap(allowed).prefix(2) == ["0", "0"], "\(allowed)")
        #expect(lower.leftovers().isEmpty, "\(lower.leftovers())")

        // From the operator's native level (--isolation native, or veil started as veil-native) an annotation may raise to sandbox.
        let raise = try TestBundle(["cat", "/proc/self/uid_map"])
        defer { raise.remove() }
        try raise.edit { config in config["annotations"] = ["dev.veil.isolation": "sandbox"] }
        let nativeName = try #require(RuntimeUnderTest.all.first { $0.name == "veil-native" }).binary()
        for (binary, flags) in [(veil, ["--isolation", "native"]), (nativeName, [])] {
            let raised = try raise.runtime(binary, flags + ["run", raise.id])
            #expect(raised.succeeded && uidMap(raised).first == "0" && (UInt64(uidMap(raised).dropFirst().first ?? "") ?? 0) >= 1 << 30, "\(flags): \(raised)")
            #expect(raise.leftovers().isEmpty, "\(raise.leftovers())")
        }
        let plain = try TestBundle(["cat", "/proc/self/uid_map"])
        defer { plain.remove() }
        let asNative = try plain.runtime(nativeName, ["run", plain.id])
        #expect(asNative.succeeded && uidMap(asNative).prefix(2) == ["0", "0"], "veil started as veil-native: \(asNative)")
        let overridden = try plain.runtime(nativeName, ["--isolation", "sandbox", "run", plain.id])
        #expect(overridden.succeeded && uidMap(overridden).first == "0" && uidMap(overridden).dropFirst().first != "0", "--isolation wins over the name: \(overridden)")

        let bad = try TestBundle(["true"])
        defer { bad.remove() }
        try bad.edit { config in config["annotations"] = ["dev.veil.isolation": "strictest"] }
        let refused = try bad.runtime(veil, ["create", bad.id])
        #expect(!refused.succeeded && refused.stderr.contains("annotations[\"dev.veil.isolation\"]") && refused.stderr.contains("strictest"), "\(refused)")
        #expect(bad.leftovers().isEmpty, "\(bad.leftovers())")
        let flag = try runCommand(veil, ["--isolation", "gvisor", "state", "x"])
        #expect(!flag.succeeded && flag.stderr.contains("--isolation"), "\(flag)")
        let pool = try runCommand(veil, ["--root", bad.stateRoot, "create", "--bundle", bad.path, bad.id], environment: ["VEIL_ID_POOL": "lots"])
        #expect(!pool.succeeded && pool.stderr.contains("VEIL_ID_POOL"), "\(pool)")
        #expect(bad.leftovers().isEmpty, "\(bad.leftovers())")
    }

    @Test("veil sandbox policy lists every treatment, as a table and as JSON")
    func policy() throws {
        let veil = try requireVeil()
        let table = try runCommand(veil, ["sandbox", "policy"])
        #expect(table.succeeded && table.stdout.contains("uname") && table.stdout.contains("emulated"), "\(table)")
        let json = try runCommand(veil, ["sandbox", "policy", "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let calls = object?["syscalls"] as? [[String: Any]] ?? []
        func treatment(_ name: String) -> [String: Any]? { calls.first { $0["syscall"] as? String == name && $0["filter"] == nil } }
        #expect(treatment("mount")?["errno"] as? String == "EPERM")
        #expect(treatment("uname")?["treatment"] as? String == "emulated")
        #expect(treatment("getppid")?["treatment"] as? String == "direct")
        #expect(object?["defaultErrno"] as? String == "ENOSYS")
        #expect(calls.contains { $0["syscall"] as? String == "socket" && ($0["filter"] as? String ?? "").contains("arg0 == 1") })
    }
}

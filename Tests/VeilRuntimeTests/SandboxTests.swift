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
        // and pidfds), and no mapping but its code, its stack and its TLS block.
        let sentinel = try #require(sentinels(of: warden).first, "the warden has no veil-sentinel child")
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(sentinel)/fd")) ?? [])
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(sentinel)/fd/\($0)") }
        #expect(!links.isEmpty && links.allSatisfy { $0.hasPrefix("pipe:") || $0 == "anon_inode:[pidfd]" || $0.hasPrefix("/") }, "\(links)")
        // (It sheds them right after the fork, which a loaded machine may not have scheduled yet.)
        var maps = ""
        let shed = waitUntil(timeout: 10) {
            maps = (try? String(contentsOfFile: "/proc/\(sentinel)/maps", encoding: .utf8)) ?? ""
            return maps.split(separator: "\n").filter { !$0.hasSuffix("[vsyscall]") }.count <= 3
        }
        #expect(shed, "\(maps)")
        kill(warden, SIGKILL)
        #expect(waitUntil(timeout: 15) { !processIsAlive(Int32(pid)) }, "the container outlived its warden")
        #expect(try bundle.status(veil) == "stopped")
        #expect(try bundle.runtime(veil, ["delete", bundle.id]).succeeded)
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

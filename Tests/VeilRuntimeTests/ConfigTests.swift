// The OCI config.json fields, one area per test, observed from inside the container with busybox
// commands whose output comes back through the stdout of a foreground `run` (or, for what only the
// host can see, through create + state + /proc and the cgroup tree). Every case runs against runc
// too, so a difference between the two runtimes shows as a veil failure next to a runc pass.

import Foundation
import Testing

// MARK: - Config editing helpers

extension TestBundle {
    func editProcess(_ change: (inout [String: Any]) -> Void) throws {
        try edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            change(&process)
            config["process"] = process
        }
    }

    func editLinux(_ change: (inout [String: Any]) -> Void) throws {
        try edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            change(&linux)
            config["linux"] = linux
        }
    }

    func addMounts(_ added: [[String: Any]]) throws {
        try edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(contentsOf: added)
            config["mounts"] = mounts
        }
    }

    /// Adds a namespace of `type` (replacing one of that type), optionally joining `path`.
    func setNamespace(_ type: String, path: String? = nil) throws {
        try editLinux { linux in
            var namespaces = linux["namespaces"] as? [[String: Any]] ?? []
            namespaces.removeAll { $0["type"] as? String == type }
            var entry: [String: Any] = ["type": type]
            if let path { entry["path"] = path }
            namespaces.append(entry)
            linux["namespaces"] = namespaces
        }
    }

    func setResources(_ resources: [String: Any]) throws {
        try editLinux { linux in
            var current = linux["resources"] as? [String: Any] ?? [:]
            current.merge(resources) { _, new in new }
            linux["resources"] = current
        }
    }

    /// A foreground `run` of the configured process.
    func run(_ bin: String, extra: [String] = [], timeout: TimeInterval = 20) throws -> CommandResult {
        try runtime(bin, ["run"] + extra + [id], timeout: timeout)
    }

    /// create (not start): the init waits, so the host can look at it; returns its pid.
    func createPaused(_ bin: String) throws -> (CommandResult, Int32) {
        let create = try runtime(bin, ["create", "--bundle", path, id])
        let pid = (try state(bin)?["pid"] as? Int) ?? 0
        return (create, Int32(pid))
    }
}

/// The output's lines, trimmed, for exact-line checks.
private func lines(_ text: String) -> [String] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
}

/// The value after `key` on the first `key value...` line (as in /proc/self/status), whitespace-collapsed.
private func field(_ text: String, _ key: String) -> String? {
    for line in text.split(separator: "\n") where line.hasPrefix(key) {
        return line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }
    return nil
}

/// A 64-bit capability mask as /proc/PID/status prints it.
private func capMask(_ bits: [Int]) -> String {
    let mask = bits.reduce(UInt64(0)) { $0 | (UInt64(1) << UInt64($1)) }
    let hex = String(mask, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
}

@Suite("config")
struct ConfigTests {
    // MARK: process

    @Test("process.user uid, gid, additionalGids and umask", arguments: RuntimeUnderTest.all)
    func userAndUmask(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo uid=$(id -u) gid=$(id -g); echo groups=$(id -G); echo umask=$(umask); touch /tmp/f; stat -c mode=%a /tmp/f"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var root = config["root"] as? [String: Any] ?? [:]
            root["readonly"] = false
            config["root"] = root
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: bundle.rootfs + "/tmp")
        try bundle.editProcess { process in
            process["user"] = ["uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        #expect(out.contains("uid=1000 gid=1001"), "\(result)")
        // id -G lists the effective gid first, then the supplementary groups.
        let groups = out.first { $0.hasPrefix("groups=") }.map { Set($0.dropFirst(7).split(separator: " ").map(String.init)) }
        #expect(groups == ["1001", "10", "20"], "\(result)")
        #expect(out.contains("umask=0027"), "\(result)")
        #expect(out.contains("mode=640"), "a file created under umask 027 must be 640: \(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("process.cwd is created when missing, also under a read-only root", arguments: RuntimeUnderTest.all)
    func cwdCreated(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        for readonly in [true, false] {
            let bundle = try TestBundle(["sh", "-c", "echo cwd=$(pwd); stat -c mode=%a ."])
            defer { bundle.remove() }
            try bundle.edit { config in config["root"] = ["path": "rootfs", "readonly": readonly] }
            try bundle.editProcess { process in process["cwd"] = "/work/deep/dir" }
            #expect(!FileManager.default.fileExists(atPath: bundle.rootfs + "/work"))
            let result = try bundle.run(bin)
            #expect(result.succeeded, "root.readonly \(readonly): \(result)")
            #expect(lines(result.stdout) == ["cwd=/work/deep/dir", "mode=755"], "root.readonly \(readonly): \(result)")
            #expect(FileManager.default.fileExists(atPath: bundle.rootfs + "/work/deep/dir"))
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
    }

    @Test("process.env is exactly the configured list", arguments: RuntimeUnderTest.all)
    func environment(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "env | sort"])
        defer { bundle.remove() }
        try bundle.editProcess { process in
            process["env"] = ["PATH=/bin:/usr/bin", "GREETING=hello world", "EMPTY=", "EQUALS=a=b"]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        for expected in ["GREETING=hello world", "EMPTY=", "EQUALS=a=b", "PATH=/bin:/usr/bin"] {
            #expect(out.contains(expected), "missing \(expected): \(result)")
        }
        // Nothing of the runtime's own environment leaks in (busybox sh adds PWD, SHLVL, _ itself).
        let names = Set(out.compactMap { $0.split(separator: "=").first.map(String.init) })
        let unexpected = names.subtracting(["PATH", "GREETING", "EMPTY", "EQUALS", "PWD", "SHLVL", "_", "HOME", "HOSTNAME"])
        #expect(unexpected.isEmpty, "unexpected variables \(unexpected): \(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("process.rlimits set soft and hard limits", arguments: RuntimeUnderTest.all)
    func rlimits(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo soft=$(ulimit -n) hard=$(ulimit -Hn); grep 'open files' /proc/self/limits"])
        defer { bundle.remove() }
        try bundle.editProcess { process in
            process["rlimits"] = [["type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024]]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout).contains("soft=512 hard=1024"), "\(result)")
        #expect(field(result.stdout, "Max open files") == "512 1024 files", "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("process.noNewPrivileges true and false", arguments: RuntimeUnderTest.all)
    func noNewPrivileges(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        for (setting, expected) in [(true, "1"), (false, "0")] {
            let bundle = try TestBundle(["grep", "NoNewPrivs", "/proc/self/status"])
            defer { bundle.remove() }
            try bundle.editProcess { process in process["noNewPrivileges"] = setting }
            let result = try bundle.run(bin)
            #expect(result.succeeded, "\(result)")
            #expect(field(result.stdout, "NoNewPrivs:") == expected, "noNewPrivileges \(setting): \(result)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
    }

    @Test("process.capabilities become the process's sets", arguments: RuntimeUnderTest.all)
    func capabilities(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["grep", "^Cap", "/proc/self/status"])
        defer { bundle.remove() }
        let set = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
        try bundle.editProcess { process in
            process["capabilities"] = ["bounding": set, "effective": set, "permitted": set]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let expected = capMask([5, 10])  // CAP_KILL = 5, CAP_NET_BIND_SERVICE = 10
        #expect(field(result.stdout, "CapEff:") == expected, "\(result)")
        #expect(field(result.stdout, "CapPrm:") == expected, "\(result)")
        #expect(field(result.stdout, "CapBnd:") == expected, "\(result)")
        #expect(field(result.stdout, "CapInh:") == capMask([]), "\(result)")
        #expect(field(result.stdout, "CapAmb:") == capMask([]), "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("ambient capabilities survive the switch to a non-root user", arguments: RuntimeUnderTest.all)
    func ambientCapabilitiesForUser(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["grep", "^Cap", "/proc/self/status"])
        defer { bundle.remove() }
        let one = ["CAP_NET_BIND_SERVICE"]
        let two = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
        try bundle.editProcess { process in
            process["user"] = ["uid": 1000, "gid": 1000]
            process["capabilities"] = ["bounding": two, "effective": two, "permitted": two, "inheritable": one, "ambient": one]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        // After execve as uid 1000 only the ambient set stays in effect (permitted = effective = ambient).
        #expect(field(result.stdout, "CapAmb:") == capMask([10]), "\(result)")
        #expect(field(result.stdout, "CapEff:") == capMask([10]), "\(result)")
        #expect(field(result.stdout, "CapPrm:") == capMask([10]), "\(result)")
        #expect(field(result.stdout, "CapInh:") == capMask([10]), "\(result)")
        #expect(field(result.stdout, "CapBnd:") == capMask([5, 10]), "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("process.oomScoreAdj", arguments: RuntimeUnderTest.all)
    func oomScoreAdj(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["cat", "/proc/self/oom_score_adj"])
        defer { bundle.remove() }
        try bundle.editProcess { process in process["oomScoreAdj"] = 100 }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "100", "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    /// The kernel refuses the value only once a process writes it: in the native init cloned without
    /// stage 1 that is the init itself, before it read its plan. Its own report must reach the user
    /// (not a failed send of the plan), and nothing may stay behind.
    @Test("process.oomScoreAdj out of range: the init's own error, nothing left", arguments: RuntimeUnderTest.all)
    func oomScoreAdjOutOfRange(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.editProcess { process in process["oomScoreAdj"] = 5000 }
        let result = try bundle.run(bin)
        #expect(!result.succeeded, "\(result)")
        if runtime.isVeil {
            #expect(result.stderr.contains("process.oomScoreAdj") && result.stderr.contains("Invalid argument"), "\(result)")
        }
        #expect(waitUntil(timeout: 5) { bundle.leftovers().isEmpty }, "\(bundle.leftovers())")
    }

    @Test("process.args: a bare name through PATH, an absolute path, a missing program", arguments: RuntimeUnderTest.all)
    func argsLookup(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        for (args, expected) in [(["echo", "via", "path"], "via path"), (["/bin/busybox", "echo", "absolute"], "absolute")] {
            let bundle = try TestBundle(args)
            defer { bundle.remove() }
            try bundle.editProcess { process in process["env"] = ["PATH=/nowhere:/bin"] }
            let result = try bundle.run(bin)
            #expect(result.succeeded && result.stdout == expected + "\n", "\(result)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
        let missing = try TestBundle(["no-such-program"])
        defer { missing.remove() }
        let result = try missing.run(bin)
        #expect(!result.succeeded, "\(result)")
        #expect(result.stderr.contains("no-such-program"), "the error must name the program: \(result)")
        #expect(try missing.state(bin) == nil)
        #expect(missing.leftovers().isEmpty, "\(missing.leftovers())")
    }

    // MARK: root, hostname

    @Test("root.readonly true refuses writes, false allows them", arguments: RuntimeUnderTest.all)
    func rootReadonly(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        for readonly in [true, false] {
            let bundle = try TestBundle(["sh", "-c", "touch /x && echo wrote || echo refused; grep ' / ' /proc/self/mounts"])
            defer { bundle.remove() }
            try bundle.edit { config in config["root"] = ["path": "rootfs", "readonly": readonly] }
            let result = try bundle.run(bin)
            #expect(result.succeeded, "\(result)")
            #expect(lines(result.stdout).contains(readonly ? "refused" : "wrote"), "readonly \(readonly): \(result)")
            #expect(FileManager.default.fileExists(atPath: bundle.rootfs + "/x") == !readonly)
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
    }

    @Test("hostname and domainname", arguments: RuntimeUnderTest.all)
    func hostnameAndDomainname(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname)"])
        defer { bundle.remove() }
        try bundle.edit { config in
            config["hostname"] = "box-one"
            config["domainname"] = "example.test"
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout).contains("host=box-one"), "\(result)")
        // runc 1.1.5 (this machine's) ignores "domainname" (its support came later) and leaves "(none)".
        if runtime.name != "runc" {
            #expect(lines(result.stdout).contains("domain=example.test"), "\(result)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: mounts

    @Test("tmpfs mount with size, mode and nosuid/nodev/noexec", arguments: RuntimeUnderTest.all)
    func tmpfsMount(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "grep ' /scratch ' /proc/self/mounts; stat -c mode=%a /scratch; touch /scratch/f && echo writable"])
        defer { bundle.remove() }
        try bundle.addMounts([[
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"],
        ]])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let mountLine = lines(result.stdout).first { $0.hasPrefix("tmpfs /scratch ") } ?? ""
        let options = Set((mountLine.split(separator: " ").dropFirst(3).first ?? "").split(separator: ",").map(String.init))
        #expect(options.isSuperset(of: ["rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=700"]), "\(result)")
        #expect(lines(result.stdout).contains("mode=700"), "\(result)")
        #expect(lines(result.stdout).contains("writable"), "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("bind mounts: rw dir, ro dir, a single file, flags", arguments: RuntimeUnderTest.all)
    func bindMounts(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let host = try TempDir(prefix: "veil-binds")
        defer { host.remove() }
        let fm = FileManager.default
        for sub in ["rw", "ro", "flags"] { try fm.createDirectory(atPath: host.file(sub), withIntermediateDirectories: true) }
        try "inside ro\n".write(toFile: host.file("ro/file"), atomically: true, encoding: .utf8)
        try "single file\n".write(toFile: host.file("single"), atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho ran\n".write(toFile: host.file("flags/prog"), atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: host.file("flags/prog"))
        let script = """
            echo new > /mnt/rw/created && echo rw-ok
            cat /mnt/ro/file; touch /mnt/ro/x 2>/dev/null && echo ro-writable || echo ro-refused
            cat /etc/single-file
            /mnt/flags/prog 2>/dev/null && echo exec-allowed || echo exec-refused
            grep ' /mnt/flags ' /proc/self/mounts
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.addMounts([
            ["destination": "/mnt/rw", "type": "bind", "source": host.file("rw"), "options": ["rbind", "rw"]],
            ["destination": "/mnt/ro", "type": "bind", "source": host.file("ro"), "options": ["rbind", "ro"]],
            // The destination does not exist in the rootfs: a file bind creates an empty file to mount on.
            ["destination": "/etc/single-file", "type": "bind", "source": host.file("single"), "options": ["bind", "ro"]],
            ["destination": "/mnt/flags", "type": "bind", "source": host.file("flags"), "options": ["bind", "nosuid", "noexec", "nodev"]],
        ])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        #expect(out.contains("rw-ok"), "\(result)")
        #expect((try? String(contentsOfFile: host.file("rw/created"), encoding: .utf8)) == "new\n", "the write must reach the host")
        #expect(out.contains("inside ro") && out.contains("ro-refused"), "\(result)")
        #expect(out.contains("single file"), "\(result)")
        #expect(out.contains("exec-refused"), "\(result)")
        let flagsLine = out.first { $0.contains(" /mnt/flags ") } ?? ""
        let options = Set((flagsLine.split(separator: " ").dropFirst(3).first ?? "").split(separator: ",").map(String.init))
        #expect(options.isSuperset(of: ["nosuid", "nodev", "noexec"]), "\(result)")
        // The mount points made in the rootfs stay (as with runc), but nothing stays mounted.
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("rbind carries submounts, rprivate propagation", arguments: RuntimeUnderTest.all)
    func rbindPropagation(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let host = try TempDir(prefix: "veil-rbind")
        defer { host.remove() }
        try FileManager.default.createDirectory(atPath: host.file("sub"), withIntermediateDirectories: true)
        let mount = try runCommand("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", host.file("sub")])
        try #require(mount.succeeded, "\(mount)")
        // Shared on the host, so that only the runtime's rprivate makes it private inside.
        _ = try runCommand("mount", ["--make-shared", host.file("sub")])
        try "from the submount\n".write(toFile: host.file("sub/file"), atomically: true, encoding: .utf8)
        let bundle = try TestBundle(["sh", "-c", "cat /mnt/r/sub/file; cat /proc/self/mountinfo"])
        defer { bundle.remove() }
        try bundle.addMounts([["destination": "/mnt/r", "type": "bind", "source": host.path, "options": ["rbind", "rprivate"]]])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout).contains("from the submount"), "rbind must bring the submount: \(result)")
        let mine = lines(result.stdout).filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 6 && (fields[4] == "/mnt/r" || fields[4] == "/mnt/r/sub")
        }
        #expect(mine.count == 2, "\(result)")
        #expect(mine.allSatisfy { !$0.contains("shared:") && !$0.contains("master:") }, "rprivate mounts must not propagate: \(mine)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: devices

    @Test("linux.devices creates device nodes with type, numbers, mode and owner", arguments: RuntimeUnderTest.all)
    func extraDevices(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "stat -c '%n %F %t:%T %a %u:%g' /dev/mynull /dev/fuse"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            linux["devices"] = [
                ["path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1, "gid": 1],
                ["path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0],
            ]
        }
        if runtime.name == "veil" {
            // A sandbox gets host devices beyond the default set only when the operator lets them
            // through (--sandbox-device); its root may not make device nodes (user namespace), so, as
            // runc in a user namespace, the host's node is bound in with the host's mode and owner.
            let refused = try bundle.run(bin)
            #expect(!refused.succeeded && refused.stderr.contains("/dev/fuse") && refused.stdout.contains("/dev/mynull character special file 1:3 "),
                    "\(refused)")
            let allowed = try runCommand(bin, ["--sandbox-device", "/dev/fuse", "--root", bundle.stateRoot, "run", bundle.id],
                                         workingDirectory: bundle.path)
            #expect(allowed.succeeded, "\(allowed)")
            let out = lines(allowed.stdout)
            #expect(out.contains { $0.hasPrefix("/dev/mynull character special file 1:3 ") }, "\(allowed)")
            #expect(out.contains { $0.hasPrefix("/dev/fuse character special file a:e5 ") }, "\(allowed)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
            return
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        do {
            #expect(out.contains("/dev/mynull character special file 1:3 600 1:1"), "\(result)")
            #expect(out.contains("/dev/fuse character special file a:e5 666 0:0"), "\(result)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("the default /dev: devices and links", arguments: RuntimeUnderTest.all)
    func defaultDev(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let script = """
            for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo "char $d $(stat -c '%t:%T %a' /dev/$d)"; done
            for l in fd stdin stdout stderr ptmx; do [ -L /dev/$l ] && echo "link $l $(readlink /dev/$l)"; done
            [ -d /dev/pts ] && echo pts-dir; [ -d /dev/shm ] && echo shm-dir
            echo discard > /dev/null && echo null-writable
            echo zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')
            echo rand=$(head -c 8 /dev/urandom | wc -c)
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        for expected in [
            "char null 1:3 666", "char zero 1:5 666", "char full 1:7 666", "char random 1:8 666",
            "char urandom 1:9 666", "char tty 5:0 666",
            "link fd /proc/self/fd", "link stdin /proc/self/fd/0", "link stdout /proc/self/fd/1",
            "link stderr /proc/self/fd/2", "link ptmx pts/ptmx",
            "pts-dir", "shm-dir", "null-writable", "zero=00000000", "rand=8",
        ] {
            #expect(out.contains(expected), "missing \(expected): \(result)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: masked and read-only paths

    @Test("maskedPaths hide files and directories, readonlyPaths refuse writes", arguments: RuntimeUnderTest.all)
    func maskedAndReadonlyPaths(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let script = """
            echo secret=$(cat /etc/secret | wc -c); echo secretdir=$(ls /secretdir | wc -l)
            echo kcore=$(head -c 16 /proc/kcore | wc -c)
            echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-refused
            echo x > /etc/secret; echo secret-after=$(cat /etc/secret | wc -c)
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try "do not show\n".write(toFile: bundle.rootfs + "/etc/secret", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: bundle.rootfs + "/secretdir", withIntermediateDirectories: true)
        try "hidden\n".write(toFile: bundle.rootfs + "/secretdir/a", atomically: true, encoding: .utf8)
        try bundle.edit { config in config["root"] = ["path": "rootfs", "readonly": false] }
        try bundle.editLinux { linux in
            linux["maskedPaths"] = ["/etc/secret", "/secretdir", "/proc/kcore", "/no/such/path"]
            linux["readonlyPaths"] = ["/proc/sys", "/no/such/other"]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        for expected in ["secret=0", "secretdir=0", "kcore=0", "sys-refused", "secret-after=0"] {
            #expect(out.contains(expected), "missing \(expected): \(result)")
        }
        // A masked file is /dev/null mounted over it: writes vanish, the real file keeps its content.
        #expect((try? String(contentsOfFile: bundle.rootfs + "/etc/secret", encoding: .utf8)) == "do not show\n")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // The same write with /proc/sys not read-only goes through (to the container's own UTS namespace).
        let open = try TestBundle(["sh", "-c", "echo x > /proc/sys/kernel/domainname && cat /proc/sys/kernel/domainname"])
        defer { open.remove() }
        try open.editLinux { linux in linux["readonlyPaths"] = [String]() }
        let control = try open.run(bin)
        if runtime.name == "veil" {
            // The sandbox's /proc/sys is read-only whatever the config says (and in its user
            // namespace the kernel would refuse the write anyway: the files belong to the host's root).
            #expect(!control.succeeded && control.stderr.contains("Read-only file system"), "\(control)")
        } else {
            #expect(control.succeeded && control.stdout == "x\n", "\(control)")
        }
        #expect(open.leftovers().isEmpty, "\(open.leftovers())")
    }

    // MARK: sysctl

    @Test("linux.sysctl in the net and ipc namespaces", arguments: RuntimeUnderTest.all)
    func sysctl(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward) shmmax=$(cat /proc/sys/kernel/shmmax)"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            linux["sysctl"] = ["net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"]
        }
        let hostForward = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout).contains("fwd=1 shmmax=123456789"), "\(result)")
        #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == hostForward, "the host's value must not change")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: namespaces

    @Test("user namespace with uid and gid mappings", arguments: RuntimeUnderTest.all)
    func userNamespace(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map /proc/self/gid_map; sleep 1000 & wait"])
        defer { bundle.remove() }
        // mkdtemp made the bundle 0700: the mapped root (host uid 100000) must be able to reach the rootfs.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bundle.path)
        try bundle.setNamespace("user")
        try bundle.editLinux { linux in
            linux["uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
            linux["gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
        }
        // The host's view: the created init runs as host uid 100000.
        let (create, pid) = try bundle.createPaused(bin)
        #expect(create.succeeded, "\(create)")
        #expect(pid > 0, "\(create)")
        if pid > 0 {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            #expect(field(status, "Uid:") == "100000 100000 100000 100000", "\(status)")
            #expect(field(status, "Gid:") == "100000 100000 100000 100000", "\(status)")
            let map = (try? String(contentsOfFile: "/proc/\(pid)/uid_map", encoding: .utf8)) ?? ""
            #expect(map.split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["0", "100000", "65536"], "\(map)")
        }
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(waitUntil(timeout: 5) { !processIsAlive(pid) })
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // The container's view.
        try bundle.editProcess { process in process["args"] = ["sh", "-c", "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map /proc/self/gid_map"] }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout).map { $0.split(separator: " ").joined(separator: " ") }
        #expect(out == ["uid=0 gid=0", "0 100000 65536", "0 100000 65536"], "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // runc 1.1.5 (this machine's) has no time namespace support (it came with runc 1.2), so this
    // case runs for veil only.
    @Test("time namespace with timeOffsets", arguments: RuntimeUnderTest.all.filter(\.isVeil))
    func timeNamespace(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["cat", "/proc/uptime"])
        defer { bundle.remove() }
        try bundle.setNamespace("time")
        try bundle.editLinux { linux in
            linux["timeOffsets"] = ["monotonic": ["secs": 86400], "boottime": ["secs": 86400]]
        }
        let hostUptime = Double((try String(contentsOfFile: "/proc/uptime", encoding: .utf8)).split(separator: " ").first ?? "") ?? 0
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let inside = Double(result.stdout.split(separator: " ").first ?? "") ?? 0
        #expect(inside >= 86400 + hostUptime - 1, "uptime inside \(inside), host \(hostUptime): \(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("joining another container's network namespace by path", arguments: RuntimeUnderTest.all)
    func joinNamespaceByPath(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let first = try TestBundle(["sleep", "1000"], prefix: "a")
        defer { first.remove() }
        let started = try first.runtime(bin, ["run", "-d", first.id])
        try #require(started.succeeded, "\(started)")
        defer { _ = try? first.runtime(bin, ["delete", "--force", first.id]) }
        let pid = (try first.state(bin)?["pid"] as? Int) ?? 0
        try #require(pid > 0)
        let theirs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        #expect(theirs != ours, "A must have its own network namespace")

        let second = try TestBundle(["readlink", "/proc/self/ns/net"], prefix: "b")
        defer { second.remove() }
        try second.setNamespace("network", path: "/proc/\(pid)/ns/net")
        let result = try second.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == theirs, "\(result)")
        #expect(second.leftovers().isEmpty, "\(second.leftovers())")
        #expect(processIsAlive(Int32(pid)), "B's exit must not end A")

        let delete = try first.runtime(bin, ["delete", "--force", first.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(first.leftovers().isEmpty, "\(first.leftovers())")
    }

    @Test("a new network namespace has its loopback up and 127.0.0.1 answers", arguments: RuntimeUnderTest.all)
    func loopbackUp(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        // lo's flags as netlink reports them (the sandbox's /sys has no class/net); then a TCP
        // round trip over 127.0.0.1 with busybox nc, retried for up to 10 s because the
        // listener may start late on a loaded machine. The client keeps its stdin open for a
        // second: busybox nc quits at EOF on stdin, which could close the connection before the
        // one-shot listener's "pong" arrived (runc and veil both lost that race under load).
        let bundle = try TestBundle(["sh", "-c", """
            ip -o link show lo | grep -o '<[A-Z_,]*>'
            echo pong | nc -l -p 7777 > /dev/null &
            i=0
            while [ $i -lt 200 ]; do
                reply=$( (echo ping; sleep 1) | nc 127.0.0.1 7777 2>/dev/null) && [ -n "$reply" ] && break
                i=$((i + 1)); sleep 0.05
            done
            echo "reply=$reply"
            """])
        defer { bundle.remove() }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout) == ["<LOOPBACK,UP,LOWER_UP>", "reply=pong"], "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    /// Runs `bundle` with `extra` flags and checks that / is its rootfs and a private mount.
    private func expectPrivateRoot(_ bin: String, _ bundle: TestBundle, extra: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let rootCount = (try FileManager.default.contentsOfDirectory(atPath: bundle.rootfs)).count
        let result = try bundle.run(bin, extra: extra)
        #expect(result.succeeded, "\(result)", sourceLocation: sourceLocation)
        #expect(lines(result.stdout).contains("files=\(rootCount)"), "the root must be the bundle's rootfs: \(result)", sourceLocation: sourceLocation)
        let rootLine = lines(result.stdout).first { $0.split(separator: " ").dropFirst(4).first == "/" } ?? ""
        #expect(!rootLine.isEmpty && !rootLine.contains("shared:"), "\(result)", sourceLocation: sourceLocation)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())", sourceLocation: sourceLocation)
    }

    private static let rootView = ["sh", "-c", "echo files=$(ls / | wc -l); grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo"]

    @Test("rootfsPropagation private", arguments: RuntimeUnderTest.all)
    func rootfsPropagationPrivate(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(Self.rootView)
        defer { bundle.remove() }
        try bundle.editLinux { linux in linux["rootfsPropagation"] = "private" }
        try expectPrivateRoot(bin, bundle, extra: [])
        // private: no peer group and no master either.
        let again = try bundle.run(bin)
        let rootLine = lines(again.stdout).first { $0.split(separator: " ").dropFirst(4).first == "/" } ?? ""
        #expect(!rootLine.contains("master:"), "\(again)")
    }

    @Test("run --no-pivot", arguments: RuntimeUnderTest.all)
    func noPivot(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(Self.rootView)
        defer { bundle.remove() }
        try expectPrivateRoot(bin, bundle, extra: ["--no-pivot"])
    }

    // runc refuses this combination ("rootfsPropagation of [r]private is not safe without pivot_root").
    @Test("run --no-pivot refuses rootfsPropagation private, as runc does", arguments: RuntimeUnderTest.all)
    func noPivotRefusesPrivate(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in linux["rootfsPropagation"] = "rprivate" }
        let result = try bundle.run(bin, extra: ["--no-pivot"])
        #expect(!result.succeeded, "\(result)")
        #expect(result.stderr.contains("rootfsPropagation"), "\(result)")
        #expect(try bundle.state(bin) == nil)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: cgroups

    @Test("cgroup namespace and mount show linux.resources; the host cgroup has them too", arguments: RuntimeUnderTest.all)
    func cgroupResources(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let script = """
            echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
            echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
            echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares) quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
            echo self=$(grep memory /proc/self/cgroup)
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.setNamespace("cgroup")
        try bundle.setResources([
            "memory": ["limit": 64 << 20],
            "pids": ["limit": 50],
            "cpu": ["shares": 512, "quota": 50000, "period": 100000],
        ])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = lines(result.stdout)
        #expect(out.contains("mem=\(64 << 20)"), "\(result)")
        #expect(out.contains("pids=50"), "\(result)")
        #expect(out.contains("shares=512 quota=50000 period=100000"), "\(result)")
        // In its own cgroup namespace the container sees its cgroup as the root.
        #expect(out.contains { $0.hasPrefix("self=") && $0.hasSuffix(":memory:/") }, "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // From the host, while it exists.
        let (create, pid) = try bundle.createPaused(bin)
        #expect(create.succeeded, "\(create)")
        let base = "/sys/fs/cgroup"
        let group = "veil-test/\(bundle.id)"
        func read(_ path: String) -> String {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(read("\(base)/memory/\(group)/memory.limit_in_bytes") == String(64 << 20))
        #expect(read("\(base)/pids/\(group)/pids.max") == "50")
        #expect(read("\(base)/cpu/\(group)/cpu.shares") == "512")
        #expect(read("\(base)/cpu/\(group)/cpu.cfs_quota_us") == "50000")
        #expect(read("\(base)/memory/\(group)/cgroup.procs").split(separator: "\n").contains(Substring(String(pid))), "the init must be in the cgroup")
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(waitUntil(timeout: 5) { bundle.leftovers().isEmpty }, "\(bundle.leftovers())")
    }

    @Test("a memory limit kills a process that goes over it", arguments: RuntimeUnderTest.all)
    func memoryLimitKills(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}"])
        defer { bundle.remove() }
        try bundle.setResources(["memory": ["limit": 16 << 20]])
        let result = try bundle.run(bin)
        #expect(!result.stdout.contains("survived"), "\(result)")
        // The OOM killer picks the shell that holds the string, the container's init: SIGKILL.
        #expect(result.status == 137, "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("a pids limit stops fork", arguments: RuntimeUnderTest.all)
    func pidsLimit(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        // busybox sh gives up (status 2) at the first fork that fails; the outer shell then reads
        // pids.current with builtins only, as the sleeps still hold every pid it could fork.
        let script = """
            sh -c 'for i in $(seq 20); do sleep 2 & done'; echo inner=$?
            read current < /sys/fs/cgroup/pids/pids.current; echo current=$current
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.setResources(["pids": ["limit": 10]])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(lines(result.stdout).contains("inner=2"), "\(result)")
        #expect(result.stderr.contains("can't fork"), "\(result)")
        let current = lines(result.stdout).first { $0.hasPrefix("current=") }.flatMap { Int($0.dropFirst(8)) } ?? 0
        #expect(current > 2 && current <= 10, "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }
}

// `veil seccomp record` end to end, at both isolation levels: a workload is recorded, the profile is
// a valid sorted OCI profile of what it called, the same bundle runs unchanged with it as
// linux.seccomp (or pushed to a registry and pulled by CRI-O's annotation) and a call it never made fails with EPERM; the sandbox's emulated uname stays the
// sandbox's while recorded; a notifying profile is refused; the annotation route needs the operator's flag.

import Foundation
import Testing

private let recordLevels = ["native", "sandbox"]

/// The recorded profile, checked for the shape `veil seccomp record` promises; returns its names.
private func checkedProfile(_ path: String) throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let profile = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(profile["defaultAction"] as? String == "SCMP_ACT_ERRNO")
    #expect(profile["defaultErrnoRet"] as? Int == 1)
    let arches = profile["architectures"] as? [String] ?? []
    #expect(arches.first == "SCMP_ARCH_X86_64", "\(arches)")
    let rules = profile["syscalls"] as? [[String: Any]] ?? []
    #expect(rules.count == 1 && rules.first?["action"] as? String == "SCMP_ACT_ALLOW", "\(rules)")
    let names = rules.first?["names"] as? [String] ?? []
    #expect(names == Array(Set(names)).sorted(), "names must be sorted and unique: \(names)")
    return names
}

/// Rewrites config.json at `configPath` through `change`.
private func editConfig(_ configPath: String, _ change: (inout [String: Any]) -> Void) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
    var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    change(&config)
    try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: configPath))
}

private func setSeccomp(_ configPath: String, profilePath: String?) throws {
    let profile = try profilePath.map { try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: $0))) }
    try editConfig(configPath) { config in
        var linux = config["linux"] as? [String: Any] ?? [:]
        linux["seccomp"] = profile
        config["linux"] = linux
    }
}

/// Recorders still running for `output` (a recorder outlives create; it must not outlive the container).
private func recorders(writing output: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.count > 2 && args[1] == "seccomp-recorder" && args[2] == output
    }
}

private func hostRelease() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

@Suite("seccomp record", .serialized)
struct SeccompRecordTests {
    @Test("busybox: recorded, the profile runs the same command unchanged, a call it never made fails with EPERM; the sandbox's uname stays its own",
          arguments: recordLevels)
    func busybox(level: String) throws {
        let veil = try requireVeil()
        // At the sandbox level dmesg too: syslog is another call the warden answers.
        let command = "echo recorded-ok; uname -r; ls / >/dev/null" + (level == "sandbox" ? "; dmesg | head -1" : "")
        let bundle = try TestBundle(["sh", "-c", command])
        defer { bundle.remove() }
        let output = bundle.dir.file("profile.json")
        let recorded = try runCommand(veil, ["--isolation", level, "--root", bundle.stateRoot, "seccomp", "record",
                                             "--bundle", bundle.path, "-o", output, bundle.id], timeout: 60)
        #expect(recorded.succeeded && recorded.stdout.hasPrefix("recorded-ok\n"), "\(recorded)")
        let release = recorded.stdout.split(separator: "\n").dropFirst().first.map(String.init) ?? ""
        if level == "sandbox" {
            // The recorder answers uname as the warden does: never the host's kernel.
            #expect(release.hasSuffix("-veil") && release != hostRelease(), "uname -r showed \(release)")
            #expect(recorded.stdout.contains("Starting veil..."), "dmesg must show the sandbox's boot log: \(recorded)")
        } else {
            #expect(release == hostRelease(), "uname -r showed \(release)")
        }
        #expect(recorders(writing: output).isEmpty, "the recorder outlived the container")
        let names = try checkedProfile(output)
        for needed in ["execve", "uname", "write", "openat", "getdents64", "exit_group"] {
            #expect(names.contains(needed), "\(needed) missing from \(names)")
        }
        #expect(!names.contains("mkdir") && !names.contains("mkdirat"), "\(names)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // Applied as linux.seccomp: the same command runs and prints the same.
        try setSeccomp(bundle.configPath, profilePath: output)
        let applied = try bundle.runtime(veil, ["--isolation", level, "run", bundle.id + "a"], timeout: 60)
        #expect(applied.succeeded && applied.stdout == recorded.stdout, "recorded:\n\(recorded.stdout)\napplied: \(applied)")
        // Without no_new_privs veil installs the profile early, before the sandbox policy and the
        // privilege drop: the runtime's own needs are in the profile for that too.
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["noNewPrivileges"] = false
            config["process"] = process
        }
        let early = try bundle.runtime(veil, ["--isolation", level, "run", bundle.id + "e"], timeout: 60)
        #expect(early.succeeded && early.stdout == recorded.stdout, "recorded:\n\(recorded.stdout)\napplied early: \(early)")

        // A call the workload never made (mkdir) is refused with the profile's EPERM.
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = ["sh", "-c", command + "; mkdir /never-made; echo mkdir=$?"]
            config["process"] = process
        }
        let refused = try bundle.runtime(veil, ["--isolation", level, "run", bundle.id + "b"], timeout: 60)
        #expect(refused.stdout.contains("mkdir=1") && refused.stderr.contains("Operation not permitted"), "\(refused)")
        #expect(refused.stdout.hasPrefix(recorded.stdout), "\(refused)")
    }

    @Test("python3 from the Debian rootfs doing file, socket and thread work: recorded, then runs unchanged under its profile",
          .enabled(if: debianRootfsAvailable), arguments: recordLevels)
    func python(level: String) throws {
        let veil = try requireVeil()
        let script = """
            import os, socket, threading, hashlib
            p = '/tmp/data.txt'; open(p, 'w').write('x' * 1000); d = open(p).read()
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]
            def serve():
                c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
            t = threading.Thread(target=serve); t.start()
            c = socket.create_connection(('127.0.0.1', port)); c.sendall(b'hello'); r = c.recv(100); t.join()
            print('ok', len(d), r.decode(), hashlib.sha256(d.encode()).hexdigest()[:8], os.uname().release)
            """
        let bundle = try DebianBundle(["python3", "-c", script], rootfs: try requireDebianRootfs())
        defer { bundle.remove() }
        let output = bundle.dir.file("profile.json")
        let recorded = try runCommand(veil, ["--isolation", level, "--root", bundle.stateRoot, "seccomp", "record",
                                             "--bundle", bundle.path, "-o", output, bundle.id], timeout: 120)
        #expect(recorded.succeeded && recorded.stdout.hasPrefix("ok 1000 HELLO "), "\(recorded)")
        let names = try checkedProfile(output)
        for needed in ["socket", "bind", "listen", "accept4", "connect", "openat", "uname"] {
            #expect(names.contains(needed), "\(needed) missing from \(names)")
        }
        // The thread: clone3, or clone where the sandbox answers clone3 with ENOSYS (glibc falls back).
        #expect(names.contains("clone3") || names.contains("clone"), "\(names)")
        try setSeccomp(bundle.configPath, profilePath: output)
        let applied = try runCommand(veil, ["--isolation", level, "--root", bundle.stateRoot, "run", "--bundle", bundle.path, bundle.id + "a"],
                                     timeout: 120, workingDirectory: bundle.path)
        #expect(applied.succeeded && applied.stdout == recorded.stdout, "recorded:\n\(recorded.stdout)\napplied: \(applied)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("python3 -m http.server recorded while it serves a page, pushed, pulled by the POD annotation: it serves, a call it never made fails",
          .enabled(if: debianRootfsAvailable), arguments: recordLevels)
    func httpServer(level: String) throws {
        let veil = try requireVeil()
        let bundle = try DebianBundle(["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/etc"],
                                      rootfs: try requireDebianRootfs())
        defer { bundle.remove() }
        let expected = try String(contentsOfFile: try requireDebianRootfs() + "/etc/debian_version", encoding: .utf8)
        let output = bundle.dir.file("profile.json")
        let root = ["--isolation", level, "--root", bundle.stateRoot]
        /// The page, fetched by the container's own python3 in its network and mount namespaces (outside its filters).
        func fetch(_ id: String) throws -> String? {
            guard let state = try? runCommand(veil, root + ["state", id]), state.succeeded,
                  let json = try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any],
                  let pid = json["pid"] as? Int, pid > 0 else { return nil }
            let got = try runCommand("nsenter", ["-t", String(pid), "-n", "-m", "python3", "-c",
                                                 "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/debian_version', timeout=5).read().decode(), end='')"],
                                     timeout: 20)
            return got.succeeded ? got.stdout : nil
        }

        let recording = Process()
        recording.executableURL = URL(fileURLWithPath: veil)
        recording.arguments = root + ["seccomp", "record", "--bundle", bundle.path, "-o", output, bundle.id]
        recording.standardInput = FileHandle.nullDevice
        recording.standardOutput = FileHandle.nullDevice
        recording.standardError = FileHandle.nullDevice
        try recording.run()
        defer {
            if exitStatus(of: recording) == nil { kill(recording.processIdentifier, SIGKILL) }
            bundle.forceDelete(IsolatedRuntime(runtime: RuntimeUnderTest.all.first { $0.name == "veil" } ?? .runc, isolation: level))
        }
        var page: String?
        _ = try waitUntil(timeout: 30) { page = try fetch(bundle.id); return page != nil }
        #expect(page == expected, "the recorded server served \(page ?? "nothing")")
        // PID 1 ignores SIGTERM without a handler: SIGKILL ends the recording.
        _ = try runCommand(veil, root + ["kill", bundle.id, "KILL"])
        #expect(waitForExit(recording, timeout: 30) != nil, "veil seccomp record did not return")
        let names = try checkedProfile(output)
        for needed in ["socket", "bind", "listen", "accept4", "sendto", "openat"] {
            #expect(names.contains(needed), "\(needed) missing from \(names)")
        }

        // The round trip: pushed with `veil seccomp push`, applied by CRI-O's POD annotation (pulled at create).
        let rig = try RegistryRig.start()
        defer { rig.stop() }
        let profile = try String(contentsOfFile: output, encoding: .utf8)
        let digest = try rig.pushProfile(repo: "recorded/http-server", tag: level, json: profile)
        let reference = rig.reference("recorded/http-server", level)
        try setSeccomp(bundle.configPath, profilePath: nil)
        try editConfig(bundle.configPath) { config in
            config["annotations"] = ["seccomp-profile.kubernetes.cri-o.io/POD": reference]
        }
        let pulling = root + SeccompArtifactTests.registryFlags(rig)
        let applied = bundle.id + "a"
        let started = try runCommand(veil, pulling + ["run", "-d", "--bundle", bundle.path, applied], timeout: 60, workingDirectory: bundle.path)
        defer { _ = try? runCommand(veil, root + ["delete", "--force", applied], timeout: 30) }
        #expect(started.succeeded, "\(started)")
        let state = try runCommand(veil, root + ["state", applied])
        #expect(state.stdout.contains("\(reference)@\(digest)"), "the state names the pulled profile: \(state)")
        var again: String?
        _ = try waitUntil(timeout: 30) { again = try fetch(applied); return again != nil }
        #expect(again == expected, "the server under its recorded profile served \(again ?? "nothing")")

        // A call the server never made: rmdir of a missing directory says EPERM (1), not ENOENT (2).
        // (The bundle names one cgroup: the server goes first.)
        let deleted = try runCommand(veil, root + ["delete", "--force", applied], timeout: 30)
        #expect(deleted.succeeded, "\(deleted)")
        try editConfig(bundle.configPath) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = ["python3", "-c", "import os\ntry:\n    os.rmdir('/no-such-directory')\nexcept OSError as e:\n    print(e.errno)"]
            config["process"] = process
        }
        let refused = try runCommand(veil, pulling + ["run", "--bundle", bundle.path, bundle.id + "r"], timeout: 60, workingDirectory: bundle.path)
        #expect(refused.succeeded && refused.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(refused)")
    }

    @Test("a linux.seccomp profile with SCMP_ACT_NOTIFY is refused: the recorder would take the agent's calls", arguments: recordLevels)
    func refusesNotify(level: String) throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["seccomp"] = ["defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/nonexistent-agent.sock",
                                "syscalls": [["names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"]]]
            config["linux"] = linux
        }
        let output = bundle.dir.file("profile.json")
        let refused = try runCommand(veil, ["--isolation", level, "--root", bundle.stateRoot, "seccomp", "record",
                                            "--bundle", bundle.path, "-o", output, bundle.id], timeout: 30)
        #expect(!refused.succeeded && refused.stderr.contains("record mode") && refused.stderr.contains("SCMP_ACT_NOTIFY")
                    && refused.stderr.contains("linux.seccomp"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("a create that fails once the recorder runs leaves no recorder, no profile and no container")
    func failedCreate() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        // Outside the sandbox's 65536 ids: setresuid fails after the record filter went in.
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["user"] = ["uid": 100_000, "gid": 0]
            config["process"] = process
        }
        let output = bundle.dir.file("profile.json")
        let failed = try runCommand(veil, ["--isolation", "sandbox", "--root", bundle.stateRoot, "seccomp", "record",
                                           "--bundle", bundle.path, "-o", output, bundle.id], timeout: 30)
        #expect(!failed.succeeded && failed.stderr.contains("process.user"), "\(failed)")
        #expect(recorders(writing: output).isEmpty, "a recorder outlived the failed create")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(!FileManager.default.fileExists(atPath: output), "a failed create wrote a profile")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("the dev.veil.seccomp-record annotation: refused without --allow-seccomp-record, honoured with it", arguments: recordLevels)
    func annotation(level: String) throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sh", "-c", "echo annotated"])
        defer { bundle.remove() }
        let name = "veil-test-\(bundle.id)-\(level).json"
        let written = "/var/lib/veil/seccomp-recordings/" + name
        defer { try? FileManager.default.removeItem(atPath: written) }
        try bundle.edit { config in config["annotations"] = ["dev.veil.seccomp-record": name] }
        let refused = try bundle.runtime(veil, ["--isolation", level, "run", bundle.id], timeout: 30)
        #expect(!refused.succeeded && refused.stderr.contains("dev.veil.seccomp-record") && refused.stderr.contains("--allow-seccomp-record"),
                "\(refused)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        #expect(!FileManager.default.fileExists(atPath: written))

        // A value that is not a plain file name is refused even when allowed.
        try bundle.edit { config in config["annotations"] = ["dev.veil.seccomp-record": "../escape.json"] }
        let badName = try bundle.runtime(veil, ["--isolation", level, "--allow-seccomp-record", "run", bundle.id], timeout: 30)
        #expect(!badName.succeeded && badName.stderr.contains("not a file name"), "\(badName)")

        try bundle.edit { config in config["annotations"] = ["dev.veil.seccomp-record": name] }
        let honoured = try bundle.runtime(veil, ["--isolation", level, "--allow-seccomp-record", "run", bundle.id], timeout: 30)
        #expect(honoured.succeeded && honoured.stdout == "annotated\n", "\(honoured)")
        // The recorder writes once the container is gone, which `run` does not wait for.
        #expect(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: written) }, "no profile at \(written)")
        let names = try checkedProfile(written)
        #expect(names.contains("execve") && names.contains("write"), "\(names)")
        #expect(waitUntil(timeout: 10) { recorders(writing: written).isEmpty }, "the recorder outlived the container")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }
}

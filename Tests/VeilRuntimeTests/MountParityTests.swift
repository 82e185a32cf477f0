// Mounts, devices and terminals as runc gives them (issue #12): a read-only /dev with its
// submounts, recursive read-only (rro), bind mount propagation (and that nothing the container
// side mounts ever reaches the host), default devices listed again in linux.devices, the pty's
// owner for a non-root process.user, bind sources container root cannot reach, and --no-pivot.
// Every case runs against runc (the oracle, proving the test) and veil at both levels.

import Foundation
import Testing

/// The output's lines, trimmed.
private func outputLines(_ text: String) -> [String] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// A host directory made a shared mount point (a bind mount on itself), as kubelet's volume
/// directories are on a systemd host: propagation options then have something to act on.
private final class SharedHostDirectory {
    let dir: TempDir
    var path: String { dir.path }

    init(prefix: String) throws {
        dir = try TempDir(prefix: prefix)
        for arguments in [["--bind", dir.path, dir.path], ["--make-shared", dir.path]] {
            let result = try runCommand("mount", arguments)
            guard result.succeeded else {
                unmountAll(under: dir.path)
                _ = try? runCommand("umount", ["-l", dir.path])
                dir.remove()
                throw SupportError("making \(dir.path) a shared mount: \(result)")
            }
        }
    }

    /// The peer group of the host's mount ("shared:N" → N).
    var peerGroup: String? { mountinfoTag(mountPoint: path, tag: "shared:", in: "/proc/self/mountinfo") }

    func remove() {
        unmountAll(under: dir.path)
        _ = try? runCommand("umount", ["-l", dir.path])
        dir.remove()
    }
}

/// The value of a propagation tag ("shared:", "master:") on the line for `mountPoint`.
private func mountinfoTag(mountPoint: String, tag: String, in file: String) -> String? {
    let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
    return mountinfoTag(line: mountinfoLine(text, mountPoint: mountPoint) ?? "", tag: tag)
}

private func mountinfoTag(line: String, tag: String) -> String? {
    let fields = line.split(separator: " ")
    guard let dash = fields.firstIndex(of: "-"), dash > 6 else { return nil }
    return fields[6..<dash].first { $0.hasPrefix(tag) }.map { String($0.dropFirst(tag.count)) }
}

/// The last mountinfo line whose mount point is `mountPoint` (the top mount there).
private func mountinfoLine(_ text: String, mountPoint: String) -> String? {
    outputLines(text).last { line in
        let fields = line.split(separator: " ")
        return fields.count > 6 && fields[4] == mountPoint
    }
}

/// Per-mount options (field 6) of the top mount at `mountPoint`.
private func mountOptions(_ text: String, mountPoint: String) -> [String] {
    guard let line = mountinfoLine(text, mountPoint: mountPoint) else { return [] }
    return line.split(separator: " ")[5].split(separator: ",").map(String.init)
}

@Suite("mount, device and terminal parity with runc")
struct MountParityTests {
    // MARK: a read-only /dev

    @Test("a read-only /dev tmpfs with pts, shm and mqueue under it", arguments: RuntimeUnderTest.all)
    func readOnlyDev(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let script = """
            cat /proc/self/mountinfo
            touch /dev/new 2>/dev/null && echo dev-writable || echo dev-read-only
            echo x > /dev/shm/file && echo shm-writable
            [ -c /dev/null ] && echo null-device; [ -L /dev/ptmx ] && echo ptmx-link; [ -e /dev/pts/ptmx ] && echo pts-ptmx
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            for index in mounts.indices where mounts[index]["destination"] as? String == "/dev" {
                mounts[index]["options"] = ((mounts[index]["options"] as? [String]) ?? []) + ["ro"]
            }
            config["mounts"] = mounts
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        let out = outputLines(result.stdout)
        #expect(mountOptions(result.stdout, mountPoint: "/dev").first == "ro", "/dev must be read-only: \(result)")
        for submount in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
            #expect(mountOptions(result.stdout, mountPoint: submount).first == "rw", "\(submount) must be mounted and writable: \(result)")
        }
        for expected in ["dev-read-only", "shm-writable", "null-device", "ptmx-link", "pts-ptmx"] {
            #expect(out.contains(expected), "missing \(expected): \(result)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // With a terminal: /dev/console is bound over a read-only /dev too.
        try bundle.editProcess { process in
            process["terminal"] = true
            process["args"] = ["sh", "-c", "tty; [ -c /dev/console ] && echo console-bound; touch /dev/new2 || echo still-read-only"]
        }
        let terminal = try runInPseudoTerminal(bin, ["--root", bundle.stateRoot, "run", "--bundle", bundle.path, bundle.id])
        #expect(terminal.succeeded, "\(terminal)")
        for expected in ["/dev/pts/", "console-bound", "still-read-only"] {
            #expect(terminal.stdout.contains(expected), "missing \(expected): \(terminal)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: recursive read-only

    @Test("rro and rbind,ro,rro make every submount read-only; ro alone only the top", arguments: RuntimeUnderTest.all)
    func recursiveReadOnly(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let features = try runCommand(RuntimeUnderTest.runc.binary(), ["features"])
        try #require(features.stdout.contains("\"rro\""), "this runc does not know rro: \(features)")
        let host = try TempDir(prefix: "veil-rro")
        defer { unmountAll(under: host.path); host.remove() }
        try FileManager.default.createDirectory(atPath: host.file("sub"), withIntermediateDirectories: true)
        let mount = try runCommand("mount", ["-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs", host.file("sub")])
        try #require(mount.succeeded, "\(mount)")
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: host.path)
        let script = "for p in a a/sub b b/sub c c/sub; do touch /mnt/$p/probe 2>/dev/null && echo $p=rw || echo $p=ro; done"
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.addMounts([
            ["destination": "/mnt/a", "type": "bind", "source": host.path, "options": ["rbind", "ro", "rro"]],
            ["destination": "/mnt/b", "type": "bind", "source": host.path, "options": ["rbind", "rro"]],
            ["destination": "/mnt/c", "type": "bind", "source": host.path, "options": ["rbind", "ro"]],
        ])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(outputLines(result.stdout) == ["a=ro", "a/sub=ro", "b=ro", "b/sub=ro", "c=ro", "c/sub=rw"], "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: propagation

    @Test("shared, rshared, slave and rslave bind mounts show runc's propagation", arguments: RuntimeUnderTest.all)
    func bindPropagation(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let names = ["sh": ["bind", "shared"], "rsh": ["rbind", "rshared"], "sl": ["bind", "slave"], "rsl": ["rbind", "rslave"], "plain": ["rbind"]]
        var sources: [String: SharedHostDirectory] = [:]
        defer { sources.values.forEach { $0.remove() } }
        for name in names.keys { sources[name] = try SharedHostDirectory(prefix: "veil-prop-\(name)") }
        let bundle = try TestBundle(["cat", "/proc/self/mountinfo"])
        defer { bundle.remove() }
        try bundle.addMounts(names.keys.sorted().map { name in
            ["destination": "/mnt/\(name)", "type": "bind", "source": sources[name]?.path ?? "", "options": names[name] ?? []]
        })
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        for (name, options) in names {
            let line = mountinfoLine(result.stdout, mountPoint: "/mnt/\(name)") ?? ""
            let hostGroup = sources[name]?.peerGroup
            // As with runc: every bind of a shared host mount receives from it (a slave of the
            // host's peer group); shared/rshared make it also a peer group of its own, never the host's.
            let hostLines = outputLines((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").filter { $0.contains(sources[name]?.path ?? "?") }
            #expect(hostGroup != nil && mountinfoTag(line: line, tag: "master:") == hostGroup, "/mnt/\(name) must be a slave of the host's group \(hostGroup ?? "?"): \(line)\nhost: \(hostLines)\n\(result)")
            let shared = mountinfoTag(line: line, tag: "shared:")
            if options.contains("shared") || options.contains("rshared") {
                #expect(shared != nil && shared != hostGroup, "/mnt/\(name) must be shared in a group of its own: \(line)")
            } else {
                #expect(shared == nil, "/mnt/\(name) must not be shared: \(line)")
            }
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // containerd asks for rootfsPropagation rshared when a pod has a Bidirectional mount (CSI node plugins).
    @Test("rootfsPropagation rshared with an rshared bind mount creates the container", arguments: RuntimeUnderTest.all)
    func rsharedRoot(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let source = try SharedHostDirectory(prefix: "veil-rshared")
        defer { source.remove() }
        let bundle = try TestBundle(["sh", "-c", "echo started; cat /proc/self/mountinfo"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in linux["rootfsPropagation"] = "rshared" }
        try bundle.addMounts([["destination": "/mnt/bidirectional", "type": "bind", "source": source.path, "options": ["rbind", "rshared"]]])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(outputLines(result.stdout).first == "started", "\(result)")
        let line = mountinfoLine(result.stdout, mountPoint: "/mnt/bidirectional") ?? ""
        if runtime.name == "veil" {
            // The sandbox's mount namespace only receives (README: deliberate differences).
            #expect(mountinfoTag(line: line, tag: "master:") == source.peerGroup, "\(line)")
        } else {
            // runc: a peer of the host's mount, both ways.
            #expect(mountinfoTag(line: line, tag: "shared:") == source.peerGroup, "\(line)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("mounts the runtime makes inside never reach the host through a shared rootfs or bind source", arguments: RuntimeUnderTest.all)
    func nothingPropagatesToTheHost(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let source = try SharedHostDirectory(prefix: "veil-noleak")
        defer { source.remove() }
        let bundle = try TestBundle(["sh", "-c", "grep -c ' /mnt/volume/inner ' /proc/self/mountinfo"])
        defer { bundle.remove() }
        // The rootfs on a shared mount, as / is on a systemd host.
        for arguments in [["--bind", bundle.rootfs, bundle.rootfs], ["--make-shared", bundle.rootfs]] {
            let made = try runCommand("mount", arguments)
            try #require(made.succeeded, "\(made)")
        }
        try bundle.addMounts([
            ["destination": "/mnt/volume", "type": "bind", "source": source.path, "options": ["rbind"]],
            ["destination": "/mnt/volume/inner", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]],
        ])
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(outputLines(result.stdout) == ["1"], "the tmpfs must be mounted inside: \(result)")
        // Only the shared bind mounts this test made itself.
        let underSource = mountPoints(under: source.path).filter { $0 != source.path }
        let underRootfs = mountPoints(under: bundle.rootfs).filter { $0 != bundle.rootfs }
        #expect(underSource.isEmpty, "the container's tmpfs reached the host: \(underSource)")
        #expect(underRootfs.isEmpty, "the container's mounts reached the host's rootfs: \(underRootfs)")
        unmountAll(under: bundle.rootfs)
        _ = try? runCommand("umount", ["-l", bundle.rootfs])
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("an rslave bind mount receives what the host mounts under its source after start", arguments: RuntimeUnderTest.all)
    func rslaveReceives(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let source = try SharedHostDirectory(prefix: "veil-rslave")
        defer { source.remove() }
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        try bundle.addMounts([["destination": "/mnt/volume", "type": "bind", "source": source.path, "options": ["rbind", "rslave"]]])
        let run = try bundle.runtime(bin, ["run", "-d", bundle.id], timeout: 15)
        try #require(run.succeeded, "\(run)")
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        try FileManager.default.createDirectory(atPath: source.dir.file("late"), withIntermediateDirectories: true)
        let mounted = try runCommand("mount", ["-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs", source.dir.file("late")])
        try #require(mounted.succeeded, "\(mounted)")
        try "from the host\n".write(toFile: source.dir.file("late/hello"), atomically: false, encoding: .utf8)
        let seen = try bundle.runtime(bin, ["exec", bundle.id, "sh", "-c", "cat /mnt/volume/late/hello; grep -c ' /mnt/volume/late ' /proc/self/mountinfo"])
        #expect(seen.succeeded, "\(seen)")
        #expect(outputLines(seen.stdout) == ["from the host", "1"], "\(seen)")
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: devices

    @Test("linux.devices listing /dev/tty and /dev/ptmx again", arguments: RuntimeUnderTest.all)
    func defaultDevicesListedAgain(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "stat -c '%u:%g %t:%T %a' /dev/tty; readlink /dev/ptmx"])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            linux["devices"] = [
                ["path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o666, "uid": 0, "gid": 0],
                ["path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 0o666, "uid": 0, "gid": 0],
            ]
        }
        let result = try bundle.run(bin)
        #expect(result.succeeded, "\(result)")
        #expect(outputLines(result.stdout) == ["0:0 5:0 666", "pts/ptmx"], "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        if runtime.name == "veil" {
            // The nodes host root made for the sandbox: in a directory only the sandbox's root may enter.
            let (create, pid) = try bundle.createPaused(bin)
            #expect(create.succeeded && pid > 0, "\(create)")
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let hostRoot = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.map(String.init)
            let directories = ((try? FileManager.default.contentsOfDirectory(atPath: "/run/veil-sandbox")) ?? []).filter { $0.hasPrefix(bundle.id + "-") }
            #expect(directories.count == 1, "\(directories)")
            for directory in directories {
                let attributes = try FileManager.default.attributesOfItem(atPath: "/run/veil-sandbox/\(directory)/dev")
                #expect((attributes[.posixPermissions] as? Int) == 0o700, "\(attributes)")
                #expect((attributes[.ownerAccountID] as? NSNumber)?.stringValue == hostRoot, "\(attributes), init uid \(hostRoot ?? "?")")
            }
            let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
            #expect(delete.succeeded, "\(delete)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }

        // A terminal opens its pty through /dev/ptmx: the redundant entry must not break that.
        try bundle.editProcess { process in
            process["terminal"] = true
            process["args"] = ["tty"]
        }
        let terminal = try runInPseudoTerminal(bin, ["--root", bundle.stateRoot, "run", "--bundle", bundle.path, bundle.id])
        #expect(terminal.succeeded && terminal.stdout.contains("/dev/pts/"), "\(terminal)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: terminals

    @Test("the pty of a non-root process.user belongs to it, in run and in exec --tty", arguments: RuntimeUnderTest.all)
    func ptyOwner(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo owner=$(stat -c %u:%g $(tty))"])
        defer { bundle.remove() }
        try bundle.editProcess { process in
            process["terminal"] = true
            process["user"] = ["uid": 1000, "gid": 1000]
        }
        let run = try runInPseudoTerminal(bin, ["--root", bundle.stateRoot, "run", "--bundle", bundle.path, bundle.id])
        #expect(run.succeeded, "\(run)")
        // The uid becomes the user's; the group stays devpts's gid=5 (tty), as runc leaves it.
        #expect(run.stdout.contains("owner=1000:5"), "\(run)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // exec --tty (detached with a console socket, as containerd drives it) as that user.
        try bundle.editProcess { process in
            process["terminal"] = false
            process["user"] = ["uid": 0, "gid": 0]
            process["args"] = ["sleep", "1000"]
        }
        let started = try bundle.runtime(bin, ["run", "-d", bundle.id], timeout: 15)
        try #require(started.succeeded, "\(started)")
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let console = try ConsoleSocket()
        defer { console.close() }
        let exec = try startCommand(bin, ["--root", bundle.stateRoot, "exec", "-d", "--tty", "--console-socket", console.path,
                                          "--user", "1000:1000", bundle.id, "sh", "-c", "echo owner=$(stat -c %u:%g $(tty)); sleep 1"],
                                    workingDirectory: bundle.path)
        var output = ""
        do {
            let master = try console.receiveMaster(timeout: 5)
            defer { close(master) }
            output = readTerminal(master, timeout: 5) { false }
        } catch {
            Issue.record("\(error)")
        }
        let execResult = exec.finish(timeout: 5)
        #expect(execResult.succeeded, "\(execResult)")
        #expect(output.contains("owner=1000:5"), "terminal showed \(output.debugDescription)")
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    // MARK: bind sources container root cannot reach

    @Test("a bind source under a 0700 host directory, mode 000, in a user namespace; then exec", arguments: RuntimeUnderTest.all)
    func unreachableBindSource(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let host = try TempDir(prefix: "veil-unreachable")  // 0700, host root's
        defer { host.remove() }
        try FileManager.default.createDirectory(atPath: host.file("secret"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o000])
        for ownUserNamespace in [true, false] {
            let bundle = try TestBundle(["sleep", "1000"])
            defer { bundle.remove() }
            try FileManager.default.createDirectory(atPath: bundle.rootfs + "/mnt/secret", withIntermediateDirectories: true)
            if ownUserNamespace {
                // The mapped root must reach the rootfs (mkdtemp made the bundle 0700).
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bundle.path)
                try bundle.setNamespace("user")
                try bundle.editLinux { linux in
                    linux["uidMappings"] = [["containerID": 0, "hostID": 200000, "size": 65536]]
                    linux["gidMappings"] = [["containerID": 0, "hostID": 200000, "size": 65536]]
                }
            }
            try bundle.addMounts([["destination": "/mnt/secret", "type": "bind", "source": host.file("secret"), "options": ["rbind"]]])
            let run = try bundle.runtime(bin, ["run", "-d", bundle.id], timeout: 15)
            #expect(run.succeeded, "own user namespace \(ownUserNamespace): \(run)")
            guard run.succeeded else { continue }
            let exec = try bundle.runtime(bin, ["exec", bundle.id, "stat", "-c", "%a %u", "/mnt/secret"])
            #expect(exec.succeeded, "\(exec)")
            // Host root's directory: unmapped in a config's own user namespace; the sandbox id-maps it to its root.
            let owner = ownUserNamespace ? "65534" : "0"
            #expect(outputLines(exec.stdout) == ["0 \(owner)"], "own user namespace \(ownUserNamespace): \(exec)")
            let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
            #expect(delete.succeeded, "\(delete)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
    }

    // MARK: --no-pivot

    // runc's own check (tests/integration/no_pivot.bats): with --no-pivot the host's root stays
    // under the container's, and a whole proc there would let a nested user namespace mount a bare one.
    @Test("run --no-pivot: no bare /proc for a nested user namespace, masked paths still masked", arguments: RuntimeUnderTest.all)
    func noPivotProc(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["unshare", "-mrpf", "sh", "-euxc", "mount -t proc none /proc && echo h > /proc/sysrq-trigger"])
        defer { bundle.remove() }
        try bundle.editProcess { process in
            var capabilities = process["capabilities"] as? [String: Any] ?? [:]
            for set in ["bounding", "permitted"] {
                capabilities[set] = ((capabilities[set] as? [String]) ?? []) + ["CAP_SETFCAP"]
            }
            process["capabilities"] = capabilities
        }
        let nested = try bundle.run(bin, extra: ["--no-pivot"])
        #expect(!nested.succeeded, "\(nested)")
        if runtime.name == "veil" {
            // The sandbox makes no nested user namespaces at all (README: deliberate differences).
            #expect(nested.stderr.contains("unshare") && nested.stderr.contains("Operation not permitted"), "\(nested)")
        } else {
            #expect(nested.stderr.contains("mount: permission denied"), "\(nested)")
        }
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        try bundle.editProcess { process in
            process["args"] = ["sh", "-c", "cat /proc/self/mountinfo; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-read-only"]
        }
        let masked = try bundle.run(bin, extra: ["--no-pivot"])
        #expect(masked.succeeded, "\(masked)")
        #expect(mountOptions(masked.stdout, mountPoint: "/proc/sys").first == "ro", "\(masked)")
        #expect(mountinfoLine(masked.stdout, mountPoint: "/proc/keys") != nil, "/proc/keys must be masked: \(masked)")
        #expect(outputLines(masked.stdout).contains("sys-read-only"), "\(masked)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }
}

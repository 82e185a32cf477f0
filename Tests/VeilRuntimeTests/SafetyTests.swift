// Safety that holds by construction: no host descriptor reaches the container
// (CVE-2024-21626), the runtime binary cannot be written through /proc (CVE-2019-5736),
// and many cycles leave nothing behind.

import Foundation
import Testing

@Suite("safety")
struct SafetyTests {
    @Test("only stdio and --preserve-fds reach the container")
    func preservedFds() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["sh", "-c", "ls -l /proc/self/fd/ | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)/\\1 \\2/p'; cat <&3"])
        defer { bundle.remove() }
        let extra = bundle.path + "/extra"
        try "passed-through\n".write(toFile: extra, atomically: true, encoding: .utf8)
        // fd 3 of the shell is the extra file; veil run --preserve-fds 1 must pass exactly it.
        let result = try runCommand("/bin/sh", ["-c", "exec 3<\(extra) 4</etc/hostname; exec \"$0\" --root \(bundle.stateRoot) run --preserve-fds 1 \(bundle.id)", bin], workingDirectory: bundle.path)
        #expect(result.succeeded, "\(result)")
        #expect(result.stdout.contains("passed-through"))
        let fds = result.stdout.split(separator: "\n").compactMap { line -> (Int, String)? in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let n = Int(parts[0]) else { return nil }
            return (n, String(parts[1]))
        }
        let unexpected = fds.filter { $0.0 > 3 && !$0.1.hasSuffix("/fd") }
        #expect(unexpected.isEmpty, "fds beyond stdio and the preserved one: \(unexpected)")
        #expect(!result.stdout.contains("/etc/hostname"), "fd 4 must not be passed")
    }

    @Test("the runtime binary cannot be written from the container")
    func runtimeBinaryReadOnly() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        #expect(try bundle.runtime(bin, ["create", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let pid = (try bundle.state(bin)?["pid"] as? Int) ?? 0
        // While created, the container's PID 1 is veil itself: its /proc/PID/exe must not open for writing.
        let exe = "/proc/\(pid)/exe"
        let fd = open(exe, O_WRONLY)
        let code = errno
        if fd >= 0 { close(fd) }
        #expect(fd < 0, "opened \(exe) for writing")
        #expect(code == EROFS || code == ETXTBSY, "got \(String(cString: strerror(code)))")
        // ETXTBSY only lasts while the binary runs; the read-only bind mount is what stops a
        // write after the runtime has exited. The magic link must lead to a read-only mount.
        var fs = statvfs()
        #expect(statvfs(exe, &fs) == 0)
        #expect(fs.f_flag & UInt(ST_RDONLY) != 0, "\(exe) is not on a read-only mount")
        // Inside the container, through the same magic link.
        let inside = try runCommand("nsenter", ["-t", String(pid), "-m", "-p", "sh", "-c", "echo x >> /proc/1/exe"])
        #expect(!inside.succeeded, "\(inside)")
        let original = try runCommand("/bin/sh", ["-c", "test -w \(bin) && echo writable"])
        #expect(original.stdout.contains("writable"), "the host copy stays writable for the host")
    }

    @Test("200 create/start/kill/delete cycles leave nothing behind")
    func manyCycles() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        // Other suites (containerd's snapshots) mount in parallel: count only what is ours.
        let mountsBefore = mountPoints(under: bundle.path).count + mountPoints(under: bundle.stateRoot).count
        let base = bundle.id
        for round in 0..<200 {
            let id = "\(base)-\(round)"
            try bundle.edit { config in
                var linux = config["linux"] as? [String: Any] ?? [:]
                linux["cgroupsPath"] = "/veil-test/\(id)"
                config["linux"] = linux
            }
            let create = try bundle.runtime(bin, ["create", id])
            guard create.succeeded else { Issue.record("round \(round): \(create)"); break }
            #expect(try bundle.runtime(bin, ["start", id]).succeeded)
            #expect(try bundle.runtime(bin, ["kill", id, "KILL"]).succeeded)
            _ = waitUntil(timeout: 5) { (try? bundle.runtime(bin, ["state", id]).stdout.contains("stopped")) == true }
            let delete = try bundle.runtime(bin, ["delete", id])
            guard delete.succeeded else { Issue.record("round \(round): \(delete)"); break }
        }
        let remaining = (try? FileManager.default.contentsOfDirectory(atPath: bundle.stateRoot)) ?? []
        #expect(remaining.isEmpty, "state left: \(remaining)")
        let cgroups = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory/veil-test"))?.filter { $0.hasPrefix(base) } ?? []
        #expect(cgroups.isEmpty, "cgroups left: \(cgroups)")
        let mountsAfter = mountPoints(under: bundle.path).count + mountPoints(under: bundle.stateRoot).count
        #expect(mountsAfter == mountsBefore, "mount count changed \(mountsBefore) -> \(mountsAfter)")
        let sleepers = try runCommand("pgrep", ["-f", "^sleep 1000$"]).stdout.split(separator: "\n").filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "").contains(base)
        }
        #expect(sleepers.isEmpty, "processes left: \(sleepers)")
        // No process on the machine may still hold a descriptor into the bundle or the state.
        #expect(openDescriptors(under: [bundle.path, bundle.stateRoot]).isEmpty, "\(openDescriptors(under: [bundle.path, bundle.stateRoot]))")
    }
}

/// "PID fd -> target" for every open descriptor whose target lies under one of `paths`.
func openDescriptors(under paths: [String]) -> [String] {
    var found: [String] = []
    let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { Int($0) != nil }
    for pid in pids {
        let fdDir = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd) else { continue }
            if paths.contains(where: { target.hasPrefix($0 + "/") || target == $0 }) { found.append("\(pid) \(fd) -> \(target)") }
        }
    }
    return found
}

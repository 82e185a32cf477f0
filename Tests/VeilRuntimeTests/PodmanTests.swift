// podman 4.3 (through conmon) driving the runtime: `podman --runtime PATH`. Every case runs
// against runc (the reference) and veil. Each test has its own isolated podman (PodmanRig in
// SupportPodman.swift); the suite is serialized (conmon, podman and the runtime on two cores).
//
// What conmon/podman ask of the runtime: create --bundle --pid-file [--console-socket] ID, start,
// state (often), kill ID SIGNAL, delete [--force], exec --process --detach --pid-file.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("podman drives the runtime", .serialized)
struct PodmanTests {
    @Test("podman run --rm echo hi prints hi and leaves no container", arguments: RuntimeUnderTest.all)
    func echo(runtime: RuntimeUnderTest) throws {
        let rig = try PodmanRig(runtime: try runtime.binary())
        defer { rig.stop() }

        let result = try rig.podman(["run", "--rm"] + rig.runFlags + [rig.image, "echo", "hi"])
        #expect(result.succeeded, "\(result)")
        #expect(result.stdout == "hi\n", "\(result)")
        let left = try rig.podman(["ps", "-aq"])
        #expect(left.succeeded && left.stdout.isEmpty, "\(left)")
    }

    @Test("podman run's exit status is the container's", arguments: RuntimeUnderTest.all)
    func exitStatus(runtime: RuntimeUnderTest) throws {
        let rig = try PodmanRig(runtime: try runtime.binary())
        defer { rig.stop() }

        let result = try rig.podman(["run", "--rm"] + rig.runFlags + [rig.image, "sh", "-c", "exit 5"])
        #expect(!result.timedOut, "\(result)")
        #expect(result.status == 5, "\(result)")
    }

    @Test("detached container: exec, stop -t 2 (SIGKILL after the grace), rm leaves nothing",
          arguments: RuntimeUnderTest.all)
    func detachedLifecycle(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try PodmanRig(runtime: binary)
        defer { rig.stop() }

        // A bare sleep as PID 1 ignores SIGTERM, so stop must fall back to SIGKILL after 2 s.
        let started = try rig.podman(["run", "-d"] + rig.runFlags + [rig.image, "sleep", "1000"])
        try #require(started.succeeded, "\(started)")
        let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(id.count == 64, "no container id from podman run -d:\n\(started)")

        let status = try rig.podman(["inspect", "--format", "{{.State.Status}} {{.State.Pid}}", id])
        let fields = status.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.first == "running", "\(status)")
        let pid = fields.count > 1 ? Int32(fields[1]) ?? 0 : 0
        #expect(pid > 0 && processIsAlive(pid), "\(status)")
        #expect(!rig.containerCgroups(id: id).isEmpty, "no cgroup \(rig.cgroupParent)/libpod-\(id)")

        let exec = try rig.podman(["exec", id, "sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; echo"])
        #expect(exec.succeeded, "\(exec)")
        #expect(exec.stdout == "in-exec\nsleep 1000 \n", "\(exec)")

        let execStatus = try rig.podman(["exec", id, "sh", "-c", "exit 7"])
        #expect(execStatus.status == 7, "\(execStatus)")

        let begin = Date()
        let stopped = try rig.podman(["stop", "-t", "2", id], timeout: 30)
        let took = Date().timeIntervalSince(begin)
        #expect(stopped.succeeded, "\(stopped)")
        #expect(took < 10, "podman stop -t 2 took \(took) s")
        let after = try rig.podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", id])
        #expect(after.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "exited 137", "\(after)")
        #expect(!processIsAlive(pid))

        let removed = try rig.podman(["rm", id])
        #expect(removed.succeeded, "\(removed)")
        let left = try rig.podman(["ps", "-aq"])
        #expect(left.succeeded && left.stdout.isEmpty, "\(left)")
        // The runtime's delete removed the container's cgroup and its own state.
        #expect(waitUntil(timeout: 5) { rig.containerCgroups(id: id).isEmpty },
                "cgroups left: \(rig.containerCgroups(id: id))")
        let state = try runCommand(binary, ["state", id], timeout: 10)
        #expect(!state.succeeded, "the runtime still knows \(id):\n\(state)")
    }

    @Test("podman run -it gives an interactive shell on a terminal", arguments: RuntimeUnderTest.all)
    func interactiveTerminal(runtime: RuntimeUnderTest) throws {
        let rig = try PodmanRig(runtime: try runtime.binary())
        defer { rig.stop() }

        // The values follow a marker the terminal's echo of the typed line cannot contain.
        let result = try runInPseudoTerminal(
            "env", rig.arguments(["run", "--rm", "-it"] + rig.runFlags + [rig.image, "sh"]),
            rows: 40, columns: 100,
            steps: [
                PTYStep(waitFor: "# ", send: #"echo "ANS=$((6*7)) TTY=$(tty)""# + "\n"),
                PTYStep(waitFor: "ANS=42", send: "exit\n"),
            ],
            timeout: 30)
        #expect(!result.timedOut, "\(result)")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.range(of: #"ANS=42 TTY=/dev/pts/[0-9]+"#, options: .regularExpression) != nil,
                "\(result)")
        let left = try rig.podman(["ps", "-aq"])
        #expect(left.succeeded && left.stdout.isEmpty, "\(left)")
    }
}

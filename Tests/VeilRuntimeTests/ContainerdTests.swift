// containerd's runc shim (containerd-shim-runc-v2) driving a runc-compatible binary, through
// `ctr run --runc-binary`. Every test runs against runc (the reference: it proves the test) and
// against veil when built, or when VEIL_REQUIRED=1 (then a missing veil fails the test).
//
// Each test starts its own containerd (about half a second) so a broken runtime cannot leave state
// that breaks the next test; the suite is serialized because containerd is heavy for two cores.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("containerd drives the runtime", .serialized)
struct ContainerdTests {
    @Test("ctr run --rm echo hi prints exactly hi", arguments: RuntimeUnderTest.all)
    func echo(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }

        let result = try repeatingOnLostOutput(truncated(of: "hi\n")) { attempt in
            try rig.run(runtime: binary, id: "t1-\(attempt)", ["echo", "hi"])
        }
        #expect(result.succeeded, "\(result)\n\(rig.log)")
        #expect(result.stdout == "hi\n", "\(result)")
    }

    @Test("detached task: RUNNING, SIGTERM, STOPPED, rm leaves no process, shim or cgroup",
          arguments: RuntimeUnderTest.all)
    func detachedLifecycle(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }
        let id = "t2"

        // A bare `sleep 1000` as PID 1 would ignore SIGTERM (the kernel drops signals that PID 1 of
        // a namespace has no handler for), so the shell traps it; the background sleep then proves
        // that the container's other processes die with it.
        let started = try rig.run(runtime: binary, id: id, flags: ["-d"],
                                  ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"])
        try #require(started.succeeded, "\(started)\n\(rig.log)")

        let task = try #require(try rig.task(id), "no task \(id) after ctr run -d")
        #expect(task.status == "RUNNING")
        // Both the shell and the sleep must be in the container's cgroup before we signal.
        var pids = Set<Int32>()
        let bothStarted = waitUntil(timeout: 5) {
            pids = rig.cgroupProcesses(id: id)
            return pids.count >= 2
        }
        #expect(bothStarted, "cgroup of \(id) holds \(pids), expected shell and sleep")
        #expect(pids.contains(task.pid), "task pid \(task.pid) not in its cgroup \(pids)")
        #expect(!rig.cgroupDirectories(id: id).isEmpty)

        let killed = try rig.ctr(["task", "kill", id])
        #expect(killed.succeeded, "\(killed)")
        let stoppedInTime = try rig.waitForTask(id, status: "STOPPED", timeout: 10)
        let afterKill = try rig.task(id)
        #expect(stoppedInTime, "task \(id) did not stop after SIGTERM: \(String(describing: afterKill))")

        let removedTask = try rig.ctr(["task", "rm", id])
        #expect(removedTask.succeeded, "\(removedTask)")
        let removedContainer = try rig.ctr(["container", "rm", id])
        #expect(removedContainer.succeeded, "\(removedContainer)")
        #expect(try rig.task(id) == nil)

        let allGone = waitUntil(timeout: 5) {
            (pids + [task.pid]).allSatisfy { !processIsAlive($0) }
                && rig.cgroupDirectories(id: id).isEmpty
                && rig.shimProcesses(id: id).isEmpty
        }
        #expect(allGone, """
            left behind: processes \((pids + [task.pid]).filter(processIsAlive)), \
            cgroups \(rig.cgroupDirectories(id: id)), shims \(rig.shimProcesses(id: id))
            """)
    }

    @Test("ctr run -t gives the container a working terminal", arguments: RuntimeUnderTest.all)
    func terminal(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }

        // An interactive shell: wait for its prompt, then type. Each checked value is printed after
        // a marker that the terminal's echo of the typed line cannot contain ($(...) is expanded
        // only in the output). ctr sets the window size right after the task starts, which may race
        // the shell's first `stty size`, so the first line waits for it (up to 2 s).
        let waitForSize = #"i=0; while [ "$(stty size)" != "50 132" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done"#
        let report = #"echo "TTY=$(tty) SIZE=$(stty size) ANS=$((6*7))"; exit 5"#
        let result = try runInPseudoTerminal(
            rig.ctrPath,
            rig.runArguments(runtime: binary, id: "t3", flags: ["--rm", "-t"], ["sh"]),
            rows: 50, columns: 132,
            steps: [PTYStep(waitFor: "# ", send: waitForSize + "\n" + report + "\n")],
            timeout: 20)
        #expect(!result.timedOut, "\(result)\n\(rig.log)")
        // The shell's exit status comes back through the shim and ctr, as without a terminal.
        #expect(result.status == 5, "\(result)")
        let output = result.stdout
        #expect(output.range(of: #"TTY=/dev/pts/[0-9]+ SIZE=50 132 ANS=42"#, options: .regularExpression) != nil,
                "\(result)")
    }

    @Test("ctr run's exit status is the task's", arguments: RuntimeUnderTest.all)
    func taskExitStatus(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }

        // Measured with ctr 1.6.20 and runc: ctr exits with the task's status.
        let result = try rig.run(runtime: binary, id: "t4", ["sh", "-c", "exit 3"])
        #expect(!result.timedOut, "\(result)")
        #expect(result.status == 3, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
    }

    @Test("the container's shell is PID 1 in new PID and UTS namespaces", arguments: RuntimeUnderTest.all)
    func pidOneAndNamespaces(runtime: RuntimeUnderTest) throws {
        let binary = try runtime.binary()
        let rig = try ContainerdRig()
        defer { rig.stop() }

        let result = try rig.run(runtime: binary, id: "t5", [
            "sh", "-c", "echo $$; hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/uts",
        ])
        try #require(result.succeeded, "\(result)\n\(rig.log)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 4, "\(result)")
        #expect(lines[0] == "1", "\(result)")
        // ctr leaves the spec's hostname empty, so (as with runc) the new UTS namespace keeps the
        // host's name; a runtime that invents one would differ here.
        #expect(lines[1] == hostName(), "\(result)")
        let hostPID = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        let hostUTS = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/uts")
        #expect(lines[2].hasPrefix("pid:[") && lines[2] != hostPID, "container pid ns \(lines[2]), host \(hostPID)")
        #expect(lines[3].hasPrefix("uts:[") && lines[3] != hostUTS, "container uts ns \(lines[3]), host \(hostUTS)")
    }
}

private func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

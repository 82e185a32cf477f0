import CVeilLinux
import Glibc
import Testing
import VeilLinux

@Suite("ForeignDescriptors")
struct ForeignDescriptorsTests {
    /// The restored-sandbox case: a stopped process holds its own seccomp listener. We take a copy,
    /// close its own under ptrace, and it stays stopped; continued, it finds the descriptor gone
    /// and its notified uname(2) is answered through our copy.
    @Test func takesAStoppedProcesssListenerAndClosesItThere() throws {
        let file = String(#filePath)
        let root = String(file[..<(file.firstRange(of: "/Tests/")?.lowerBound ?? file.endIndex)])
        let dir = try makeTempDir("listener")
        defer { removeTree(dir) }
        let holder = dir + "/holder", output = dir + "/out"
        let built = runShell("bash '\(root)/scripts/build-static-c.sh' '\(root)/tests/security/listener-holder.c' '\(holder)' >/dev/null 2>&1")
        try #require(built == 0, "gcc could not build tests/security/listener-holder.c")
        let pid = try spawnProcess(["/bin/sh", "-c", "exec '\(holder)' > '\(output)'"])
        defer { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, WNOHANG) }
        try #require(eventually(timeoutMs: 5000) { ProcessInfo.state(pid) == "T" }, "the holder never stopped")
        let number = try #require(Int32((try FS.readString(output)).split(separator: "\n").first ?? ""))
        #expect(ForeignDescriptors.find("anon_inode:seccomp notify", in: pid) == [number])

        let listener = try ForeignDescriptors.take(number, from: pid)
        defer { listener.close() }
        try ForeignDescriptors.close(number, in: pid)
        #expect(ForeignDescriptors.find("anon_inode:seccomp notify", in: pid).isEmpty)
        // Detached with SIGSTOP, it is back in group-stop as soon as the signal is delivered (no code of its own runs).
        #expect(eventually(timeoutMs: 2000) { ProcessInfo.state(pid) == "T" }, "the holder must stay stopped")

        try Signals.kill(pid, SIGCONT)
        var ready = pollfd(fd: listener.raw, events: Int16(POLLIN), revents: 0)
        try #require(poll(&ready, 1, 5000) == 1, "no notification of the holder's uname through the copy")
        var notification = veil_notification()
        try #require(veil_notify_receive(listener.raw, &notification) == 0)
        #expect(Int(notification.nr) == Int(VEIL_NR_UNAME))
        #expect(veil_notify_respond(listener.raw, notification.id, 0, EPERM) == 0)
        #expect(try Wait.waitpid(pid) == 0)
        #expect(try FS.readString(output) == "\(number)\nclosed\nuname=EPERM\n")
    }

    @Test func closingInAProcessThatIsGoneNamesIt() throws {
        let pid = try spawnProcess(["/bin/true"])
        _ = try Wait.waitpid(pid)
        #expect(throws: LinuxError.self) { try ForeignDescriptors.close(3, in: pid) }
        #expect(throws: LinuxError.self) { try ForeignDescriptors.take(3, from: pid) }
    }
}

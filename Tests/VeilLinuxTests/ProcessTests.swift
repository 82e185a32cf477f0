import Glibc
import Testing
@testable import VeilLinux

@Suite("ProcessInfo")
struct ProcessInfoTests {
    @Test func selfIsAliveWithStableStartTime() throws {
        let pid = getpid()
        let start = try #require(ProcessInfo.startTime(pid))
        #expect(start > 0)
        #expect(ProcessInfo.startTime(pid) == start)
        #expect(ProcessInfo.isAlive(pid))
        #expect(ProcessInfo.isAlive(pid, startTime: start))
        #expect(!ProcessInfo.isAlive(pid, startTime: start + 1))
        // The main thread may be sleeping while tests run on others: any live state will do.
        let state = try #require(ProcessInfo.state(pid))
        #expect("RSD".contains(state))
    }

    @Test func nonsensePidsAreNotAlive() {
        #expect(!ProcessInfo.isAlive(0))
        #expect(!ProcessInfo.isAlive(-1))
        #expect(!ProcessInfo.isAlive(Int32.max))
        #expect(ProcessInfo.startTime(Int32.max) == nil)
        #expect(ProcessInfo.state(Int32.max) == nil)
    }

    @Test func zombieAndReapedChildAreNotAlive() throws {
        let pid = try spawnProcess(["/bin/sleep", "10"])
        let start = try #require(ProcessInfo.startTime(pid))
        #expect(ProcessInfo.isAlive(pid, startTime: start))
        try Signals.kill(pid, SIGKILL)
        #expect(eventually { ProcessInfo.state(pid) == "Z" })
        #expect(!ProcessInfo.isAlive(pid))
        #expect(try Wait.waitpid(pid) == 128 + SIGKILL)
        #expect(!ProcessInfo.isAlive(pid, startTime: start))
    }

    @Test func commandNameWithSpacesAndParentheses() throws {
        let dir = try makeTempDir("proc")
        defer { removeTree(dir) }
        let odd = dir + "/a) b (c"
        #expect(symlink("/bin/sleep", odd) == 0)
        let pid = try spawnProcess([odd, "10"])
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        #expect(eventually { (try? FS.readString("/proc/\(pid)/comm")) == "a) b (c\n" })
        let fields = try #require(ProcessInfo.statFields(pid))
        #expect(fields.count > 19)
        #expect(ProcessInfo.startTime(pid) != nil)
        #expect(eventually { ProcessInfo.state(pid) == "S" })
        #expect(ProcessInfo.isAlive(pid))
    }

    @Test func killSignalZeroAndMissingProcess() throws {
        try Signals.kill(getpid(), 0)
        do {
            try Signals.kill(Int32.max, 0)
            Issue.record("kill of a missing pid succeeded")
        } catch {
            #expect(error.errno == ESRCH)
            #expect(error.subject == "\(Int32.max)")
        }
    }
}

@Suite("PidFD and Wait")
struct PidFDTests {
    @Test func signalAndWaitExit() throws {
        let pid = try spawnProcess(["/bin/sleep", "10"])
        var reaped = false
        defer {
            if !reaped {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
            }
        }
        let pidfd = try PidFD(pid: pid)
        #expect(pidfd.pid == pid)
        #expect(!pidfd.waitExit(timeoutMs: 0))
        try pidfd.signal(SIGKILL)
        #expect(pidfd.waitExit(timeoutMs: 2000))
        #expect(try Wait.waitpid(pid) == 137)
        reaped = true
    }

    @Test func pidfdOfMissingProcessThrows() {
        #expect(throws: LinuxError.self) { _ = try PidFD(pid: Int32.max) }
    }

    @Test(arguments: [
        (Int32(0), Int32(0)),
        (Int32(1) << 8, Int32(1)),
        (Int32(42) << 8, Int32(42)),
        (Int32(255) << 8, Int32(255)),
        (SIGKILL, Int32(137)),
        (SIGTERM, Int32(143)),
        (SIGSEGV | 0x80, Int32(139)),  // with the core-dump bit
    ])
    func statusCode(status: Int32, expected: Int32) {
        #expect(Wait.statusCode(status) == expected)
    }

    @Test func waitpidReportsRealExitCode() throws {
        let pid = try spawnProcess(["/bin/sh", "-c", "exit 42"])
        #expect(try Wait.waitpid(pid) == 42)
        let killed = try spawnProcess(["/bin/sh", "-c", "kill -TERM $$"])
        let code = try Wait.waitpid(killed)
        #expect(code == 128 + SIGTERM)
    }
}

import FoundationEssentials
import Glibc
import Testing
import VeilCgroups
import VeilExchange
import VeilLinux
import VeilSpec
@testable import VeilContainer

private func record(id: String, pid: Int32, startTime: UInt64?, cgroup: Cgroup? = nil) -> ContainerRecord {
    ContainerRecord(id: id, ociVersion: "1.1.0", pid: pid, pidStartTime: startTime, bundle: "/bundle",
                    rootfs: "/bundle/rootfs", created: "2024-01-02T03:04:05.000000006Z", owner: "",
                    annotations: ["a": "b"], cgroup: cgroup, hooks: nil)
}

@Suite("StateStore")
struct StateStoreTests {
    @Test(arguments: ["a.b_c-d+1", "abc", "A", "0", "...", "a..b", "_", "+-.", String(repeating: "x", count: 1024)])
    func acceptsRuncIDs(id: String) throws {
        try StateStore.validate(id: id)
    }

    @Test(arguments: ["", ".", "..", "a/b", "/a", "a b", "a\nb", "a\0b", "é", "a:b", "a*", "$x", String(repeating: "x", count: 1025)])
    func rejectsBadIDs(id: String) {
        do {
            try StateStore.validate(id: id)
            Issue.record("\(id.debugDescription) was accepted")
        } catch {
            guard case .invalidID(let reported) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reported == id)
        }
    }

    @Test func statusOfADeadPidIsStopped() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        let pid = try spawnProcess(["/bin/true"])
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        try FS.mkdirAll(store.directory("dead"))
        #expect(mkfifo(store.fifoPath("dead"), 0o622) == 0)
        let dead = record(id: "dead", pid: pid, startTime: 1)
        #expect(store.status(of: dead) == .stopped)
        let state = store.ociState(of: dead)
        #expect(state.status == .stopped)
        #expect(state.pid == 0)
    }

    @Test func statusOfAReusedPidIsStopped() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        let start = try #require(ProcessInfo.startTime(getpid()))
        #expect(store.status(of: record(id: "c", pid: getpid(), startTime: start + 1)) == .stopped)
    }

    @Test func createdWhileTheFifoExistsThenRunning() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        let start = try #require(ProcessInfo.startTime(getpid()))
        let mine = record(id: "c1", pid: getpid(), startTime: start)
        try FS.mkdirAll(store.directory("c1"))
        #expect(mkfifo(store.fifoPath("c1"), 0o622) == 0)
        #expect(store.status(of: mine) == .created)
        let state = store.ociState(of: mine)
        #expect(state.status == .created)
        #expect(state.pid == getpid())
        #expect(state.annotations == ["a": "b"])
        #expect(unlink(store.fifoPath("c1")) == 0)
        #expect(store.status(of: mine) == .running)
        #expect(store.ociState(of: mine, status: .creating).status == .creating)
        // Without a recorded start time the pid alone decides.
        #expect(store.status(of: record(id: "c1", pid: getpid(), startTime: nil)) == .running)
    }

    @Test func pausedWhenTheV1FreezerIsFrozen() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        let freezer = root + "/freezer"
        try FS.mkdirAll(freezer)
        try FS.writeString(freezer + "/freezer.state", "FROZEN\n")
        let start = try #require(ProcessInfo.startTime(getpid()))
        let cgroup = Cgroup(paths: ["freezer": freezer], created: [], unifiedOnly: false)
        #expect(store.status(of: record(id: "p", pid: getpid(), startTime: start, cgroup: cgroup)) == .paused)
        try FS.writeString(freezer + "/freezer.state", "THAWED\n")
        #expect(store.status(of: record(id: "p", pid: getpid(), startTime: start, cgroup: cgroup)) == .running)
    }

    @Test func saveLoadAndList() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        try FS.mkdirAll(store.directory("one"))
        try FS.mkdirAll(store.directory("half-made"))
        let saved = record(id: "one", pid: 1234, startTime: 99)
        try store.save(saved)
        let loaded = try store.load("one")
        #expect(loaded.id == "one")
        #expect(loaded.pid == 1234)
        #expect(loaded.pidStartTime == 99)
        #expect(loaded.created == saved.created)
        #expect(loaded.annotations == ["a": "b"])
        #expect(store.ids() == ["one"])
        var st = stat()
        #expect(stat(store.statePath("one"), &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(FS.listDirectory(store.directory("one")) == ["state.json"])
    }

    @Test("state.json as the shim reads it (VeilExchange's StateRecordSummary): id, pid, bundle, isolation")
    func recordDecodesAsTheShimsSummary() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        for isolation in [nil, IsolationLevel.native, .sandbox] {
            try FS.mkdirAll(store.directory("c"))
            var saved = record(id: "c", pid: 4321, startTime: 7)
            saved.isolation = isolation
            try store.save(saved)
            let summary = try JSONDecoder().decode(StateRecordSummary.self, from: Data(try FS.readFile(store.statePath("c"))))
            #expect(summary == StateRecordSummary(id: "c", pid: 4321, bundle: "/bundle", isolation: isolation?.rawValue))
            #expect(summary.isolationLevel == (isolation ?? .native).rawValue)
        }
    }

    @Test func loadErrors() throws {
        let root = try makeTempDir("state")
        defer { removeTree(root) }
        let store = StateStore(root: root)
        do {
            _ = try store.load("missing")
            Issue.record("load of a missing container succeeded")
        } catch {
            guard case .notFound(let id) = error else { Issue.record("unexpected \(error)"); return }
            #expect(id == "missing")
        }
        do {
            _ = try store.load("../etc")
            Issue.record("load of an invalid id succeeded")
        } catch {
            guard case .invalidID = error else { Issue.record("unexpected \(error)"); return }
        }
        try FS.mkdirAll(store.directory("bad"))
        try FS.writeString(store.statePath("bad"), "{not json")
        do {
            _ = try store.load("bad")
            Issue.record("load of a corrupt state succeeded")
        } catch {
            #expect("\(error)".contains("corrupt"))
        }
    }

    @Test func ociStateEncodesLikeRunc() throws {
        let store = StateStore(root: "/tmp/veil-unit-unused")
        let state = store.ociState(of: record(id: "x", pid: 5, startTime: nil), status: .running)
        let bytes = JSON.encode(state)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"status\":\"running\""))
        #expect(text.contains("\"bundle\":\"/bundle\""))  // slashes unescaped
        let decoded = try JSONDecoder().decode(OCIState.self, from: Data(bytes))
        #expect(decoded.id == "x")
        #expect(decoded.pid == 5)
        #expect(decoded.status == .running)
    }
}

@Suite("Clock")
struct ClockTests {
    @Test func rfc3339NowFormat() throws {
        let now = Clock.rfc3339Now()
        let pattern = try Regex(#"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z$"#)
        #expect(now.wholeMatch(of: pattern) != nil, "\(now)")
        // The year is this year (UTC).
        var seconds = time(nil)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        #expect(now.hasPrefix(String(parts.tm_year + 1900)))
    }

    @Test func rfc3339OfKnownInstants() {
        #expect(Clock.rfc3339(timespec(tv_sec: 0, tv_nsec: 0)) == "1970-01-01T00:00:00.000000000Z")
        #expect(Clock.rfc3339(timespec(tv_sec: 1_700_000_000, tv_nsec: 7)) == "2023-11-14T22:13:20.000000007Z")
        #expect(Clock.rfc3339(timespec(tv_sec: 4_102_444_799, tv_nsec: 999_999_999)) == "2099-12-31T23:59:59.999999999Z")
    }

    /// Later instants sort later as text (what `veil list` and the state's created rely on), across
    /// the places where an unpadded field would break the order.
    @Test(arguments: [
        // (seconds, nanoseconds) of the earlier instant, then of the later one.
        (1, 9, 1, 10),
        (1, 999_999_999, 2, 0),
        (59, 0, 60, 0),
        (86_399, 5, 86_400, 4),
        (946_684_799, 0, 946_684_800, 0),
    ])
    func laterInstantsSortLater(instants: (Int, Int, Int, Int)) {
        let a = Clock.rfc3339(timespec(tv_sec: instants.0, tv_nsec: instants.1))
        let b = Clock.rfc3339(timespec(tv_sec: instants.2, tv_nsec: instants.3))
        #expect(a < b, "\(a) does not sort before \(b)")
        #expect(a.count == b.count)
    }

    @Test func monotonicAdvances() {
        let a = Clock.monotonicMs()
        usleep(20_000)
        let b = Clock.monotonicMs()
        #expect(b - a >= 19)
    }
}

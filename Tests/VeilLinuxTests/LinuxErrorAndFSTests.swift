import Glibc
import Testing
@testable import VeilLinux

@Suite("LinuxError and sys")
struct LinuxErrorTests {
    @Test func descriptionNamesCallSubjectAndReason() {
        let error = LinuxError("open", "/no/such/file", errno: ENOENT)
        #expect(error.description == "open /no/such/file: No such file or directory")
        #expect(error.call == "open")
        #expect(error.subject == "/no/such/file")
        #expect(error.errno == ENOENT)
    }

    @Test func descriptionWithoutSubject() {
        #expect(LinuxError("socketpair", errno: EMFILE).description == "socketpair: Too many open files")
    }

    @Test func sysThrowsWithErrnoOfTheFailingCall() {
        do {
            try sys("open", "/nonexistent/veil-unit") { open("/nonexistent/veil-unit", O_RDONLY) }
            Issue.record("open of a missing path succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.description.contains("open /nonexistent/veil-unit"))
        }
    }

    @Test func sysRetriesOnEINTR() throws {
        var calls = 0
        let result = try sys("fake") { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)
    }

    @Test func sysNegTranslatesNegativeErrno() {
        var calls = 0
        do {
            try sysNeg("helper", "thing") { () -> Int32 in
                calls += 1
                return calls == 1 ? -EINTR : -EACCES
            }
            Issue.record("sysNeg did not throw")
        } catch {
            #expect(calls == 2)
            #expect(error.errno == EACCES)
            #expect(error.description == "helper thing: Permission denied")
        }
    }
}

@Suite("FS helpers")
struct FSTests {
    @Test func writeAndReadRoundTrip() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/file"
        try FS.writeString(path, "hello\nworld")
        #expect(try FS.readString(path) == "hello\nworld")
        try FS.writeFile(path, [0, 1, 2, 255])
        #expect(try FS.readFile(path) == [0, 1, 2, 255])
        try FS.writeString(path, "more", flags: O_WRONLY | O_APPEND)
        #expect(try FS.readFile(path) == [0, 1, 2, 255] + Array("more".utf8))
        #expect(FS.exists(path))
        #expect(!FS.isDirectory(path))
        #expect(FS.isDirectory(dir))
    }

    @Test func readOfMissingFileThrowsENOENT() {
        do {
            _ = try FS.readFile("/tmp/veil-unit-definitely-missing/x")
            Issue.record("read succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.subject == "/tmp/veil-unit-definitely-missing/x")
        }
    }

    @Test func writeAtomicallyReplacesAndLeavesNoTempFile() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/state.json"
        try FS.writeAtomically(path, Array("first".utf8))
        try FS.writeAtomically(path, Array("second, longer".utf8), mode: 0o600)
        #expect(try FS.readString(path) == "second, longer")
        #expect(FS.listDirectory(dir) == ["state.json"])
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func writeAtomicallyFailureCleansUp() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        // The target is a non-empty directory: rename must fail and the temp file must go.
        let target = dir + "/target"
        try FS.mkdirAll(target + "/child")
        #expect(throws: LinuxError.self) { try FS.writeAtomically(target, Array("x".utf8)) }
        #expect(FS.listDirectory(dir) == ["target"])
    }

    @Test func mkdirAllCreatesNestedAndIsIdempotent() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let deep = dir + "/a/b//c/d/"
        try FS.mkdirAll(deep, mode: 0o700)
        #expect(FS.isDirectory(dir + "/a/b/c/d"))
        try FS.mkdirAll(deep)
        try FS.mkdirAll(dir + "/a/b")
        #expect(FS.listDirectory(dir + "/a/b") == ["c"])
    }

    @Test func mkdirAllFailsThroughAFile() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try FS.writeString(dir + "/file", "")
        do {
            try FS.mkdirAll(dir + "/file/sub")
            Issue.record("mkdirAll through a regular file succeeded")
        } catch {
            #expect(error.errno == ENOTDIR)
            #expect(error.subject == dir + "/file/sub")
        }
    }

    @Test func mkdirAllOnAnExistingFileFails() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try FS.writeString(dir + "/file", "")
        #expect(throws: LinuxError.self) { try FS.mkdirAll(dir + "/file") }
        #expect(!FS.isDirectory(dir + "/file"))
    }

    @Test func removeAllDoesNotFollowSymlinksOutOfTheTree() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let outside = dir + "/outside"
        try FS.mkdirAll(outside + "/keepdir")
        try FS.writeString(outside + "/keep", "precious")
        try FS.writeString(outside + "/keepdir/inner", "also precious")

        let tree = dir + "/tree"
        try FS.mkdirAll(tree + "/x/y")
        try FS.writeString(tree + "/x/y/file", "gone")
        try FS.writeString(tree + "/top", "gone")
        #expect(symlink(outside + "/keep", tree + "/x/link-to-file") == 0)
        #expect(symlink(outside + "/keepdir", tree + "/x/y/link-to-dir") == 0)
        #expect(symlink("/nonexistent", tree + "/dangling") == 0)
        mkfifo(tree + "/fifo", 0o600)

        try FS.removeAll(tree)
        #expect(!FS.exists(tree))
        #expect(try FS.readString(outside + "/keep") == "precious")
        #expect(try FS.readString(outside + "/keepdir/inner") == "also precious")
    }

    @Test func removeAllOfASymlinkRemovesOnlyTheLink() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try FS.mkdirAll(dir + "/real")
        try FS.writeString(dir + "/real/file", "kept")
        #expect(symlink(dir + "/real", dir + "/link") == 0)
        try FS.removeAll(dir + "/link")
        #expect(FS.listDirectory(dir) == ["real"])
        #expect(try FS.readString(dir + "/real/file") == "kept")
    }

    @Test func removeAllOfMissingPathIsFine() throws {
        try FS.removeAll("/tmp/veil-unit-missing-\(getpid())/nothing")
    }

    @Test func listDirectorySortsAndSkipsDots() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        for name in ["b", "a", ".hidden", "c d"] { try FS.writeString(dir + "/" + name, "") }
        #expect(FS.listDirectory(dir) == [".hidden", "a", "b", "c d"])
        #expect(FS.listDirectory(dir + "/missing") == [])
    }

    @Test func realPathResolvesSymlinks() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try FS.mkdirAll(dir + "/real/sub")
        #expect(symlink("real/sub", dir + "/link") == 0)
        #expect(FS.realPath(dir + "/link/../sub/.") == dir + "/real/sub")
        #expect(FS.realPath(dir + "/missing") == nil)
    }

    @Test func fileDescriptorReleaseAndClose() throws {
        let (r, w) = try makePipe()
        let raw = w.release()
        #expect(w.raw == -1)
        #expect(fdFlags(raw) != nil)  // still open: release gave up ownership only
        Glibc.close(raw)
        r.close()
        #expect(r.raw == -1)
        r.close()  // a second close is a no-op, not a close of whatever reused the number
    }

    @Test func openAddsCloexec() throws {
        let fd = try FileDescriptor.open("/dev/null", O_RDONLY)
        let flags = try #require(fdFlags(fd.raw))
        #expect(flags & Int(O_CLOEXEC) != 0)
    }

    @Test func mountPointsIncludeRootAndUnescape() {
        #expect(Mounts.mountPoints().contains("/"))
        #expect(Mounts.unescapeOctal("/mnt/a\\040b\\011c") == "/mnt/a b\tc")
        #expect(Mounts.unescapeOctal("/plain") == "/plain")
        #expect(Mounts.unescapeOctal("/trailing\\04") == "/trailing\\04")
    }
}

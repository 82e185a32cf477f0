import Glibc
import Testing
import VeilLinux
@testable import VeilContainer

/// A small rootfs with the symlinks the resolver has to deal with.
private func makeRoot() throws -> String {
    let root = try makeTempDir("root")
    try FS.mkdirAll(root + "/etc")
    try FS.mkdirAll(root + "/usr/lib")
    try FS.mkdirAll(root + "/usr/share")
    try FS.writeString(root + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    let links: [(String, String)] = [
        ("usr/lib", "/lib"),                   // relative
        ("/usr/lib", "/abs"),                  // absolute: restarts at the root
        ("../share", "/usr/lib/rel"),          // relative from a subdirectory
        ("../..", "/usr/lib/up"),              // climbs exactly to the root
        ("chain2", "/chain1"),
        ("/chain3", "/chain2"),
        ("etc", "/chain3"),
        ("loop2", "/loop1"),
        ("loop1", "/loop2"),
        ("self", "/self"),
        ("../../etc", "/escape"),              // climbs above the root
        ("/usr/../../etc", "/absescape"),
        ("/nonexistent/thing", "/dangling"),
        ("/etc/passwd", "/passwdlink"),
    ]
    for (target, name) in links {
        guard symlink(target, root + name) == 0 else { throw LinuxError("symlink", root + name) }
    }
    return root
}

/// An empty root beside a directory outside it, under one temporary directory (removed by the caller).
private func makeRootAndOutside() throws -> (base: String, root: String, outside: String) {
    let base = try makeTempDir("root")
    let root = base + "/root", outside = base + "/outside"
    try FS.mkdirAll(root)
    try FS.mkdirAll(outside)
    return (base, root, outside)
}

@Suite("RootPath.resolve")
struct RootPathResolveTests {
    @Test(arguments: [
        ("/etc/passwd", ["etc", "passwd"]),
        ("etc/passwd", ["etc", "passwd"]),
        ("/", []),
        ("", []),
        ("//etc///./passwd/", ["etc", "passwd"]),
        ("/new/dir/file", ["new", "dir", "file"]),
        ("/lib/x", ["usr", "lib", "x"]),
        ("/abs/x", ["usr", "lib", "x"]),
        ("/usr/lib/rel/doc", ["usr", "share", "doc"]),
        ("/usr/lib/up/etc", ["etc"]),
        ("/usr/lib/../../etc", ["etc"]),
        ("/usr/../etc/./passwd", ["etc", "passwd"]),
        ("/lib/../etc", ["usr", "etc"]),       // `..` after a symlink is the parent of its target
        ("/chain1/passwd", ["etc", "passwd"]),
        ("/dangling", ["nonexistent", "thing"]),
        ("/dangling/deeper", ["nonexistent", "thing", "deeper"]),
        ("/passwdlink", ["etc", "passwd"]),
    ])
    func resolves(path: String, expected: [String]) throws {
        let root = try makeRoot()
        defer { removeTree(root) }
        #expect(try RootPath.resolve(root: root, path: path) == expected)
    }

    @Test(arguments: ["/loop1", "/loop2/x", "/self", "/escape", "/escape/passwd", "/absescape", "/..", "/etc/../..", "/usr/lib/up/.."])
    func refuses(path: String) throws {
        let root = try makeRoot()
        defer { removeTree(root) }
        do {
            let components = try RootPath.resolve(root: root, path: path)
            Issue.record("\(path) resolved to \(components)")
        } catch {
            #expect(!error.symlink.isEmpty)
        }
    }

    @Test func loopErrorNamesTheLink() throws {
        let root = try makeRoot()
        defer { removeTree(root) }
        do {
            _ = try RootPath.resolve(root: root, path: "/loop1")
            Issue.record("a symlink loop resolved")
        } catch {
            #expect(error.symlink.hasPrefix(root + "/loop"))
        }
    }

    @Test func longChainWithinTheLimitResolves() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        try FS.mkdirAll(root + "/target")
        // 30 links: l0 -> l1 -> ... -> l29 -> target (the kernel allows 40).
        for i in 0..<30 {
            let next = i == 29 ? "target" : "l\(i + 1)"
            #expect(symlink(next, root + "/l\(i)") == 0)
        }
        #expect(try RootPath.resolve(root: root, path: "/l0/x") == ["target", "x"])
    }

    @Test func symlinkLimitMatchesTheKernel() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        try FS.mkdirAll(root + "/target")
        // k1 -> target, k2 -> k1, ..., k41 -> k40: the kernel follows 40 links and refuses 41.
        for i in 1...41 {
            #expect(symlink(i == 1 ? "target" : "k\(i - 1)", root + "/k\(i)") == 0)
        }
        #expect(throws: RootPath.Escape.self) { _ = try RootPath.resolve(root: root, path: "/k41") }
        let forty = try? RootPath.resolve(root: root, path: "/k40")
        #expect(forty == ["target"])
    }
}

@Suite("RootPath.create")
struct RootPathCreateTests {
    @Test func createsDirectoriesAndReturnsAnFDForThem() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        let fd = try RootPath.create(root: root, components: ["a", "b", "c"], lastIsFile: false)
        #expect(FS.isDirectory(root + "/a/b/c"))
        #expect(fdTarget(fd.raw) == root + "/a/b/c")
        // Again, over what exists.
        let again = try RootPath.create(root: root, components: ["a", "b", "c"], lastIsFile: false)
        #expect(fdTarget(again.raw) == root + "/a/b/c")
    }

    @Test func createsAFileAsTheLastComponent() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        let fd = try RootPath.create(root: root, components: ["dev", "null"], lastIsFile: true)
        var st = stat()
        #expect(lstat(root + "/dev/null", &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFREG)
        #expect(fdTarget(fd.raw) == root + "/dev/null")
        // An existing file is reused, not truncated.
        try FS.writeString(root + "/dev/null", "keep")
        _ = try RootPath.create(root: root, components: ["dev", "null"], lastIsFile: true)
        #expect(try FS.readString(root + "/dev/null") == "keep")
    }

    @Test func emptyComponentsNameTheRoot() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        let fd = try RootPath.create(root: root, components: [], lastIsFile: false)
        #expect(fdTarget(fd.raw) == root)
    }

    @Test func refusesASymlinkSwappedInAsTheLastDirectory() throws {
        let (base, root, outside) = try makeRootAndOutside()
        defer { removeTree(base) }
        #expect(symlink(outside, root + "/mnt") == 0)
        #expect(throws: LinuxError.self) { _ = try RootPath.create(root: root, components: ["mnt"], lastIsFile: false) }
        #expect(FS.listDirectory(outside).isEmpty)
    }

    @Test func refusesASymlinkSwappedInAsTheLastFile() throws {
        let (base, root, outside) = try makeRootAndOutside()
        defer { removeTree(base) }
        try FS.writeString(outside + "/secret", "unchanged")
        #expect(symlink(outside + "/secret", root + "/file") == 0)
        #expect(symlink(outside + "/created", root + "/dangling") == 0)
        #expect(throws: LinuxError.self) { _ = try RootPath.create(root: root, components: ["file"], lastIsFile: true) }
        #expect(throws: LinuxError.self) { _ = try RootPath.create(root: root, components: ["dangling"], lastIsFile: true) }
        #expect(try FS.readString(outside + "/secret") == "unchanged")
        #expect(!FS.exists(outside + "/created"))
    }

    @Test func refusesAnIntermediateSymlink() throws {
        let (base, root, outside) = try makeRootAndOutside()
        defer { removeTree(base) }
        #expect(symlink(outside, root + "/link") == 0)
        #expect(throws: LinuxError.self) { _ = try RootPath.create(root: root, components: ["link", "sub", "file"], lastIsFile: true) }
        // Nothing may be created outside the root on the way to that failure.
        #expect(!FS.exists(outside + "/sub"))
    }
}

@Suite("RootPath.openExisting and subdirectory")
struct RootPathFastPathTests {
    /// Where the one-call path succeeds it names what the walk (`resolve` + `create`) names.
    @Test(arguments: [("/etc", true), ("etc/", true), ("//usr///lib", true), ("/etc/passwd", false), ("/usr/lib/../share", true)])
    func opensWhatTheWalkWouldOpen(path: String, directory: Bool) throws {
        let root = try makeRoot()
        defer { removeTree(root) }
        let fast = try #require(RootPath.openExisting(root: root, path: path, directory: directory))
        let walked = try RootPath.create(root: root, components: RootPath.resolve(root: root, path: path), lastIsFile: !directory)
        #expect(fdTarget(fast.raw) == fdTarget(walked.raw))
    }

    /// Everything else is left to the walk: a symlink on the way (even one that stays inside the
    /// root), something missing, the root itself, a climb above it, a file where a directory is asked.
    @Test(arguments: [("/lib/x", true), ("/lib", true), ("/abs", true), ("/passwdlink", false), ("/escape", true), ("/dangling", false),
                      ("/missing", true), ("/etc/missing", false), ("/", true), ("", true), ("/..", true), ("/usr/../..", true),
                      ("/etc/passwd", true)])
    func leavesTheRestToTheWalk(path: String, directory: Bool) throws {
        let root = try makeRoot()
        defer { removeTree(root) }
        #expect(RootPath.openExisting(root: root, path: path, directory: directory) == nil)
    }

    @Test func subdirectoryMakesAndOpensOneLevel() throws {
        let root = try makeTempDir("root")
        defer { removeTree(root) }
        let parent = try FileDescriptor.open(root, O_PATH | O_DIRECTORY)
        let made = try RootPath.subdirectory("memory", of: parent, creating: true)
        #expect(fdTarget(made.raw) == root + "/memory" && FS.isDirectory(root + "/memory"))
        let again = try RootPath.subdirectory("memory", of: parent, creating: false)
        #expect(fdTarget(again.raw) == root + "/memory")
        #expect(throws: LinuxError.self) { _ = try RootPath.subdirectory("absent", of: parent, creating: false) }
    }

    @Test func subdirectoryRefusesASymlinkInItsPlace() throws {
        let (base, root, outside) = try makeRootAndOutside()
        defer { removeTree(base) }
        #expect(symlink(outside, root + "/cpu") == 0)
        let parent = try FileDescriptor.open(root, O_PATH | O_DIRECTORY)
        #expect(throws: LinuxError.self) { _ = try RootPath.subdirectory("cpu", of: parent, creating: true) }
        #expect(throws: LinuxError.self) { _ = try RootPath.subdirectory("../outside", of: parent, creating: false) }
    }
}

// glibc exports makedev/major/minor as these functions; the header macros are invisible to Swift.
@_silgen_name("gnu_dev_makedev") private func gnu_dev_makedev(_ major: UInt32, _ minor: UInt32) -> dev_t
@_silgen_name("gnu_dev_major") private func gnu_dev_major(_ dev: dev_t) -> UInt32
@_silgen_name("gnu_dev_minor") private func gnu_dev_minor(_ dev: dev_t) -> UInt32

@Suite("Device numbers and mount flags")
struct DeviceNumberTests {
    @Test(arguments: [("/dev/null", UInt64(1), UInt64(3)), ("/dev/zero", 1, 5), ("/dev/tty", 5, 0), ("/dev/ptmx", 5, 2)])
    func matchesTheKernelsEncoding(path: String, major: UInt64, minor: UInt64) throws {
        var st = stat()
        try #require(stat(path, &st) == 0)
        #expect(FS.deviceNumber(major: major, minor: minor) == st.st_rdev)
    }

    @Test func nullIs259() {
        #expect(FS.deviceNumber(major: 1, minor: 3) == 259)
    }

    @Test(arguments: [(UInt64(0), UInt64(0)), (1, 3), (136, 255), (136, 256), (4095, 255), (4096, 0), (0x12345, 0xabcdef), (0xffff_ffff, 0xffff_ffff)])
    func matchesGlibcMakedev(major: UInt64, minor: UInt64) {
        #expect(FS.deviceNumber(major: major, minor: minor) == gnu_dev_makedev(UInt32(major), UInt32(minor)))
        let number = FS.deviceNumber(major: major, minor: minor)
        #expect(UInt64(gnu_dev_major(number)) == major)
        #expect(UInt64(gnu_dev_minor(number)) == minor)
    }

    @Test func lockedFlagsOfMissingPathIsZero() {
        #expect(lockedFlags("/tmp/veil-unit-missing/x") == 0)
    }

    @Test func lockedFlagsReflectsMountFlags() throws {
        var st = statvfs()
        try #require(statvfs("/proc", &st) == 0, "statvfs /proc: errno \(errno)")
        let flags = lockedFlags("/proc")
        #expect((flags & UInt(MS_NOSUID) != 0) == (UInt(st.f_flag) & 2 != 0))
        #expect((flags & UInt(MS_NODEV) != 0) == (UInt(st.f_flag) & 4 != 0))
        #expect((flags & UInt(MS_NOEXEC) != 0) == (UInt(st.f_flag) & 8 != 0))
        #expect((flags & UInt(MS_RDONLY) != 0) == (UInt(st.f_flag) & 1 != 0))
    }
}

import Glibc
import Testing
import VeilLinux
@testable import VeilContainer

/// The images a sandbox's restore hands CRIU (`StagedImages`): small ones copied for the sandbox's
/// root, memory images read through an id-mapped view of the caller's directory, a pre-dump
/// chain's parent staged beside, all of it gone after; the caller's images never change. A real
/// user namespace and id-mapped mounts: root only.
@Suite("a sandbox restore's staged images", .serialized,
       .enabled(if: getuid() == 0 && FS.exists("/usr/bin/unshare") && FS.exists("/usr/bin/setpriv"), "needs root, unshare and setpriv (util-linux)"))
struct StagedImagesTests {
    static let hostID: UInt32 = 1_900_000_000

    /// A checkpoint as CRIU leaves it (root's files, 0600) with a pre-dump parent, in a directory
    /// the sandbox's root can traverse to (as veil's state directories).
    struct Checkpoint {
        let base: String
        var source: String { base + "/full" }
        var parent: String { base + "/pre" }
        var target: String { base + "/state/criu-images" }

        init() throws {
            base = try makeTempDir("staged-images")
            chmod(base, 0o711)
            for directory in [source, parent, base + "/state"] { try FS.mkdirAll(directory, mode: 0o700) }
            chmod(base + "/state", 0o711)
            try FS.writeFile(source + "/inventory.img", Array("inventory".utf8), mode: 0o600)
            try FS.writeFile(source + "/pages-1.img", Array(repeating: 0x5a, count: 1 << 20), mode: 0o600)
            try FS.writeFile(parent + "/pages-1.img", Array(repeating: 0xa5, count: 4096), mode: 0o600)
            guard symlink("../pre", source + "/parent") == 0 else { throw LinuxError("symlink", source + "/parent") }
        }

        func remove() { removeTree(base) }
    }

    /// A process in a new user namespace mapping 0 → hostID (65536 ids), as the restore's holder.
    struct Namespace {
        let pid: pid_t
        let fd: FileDescriptor

        init() throws {
            pid = try spawnProcess(["/usr/bin/unshare", "--user", "/bin/sleep", "60"])
            let ours = FS.readLink("/proc/self/ns/user")
            var tries = 0
            while FS.readLink("/proc/\(pid)/ns/user") == ours || FS.readLink("/proc/\(pid)/exe")?.hasSuffix("sleep") != true {
                tries += 1
                if tries > 2000 { throw LinuxError("unshare", "no user namespace", errno: ETIMEDOUT) }
                usleep(1000)
            }
            for kind in ["uid", "gid"] { try FS.writeString("/proc/\(pid)/\(kind)_map", "0 \(StagedImagesTests.hostID) 65536\n", flags: O_WRONLY) }
            fd = try FileDescriptor.open("/proc/\(pid)/ns/user", O_RDONLY)
        }

        func end() {
            fd.close()
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// `cat PATH` as the sandbox's root (host id `hostID`, no capabilities): its exit status.
    func readAsSandboxRoot(_ path: String) throws -> Int32 {
        let pid = try spawnProcess(["/usr/bin/setpriv", "--reuid=\(Self.hostID)", "--regid=\(Self.hostID)", "--clear-groups", "/bin/sh", "-c", "cat \"$0\" > /dev/null 2>&1", path])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }

    func status(_ path: String) -> stat? {
        var st = stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 ? st : nil
    }

    @Test("memory images through a read-only id-mapped view, small ones copied, the parent staged beside; the caller's images unchanged; nothing left after")
    func throughView() throws {
        let checkpoint = try Checkpoint()
        defer { checkpoint.remove() }
        let namespace = try Namespace()
        defer { namespace.end() }
        var staged = StagedImages()
        try staged.stage(from: checkpoint.source, to: checkpoint.target, owner: Self.hostID, userns: namespace.fd)
        #expect(staged.viewed)

        #expect(FS.readLink(checkpoint.target + "/pages-1.img") == "veil-source/pages-1.img")
        #expect(status(checkpoint.target + "/pages-1.img")?.st_uid == Self.hostID, "the view shows root's file as the sandbox root's")
        #expect(try FS.readFile(checkpoint.target + "/pages-1.img") == Array(repeating: 0x5a, count: 1 << 20))
        let copy = status(checkpoint.target + "/inventory.img")
        #expect(FS.readLink(checkpoint.target + "/inventory.img") == nil)
        #expect(copy?.st_uid == Self.hostID && copy?.st_gid == 0 && (copy?.st_mode ?? 0) & 0o777 == 0o640)
        #expect(FS.readLink(checkpoint.target + "/parent") == "../criu-images.parent")
        #expect(try FS.readFile(checkpoint.target + "/parent/pages-1.img") == Array(repeating: 0xa5, count: 4096))

        // The sandbox's root reads what is staged, not the caller's directory; the view is read-only.
        #expect(try readAsSandboxRoot(checkpoint.target + "/pages-1.img") == 0)
        #expect(try readAsSandboxRoot(checkpoint.target + "/parent/pages-1.img") == 0)
        #expect(try readAsSandboxRoot(checkpoint.target + "/inventory.img") == 0)
        #expect(try readAsSandboxRoot(checkpoint.source + "/pages-1.img") != 0)
        #expect(open(checkpoint.target + "/pages-1.img", O_WRONLY) == -1 && errno == EROFS)

        staged.remove()
        #expect(!FS.exists(checkpoint.target) && !FS.exists(checkpoint.target + ".parent"))
        #expect(!Mounts.entries().contains { $0.mountPoint.hasPrefix(checkpoint.base) })
        for (path, size) in [(checkpoint.source + "/pages-1.img", 1 << 20), (checkpoint.parent + "/pages-1.img", 4096), (checkpoint.source + "/inventory.img", 9)] {
            let original = status(path)
            #expect(original?.st_uid == 0 && (original?.st_mode ?? 0) & 0o777 == 0o600 && original?.st_size == size, "\(path) stays the caller's")
        }
    }

    @Test("without a view (--auto-dedup, a filesystem that cannot be id-mapped) every image is a copy for the sandbox's root")
    func copied() throws {
        let checkpoint = try Checkpoint()
        defer { checkpoint.remove() }
        var staged = StagedImages()
        try staged.stage(from: checkpoint.source, to: checkpoint.target, owner: Self.hostID, userns: nil)
        defer { staged.remove() }
        #expect(!staged.viewed)
        for path in [checkpoint.target + "/pages-1.img", checkpoint.target + ".parent/pages-1.img"] {
            let copy = status(path)
            #expect(FS.readLink(path) == nil && copy?.st_uid == Self.hostID && (copy?.st_mode ?? 0) & 0o777 == 0o640, "\(path)")
        }
        #expect(try readAsSandboxRoot(checkpoint.target + "/pages-1.img") == 0)
    }
}

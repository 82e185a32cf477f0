import FoundationEssentials
import Glibc
import Testing
import VeilLinux
import VeilSpec
@testable import VeilContainer

/// Two overlays of one lower tree, as two snapshots of an image: what a container changed in the
/// first is written as a checkpoint archive's rootfs-diff.tar and deleted.files, and applied to
/// the second. Real overlay mounts: root only.
@Suite("rootfs changes of a checkpoint archive", .serialized,
       .enabled(if: getuid() == 0 && FS.exists("/bin/busybox"), "needs root (overlay mounts) and busybox-static"))
struct RootfsChangesTests {
    struct Overlays {
        let base: String
        var lower: String { base + "/lower" }
        func upper(_ n: Int) -> String { base + "/upper\(n)" }
        func root(_ n: Int) -> String { base + "/root\(n)" }

        init() throws {
            base = try makeTempDir("rootfs-changes")
            for path in ["/lower/etc", "/lower/bin", "/upper1", "/work1", "/upper2", "/work2", "/root1", "/root2", "/archive", "/outside"] {
                try FS.mkdirAll(base + path)
            }
            try FS.writeString(lower + "/etc/motd", "from the image\n")
            try FS.writeString(lower + "/bin/true", "#!/bin/sh\n")
            try FS.writeString(lower + "/etc/keep", "kept\n")
            for n in [1, 2] {
                try Mounts.mount("overlay", root(n), type: "overlay", flags: 0,
                                 data: "lowerdir=\(lower),upperdir=\(upper(n)),workdir=\(base)/work\(n)")
            }
        }

        func remove() {
            for n in [1, 2] { _ = umount2(root(n), Int32(MNT_DETACH)) }
            removeTree(base)
        }
    }

    @Test("an overlay's upper directory is the diff, its whiteouts the deleted files; applied to a fresh overlay they give the same tree")
    func roundTrip() throws {
        let overlays = try Overlays()
        defer { overlays.remove() }
        let first = overlays.root(1), second = overlays.root(2)
        #expect(RootfsChanges.upperDirectory(of: first) == overlays.upper(1))
        #expect(RootfsChanges.upperDirectory(of: overlays.lower) == nil, "a plain directory has no diff")
        // What a container would do in its rootfs.
        try FS.writeString(first + "/etc/motd", "changed\n")
        try FS.mkdirAll(first + "/new/dir")
        try FS.writeString(first + "/new/dir/file", "added\n")
        #expect(chown(first + "/new/dir/file", 1234, 5678) == 0)
        #expect(symlink("/etc/keep", first + "/new/link") == 0)
        #expect(unlink(first + "/bin/true") == 0)
        // Mount points the runtime made: a bind mount's destination file and /proc.
        try FS.writeString(first + "/etc/hostname", "")
        try FS.mkdirAll(first + "/proc")
        let spec = try Spec.decode(Array(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":"/etc/hostname","type":"bind","source":"/etc/hostname","options":["bind"]}]}"#.utf8), file: "config.json")

        let archive = overlays.base + "/archive"
        let names = try RootfsChanges.write(upper: overlays.upper(1), into: archive, spec: spec)
        let (_, listing) = try Spawner.capture(["tar", "-tf", archive + "/" + ArchiveLayout.rootfsDiff])
        let members = Set(listing.split(separator: "\n").map(String.init))
        #expect(members.isSuperset(of: ["etc/", "etc/motd", "new/", "new/dir/", "new/dir/file", "new/link"]), "\(members)")
        #expect(!members.contains("etc/hostname") && !members.contains("proc/"), "mount points are not the workload's changes: \(members)")
        #expect(names == [ArchiveLayout.rootfsDiff, RootfsChanges.deletedFiles])
        let deleted = try JSONDecoder().decode([String].self, from: Data(try FS.readFile(archive + "/" + RootfsChanges.deletedFiles)))
        #expect(deleted == ["/bin/true"])
        #expect(!FS.exists(archive + "/rootfs-diff.list"), "the member list is not left beside the archive")

        try RootfsChanges.apply(from: archive, to: second)
        #expect(try FS.readString(second + "/etc/motd") == "changed\n")
        #expect(try FS.readString(second + "/new/dir/file") == "added\n")
        var st = stat()
        #expect(stat(second + "/new/dir/file", &st) == 0 && st.st_uid == 1234 && st.st_gid == 5678, "owners kept by number")
        #expect(FS.readLink(second + "/new/link") == "/etc/keep")
        #expect(!FS.exists(second + "/bin/true"), "a deleted file is gone")
        #expect(try FS.readString(second + "/etc/keep") == "kept\n")
    }

    @Test("applying an archive cannot write outside the rootfs: a rootfs symlink to a host path, and deleted paths through it, stay inside")
    func confinedToTheRootfs() throws {
        let overlays = try Overlays()
        defer { overlays.remove() }
        let target = overlays.root(2), outside = overlays.base + "/outside"
        try FS.writeString(outside + "/precious", "host file\n")
        // The rootfs (a tenant's) holds a symlink to a host directory; the archive writes through it.
        #expect(symlink(outside, target + "/escape") == 0)
        let staging = overlays.base + "/staging"
        try FS.mkdirAll(staging + "/escape")
        try FS.writeString(staging + "/escape/planted", "tenant data\n")
        let archive = overlays.base + "/archive"
        let (status, output) = try Spawner.capture(["tar", "-c", "-f", archive + "/" + ArchiveLayout.rootfsDiff, "-C", staging, "escape/planted"])
        try #require(status == 0, "\(output)")
        try FS.writeFile(archive + "/" + RootfsChanges.deletedFiles, Array(#"["/escape/precious", "/../outside/precious"]"#.utf8))

        // Inside the chroot, /escape leads to the rootfs's own <outside path>, which does not exist.
        _ = try? RootfsChanges.apply(from: archive, to: target)
        #expect(!FS.exists(outside + "/planted"), "the archive wrote through the rootfs's symlink onto the host")
        #expect(try FS.readString(outside + "/precious") == "host file\n", "a deleted path reached the host")
    }

    @Test("a deleted.files that is not a JSON list is named in the error")
    func badDeletedFiles() throws {
        let overlays = try Overlays()
        defer { overlays.remove() }
        let archive = overlays.base + "/archive"
        try FS.writeString(archive + "/" + RootfsChanges.deletedFiles, "not json")
        #expect {
            try RootfsChanges.apply(from: archive, to: overlays.root(2))
        } throws: { error in
            "\(error)".contains(RootfsChanges.deletedFiles)
        }
    }
}

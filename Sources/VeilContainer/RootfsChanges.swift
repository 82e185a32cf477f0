import CVeilLinux
import FoundationEssentials
import Glibc
import VeilLinux
import VeilSpec

/// The rootfs's changes against its image, as CRI-O and podman put them in a checkpoint archive:
/// `rootfs-diff.tar` (what was added or changed) and `deleted.files` (a JSON list of the paths
/// removed). Only an overlay rootfs, as containerd and CRI-O mount them, has an image below it to
/// differ from: its upper directory is the diff, and its whiteouts are the deletions.
public enum RootfsChanges {
    public static let deletedFiles = "deleted.files"
    public static let bindMounts = "bind.mounts"
    /// Mount points every container has (CRI-O's and podman's list): not changes of the workload's.
    static let containerMounts: Set<String> = ["/dev", "/dev/shm", "/proc", "/run", "/run/.containerenv", "/run/secrets", "/sys"]
    /// The static busybox (Debian's busybox-static) that applies an archive's changes, chrooted.
    static let busybox = ["/bin/busybox", "/usr/bin/busybox"]

    /// The upper directory of the overlay mounted at `rootfs`; nil for any other rootfs.
    public static func upperDirectory(of rootfs: String) -> String? {
        guard Mounts.entries().last(where: { $0.mountPoint == rootfs })?.fileSystemType == "overlay" else { return nil }
        return Mounts.superOptions(mountPoint: rootfs)?["upperdir"]
    }

    /// Writes rootfs-diff.tar and deleted.files into `directory` from the overlay upper directory
    /// `upper`, leaving out the mount points of `spec` and of every container (a bind mount's
    /// destination file is the runtime's, not the workload's); returns the names written (none
    /// when nothing changed).
    static func write(upper: String, into directory: String, spec: Spec?) throws(ContainerError) -> [String] {
        var kept: [String] = [], deleted: [String] = []
        walk(upper, "", kept: &kept, deleted: &deleted)
        let mountPoints = containerMounts.union((spec?.mounts ?? []).map { FS.lexicallyAbsolute($0.destination, base: "/") })
        kept.removeAll { mountPoints.contains("/" + $0) }
        var names: [String] = []
        if !kept.isEmpty {
            // The members by name, NUL-separated and not recursed into: a whiteout is left out.
            let list = directory + "/rootfs-diff.list"
            try wrap("writing \(list)") { try FS.writeFile(list, Array(kept.joined(separator: "\0").utf8) + [0], mode: 0o600) }
            defer { unlink(list) }
            let tarball = directory + "/" + ArchiveLayout.rootfsDiff
            let (status, output) = try wrap("running tar") {
                try Spawner.capture(["tar", "-c", "-f", tarball, "-C", upper, "--numeric-owner", "--no-recursion", "--null", "-T", list])
            }
            guard status == 0 else {
                throw .failed(context: "writing \(ArchiveLayout.rootfsDiff) from \(upper) (tar exited \(status))", cause: CheckpointArchiveFiles.ToolOutput(text: output))
            }
            names.append(ArchiveLayout.rootfsDiff)
        }
        if !deleted.isEmpty {
            try CheckpointArchiveFiles.writeJSON(deleted.map { "/" + $0 }, to: deletedFiles, in: directory)
            names.append(deletedFiles)
        }
        return names
    }

    /// One of CRI-O's bind.mounts entries: a bind mount's source and what it is, so that a restore
    /// elsewhere can make a missing source of the right kind.
    struct BindMount: Codable, Equatable {
        var source: String
        var destination: String
        var fileType: String
        var permissions: UInt32

        enum CodingKeys: String, CodingKey {
            case source, destination, permissions
            case fileType = "file_type"
        }
    }

    /// Writes bind.mounts (CRI-O's layout) for the bind mounts of `spec` whose source exists;
    /// returns its name, or none when there are no such mounts.
    static func writeBindMounts(_ spec: Spec, bundle: String, into directory: String) throws(ContainerError) -> [String] {
        var entries: [BindMount] = []
        for mount in spec.mounts ?? [] where mount.isBind && !containerMounts.contains(mount.destination) {
            guard let path = mount.hostSource(bundle: bundle) else { continue }
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            entries.append(BindMount(source: path, destination: mount.destination, fileType: (st.st_mode & S_IFMT) == S_IFDIR ? "directory" : "file",
                                     permissions: UInt32(st.st_mode & 0o7777)))
        }
        guard !entries.isEmpty else { return [] }
        try CheckpointArchiveFiles.writeJSON(entries, to: bindMounts, in: directory)
        return [bindMounts]
    }

    /// Every entry below `root`/`relative` but the whiteouts (character devices 0:0), which go to
    /// `deleted`. Directories come before what they hold, as tar needs to restore them.
    static func walk(_ root: String, _ relative: String, kept: inout [String], deleted: inout [String]) {
        for name in FS.listDirectory(relative.isEmpty ? root : root + "/" + relative) {
            let path = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(root + "/" + path, &st) == 0 else { continue }
            let kind = st.st_mode & S_IFMT
            if kind == S_IFCHR && st.st_rdev == 0 {
                deleted.append(path)
                continue
            }
            kept.append(path)
            if kind == S_IFDIR { walk(root, path, kept: &kept, deleted: &deleted) }
        }
    }

    /// Applies the changes in an unpacked archive's top `directory` to `rootfs`: the deleted paths
    /// removed, then rootfs-diff.tar extracted over it. Both run as a static busybox chrooted into
    /// the rootfs, so neither an archive's member nor a symlink of the rootfs leads outside it.
    public static func apply(from directory: String, to rootfs: String) throws(ContainerError) {
        let diff = directory + "/" + ArchiveLayout.rootfsDiff, deletions = directory + "/" + deletedFiles
        guard FS.exists(diff) || FS.exists(deletions) else { return }
        guard let path = busybox.first(where: { access($0, X_OK) == 0 }) else {
            throw .unsupported("applying the archive's \(ArchiveLayout.rootfsDiff) and \(deletedFiles) needs a static busybox (apt-get install busybox-static)")
        }
        let executable = try wrap("opening \(path)") { try FileDescriptor.open(path, O_RDONLY) }
        if FS.exists(deletions) {
            let paths: [String]
            do { paths = try JSONDecoder().decode([String].self, from: Data(try FS.readFile(deletions))) } catch {
                throw .invalidConfig(file: deletions, field: "", reason: "\(deletions) is not a JSON list of paths: \(error)")
            }
            for batch in stride(from: 0, to: paths.count, by: 256).map({ Array(paths[$0..<min($0 + 256, paths.count)]) }) {
                try chrooted(executable, ["busybox", "rm", "-rf", "--"] + batch, input: "/dev/null", in: rootfs, what: "removing the paths of \(deletedFiles)")
            }
        }
        if FS.exists(diff) {
            try chrooted(executable, ["busybox", "tar", "-x", "-f", "-", "-C", "/"], input: diff, in: rootfs, what: "extracting \(ArchiveLayout.rootfsDiff)")
        }
    }

    /// Runs busybox with `argv`, chrooted into `rootfs`, stdin from `input`.
    static func chrooted(_ executable: FileDescriptor, _ argv: [String], input: String, in rootfs: String, what: String) throws(ContainerError) {
        let stdin = try wrap("opening \(input)") { try FileDescriptor.open(input, O_RDONLY) }
        var output = [UInt8](repeating: 0, count: 4096)
        let capture = try wrap("making a capture file") { () throws(LinuxError) -> FileDescriptor in
            let fd = veil_memfd_create("veil-chrooted", 1 /* MFD_CLOEXEC */)
            guard fd >= 0 else { throw LinuxError("memfd_create", "veil-chrooted", errno: -fd) }
            return FileDescriptor(fd)
        }
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let pid = cArguments.withUnsafeMutableBufferPointer { veil_spawn_chrooted(rootfs, executable.raw, $0.baseAddress, stdin.raw, capture.raw) }
        guard pid > 0 else { throw LinuxError("clone", rootfs, errno: -pid).context(what) }
        let status = try wrap(what) { try Wait.waitpid(pid) }
        guard status != 0 else { return }
        let read = pread(capture.raw, &output, output.count, 0)
        let text = read > 0 ? String(decoding: output[0..<read], as: UTF8.self) : ""
        let hint = status == 127 ? ": it could not run there (busybox must be static, as Debian's busybox-static is)" : status == 125 ? ": chroot failed" : ""
        throw .failed(context: "\(what) in \(rootfs) (busybox exited \(status)\(hint))", cause: CheckpointArchiveFiles.ToolOutput(text: text))
    }
}

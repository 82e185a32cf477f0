import FoundationEssentials
import Glibc
import VeilLinux
import VeilSpec

/// The files of a container checkpoint as kubelet/CRI-O, podman and veil lay them out
/// (checkpointctl's names): CRIU's images in `checkpoint/`, the container's metadata beside them.
public enum ArchiveLayout {
    public static let checkpointDirectory = "checkpoint"
    public static let configDump = "config.dump"
    public static let specDump = "spec.dump"
    public static let rootfsDiff = "rootfs-diff.tar"
    public static let dumpLog = "dump.log"
    /// CRIU writes its statistics into the images directory; the archive keeps a copy at the top.
    public static let statsDump = "stats-dump"
    /// The saved memory, packed or not as a reader needs it.
    public static let pagesPattern = "pages-*.img"
}

/// A checkpoint archive unpacked into a private temporary directory; `remove()` takes it away.
public struct UnpackedArchive: Sendable {
    public let directory: String
    /// Where CRIU's images are: `checkpoint/` in the layout, or the top of a bare images archive.
    public let images: String?
    /// Sizes of the members left packed (`withoutPages`), by their path in the archive.
    public let packedSizes: [String: Int64]

    public func remove() { try? FS.removeAll(directory) }
}

/// `checkpoint --export` and `restore --import`: the archive, written and unpacked with tar.
public enum CheckpointArchiveFiles {
    /// What checkpointctl's ContainerConfig holds (config.dump).
    struct ContainerConfig: Codable {
        var id: String
        var name: String
        var rootfsImageName: String?
        var runtime = "veil"
        var engine = "veil"
        var createdTime: String
        var checkpointedTime: String
        var restored = false
    }

    /// Writes `path` from the images in `images` and the container's metadata (its config.json,
    /// `spec` as `specJSON`'s bytes, and the bind mounts it names, from `bundle`), with the rootfs's
    /// changes when it is an overlay whose upper directory is `rootfsUpper`; the compression follows
    /// the suffix (tar -a: .tar.gz, .tar.zst, ...; plain .tar as kubelet writes).
    public static func export(_ path: String, images: String, id: String, created: String, imageName: String?, spec: Spec?,
                              specJSON: [UInt8], bundle: String, rootfsUpper: String? = nil) throws(ContainerError) {
        let layout = try temporaryDirectory("veil-export")
        defer { try? FS.removeAll(layout) }
        let config = ContainerConfig(id: id, name: id, rootfsImageName: imageName, createdTime: created, checkpointedTime: Clock.rfc3339Now())
        try writeJSON(config, to: ArchiveLayout.configDump, in: layout)
        try wrap("writing \(ArchiveLayout.specDump)") { try FS.writeFile(layout + "/" + ArchiveLayout.specDump, specJSON, mode: 0o600) }
        var members = [ArchiveLayout.configDump, ArchiveLayout.specDump, ArchiveLayout.checkpointDirectory]
        if let spec { members += try RootfsChanges.writeBindMounts(spec, bundle: bundle, into: layout) }
        if let upper = rootfsUpper { members += try RootfsChanges.write(upper: upper, into: layout, spec: spec) }
        for name in [ArchiveLayout.statsDump, ArchiveLayout.dumpLog] where FS.exists(images + "/" + name) {
            try wrap("copying \(name)") { try FS.writeFile(layout + "/" + name, try FS.readFile(images + "/" + name), mode: 0o600) }
            members.append(name)
        }
        // checkpoint/ is a link to the images, followed by tar -h (a pre-dump parent comes along).
        try wrap("linking the images into the archive") {
            try sys("symlink", layout + "/" + ArchiveLayout.checkpointDirectory) { symlink(images, layout + "/" + ArchiveLayout.checkpointDirectory) }
        }
        let (status, output) = try wrap("running tar") { try Spawner.capture(["tar", "-c", "-a", "-h", "-f", path, "-C", layout] + members) }
        guard status == 0 else {
            unlink(path)
            throw .failed(context: "writing \(path) (tar exited \(status))", cause: ToolOutput(text: output))
        }
    }

    /// Unpacks `source` (a tar, compressed or not); `withoutPages` leaves the saved memory packed
    /// and lists its size instead, for readers that need no memory.
    public static func unpack(_ source: String, withoutPages: Bool = false) throws(ContainerError) -> UnpackedArchive {
        let directory = try temporaryDirectory("veil-checkpoint")
        let excluded = withoutPages ? ["--exclude", ArchiveLayout.pagesPattern] : []
        let (status, output) = try wrap("running tar") { try Spawner.capture(["tar", "-xf", source, "-C", directory, "--no-same-owner"] + excluded) }
        guard status == 0 else {
            try? FS.removeAll(directory)
            throw .invalidConfig(file: source, field: "", reason: "\(source) is not a tar archive tar can read (\(output.split(separator: "\n").first ?? "tar exited \(status)"))")
        }
        var sizes: [String: Int64] = [:]
        if withoutPages {
            // GNU tar's verbose listing: mode, owner/group, size, date, time, name.
            let listing = (try? Spawner.capture(["tar", "-tvf", source, "--wildcards", "*" + ArchiveLayout.pagesPattern]))?.output ?? ""
            for line in listing.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count >= 6, let size = Int64(fields[2]) { sizes[fields[5...].joined(separator: " ")] = size }
            }
        }
        return UnpackedArchive(directory: directory, images: imagesDirectory(in: directory), packedSizes: sizes)
    }

    /// Where CRIU's images are in a checkpoint's top directory: `checkpoint/` in the layout, or the
    /// top itself for a bare images directory; nil when neither holds an inventory.img.
    public static func imagesDirectory(in directory: String) -> String? {
        let layout = directory + "/" + ArchiveLayout.checkpointDirectory
        if FS.exists(layout + "/inventory.img") { return layout }
        return FS.exists(directory + "/inventory.img") ? directory : nil
    }

    /// A private directory under $TMPDIR (default /tmp).
    public static func temporaryDirectory(_ prefix: String) throws(ContainerError) -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/" + prefix + ".XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw LinuxError("mkdtemp", base).context("making a temporary directory") }
        return String(cString: made)
    }

    /// `value` as JSON in `directory`/`name` (one of the archive's files, owner-only).
    static func writeJSON<Value: Encodable>(_ value: Value, to name: String, in directory: String) throws(ContainerError) {
        let json: [UInt8]
        do { json = Array(try JSONEncoder().encode(value)) } catch { throw .failed(context: "encoding \(name)", cause: error) }
        try wrap("writing \(name)") { try FS.writeFile(directory + "/" + name, json, mode: 0o600) }
    }

    struct ToolOutput: Error, CustomStringConvertible {
        let text: String
        var description: String { text.split(separator: "\n").suffix(4).joined(separator: " | ") }
    }
}

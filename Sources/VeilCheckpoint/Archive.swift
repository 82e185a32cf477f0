import Foundation
import Glibc
import VeilCRIUProtocol
import VeilLinux

/// The files of a container checkpoint as kubelet/CRI-O, podman and veil lay them out
/// (checkpointctl's names): CRIU's images in `checkpoint/`, the container's metadata beside them.
public enum ArchiveLayout {
    public static let checkpointDirectory = "checkpoint"
    public static let configDump = "config.dump"
    public static let specDump = "spec.dump"
    public static let statusDump = "status.dump"
    public static let networkStatus = "network.status"
    public static let rootfsDiff = "rootfs-diff.tar"
    public static let deletedFiles = "deleted.files"
    public static let bindMounts = "bind.mounts"
    public static let dumpLog = "dump.log"
    public static let restoreLog = "restore.log"
    /// CRIU writes its statistics into the images directory; the archive keeps a copy at the top.
    public static let statsDump = "stats-dump"
}

/// A directory of CRIU images, each decoded once on first use; `parent` is the pre-dump it builds
/// on (CRIU's `parent` link), if any.
public final class ImageDirectory {
    public let path: String
    private var cache: [String: ImageFile] = [:]

    public init(path: String) { self.path = path }

    public func exists(_ name: String) -> Bool { FS.exists(path + "/" + name) }

    /// The image `name` (e.g. "pstree.img"), decoded.
    public func image(_ name: String) throws(CheckpointError) -> ImageFile {
        if let cached = cache[name] { return cached }
        let file = path + "/" + name
        guard FS.exists(file) else { throw .missingFile(name, in: path, reason: "CRIU writes it at every dump") }
        let bytes: [UInt8]
        do { bytes = try readWhole(file) } catch { throw error }
        let image = try ImageFile.decode(bytes, file: file)
        cache[name] = image
        return image
    }

    /// The image if the dump has it (many are written only when the process had such objects).
    public func optionalImage(_ name: String) throws(CheckpointError) -> ImageFile? {
        exists(name) ? try image(name) : nil
    }

    public var parent: ImageDirectory? {
        let link = path + "/parent"
        guard FS.isDirectory(link) else { return nil }
        return ImageDirectory(path: FS.realPath(link) ?? link)
    }

    /// Every file in the directory, sorted.
    public var fileNames: [String] { FS.listDirectory(path).sorted() }
}

func readWhole(_ file: String) throws(CheckpointError) -> [UInt8] {
    let fd = open(file, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .io(file, operation: "open", errno: errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .io(file, operation: "stat", errno: errno) }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw n == 0 ? .badImage(file: file, reason: "shorter than its size") : .io(file, operation: "read", errno: errno) }
        done += n
    }
    return bytes
}

/// A checkpoint to read: an archive (tar, compressed or not) unpacked into a private temporary
/// directory, a directory in the archive layout, or a bare directory of CRIU images.
public final class CheckpointArchive {
    /// What the user named.
    public let source: String
    /// The top of the layout (config.dump, spec.dump, checkpoint/ ...).
    public let root: String
    public let images: ImageDirectory
    private var temporary: String?

    public init(opening source: String) throws(CheckpointError) {
        self.source = source
        var st = stat()
        guard stat(source, &st) == 0 else { throw .io(source, operation: "opening checkpoint", errno: errno) }
        var unpacked: String?
        var top = source
        if (st.st_mode & S_IFMT) != S_IFDIR {
            let directory = try makeTemporaryDirectory("veil-checkpoint")
            let (status, output) = try Subprocess.run(["tar", "-xf", source, "-C", directory, "--no-same-owner"])
            guard status == 0 else {
                try? FS.removeAll(directory)
                throw .notACheckpoint(source, reason: "not a tar archive tar can read (\(output.split(separator: "\n").first ?? "tar exited \(status)"))")
            }
            unpacked = directory
            top = directory
        }
        let imagesPath: String
        if FS.exists(top + "/" + ArchiveLayout.checkpointDirectory + "/inventory.img") {
            imagesPath = top + "/" + ArchiveLayout.checkpointDirectory
        } else if FS.exists(top + "/inventory.img") {
            imagesPath = top
        } else {
            if let unpacked { try? FS.removeAll(unpacked) }
            let what = unpacked == nil ? "directory" : "archive"
            throw .missingFile("\(ArchiveLayout.checkpointDirectory)/inventory.img", in: source,
                               reason: "a checkpoint \(what) holds CRIU's images in \(ArchiveLayout.checkpointDirectory)/, inventory.img first")
        }
        root = top
        images = ImageDirectory(path: imagesPath)
        temporary = unpacked
    }

    deinit { close() }

    /// Removes what opening unpacked (idempotent; deinit does it too, but exit() runs no deinit).
    public func close() {
        if let temporary { try? FS.removeAll(temporary) }
        temporary = nil
    }

    public func exists(_ name: String) -> Bool { FS.exists(root + "/" + name) }

    /// A JSON file of the layout (config.dump, spec.dump), if present and an object.
    public func json(_ name: String) throws(CheckpointError) -> [String: Any]? {
        guard exists(name) else { return nil }
        let bytes = try readWhole(root + "/" + name)
        if bytes.isEmpty { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw .badImage(file: root + "/" + name, reason: "not a JSON object")
        }
        return object
    }

    /// The size of a file or of a directory's files, in bytes.
    public func size(_ name: String) -> Int64? {
        let path = root + "/" + name
        guard FS.exists(path) else { return nil }
        return diskSize(path)
    }
}

func diskSize(_ path: String) -> Int64 {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        return FS.listDirectory(path).reduce(0) { $0 + diskSize(path + "/" + $1) }
    }
    return (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : 0
}

public func makeTemporaryDirectory(_ prefix: String) throws(CheckpointError) -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/" + prefix + ".XXXXXX").utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw .io(base, operation: "mkdtemp in", errno: errno)
    }
    return String(cString: made)
}

/// Writes a checkpoint archive in the layout above: CRIU's images under checkpoint/, the
/// container's metadata beside them; compressed by the file's suffix (.tar.gz, .tar.zst, ...).
public enum ArchiveWriter {
    public struct Metadata {
        public var id: String
        public var created: String
        public var imageName: String?
        /// The config.json the container ran with.
        public var spec: [UInt8]

        public init(id: String, created: String, imageName: String?, spec: [UInt8]) {
            self.id = id
            self.created = created
            self.imageName = imageName
            self.spec = spec
        }
    }

    public static func write(_ path: String, images: String, metadata: Metadata, checkpointed: String) throws(CheckpointError) {
        let layout = try makeTemporaryDirectory("veil-export")
        defer { try? FS.removeAll(layout) }
        var config: [String: Any] = ["id": metadata.id, "name": metadata.id, "runtime": "veil", "engine": "veil",
                                     "createdTime": metadata.created, "checkpointedTime": checkpointed, "restored": false]
        if let image = metadata.imageName { config["rootfsImageName"] = image }
        let configData = (try? JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])) ?? Data()
        try writeFile(layout + "/" + ArchiveLayout.configDump, Array(configData))
        try writeFile(layout + "/" + ArchiveLayout.specDump, metadata.spec)
        var members = [ArchiveLayout.configDump, ArchiveLayout.specDump, ArchiveLayout.checkpointDirectory]
        for (name, source) in [(ArchiveLayout.statsDump, images + "/stats-dump"), (ArchiveLayout.dumpLog, images + "/dump.log")] where FS.exists(source) {
            try writeFile(layout + "/" + name, try readWhole(source))
            members.append(name)
        }
        // checkpoint/ is a link to the images, followed by tar -h (a pre-dump parent comes along).
        guard symlink(images, layout + "/" + ArchiveLayout.checkpointDirectory) == 0 else {
            throw .io(layout + "/" + ArchiveLayout.checkpointDirectory, operation: "symlink", errno: errno)
        }
        let (status, output) = try Subprocess.run(["tar", "-c", "-a", "-h", "-f", path, "-C", layout] + members)
        guard status == 0 else {
            unlink(path)
            throw .tool("tar (writing \(path))", status: status, output: output)
        }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws(CheckpointError) {
        do { try FS.writeFile(path, bytes, mode: 0o600) } catch { throw .io(path, operation: "write", errno: error.errno) }
    }
}

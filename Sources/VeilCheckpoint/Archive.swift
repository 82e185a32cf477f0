import Foundation
import Glibc
import VeilCRIUProtocol
import VeilContainer
import VeilLinux

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

    /// Sizes of the members left packed (`withoutPages`), by their path in the archive.
    private let packedSizes: [String: Int64]

    /// Opens `source`; `withoutPages` leaves the saved memory (pages-*.img) packed, for what needs
    /// no memory (the summary, statistics, files, mounts): an archive of a large process opens in
    /// the time its headers take to read.
    public init(opening source: String, withoutPages: Bool = false) throws(CheckpointError) {
        self.source = source
        var st = stat()
        guard stat(source, &st) == 0 else { throw .io(source, operation: "opening checkpoint", errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            guard let imagesPath = CheckpointArchiveFiles.imagesDirectory(in: source) else { throw Self.noImages(source, what: "directory") }
            root = source
            images = ImageDirectory(path: imagesPath)
            temporary = nil
            packedSizes = [:]
            return
        }
        let unpacked: UnpackedArchive
        do { unpacked = try CheckpointArchiveFiles.unpack(source, withoutPages: withoutPages) } catch {
            throw .invalidRequest("\(error)")
        }
        guard let imagesPath = unpacked.images else {
            unpacked.remove()
            throw Self.noImages(source, what: "archive")
        }
        root = unpacked.directory
        images = ImageDirectory(path: imagesPath)
        temporary = unpacked.directory
        packedSizes = unpacked.packedSizes
    }

    static func noImages(_ source: String, what: String) -> CheckpointError {
        .missingFile("\(ArchiveLayout.checkpointDirectory)/inventory.img", in: source,
                     reason: "a checkpoint \(what) holds CRIU's images in \(ArchiveLayout.checkpointDirectory)/, inventory.img first")
    }

    deinit { close() }

    /// Removes what opening unpacked (idempotent; deinit does it too, but exit() runs no deinit).
    public func close() {
        if let temporary { try? FS.removeAll(temporary) }
        temporary = nil
    }

    public func exists(_ name: String) -> Bool { FS.exists(root + "/" + name) }

    /// Bytes of CRIU's images, and of the saved memory among them (packed members included).
    public func imageSizes() -> (total: Int64, pages: Int64) {
        let unpackedPages = images.fileNames.filter { $0.hasPrefix("pages-") }.reduce(Int64(0)) { $0 + diskSize(images.path + "/" + $1) }
        let packed = packedSizes.values.reduce(0, +)
        return (diskSize(images.path) + packed, unpackedPages + packed)
    }

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
    do { return try CheckpointArchiveFiles.temporaryDirectory(prefix) } catch {
        throw .invalidRequest("\(error)")
    }
}

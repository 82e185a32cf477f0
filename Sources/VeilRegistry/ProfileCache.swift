import FoundationEssentials
import Glibc
import VeilLinux

/// Pulled artifacts on disk: `blobs/sha256/<hex>` (verified on every read, removed when bad),
/// `refs/<key>.json` (a profile reference → its digests and when they were fetched) and
/// `images/<key>.json` (an image reference → its manifest's annotations). Writes go through a
/// temp file and rename; a per-reference flock serialises concurrent pulls of one reference.
struct ProfileCache {
    let directory: String

    struct ProfileEntry: Codable {
        var reference: String
        var manifestDigest: String
        var layerDigest: String
        var layerSize: Int
        var layerMediaType: String?
        var configMediaType: String
        var artifactType: String?
        var fetchedAt: Double
    }

    struct ImageEntry: Codable {
        var reference: String
        var manifestDigest: String
        var annotations: [String: String]
        var fetchedAt: Double
    }

    /// nil when the directory cannot be made (then pulls go uncached rather than fail).
    init?(directory: String) {
        self.directory = directory
        for sub in ["", "/blobs/sha256", "/refs", "/images", "/locks"] {
            let path = directory + sub
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                return nil
            }
        }
    }

    static func key(_ reference: String) -> String { SHA256.hex(reference) }

    func withLock<T>(_ reference: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let path = directory + "/locks/" + Self.key(reference) + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }

    func blobPath(_ digest: String) -> String { directory + "/blobs/sha256/" + digest.dropFirst("sha256:".count) }

    /// The blob if present and intact; a file whose content does not match its name is removed.
    func readBlob(_ digest: String, limit: Int) -> [UInt8]? {
        guard ImageReference.isSHA256Digest(digest) else { return nil }
        let path = blobPath(digest)
        guard let bytes = readFile(path, limit: limit) else { return nil }
        guard "sha256:" + SHA256.hex(bytes) == digest else {
            unlink(path)
            return nil
        }
        return bytes
    }

    func writeBlob(_ bytes: [UInt8], digest: String) {
        guard ImageReference.isSHA256Digest(digest) else { return }
        writeFile(blobPath(digest), bytes)
    }

    func profileEntry(_ reference: String) -> ProfileEntry? { entry("refs", reference) }
    func imageEntry(_ reference: String) -> ImageEntry? { entry("images", reference) }
    func store(_ entry: ProfileEntry) { store("refs", entry.reference, entry) }
    func store(_ entry: ImageEntry) { store("images", entry.reference, entry) }

    private func entry<T: Decodable>(_ kind: String, _ reference: String) -> T? {
        let path = directory + "/" + kind + "/" + Self.key(reference) + ".json"
        guard let bytes = readFile(path, limit: 1 << 20) else { return nil }
        guard let value = try? JSONDecoder().decode(T.self, from: Data(bytes)) else {
            unlink(path)
            return nil
        }
        return value
    }

    private func store<T: Encodable>(_ kind: String, _ reference: String, _ value: T) {
        guard let data = try? JSONEncoder().encode(value) else { return }
        writeFile(directory + "/" + kind + "/" + Self.key(reference) + ".json", Array(data))
    }

    private func readFile(_ path: String, limit: Int) -> [UInt8]? { readSmallFile(path, limit: limit, followLinks: false) }

    /// Through a temporary file and rename (no fsync: the cache is a cache); a failed write is a miss next time.
    private func writeFile(_ path: String, _ bytes: [UInt8]) {
        try? FS.writeAtomically(path, bytes, mode: 0o600)
    }
}

/// A whole file of at most `limit` bytes with plain reads (works for /dev/null and pipes too);
/// nil when it cannot be opened or read, or is larger.
func readSmallFile(_ path: String, limit: Int, followLinks: Bool = true) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW))
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return bytes }
        bytes += chunk[0..<count]
        if bytes.count > limit { return nil }
    }
}

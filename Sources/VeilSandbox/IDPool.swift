import Glibc
import VeilLinux

/// Host uid/gid ranges for sandboxes' user namespaces: container ids 0..<blockSize map to
/// `start + slot * blockSize`. A slot is taken by creating `<directory>/<slot>` exclusively
/// (atomic across concurrent `veil create`s) and freed by removing it on delete.
public struct IDPool: Sendable, Equatable {
    public var directory: String
    public var start: UInt32
    public var blockSize: UInt32
    public var slots: UInt32

    /// 2^30 up: far above any distribution's system and login users, and subuid ranges handed out by useradd.
    public static let `default` = IDPool(directory: "/run/veil-idpool", start: 1 << 30, blockSize: 65536, slots: 8192)

    public init(directory: String, start: UInt32, blockSize: UInt32, slots: UInt32) {
        self.directory = directory
        self.start = start
        self.blockSize = blockSize
        self.slots = slots
    }

    /// `START:SLOTS` (block size 65536), e.g. from `--id-pool` or VEIL_ID_POOL.
    public static func parse(_ text: String, directory: String = IDPool.default.directory) -> IDPool? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let start = UInt32(parts[0]), let slots = UInt32(parts[1]), slots > 0,
              UInt64(start) + UInt64(slots) * 65536 <= UInt64(UInt32.max) else { return nil }
        return IDPool(directory: directory, start: start, blockSize: 65536, slots: slots)
    }

    public func hostID(slot: UInt32) -> UInt32 { start + slot * blockSize }

    /// Takes the first free slot for `owner` (a container's state directory). A slot whose owner
    /// directory no longer exists was left by a crash and is taken over. The whole pass holds the
    /// pool's lock, so two creates never take, or reclaim, the same slot: a reclaimed slot names
    /// its new owner before the lock is let go, and is reclaimed once.
    public func allocate(owner: String) throws(LinuxError) -> UInt32 {
        try FS.mkdirAll(directory, mode: 0o700)
        let lock = try locked()
        defer { close(lock) }
        for slot in 0..<slots {
            let path = directory + "/\(slot)"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 {
                defer { close(fd) }
                guard owner.withCString({ write(fd, $0, strlen($0)) }) == owner.utf8.count else {
                    let failure = LinuxError("write", path)
                    unlink(path)
                    throw failure
                }
                return slot
            }
            guard errno == EEXIST else { throw LinuxError("create", path) }
            if let previous = try? FS.readString(path), !previous.isEmpty, !FS.exists(previous) {
                try FS.writeAtomically(path, Array(owner.utf8), mode: 0o600)
                return slot
            }
        }
        throw LinuxError("allocate", "a uid range from \(directory) (all \(slots) in use)", errno: ENOSPC)
    }

    /// Frees `slot` if `owner` still holds it.
    public func release(slot: UInt32, owner: String) {
        guard let lock = try? locked() else { return }
        defer { close(lock) }
        let path = directory + "/\(slot)"
        if let holder = try? FS.readString(path), holder == owner { unlink(path) }
    }

    /// The pool's lock file, held exclusively (released by closing the returned fd).
    private func locked() throws(LinuxError) -> Int32 {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LinuxError("open", path) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let failure = LinuxError("flock", path)
                close(fd)
                throw failure
            }
        }
        return fd
    }
}

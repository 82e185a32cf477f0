import Foundation
import Glibc
import CVeilLinux
import VeilLinux
import VeilMountOptions

/// A plain error with a message (start/delete subcommands, helpers).
struct ShimError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}



/// Which child fds a spawned process gets: its stdio and `extra` (target fd → source fd in the parent).
struct SpawnIO {
    var stdin: Int32
    var stdout: Int32
    var stderr: Int32
    var extra: [Int32: Int32] = [:]

    /// Every child fd → its source, for VeilLinux's Spawner (which also gives the child default
    /// signal dispositions and an empty mask: the shim ignores SIGPIPE, its children must not).
    var placement: [Int32: Int32] { extra.merging([0: stdin, 1: stdout, 2: stderr]) { _, stdio in stdio } }
}

/// Reaps every child of the shim (it is a subreaper, so orphaned container processes come here
/// too) and hands each exit status to whoever watches that pid.
final class Reaper: @unchecked Sendable {
    static let shared = Reaper()

    private let lock = NSCondition()
    private var watchers: [pid_t: @Sendable (Int32) -> Void] = [:]
    /// Exits nobody watched yet (a container's init reparented to us may die before we read its
    /// pid file), with when they were seen.
    private var unclaimed: [pid_t: (status: Int32, at: Date)] = [:]
    private var started = false

    func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = "reaper"
        thread.start()
    }

    private func loop() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 {
                lock.lock()
                let watcher = watchers.removeValue(forKey: pid)
                if watcher == nil {
                    unclaimed[pid] = (status, Date())
                    if unclaimed.count > 4096 {
                        let old = Date().addingTimeInterval(-600)
                        unclaimed = unclaimed.filter { $0.value.at > old }
                    }
                }
                lock.unlock()
                watcher?(status)
            } else if errno == ECHILD {
                lock.lock()
                _ = lock.wait(until: Date().addingTimeInterval(0.05))
                lock.unlock()
            }
        }
    }

    /// Spawns a child and watches it, atomically with respect to the reaper.
    func spawn(_ path: String, _ argv: [String], io: SpawnIO, onExit: @escaping @Sendable (Int32) -> Void) throws -> pid_t {
        lock.lock()
        defer {
            lock.signal()
            lock.unlock()
        }
        let pid = try Spawner.spawn(path, argv, placing: io.placement)
        unclaimed.removeValue(forKey: pid)
        watchers[pid] = onExit
        return pid
    }

    /// Watches a process that is not our child yet (it will be reparented to us); an exit already
    /// reaped since `since` is delivered at once.
    func watch(_ pid: pid_t, since: Date, onExit: @escaping @Sendable (Int32) -> Void) {
        lock.lock()
        if let seen = unclaimed.removeValue(forKey: pid), seen.at >= since {
            lock.unlock()
            onExit(seen.status)
            return
        }
        watchers[pid] = onExit
        lock.unlock()
    }

    /// Spawns and waits for the exit status without blocking a thread.
    func run(_ path: String, _ argv: [String], io: SpawnIO) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            do {
                _ = try spawn(path, argv, io: io) { status in continuation.resume(returning: status) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// An anonymous in-memory file (captures a command's output).
func makeMemoryFile(_ name: String) throws -> Int32 {
    let fd = veil_memfd_create(name, 1 /* MFD_CLOEXEC */)
    guard fd >= 0 else { throw LinuxError("memfd_create", name) }
    return fd
}

func readWhole(_ fd: Int32) -> String {
    lseek(fd, 0, SEEK_SET)
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
        if bytes.count > 16 << 20 { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func openFD(_ path: String, _ flags: Int32) throws -> Int32 {
    let fd = open(path, flags | O_CLOEXEC)
    guard fd >= 0 else { throw LinuxError("open", path) }
    return fd
}

func setBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        guard let base = bytes.baseAddress else { return false }
        let n = write(fd, base + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

/// Unmounts everything stacked on `target` (ignores "not mounted").
func unmountAll(_ target: String) {
    for _ in 0..<16 {
        if umount2(target, 0) == 0 { continue }
        if errno == EBUSY {
            if umount2(target, Int32(MNT_DETACH)) == 0 { continue }
        }
        return
    }
}

/// Mounts one of containerd's rootfs mounts onto `target`, its options read as runc (and veil)
/// read a spec's: mount(2) flags, the rest as filesystem data. A bind mount is made read-only by
/// a remount (mount(2) ignores MS_RDONLY when binding).
func mountRootfs(type: String, source: String, options: [String], target: String) throws(LinuxError) {
    let parsed = MountOptions.parse(options)
    let isBind = parsed.isBind || type == "bind"
    let flags = isBind ? parsed.flags | MountFlag.bind : parsed.flags
    try Mounts.mount(source, target, type: isBind ? nil : type, flags: isBind ? flags & ~MountFlag.rdonly : flags,
                     data: parsed.data.isEmpty ? nil : parsed.dataString)
    if isBind && flags & MountFlag.rdonly != 0 {
        try Mounts.mount(nil, target, type: nil, flags: flags | MountFlag.remount)
    }
}

/// The veil binary: next to this executable, else on PATH.
func findVeilBinary() -> String? {
    if let exe = FS.realPath("/proc/self/exe") {
        let candidate = (exe as NSString).deletingLastPathComponent + "/veil"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
        let candidate = String(dir) + "/veil"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

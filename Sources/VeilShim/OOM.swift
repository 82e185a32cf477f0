import VeilLinux
import TTRPC
import Foundation
import CVeilLinux
import Glibc

/// Watches a container's memory cgroup for OOM kills (the `oom_kill` count of cgroup v1's
/// memory.oom_control or v2's memory.events) and reports each increase.
///
/// The thread sleeps in poll(2) until the kernel says something changed: cgroup v1 signals an
/// eventfd registered through cgroup.event_control, v2 an inotify watch on memory.events. An idle
/// container costs no wake-ups (and keeps no shim code paged in); only when neither can be set up
/// does it fall back to reading the count every 300 ms.
final class OOMWatcher: @unchecked Sendable {
    private let file: String
    private let onOOM: @Sendable () -> Void
    private let state = Locked<(count: UInt64, stopped: Bool)>((0, false))
    /// Written by stop() to end the thread's poll.
    private let stopFD: Int32

    /// The watcher for the memory cgroup `pid` is in, or nil when there is none to watch.
    init?(pid: Int32, onOOM: @escaping @Sendable () -> Void) {
        guard let file = OOMWatcher.eventsFile(pid: pid) else { return nil }
        let stopFD = veil_eventfd_cloexec(0)
        guard stopFD >= 0 else { return nil }
        self.file = file
        self.onOOM = onOOM
        self.stopFD = stopFD
        let initial = OOMWatcher.count(file) ?? 0
        state.withLock { $0.count = initial }
        let notifyFD = OOMWatcher.notification(for: file)
        let thread = Thread { [self] in
            var fds = [pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0), pollfd(fd: notifyFD, events: Int16(POLLIN), revents: 0)]
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !state.withLock({ $0.stopped }) {
                let ready = poll(&fds, notifyFD >= 0 ? 2 : 1, notifyFD >= 0 ? -1 : 300)
                if ready < 0 && errno == EINTR { continue }
                if fds[0].revents != 0 { break }
                // Drain the notification (8 bytes of eventfd counter, or inotify events).
                if notifyFD >= 0 && fds[1].revents != 0 { _ = read(notifyFD, &buffer, buffer.count) }
                check()
            }
            if notifyFD >= 0 { close(notifyFD) }
            close(stopFD)
        }
        thread.name = "oom-watch"
        thread.start()
    }

    /// Reads the count once more (an OOM kill just before the exit) and stops watching.
    func stop() {
        check()
        state.withLock { $0.stopped = true }
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    private func check() {
        guard let now = OOMWatcher.count(file) else { return }
        let increased: Bool = state.withLock { current in
            guard !current.stopped, now > current.count else { return false }
            current.count = now
            return true
        }
        if increased { onOOM() }
    }

    /// A blocking fd that becomes readable when `file`'s counters may have changed, or -1.
    private static func notification(for file: String) -> Int32 {
        if file.hasSuffix("/memory.oom_control") {
            // cgroup v1: "<eventfd> <fd of memory.oom_control>" into cgroup.event_control.
            let control = open(file, O_RDONLY | O_CLOEXEC)
            guard control >= 0 else { return -1 }
            defer { close(control) }
            let efd = veil_eventfd_cloexec(0)
            guard efd >= 0 else { return -1 }
            let directory = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
            let registration = Array("\(efd) \(control)".utf8)
            let events = open(directory + "/cgroup.event_control", O_WRONLY | O_CLOEXEC)
            let registered = events >= 0 && registration.withUnsafeBytes { writeAll(events, $0) }
            if events >= 0 { close(events) }
            guard registered else {
                close(efd)
                return -1
            }
            return efd
        }
        // cgroup v2: memory.events is modified whenever one of its counters changes.
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return -1 }
        guard inotify_add_watch(fd, file, UInt32(IN_MODIFY)) >= 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// memory.oom_control (v1) or memory.events (v2) of the memory cgroup `pid` is in.
    private static func eventsFile(pid: Int32) -> String? {
        guard let text = try? readTextFile("/proc/\(pid)/cgroup") else { return nil }
        var unified: String?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[1].split(separator: ",").contains("memory") {
                let file = "/sys/fs/cgroup/memory" + path + "/memory.oom_control"
                if access(file, R_OK) == 0 { return file }
            }
            if fields[0] == "0" && fields[1].isEmpty { unified = path }
        }
        if let unified {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                let file = base + unified + "/memory.events"
                if access(file, R_OK) == 0 { return file }
            }
        }
        return nil
    }

    /// The `oom_kill N` line's N.
    private static func count(_ file: String) -> UInt64? {
        guard let text = try? readTextFile(file) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill" { return UInt64(parts[1]) }
        }
        return nil
    }
}

import VeilLinux
import TTRPC
import Foundation
import Glibc

/// Watches a container's memory cgroup for OOM kills (the `oom_kill` count of cgroup v1's
/// memory.oom_control or v2's memory.events, polled) and reports each increase.
final class OOMWatcher: @unchecked Sendable {
    private let file: String
    private let onOOM: @Sendable () -> Void
    private let state = Locked<(count: UInt64, stopped: Bool)>((0, false))

    /// The watcher for the memory cgroup `pid` is in, or nil when there is none to watch.
    init?(pid: Int32, onOOM: @escaping @Sendable () -> Void) {
        guard let file = OOMWatcher.eventsFile(pid: pid) else { return nil }
        self.file = file
        self.onOOM = onOOM
        let initial = OOMWatcher.count(file) ?? 0
        state.withLock { $0.count = initial }
        let thread = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                check()
                usleep(300_000)
            }
        }
        thread.name = "oom-watch"
        thread.start()
    }

    /// Reads the count once more (an OOM kill just before the exit) and stops polling.
    func stop() {
        check()
        state.withLock { $0.stopped = true }
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

    /// memory.oom_control (v1) or memory.events (v2) of the memory cgroup `pid` is in.
    private static func eventsFile(pid: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
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
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill" { return UInt64(parts[1]) }
        }
        return nil
    }
}

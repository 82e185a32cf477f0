import CVeilLinux
import FoundationEssentials
import Glibc

extension Cgroup {
    /// The directory whose freezer stops this cgroup (v2: its own; v1: the freezer hierarchy's),
    /// nil without a freezer: what CRIU's --freeze-cgroup takes.
    public var freezerDirectory: String? { unifiedOnly ? paths["unified"] : paths["freezer"] }

    /// The file that freezes this cgroup: v1 freezer.state or v2 cgroup.freeze.
    private func freezerFile() throws(CgroupError) -> (path: String, v2: Bool) {
        if unifiedOnly {
            guard let dir = paths["unified"] else {
                throw CgroupError.controllerUnavailable(file: "cgroup2 hierarchy (no unified path recorded)")
            }
            return (dir + "/cgroup.freeze", true)
        }
        guard let dir = paths["freezer"] else {
            throw CgroupError.controllerUnavailable(file: "/sys/fs/cgroup/freezer (controller freezer is not mounted; needed by pause)")
        }
        return (dir + "/freezer.state", false)
    }

    /// Stops every process in the cgroup and returns once the kernel reports them frozen
    /// (v1 freezer.state FROZEN; v2 cgroup.events "frozen 1"). On timeout the cgroup is
    /// thawed again and an error names the state it was stuck in.
    public func freeze() throws(CgroupError) {
        let (file, v2) = try freezerFile()
        let deadline = monotonicSeconds() + 10
        var delay: UInt32 = 1_000
        if v2 {
            try SysFS.write(file, "1")
            let events = parentDirectory(file) + "/cgroup.events"
            while true {
                let text = try SysFS.read(events)
                if Cgroup.keyedValue(text, "frozen") == 1 { return }
                if monotonicSeconds() > deadline {
                    try? SysFS.write(file, "0")
                    throw CgroupError.freezeFailed(path: events, wanted: "frozen 1",
                                                   state: "frozen \(Cgroup.keyedValue(text, "frozen").map(String.init) ?? "?")")
                }
                usleep(delay)
                delay = min(delay * 2, 10_000)
            }
        }
        // v1: FREEZING until every task stopped; a task in an uninterruptible sleep can keep it
        // there, so the write is repeated now and then (and briefly undone, as runc does) to
        // make the kernel try again.
        var attempt = 0
        while true {
            try SysFS.write(file, "FROZEN")
            let state = try SysFS.readTrimmed(file)
            if state == "FROZEN" { return }
            if monotonicSeconds() > deadline {
                try? SysFS.write(file, "THAWED")
                throw CgroupError.freezeFailed(path: file, wanted: "FROZEN", state: state)
            }
            attempt += 1
            if attempt % 50 == 0 {
                try SysFS.write(file, "THAWED")
            }
            usleep(delay)
            delay = min(delay * 2, 10_000)
        }
    }

    /// Lets the processes run again.
    public func thaw() throws(CgroupError) {
        let (file, v2) = try freezerFile()
        if v2 {
            try SysFS.write(file, "0")
            return
        }
        try SysFS.write(file, "THAWED")
        let deadline = monotonicSeconds() + 10
        while true {
            let state = try SysFS.readTrimmed(file)
            if state == "THAWED" { return }
            if monotonicSeconds() > deadline {
                throw CgroupError.freezeFailed(path: file, wanted: "THAWED", state: state)
            }
            usleep(1_000)
        }
    }

    /// True when the cgroup is frozen (or being frozen): v1 freezer.state is FROZEN or FREEZING
    /// after a freeze request, v2 cgroup.freeze is 1. False when there is no freezer.
    public func isFrozen() -> Bool {
        guard let (file, v2) = try? freezerFile(), let state = try? SysFS.readTrimmed(file) else { return false }
        if v2 { return state == "1" }
        if state == "FROZEN" { return true }
        // FREEZING is also what a parent's freeze looks like; only our own request counts.
        if state == "FREEZING", let own = try? SysFS.readTrimmed(parentDirectory(file) + "/freezer.self_freezing") {
            return own == "1"
        }
        return false
    }

    /// Frozen for any reason, its own request or an ancestor's (v1 freezer.state not THAWED;
    /// v2 cgroup.freeze set or cgroup.events "frozen 1"): a process joining it would stop in
    /// uninterruptible sleep, and whoever waits for it with it.
    public func isFrozenByAnyone() -> Bool {
        guard let (file, v2) = try? freezerFile(), let state = try? SysFS.readTrimmed(file) else { return false }
        if !v2 { return state != "THAWED" }
        if state == "1" { return true }
        let events = (try? SysFS.readTrimmed(parentDirectory(file) + "/cgroup.events")) ?? ""
        return Self.keyedValue(events, "frozen") == 1
    }

    /// The value of `key` in a flat-keyed cgroup file ("key value" lines).
    static func keyedValue(_ text: String, _ key: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    // MARK: OOM

    /// How many processes the kernel OOM killer killed in this cgroup: v1 memory.oom_control
    /// "oom_kill N" (kernel 4.13+), v2 memory.events "oom_kill N". nil when unreadable.
    public func oomKillCount() -> UInt64? {
        let file: String
        if unifiedOnly {
            guard let dir = paths["unified"] else { return nil }
            file = dir + "/memory.events"
        } else {
            guard let dir = paths["memory"] else { return nil }
            file = dir + "/memory.oom_control"
        }
        guard let text = try? SysFS.read(file) else { return nil }
        return Cgroup.keyedValue(text, "oom_kill")
    }

    /// cgroup v1: an eventfd (close-on-exec) registered through cgroup.event_control on
    /// memory.oom_control. Reading 8 bytes from it blocks until an OOM happens in the cgroup and
    /// returns the number of OOM events since the last read. The kernel also signals it when the
    /// cgroup is removed, so after a wake-up check `exists()`. The caller owns and closes the fd.
    ///
    /// cgroup v2 has no such registration: returns nil. Use `makeMemoryEventsWatch()` there and
    /// compare `oomKillCount()` after each wake-up.
    public func makeOOMEventFD() throws(CgroupError) -> Int32? {
        if unifiedOnly { return nil }
        guard let dir = paths["memory"] else {
            throw CgroupError.controllerUnavailable(file: "/sys/fs/cgroup/memory (controller memory is not mounted; needed by OOM events)")
        }
        let control = dir + "/memory.oom_control"
        let oomFD = open(control, O_RDONLY | O_CLOEXEC)
        guard oomFD >= 0 else { throw CgroupError.io(operation: "open", path: control, errno: errno) }
        // The kernel keeps what it needs from the control file; only the eventfd stays open.
        defer { close(oomFD) }
        let efd = veil_eventfd_cloexec(0)
        guard efd >= 0 else { throw CgroupError.io(operation: "eventfd", path: control, errno: -efd) }
        do {
            try SysFS.write(dir + "/cgroup.event_control", "\(efd) \(oomFD)")
        } catch {
            close(efd)
            throw error
        }
        return efd
    }

    /// cgroup v2: an inotify fd (close-on-exec, blocking) watching memory.events for
    /// modification; it becomes readable whenever a memory event counter (low, high, max, oom,
    /// oom_kill) changes. Drain it with a read of at least 4096 bytes, then compare
    /// `oomKillCount()`. Returns nil on v1 (use `makeOOMEventFD()` there).
    public func makeMemoryEventsWatch() throws(CgroupError) -> Int32? {
        guard unifiedOnly, let dir = paths["unified"] else { return nil }
        let file = dir + "/memory.events"
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw CgroupError.io(operation: "inotify_init1", path: file, errno: errno) }
        if inotify_add_watch(fd, file, UInt32(IN_MODIFY)) < 0 {
            let err = errno
            close(fd)
            throw CgroupError.io(operation: "inotify_add_watch", path: file, errno: err)
        }
        return fd
    }
}

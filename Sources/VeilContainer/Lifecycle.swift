import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSpec

extension Runtime {
    /// `start`: releases the init blocked on the exec fifo, then runs the poststart hooks.
    public func start(id: String) throws(ContainerError) {
        try start(try store.load(id))
    }

    /// `start` of a record in hand: `run` has the one its create just wrote.
    public func start(_ record: ContainerRecord) throws(ContainerError) {
        let id = record.id
        let status = store.status(of: record)
        guard status == .created else { throw .invalidState(id: id, status: status, action: "start") }
        let fifo = store.fifoPath(id)
        let reader = try wrap("opening exec fifo") { try FileDescriptor.open(fifo, O_RDONLY | O_NONBLOCK) }
        let pidfd = try? PidFD(pid: record.pid)
        // Wait for the init's byte, or for the init to die (then the open on its side never comes).
        var fds = [pollfd(fd: reader.raw, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: pidfd?.fd.raw ?? -1, events: Int16(POLLIN), revents: 0)]
        var gotByte = false
        var failed = false
        while true {
            let r = poll(&fds, nfds_t(fds.count), 10_000)
            if r < 0 && errno == EINTR { continue }
            if r == 0 { throw .initFailed("container \"\(id)\" init did not respond to start") }
            var byte: UInt8 = 0
            if fds[0].revents & Int16(POLLIN) != 0 {
                let n = read(reader.raw, &byte, 1)
                if n == 1 {
                    // "0" when released; "E" when a startContainer hook failed.
                    if byte == UInt8(ascii: "E") { failed = true } else { gotByte = true }
                    continue
                }
                if n == 0 && gotByte { break }  // EOF after the byte: the program was exec'd
            } else if fds[0].revents & Int16(POLLHUP) != 0 && gotByte {
                break
            }
            if fds[1].revents != 0 && !gotByte {
                unlink(fifo)
                throw .initFailed("container \"\(id)\" init exited before its program started")
            }
            if fds[0].revents & Int16(POLLHUP) != 0 { usleep(1000) }
        }
        if failed {
            unlink(fifo)
            throw .initFailed("container \"\(id)\": a startContainer hook failed")
        }
        unlink(fifo)
        log.debug("start \(id): the program runs")
        HookRunner.runWarning(record.hooks?.poststart, phase: "poststart", state: store.ociState(of: record, status: .running), log: log)
    }

    public func state(id: String) throws(ContainerError) -> OCIState {
        store.ociState(of: try store.load(id))
    }

    public func list() -> [OCIState] {
        store.ids().compactMap { try? store.load($0) }.map { store.ociState(of: $0) }
    }

    public func kill(id: String, signal: Int32, all: Bool) throws(ContainerError) {
        let record = try store.load(id)
        let status = store.status(of: record)
        // runc signals whatever is left in a stopped container's cgroup with --all, and succeeds.
        if status == .stopped && all {
            for pid in (try? record.cgroup?.processes()) ?? [] { Glibc.kill(pid, signal) }
            return
        }
        // containerd's shim treats exactly this wording as "already gone".
        guard status != .stopped else { throw .notRunning(id: id) }
        if all, let cgroup = record.cgroup, let pids = try? cgroup.processes() {
            // As runc: freeze so nothing forks away meanwhile, signal everyone, thaw (a frozen
            // process cannot act on SIGKILL).
            try? cgroup.freeze()
            for pid in (try? cgroup.processes()) ?? pids { Glibc.kill(pid, signal) }
            try? cgroup.thaw()
            return
        }
        let pidfd: PidFD
        do {
            pidfd = try PidFD(pid: record.pid)
            try pidfd.signal(signal)
        } catch {
            throw error.context("signalling container \"\(id)\"")
        }
        if status == .paused && signal == SIGKILL { try? record.cgroup?.thaw() }
        // A SIGKILLed init is gone within milliseconds (its pid namespace emptied first): wait
        // for that, so `state` says stopped and a plain `delete` succeeds right after, as with runc.
        if signal == SIGKILL {
            _ = pidfd.waitExit(timeoutMs: 2000)
            log.debug("kill \(id): the init is gone")
        }
    }

    /// `delete`: a stopped or created container goes; a running one only with `force`.
    public func delete(id: String, force: Bool) throws(ContainerError) {
        let record: ContainerRecord
        do { record = try store.load(id) } catch {
            if case .notFound = error {
                // An interrupted create may leave a directory without state; clear it.
                if (try? StateStore.validate(id: id)) != nil, FS.isDirectory(store.directory(id)) {
                    try? FS.removeAll(store.directory(id))
                    return
                }
                if force { return }
            }
            throw error
        }
        let status = store.status(of: record)
        switch status {
        case .stopped:
            break
        case .created:
            killAndWait(record)
        case .running, .paused, .creating:
            guard force else { throw .invalidState(id: id, status: status, action: "delete (use --force)") }
            killAndWait(record)
        }
        try destroy(record)
        log.debug("delete \(id): deleted (was \(status.rawValue))")
    }

    func killAndWait(_ record: ContainerRecord) {
        if let cgroup = record.cgroup {
            // A frozen process cannot die: thaw first.
            if cgroup.isFrozen() { try? cgroup.thaw() }
            for pid in (try? cgroup.processes()) ?? [] { Glibc.kill(pid, SIGKILL) }
        }
        guard ProcessInfo.isAlive(record.pid, startTime: record.pidStartTime), let pidfd = try? PidFD(pid: record.pid) else { return }
        try? pidfd.signal(SIGKILL)
        _ = pidfd.waitExit(timeoutMs: 5000)
    }

    func destroy(_ record: ContainerRecord) throws(ContainerError) {
        // The warden is killed first and awaited after its /proc views and public directory are
        // unmounted (lazily, whatever it is doing), so that its exit, slow on a busy node,
        // overlaps that work. Its id range and its cgroup (a child of the container's) are given
        // back only once it is gone: no other sandbox may get those ids while it lives.
        var warden: PidFD?
        if let pid = record.wardenPid, ProcessInfo.isAlive(pid, startTime: record.wardenStartTime) {
            warden = try? PidFD(pid: pid)
            if let warden { try? warden.signal(SIGKILL) } else { Glibc.kill(pid, SIGKILL) }
        }
        if let directory = record.sandboxDirectory {
            SandboxContext.removePublicDirectory(directory)
            log.debug("delete \(record.id): the /proc views are gone")
        }
        if let warden {
            _ = warden.waitExit(timeoutMs: 2000)
            log.debug("delete \(record.id): its warden is gone")
        }
        if let slot = record.sandboxSlot { idPool.release(slot: slot, owner: store.directory(record.id)) }
        if let cgroup = record.cgroup {
            stopScope(cgroup, id: record.id)
            do { try cgroup.destroy() } catch {
                throw .cgroup(context: "removing cgroup of \"\(record.id)\"", error)
            }
            log.debug("delete \(record.id): cgroup removed")
        }
        HookRunner.runWarning(record.hooks?.poststop, phase: "poststop", state: store.ociState(of: record, status: .stopped), log: log)
        do { try FS.removeAll(store.directory(record.id)) } catch { throw error.context("removing state of \"\(record.id)\"") }
    }

    /// Foreground `run`: forwards signals to the init until it exits, then deletes the container
    /// (with `keep`, leaves it stopped, its cgroup in place, until `delete`). Returns the
    /// container's exit status (128 + signal when killed). Signals must be blocked.
    public func runForeground(id: String, created: CreatedContainer, console: FileDescriptor?, keep: Bool = false) throws(ContainerError) -> Int32 {
        let status = try supervise(pid: created.initPid, terminal: created.terminal, console: console) { () throws(ContainerError) in
            try start(created.record)
        }
        log.debug("run \(id): the container exited (status \(status))")
        // Loaded again: another command may have changed the record while the container ran.
        if !keep { try delete(id: id, force: true) }
        return status
    }

    /// A foreground restore's end, as runc's: the restored init (our child: CRIU restored it as
    /// its sibling) waited for with signals forwarded, the container deleted after; its status.
    /// Signals must be blocked since before the restore.
    public func waitRestored(_ record: ContainerRecord) throws(ContainerError) -> Int32 {
        let status = try supervise(pid: record.pid, terminal: false, console: nil) {}
        try delete(id: record.id, force: true)
        return status
    }

    /// Waits for our child `pid` (the container's init or an exec'd process), forwarding signals.
    /// With a terminal, `console` is our end of the console connection: the pty master arrives on
    /// it and is copied to and from our stdio, our terminal in raw mode meanwhile. `begin` runs
    /// once the pty is set up. Returns the shell-style exit status. Signals must be blocked.
    func supervise(pid: Int32, terminal: Bool, console: FileDescriptor?, begin: () throws(ContainerError) -> Void) throws(ContainerError) -> Int32 {
        let signals = FileDescriptor(try wrap("signalfd") { try sysNeg("signalfd") { veil_signalfd_all() } })
        var master: FileDescriptor?
        if terminal, let console {
            master = try wrap("receiving the container's pty") { try UnixSocket.receiveFD(socket: console.raw).0 }
        }
        var saved = [UInt8](repeating: 0, count: Int(veil_termios_size()))
        let rawMode = master != nil && isatty(0) == 1 && veil_make_raw(0, &saved) == 0
        defer { if rawMode { _ = veil_restore_termios(0, saved) } }
        if let master, let size = Pty.windowSize(0) { Pty.setWindowSize(master.raw, rows: size.rows, columns: size.columns) }

        try begin()
        var status: Int32 = 0
        var stdinOpen = master != nil
        var buffer = [UInt8](repeating: 0, count: 32768)
        loop: while true {
            var fds = [pollfd(fd: signals.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: master?.raw ?? -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            if fds[2].revents != 0, let m = master {
                let n = read(m.raw, &buffer, buffer.count)
                if n > 0 { writeAll(1, buffer, n) } else { master = nil }
            }
            if fds[1].revents != 0, let m = master {
                let n = read(0, &buffer, buffer.count)
                if n > 0 { writeAll(m.raw, buffer, n) } else { stdinOpen = false }
            }
            guard fds[0].revents != 0 else { continue }
            let sig = veil_signalfd_read(signals.raw)
            if sig <= 0 { continue }
            switch sig {
            case SIGCHLD:
                var raw: Int32 = 0
                var reaped = false
                while true {
                    let child = waitpid(-1, &raw, WNOHANG)
                    if child <= 0 { break }
                    if child == pid { status = Wait.statusCode(raw); reaped = true }
                }
                if reaped { break loop }
            case SIGWINCH:
                if let m = master, let size = Pty.windowSize(0) { Pty.setWindowSize(m.raw, rows: size.rows, columns: size.columns) }
            case SIGURG:
                continue
            default:
                Glibc.kill(pid, sig)
            }
        }
        // What the program wrote just before exiting is still in the pty.
        if let m = master {
            _ = veil_set_nonblocking(m.raw)
            while true {
                let n = read(m.raw, &buffer, buffer.count)
                if n <= 0 { break }
                writeAll(1, buffer, n)
            }
        }
        return status
    }
}

private func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) {
    var offset = 0
    while offset < count {
        let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

extension Runtime {
    /// Host pids of every process in the container's cgroup (`ps`, `kill --all`).
    public func processes(id: String) throws(ContainerError) -> [Int32] {
        let record = try store.load(id)
        guard let cgroup = record.cgroup else { return store.status(of: record) == .stopped ? [] : [record.pid] }
        do { return try cgroup.processes() } catch {
            throw .cgroup(context: "listing processes of \"\(id)\"", error)
        }
    }
}

import CVeilLinux
import Glibc
import VeilLinux

/// The warden: one process per sandbox (per pod) holding its seccomp listeners. It answers the
/// kernel-identity calls itself and never lets a notified call continue to the kernel (deciding
/// on memory the caller can still change would be a TOCTOU hole): every notification is either
/// emulated here or failed.
///
/// Started by `veil create` as `veil-warden <state directory> <init pid> <input directory>` while
/// the init builds its root, with the listening control socket at fd 4 and the sandbox's UTS
/// namespace at fd 5 (fd 3 a placeholder): the sandbox policy's listener, and the /proc views' FUSE
/// connection when they are a FUSE mount (see `ProcFiles`), arrive over the control socket once the
/// init has installed its filter, so the warden's exec and start-up are off the path the container
/// waits on. (Started with the first listener at fd 3 and the FUSE connection at fd 6, without an
/// input directory, it serves them at once.) `veil exec` and
/// the pod's other containers hand it their listeners over the control socket. Each listener is
/// served by its own thread, so one busy or stuck caller never delays another container's; the
/// process exits once every listener has hung up (no process is left under the filters). If the
/// warden itself dies, however (a crash, SIGTERM, even SIGKILL, through its sentinel child), the
/// containers it guards are killed: the kernel would fail their emulated calls with ENOSYS, never
/// run them unmediated, but a sandbox without its warden does not live on.
public enum Warden {
    public static let firstListenerFD: Int32 = 3
    public static let controlFD: Int32 = 4
    public static let utsNamespaceFD: Int32 = 5
    /// The sandbox's /proc views (a FUSE connection), when `veil create` could mount them.
    public static let procfsFD: Int32 = 6

    nonisolated(unsafe) static var config: WardenConfig?
    /// Listener fd → its thread, and the listeners whose filter has no process left.
    nonisolated(unsafe) static var threads: [Int32: pthread_t] = [:]
    nonisolated(unsafe) static var hungUp: Set<Int32> = []
    nonisolated(unsafe) static var lock = pthread_mutex_t()
    /// The supervising thread, woken (SIGUSR1 ends its poll) when a listener thread ends.
    nonisolated(unsafe) static var supervisor = pthread_self()

    /// Hands a sandbox member's pid to the dead man's switch (the executable's sentinel): it is
    /// killed, with its pid namespace, if the warden dies. Returns 0 or -errno.
    public typealias Guard = @convention(c) (pid_t) -> Int32
    nonisolated(unsafe) static var guardProcess: Guard = { _ in 0 }

    /// Started before its listener came (see above): until the first one does, the warden lives
    /// as long as the init (a create that failed or died before handing it over leaves no warden).
    nonisolated(unsafe) static var initBeforeListener: Int32 = -1

    /// When the warden next gives back its clean pages (`Residency.trim`, a walk of
    /// /proc/self/smaps): a moment after it took a listener, not while the container it just
    /// joined still starts on the same CPUs (a short-lived container never pays it). Read and set
    /// by the supervising thread only.
    nonisolated(unsafe) static var trimDue: UInt64?

    /// The trim, 50 ms from now.
    static func scheduleTrim() { trimDue = BootClock.now() + 50_000_000 }

    /// `initPid`: the owning container's init, guarded from the start. `awaitingListener`: the
    /// first listener (and the FUSE connection) come over the control socket, fd 3 is a placeholder.
    public static func main(inputDirectory: String, initPid: Int32?, awaitingListener: Bool = false, guardProcess: Guard) -> Never {
        Self.guardProcess = guardProcess
        if let initPid { _ = guardProcess(initPid) }
        if awaitingListener {
            close(firstListenerFD)
            if let initPid { initBeforeListener = veil_pidfd_open(initPid, 0) }
        }
        do { config = try WardenConfig.load(directory: inputDirectory) } catch {
            writeStandardError("veil-warden: \(error)\n")
            exit(1)
        }
        // nodename and domainname in uname's answer are the sandbox's own.
        let joined = veil_setns(utsNamespaceFD, 0x0400_0000 /* CLONE_NEWUTS */)
        if joined != 0 {
            writeStandardError("veil-warden: joining the sandbox's UTS namespace: \(String(cString: strerror(-joined)))\n")
        }
        close(utsNamespaceFD)
        let serveProc = config != nil && fcntl(procfsFD, F_GETFD) >= 0
        if serveProc || (awaitingListener && config != nil) { ProcFiles.load(inputDirectory: inputDirectory) }
        // Everything read from the host's side is read by now: from here on the warden is the
        // sandbox's root, confined, under its own filter. Nothing it serves runs before that.
        do { try Confinement.apply(inputDirectory: inputDirectory, initPid: initPid, config: config) } catch {
            writeStandardError("veil-warden: \(error)\n")
            exit(1)
        }
        if serveProc, let config { ProcFiles.serve(fd: procfsFD, config: config) }
        signal(SIGPIPE, SIG_IGN)
        // SIGUSR1 only interrupts a blocking call (no SA_RESTART): a listener thread's receive, the supervisor's poll.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR1, &action, nil)
        pthread_mutex_init(&lock, nil)
        supervisor = pthread_self()
        if !awaitingListener {
            serve(listener: firstListenerFD)
            scheduleTrim()
        }
        supervise()
    }

    /// The main thread: takes listeners from the control socket, notices listeners whose filter
    /// has no process left (POLLHUP) and stops their threads, and exits with the last one.
    static func supervise() -> Never {
        while true {
            pthread_mutex_lock(&lock)
            let live = threads
            let stopping = hungUp
            pthread_mutex_unlock(&lock)
            if live.isEmpty && initBeforeListener < 0 { exit(0) }
            // The listeners are waited on for hang-ups only (no events asked): the kernel's
            // notification wake-ups carry POLLIN, which such an entry filters out, so a busy
            // listener never wakes this thread, while the last task leaving a filter does at once
            // (the warden then exits before its container's delete comes to kill it). A stopped
            // thread that missed its signal is nudged every 50 ms; a second is the backstop for a
            // wake-up lost between reading `threads` and entering poll.
            let watched = live.keys.filter { !stopping.contains($0) }
            var fds = [pollfd(fd: controlFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: initBeforeListener, events: Int16(POLLIN), revents: 0)]
            fds += watched.map { pollfd(fd: $0, events: 0, revents: 0) }
            var timeout: Int32 = stopping.isEmpty ? 1000 : 50
            if let due = trimDue {
                let now = BootClock.now()
                timeout = due > now ? min(timeout, Int32((due - now) / 1_000_000) + 1) : 0
            }
            _ = poll(&fds, nfds_t(fds.count), timeout)
            if let due = trimDue, BootClock.now() >= due {
                trimDue = nil
                Residency.trim()
            }
            if fds[0].revents & Int16(POLLIN) != 0 { acceptListener() }
            // The init is gone before its listener came: nothing will.
            if fds[1].revents != 0 && live.isEmpty { exit(0) }
            pthread_mutex_lock(&lock)
            for entry in fds.dropFirst(2) where entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                hungUp.insert(entry.fd)
            }
            // Every filter without a process: nothing is left to answer, so the warden goes at once
            // rather than after each thread has seen its signal (on a busy machine each wake-up
            // waits for a time slice, and the container's delete waits for the warden).
            if !threads.isEmpty && threads.keys.allSatisfy({ hungUp.contains($0) }) { exit(0) }
            for fd in hungUp { if let thread = threads[fd] { pthread_kill(thread, SIGUSR1) } }
            pthread_mutex_unlock(&lock)
        }
    }

    static func acceptListener() {
        let connection = accept(controlFD, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        if let (fd, message) = try? UnixSocket.receiveFD(socket: connection) {
            // The /proc views' FUSE connection, from the create that started this warden early.
            if message == "procfs" {
                if let config { ProcFiles.serve(fd: fd.release(), config: config) }
                _ = "ok".withCString { write(connection, $0, 2) }
                return
            }
            // "pid:N": the process whose death ends that listener's sandbox member.
            if message.hasPrefix("pid:"), let pid = Int32(message.dropFirst(4)) { _ = guardProcess(pid) }
            serve(listener: fd.release())
            if initBeforeListener >= 0 {
                close(initBeforeListener)
                initBeforeListener = -1
            }
            _ = "ok".withCString { write(connection, $0, 2) }
            scheduleTrim()
        }
    }

    static func serve(listener: Int32) {
        // Wake-ups on the caller's CPU (Linux 6.6+); older kernels take the slower path.
        _ = veil_notify_sync_wakeup(listener)
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        let thread = startThread(fd: listener) { raw in
            Warden.loop(listener: threadFD(raw))
            return nil
        }
        if let thread { threads[listener] = thread } else { close(listener) }
    }

    /// One listener: receive, answer, repeat, until the supervisor says its filter is orphaned.
    static func loop(listener: Int32) {
        if let config {
            let responder = Responder(config: config)
            while true {
                var notification = veil_notification()
                let rc = veil_notify_receive(listener, &notification)
                if rc == 0 {
                    _ = Responder.send(responder.reply(to: notification, listener: listener), for: notification, listener: listener)
                    continue
                }
                pthread_mutex_lock(&lock)
                let stop = hungUp.contains(listener)
                pthread_mutex_unlock(&lock)
                if stop || (rc != -EINTR && rc != -ENOENT) { break }
            }
        }
        pthread_mutex_lock(&lock)
        threads[listener] = nil
        hungUp.remove(listener)
        close(listener)
        pthread_mutex_unlock(&lock)
        pthread_kill(supervisor, SIGUSR1)
    }
}

/// Emulates one notified call. Owns its buffers, so each listener thread has its own.
final class Responder {
    let config: WardenConfig
    let utsAnswer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
    let sysinfoAnswer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    let bootLog: [UInt8]
    /// Handles to the callers' memory, kept between answers.
    let memory = TaskMemory()
    /// uname's fixed fields as C strings, made once: passing the Strings themselves would convert
    /// (and allocate) four of them on every call.
    let utsFields: (sysname: UnsafeMutablePointer<CChar>?, release: UnsafeMutablePointer<CChar>?,
                    version: UnsafeMutablePointer<CChar>?, machine: UnsafeMutablePointer<CChar>?)

    init(config: WardenConfig) {
        self.config = config
        bootLog = Array(config.bootLog.utf8)
        utsFields = (strdup(config.sysname), strdup(config.release), strdup(config.version), strdup(config.machine))
    }

    deinit {
        free(utsFields.sysname)
        free(utsFields.release)
        free(utsFields.version)
        free(utsFields.machine)
        utsAnswer.deallocate()
        sysinfoAnswer.deallocate()
    }

    /// What becomes of one notified call.
    enum Reply: Equatable {
        /// The call returns this value, or fails with this errno (when not 0).
        case answer(Int64, Int32)
        /// The kernel runs the call itself (an observed call: execve, execveat).
        case proceed
    }

    /// The reply to a notification from `listener`. Only the calls the policy routes to the
    /// warden arrive here.
    func reply(to n: veil_notification, listener: Int32) -> Reply {
        if Self.isExec(n) {
            memory.forgetOnExec(of: n.pid)
            return .proceed
        }
        let (value, error) = answer(n) { bytes, address in memory.write(bytes, to: address, for: n, listener: listener) }
        return .answer(value, error)
    }

    /// Sends `reply` for `n`; 0 or -errno (ENOENT: the caller is gone).
    static func send(_ reply: Reply, for n: veil_notification, listener: Int32) -> Int32 {
        switch reply {
        case .answer(let value, let error): return veil_notify_respond(listener, n.id, value, error)
        case .proceed: return veil_notify_continue(listener, n.id)
        }
    }

    /// execve and execveat of the native architecture (the policy kills the 32-bit entry points).
    static func isExec(_ n: veil_notification) -> Bool {
        n.arch == CallRecorder.nativeArch && (n.nr == Int32(VEIL_NR_EXECVE) || n.nr == Int32(VEIL_NR_EXECVEAT))
    }

    /// Copies an answer's bytes to an address of the caller's; returns 0 or the errno to fail with.
    typealias Write = (_ bytes: UnsafeRawBufferPointer, _ address: UInt64) -> Int32

    /// The decision for one call, with the answer's bytes handed to `write` (the caller's memory
    /// in the warden, a buffer in the unit tests). Anything but the emulated calls is refused.
    func answer(_ n: veil_notification, writing write: Write) -> (Int64, Int32) {
        switch Int(n.nr) {
        case Int(VEIL_NR_UNAME): return uname(n, write)
        case Int(VEIL_NR_SYSLOG): return syslog(n, write)
        case Int(VEIL_NR_SYSINFO): return sysinfo(n, write)
        default: return (-1, ENOSYS)
        }
    }

    func uname(_ n: veil_notification, _ write: Write) -> (Int64, Int32) {
        let size = veil_sandbox_utsname(utsAnswer.baseAddress, utsAnswer.count, utsFields.sysname, utsFields.release,
                                        utsFields.version, utsFields.machine)
        guard size > 0 else { return (-1, EFAULT) }
        let error = write(UnsafeRawBufferPointer(rebasing: utsAnswer[0..<size]), n.args.0)
        return error == 0 ? (0, 0) : (-1, error)
    }

    func syslog(_ n: veil_notification, _ write: Write) -> (Int64, Int32) {
        switch Int32(truncatingIfNeeded: n.args.0) {
        case 0, 1: return (0, 0)  // close, open
        case 2, 3, 4:  // read, read all, read and clear
            let length = Int(Int32(truncatingIfNeeded: n.args.2))
            guard length >= 0 else { return (-1, EINVAL) }
            if length == 0 { return (0, 0) }
            let tail = bootLog.suffix(length)
            let error = tail.withUnsafeBytes { write($0, n.args.1) }
            return error == 0 ? (Int64(tail.count), 0) : (-1, error)
        case 5: return (0, 0)  // clear: the log is veil's and stays
        case 9: return (Int64(bootLog.count), 0)  // unread bytes
        case 10: return (Int64(max(4096, bootLog.count)), 0)  // buffer size
        default: return (-1, EPERM)  // console levels belong to the host
        }
    }

    func sysinfo(_ n: veil_notification, _ write: Write) -> (Int64, Int32) {
        let memory = SandboxMemory.read(config)
        let (total, used) = memory.totals()
        let processes = memory.processes
        let uptime = Int64((BootClock.now() &- config.bootedAt) / 1_000_000_000)
        let size = veil_fill_sysinfo(sysinfoAnswer.baseAddress, sysinfoAnswer.count, uptime, total, total - used, 0, 0,
                                     UInt16(clamping: processes ?? 1))
        guard size > 0 else { return (-1, EFAULT) }
        let error = write(UnsafeRawBufferPointer(rebasing: sysinfoAnswer[0..<size]), n.args.0)
        return error == 0 ? (0, 0) : (-1, error)
    }
}

/// A detached thread with a small stack (the warden's threads block in one call and need little)
/// running `body` on `fd` (read it back with `threadFD`); nil if none could be made.
func startThread(fd: Int32, _ body: @escaping @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?) -> pthread_t? {
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setstacksize(&attributes, 64 << 10)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    defer { pthread_attr_destroy(&attributes) }
    // The fd travels as the pointer's bit pattern, plus one so that fd 0 is not a null pointer.
    return pthread_create(&thread, &attributes, body, UnsafeMutableRawPointer(bitPattern: Int(fd) + 1)) == 0 ? thread : nil
}

func threadFD(_ raw: UnsafeMutableRawPointer?) -> Int32 { Int32(Int(bitPattern: raw) - 1) }

func writeStandardError(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}

import Glibc
import CVeilLinux

public enum ProcessInfo {
    /// /proc/PID/stat, split after the command name (which may contain spaces and parentheses).
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard let text = try? FS.readString("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// Start time in clock ticks since boot (field 22): with the pid it names one process for good.
    public static func startTime(_ pid: Int32) -> UInt64? {
        guard let fields = statFields(pid), fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Process state letter (R, S, D, Z, T, ...).
    public static func state(_ pid: Int32) -> Character? {
        statFields(pid)?.first?.first
    }

    /// The parent's pid (field 4), nil when the process is not visible here.
    public static func parent(_ pid: Int32) -> Int32? {
        guard let fields = statFields(pid), fields.count > 1 else { return nil }
        return Int32(fields[1])
    }

    /// The file name of the program the process runs (from /proc/PID/exe, else argv[0]).
    public static func programName(_ pid: Int32) -> String? {
        var path: String
        if let target = FS.readLink("/proc/\(pid)/exe") {
            path = target
            if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        } else {
            guard let argv = try? FS.readFile("/proc/\(pid)/cmdline"),
                  let first = argv.split(separator: 0, omittingEmptySubsequences: false).first, !first.isEmpty else { return nil }
            path = String(decoding: first, as: UTF8.self)
        }
        return path.split(separator: "/").last.map(String.init)
    }

    /// Alive and not a zombie, and (when given) still the process that started at `startTime`.
    public static func isAlive(_ pid: Int32, startTime: UInt64? = nil) -> Bool {
        guard pid > 0, let fields = statFields(pid), let state = fields.first?.first else { return false }
        if state == "Z" || state == "X" { return false }
        if let startTime, fields.count > 19, UInt64(fields[19]) != startTime { return false }
        return true
    }
}

public enum Signals {
    public static func kill(_ pid: Int32, _ signal: Int32) throws(LinuxError) {
        try sys("kill", "\(pid)") { Glibc.kill(pid, signal) }
    }

    /// Blocks every signal in the calling thread (and threads created later).
    public static func blockAll() { _ = veil_sigmask_block_all() }

    public static func resetAll() { veil_reset_signals() }

    /// The container init until execve: HUP, INT, QUIT, TERM, USR1, USR2 and ALRM end it (see
    /// veil_exit_on_termination_signals), as they would any process outside a PID namespace.
    public static func exitOnTermination() throws(LinuxError) {
        _ = try sysNeg("sigaction", "termination signals") { veil_exit_on_termination_signals() }
    }
}

/// A pidfd: waits for and signals a process that need not be our child, without pid-reuse races.
public final class PidFD {
    public let fd: FileDescriptor
    public let pid: Int32

    public init(pid: Int32) throws(LinuxError) {
        self.pid = pid
        fd = FileDescriptor(try sysNeg("pidfd_open", "\(pid)") { veil_pidfd_open(pid, 0) })
    }

    public func signal(_ sig: Int32) throws(LinuxError) {
        try sysNeg("pidfd_send_signal", "\(pid)") { veil_pidfd_send_signal(fd.raw, sig) }
    }

    /// Waits until the process exits (it becomes readable); false on timeout.
    public func waitExit(timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: fd.raw, events: Int16(POLLIN), revents: 0)
        while true {
            let r = poll(&p, 1, timeoutMs)
            if r < 0 && errno == EINTR { continue }
            return r > 0
        }
    }
}

public enum Wait {
    /// Exit status in the shell's convention: the code, or 128 + signal.
    public static func statusCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// Blocks for `pid`; returns its shell-style status.
    public static func waitpid(_ pid: Int32) throws(LinuxError) -> Int32 {
        var status: Int32 = 0
        try sys("waitpid", "\(pid)") { Glibc.waitpid(pid, &status, 0) }
        return statusCode(status)
    }
}

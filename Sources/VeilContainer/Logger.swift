import Glibc
import VeilLinux
import VeilSpec

/// runc's logging: errors go to stderr and, with --log, to a file as text or JSON lines
/// (containerd's shim reads the last JSON "msg" when a command fails). With --debug, each phase
/// of a command is logged at level debug with the milliseconds (to 0.01) since veil started, the trace
/// that shows where a create spends its time.
public final class Logger: @unchecked Sendable {
    public enum Format: String, Sendable { case text, json }

    let file: String?
    let format: Format
    public let debugEnabled: Bool
    private let startedMicroseconds = Clock.monotonicMicroseconds()

    public init(file: String?, format: Format, debug: Bool) {
        self.file = file
        self.format = format
        self.debugEnabled = debug
    }

    /// Creates the --log file at start, as runc does: containerd's shim opens it after every
    /// command, including those that succeed without logging anything.
    public func createFile() {
        guard let file else { return }
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd >= 0 { close(fd) }
    }

    public func error(_ message: String) { write(level: "error", message, toStderr: true) }
    public func warning(_ message: String) { write(level: "warning", message, toStderr: file == nil) }

    /// A debug line; the message is only built when --debug is on.
    public func debug(_ message: @autoclosure () -> String) {
        guard debugEnabled else { return }
        let elapsed = Clock.monotonicMicroseconds() - startedMicroseconds
        let hundredths = (elapsed + 5) / 10  // to 0.01 ms: a handoff between processes takes microseconds
        let fraction = hundredths % 100
        write(level: "debug", "\(message()) (+\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) ms)",
              toStderr: file == nil, plainStderr: false)
    }

    /// Errors and warnings go to stderr as `veil: …` for people; debug lines in logrus's text
    /// layout, as runc's, since scripts filter them by `level=`.
    private func write(level: String, _ message: String, toStderr: Bool, plainStderr: Bool = true) {
        let time = Clock.rfc3339Now()
        if toStderr {
            let line = !plainStderr ? textLine(level: level, message, time: time)
                : level == "error" ? "veil: \(message)\n" : "veil: \(level): \(message)\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        }
        guard let file else { return }
        let line: String
        switch format {
        case .json:
            line = "{\"level\":\"\(level)\",\"msg\":\(quoted(message)),\"time\":\"\(time)\"}\n"
        case .text:
            line = textLine(level: level, message, time: time)
        }
        try? FS.writeString(file, line, flags: O_WRONLY | O_CREAT | O_APPEND)
    }

    private func textLine(level: String, _ message: String, time: String) -> String {
        "time=\"\(time)\" level=\(level) msg=\(quoted(message))\n"
    }
}

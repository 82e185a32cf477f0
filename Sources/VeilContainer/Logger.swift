import Glibc
import VeilLinux
import VeilSpec

/// runc's logging: errors go to stderr and, with --log, to a file as text or JSON lines
/// (containerd's shim reads the last JSON "msg" when a command fails).
public final class Logger: @unchecked Sendable {
    public enum Format: String, Sendable { case text, json }

    let file: String?
    let format: Format
    let debugEnabled: Bool

    public init(file: String?, format: Format, debug: Bool) {
        self.file = file
        self.format = format
        self.debugEnabled = debug
    }

    public func error(_ message: String) { write(level: "error", message, toStderr: true) }
    public func warning(_ message: String) { write(level: "warning", message, toStderr: file == nil) }
    public func debug(_ message: String) { if debugEnabled { write(level: "debug", message, toStderr: file == nil) } }

    private func write(level: String, _ message: String, toStderr: Bool) {
        if toStderr {
            let line = level == "error" ? "veil: \(message)\n" : "veil: \(level): \(message)\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        }
        guard let file else { return }
        let time = Clock.rfc3339Now()
        let line: String
        switch format {
        case .json:
            line = "{\"level\":\"\(level)\",\"msg\":\(quoted(message)),\"time\":\"\(time)\"}\n"
        case .text:
            line = "time=\"\(time)\" level=\(level) msg=\(quoted(message))\n"
        }
        try? FS.writeString(file, line, flags: O_WRONLY | O_CREAT | O_APPEND)
    }
}

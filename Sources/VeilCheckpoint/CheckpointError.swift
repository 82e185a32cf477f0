/// What went wrong reading or writing a checkpoint, naming the file and the fault.
public enum CheckpointError: Error, CustomStringConvertible, Sendable {
    /// An image that is not what its name or magic says: truncated, a wrong magic, an entry that does not decode.
    case badImage(file: String, reason: String)
    /// The archive or directory lacks a file the layout needs.
    case missingFile(String, in: String, reason: String)
    /// A file that could not be read or written.
    case io(String, operation: String, errno: Int32)
    /// A tool veil runs (tar, criu) failed.
    case tool(String, status: Int32, output: String)
    /// A request that cannot be answered (an unknown pid, an address outside the dump, a bad pattern).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .badImage(let file, let reason): return "\(file): \(reason)"
        case .missingFile(let file, let place, let reason): return "\(place): no \(file) (\(reason))"
        case .io(let path, let operation, let code): return "\(operation) \(path): \(errnoDescription(code))"
        case .tool(let tool, let status, let output):
            let tail = output.split(separator: "\n").suffix(5).joined(separator: " | ")
            return "\(tool) exited with status \(status)\(tail.isEmpty ? "" : ": \(tail)")"
        case .invalidRequest(let reason): return reason
        }
    }
}

#if canImport(Glibc)
import Glibc
func errnoDescription(_ code: Int32) -> String { String(cString: strerror(code)) }
#else
func errnoDescription(_ code: Int32) -> String { "errno \(code)" }
#endif

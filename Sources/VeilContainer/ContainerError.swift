import VeilLinux
import VeilSandbox

/// What the command line reports; each case names the container, file or field at fault.
public enum ContainerError: Error, CustomStringConvertible {
    case notFound(id: String)
    case alreadyExists(id: String)
    case invalidID(id: String)
    case invalidState(id: String, status: ContainerStatus, action: String)
    case notRunning(id: String)
    /// A problem with the bundle: `file` and `field` say where.
    case invalidConfig(file: String, field: String, reason: String)
    case system(context: String, LinuxError)
    case initFailed(String)
    case hookFailed(phase: String, index: Int, path: String, reason: String)
    case unsupported(String)
    /// The sandbox level could not be set up (VeilSandbox names the field or path).
    case sandbox(SandboxError)

    public var description: String {
        switch self {
        case .notFound(let id): return "container \"\(id)\" does not exist"
        case .alreadyExists(let id): return "container with id \"\(id)\" already exists"
        case .invalidID(let id): return "invalid container id \"\(id)\": must match [A-Za-z0-9_+.-]+ and not be . or .."
        case .invalidState(let id, let status, let action): return "cannot \(action) container \"\(id)\": container is \(status.rawValue)"
        case .notRunning(let id): return "container \"\(id)\": container not running"
        case .invalidConfig(let file, let field, let reason):
            // Errors from the spec decoder already name the file and the JSON path.
            return field.isEmpty ? reason : "\(file): \(field): \(reason)"
        case .system(let context, let error): return "\(context): \(error)"
        case .initFailed(let message): return message
        case .hookFailed(let phase, let index, let path, let reason): return "\(phase) hook #\(index) (\(path)) failed: \(reason)"
        case .unsupported(let what): return what
        case .sandbox(let error): return error.description
        }
    }
}

extension Error {
    /// Wraps a lower-level failure with what veil was doing; container errors pass through.
    func context(_ what: String) -> ContainerError {
        if let error = self as? ContainerError { return error }
        if let error = self as? LinuxError { return .system(context: what, error) }
        return .initFailed("\(what): \(self)")
    }
}

/// Runs `body`, turning any failure into a ContainerError that says what was being done.
func wrap<T>(_ context: String, _ body: () throws -> T) throws(ContainerError) -> T {
    do { return try body() } catch { throw error.context(context) }
}

let O_PATH: Int32 = 0o10000000

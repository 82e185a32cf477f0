import VeilCgroups
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
    /// A cgroup operation failed: what veil was doing, and VeilCgroups' error (path, value, errno).
    case cgroup(context: String, CgroupError)
    /// A file of the container's state is unreadable.
    case corruptState(path: String, reason: String)
    /// The container's init (or an exec'd process) failed, or broke the sync protocol.
    case initFailed(String)
    case hookFailed(phase: String, index: Int, path: String, reason: String)
    case unsupported(String)
    /// The sandbox level could not be set up (VeilSandbox names the field or path).
    case sandbox(SandboxError)
    /// Anything else: what veil was doing, and the underlying error.
    case failed(context: String, cause: any Error)

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
        case .cgroup(let context, let error): return "\(context): \(error)"
        case .corruptState(let path, let reason): return "\(path) is corrupt: \(reason)"
        case .failed(let context, let cause): return "\(context): \(cause)"
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
        if let error = self as? CgroupError { return .cgroup(context: what, error) }
        if let error = self as? SandboxError { return .sandbox(error) }
        return .failed(context: what, cause: self)
    }
}

extension ContainerError {
    /// A cgroup refused linux.resources: the config's fault when a value cannot be expressed or
    /// enforced (naming `file` and `field`), the host's otherwise (`context` and the cgroup error).
    static func resources(_ error: CgroupError, file: String, field: String, context: String) -> ContainerError {
        switch error {
        case .invalidResource, .unsupported, .controllerUnavailable:
            return .invalidConfig(file: file, field: field, reason: "\(error)")
        default:
            return .cgroup(context: context, error)
        }
    }
}

/// Runs `body`, turning any failure into a ContainerError that says what was being done.
func wrap<T>(_ context: String, _ body: () throws -> T) throws(ContainerError) -> T {
    do { return try body() } catch { throw error.context(context) }
}

let O_PATH: Int32 = 0o10000000

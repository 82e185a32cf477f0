import VeilLinux

/// What making or running a sandbox can fail with; each case names the file, field or path at
/// fault and keeps the underlying error.
public enum SandboxError: Error, CustomStringConvertible {
    /// config.json asks for something the sandbox level refuses or cannot provide.
    case refused(field: String, reason: String)
    /// A host operation failed: what veil was doing, and why.
    case system(context: String, cause: any Error)
    case io(String, LinuxError)
    case corrupt(path: String, reason: String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .refused(let field, let reason): return "config.json: \(field): \(reason)"
        case .system(let context, let cause): return "\(context): \(cause)"
        case .io(let what, let error): return "\(what): \(error)"
        case .corrupt(let path, let reason): return "\(path) is corrupt: \(reason)"
        case .unsupported(let reason): return reason
        }
    }

    /// How a container the sandbox refuses can run: at the native level, which only the operator grants.
    public static let nativeRemedy = "run it native, through the operator's veil-native runtime handler (veil --isolation native)"
}

/// Runs `body`, turning a failure into a SandboxError that says what was being done.
func attempt<T>(_ context: String, _ body: () throws -> T) throws(SandboxError) -> T {
    do { return try body() } catch let error as SandboxError { throw error } catch {
        throw .system(context: context, cause: error)
    }
}

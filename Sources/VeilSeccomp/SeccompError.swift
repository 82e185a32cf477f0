/// Why a seccomp profile cannot be compiled. The description names the file and the JSON
/// path, like VeilSpec's errors: `config.json: linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
public struct SeccompError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the profile came from ("config.json").
    public let file: String
    /// jq-style path of the offending value, e.g. `linux.seccomp.syscalls[3].args[0].op`.
    public let path: String
    /// What is wrong with it.
    public let reason: String

    public init(file: String = "config.json", path: String, reason: String) {
        self.file = file
        self.path = path
        self.reason = reason
    }

    public var description: String {
        path.isEmpty ? "\(file): \(reason)" : "\(file): \(path): \(reason)"
    }
}

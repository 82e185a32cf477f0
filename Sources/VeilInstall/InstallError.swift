import VeilLinux

/// Why `veil install` / `uninstall` refused or failed. Every case names the file it is about.
public enum InstallError: Error, CustomStringConvertible, Equatable {
    /// The file is not valid TOML: TOMLKit's message and position.
    case tomlSyntax(file: String, message: String, line: Int, column: Int)
    /// The file is not valid JSON.
    case jsonSyntax(file: String, message: String, offset: Int)
    /// A key holds a value of the wrong type or an unsupported value.
    case badValue(file: String, key: String, message: String)
    /// A system call on a file failed.
    case io(file: String, message: String)
    /// A command-line value is not usable.
    case usage(String)
    /// The state file that records installs is unreadable.
    case state(file: String, message: String)

    public var description: String {
        switch self {
        case .tomlSyntax(let file, let message, let line, let column):
            return "\(file): line \(line), column \(column): \(message)"
        case .jsonSyntax(let file, let message, let offset):
            return "\(file): byte \(offset): \(message)"
        case .badValue(let file, let key, let message):
            return "\(file): \(key): \(message)"
        case .io(let file, let message):
            return "\(file): \(message)"
        case .usage(let message):
            return message
        case .state(let file, let message):
            return "\(file): \(message)"
        }
    }

    static func io(_ error: LinuxError, file: String) -> InstallError {
        .io(file: file, message: error.description)
    }
}

import ArgumentParser
import Glibc
import VeilLinux

/// `veil verify` runs the `veil-verify` binary installed beside veil (or found on PATH), which holds
/// the CRI client: linking gRPC, HTTP/2 and BoringSSL into veil itself made every command start
/// slower (about 57,000 more relocations to apply at each exec).
enum VerifyCommand {
    static let binaryName = "veil-verify"

    /// Replaces this process with veil-verify; returns only by exiting with an error.
    static func exec(_ arguments: [String]) -> Never {
        var candidates: [String] = []
        if let exe = FS.readLink("/proc/self/exe"), let slash = exe.lastIndex(of: "/") {
            candidates.append(String(exe[..<slash]) + "/" + binaryName)
        }
        if let path = getenv("PATH") {
            candidates += String(cString: path).split(separator: ":").map { String($0) + "/" + binaryName }
        }
        guard let binary = candidates.first(where: { access($0, X_OK) == 0 }) else {
            writeError("veil: verify needs the \(binaryName) binary beside veil (\(candidates.first ?? binaryName)) or on PATH\n")
            exit(1)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = (["veil verify"] + arguments).map { strdup($0) } + [nil]
        execv(binary, &argv)
        writeError("veil: exec \(binary): \(String(cString: strerror(errno)))\n")
        exit(1)
    }
}

/// Listed in `veil --help`; main.swift execs veil-verify before the parser sees the arguments.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Run a throw-away pod through the node's CRI endpoint with veil's runtime handler and check it (runs veil-verify).")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws { VerifyCommand.exec(arguments) }
}

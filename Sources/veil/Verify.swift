import ArgumentParser
import Glibc
import VeilLinux

/// Commands whose code lives in a binary of its own, installed beside veil (or found on PATH):
/// `veil verify` runs `veil-verify`, which holds the CRI client (linking gRPC, HTTP/2 and BoringSSL
/// into veil itself made every command start slower: about 57,000 more relocations to apply at each
/// exec); `veil checkpoint inspect|memparse|dump|coredump` run `veil-checkpoint`, which holds protobuf
/// and CRIU's image messages (each of their types adds conformance records that veil's start-up would scan).
enum HelperCommand {
    /// Replaces this process with `binaryName`, argv[0] `veil <command>`; returns only by exiting with an error.
    static func exec(_ binaryName: String, command: String, _ arguments: [String]) -> Never {
        var candidates: [String] = []
        if let exe = FS.readLink("/proc/self/exe"), let slash = exe.lastIndex(of: "/") {
            candidates.append(String(exe[..<slash]) + "/" + binaryName)
        }
        if let path = getenv("PATH") {
            candidates += String(cString: path).split(separator: ":").map { String($0) + "/" + binaryName }
        }
        guard let binary = candidates.first(where: { access($0, X_OK) == 0 }) else {
            writeError("veil: \(command) needs the \(binaryName) binary beside veil (\(candidates.first ?? binaryName)) or on PATH\n")
            exit(1)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = (["veil \(command)"] + arguments).map { strdup($0) } + [nil]
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

    func run() throws { HelperCommand.exec("veil-verify", command: "verify", arguments) }
}

import ArgumentParser
import Glibc
import VeilContainer
import VeilLinux

/// `veil seccomp record`: runs a bundle in the foreground like `veil run`, in record mode, and
/// writes the OCI seccomp profile of the system calls it made once it exits.
struct SeccompRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a container in the foreground and write the seccomp profile of the system calls it made.",
        discussion: "The profile (defaultAction SCMP_ACT_ERRNO, one SCMP_ACT_ALLOW rule) lists every call the container's processes made, "
            + "and the runtime's own needs, sorted. Record mode is not a security boundary: calls run as they would unconfined, "
            + "except those another filter refuses, which are not recorded.")
    @Option(name: [.short, .long], help: "The bundle directory (default: the current directory).") var bundle: String = "."
    @Option(name: [.short, .long], help: "Where to write the profile (default: seccomp-<ID>.json in the current directory).") var output: String?
    @Option(name: .long, help: "Write the init's pid to this file.") var pidFile: String?
    @Argument(help: "The container id.") var id: String

    func run() throws {
        do {
            let runtime = try Context.runtime()
            blockAllSignals()
            var options = CreateOptions(bundle: bundle)
            options.pidFile = pidFile
            let target = output ?? "seccomp-\(id).json"
            options.seccompRecordOutput = target
            // The recorder's messages on our stderr, unless that cannot be reopened (a socket).
            var st = stat()
            if fstat(2, &st) == 0 && (st.st_mode & S_IFMT) != S_IFSOCK { options.seccompRecordLog = "/proc/\(getpid())/fd/2" }
            let console = try SyncSocket.pair()
            options.consoleConnection = console.1.fd.raw
            let created = try runtime.create(id: id, options: options)
            console.1.fd.close()
            // A pidfd now, while the recorder surely runs: the foreground loop reaps every child.
            let recorder = try created.recorderPid.map { (pid) throws in try PidFD(pid: pid) }
            let status = try runtime.runForeground(id: id, created: created, console: console.0.fd)
            if let recorder, !recorder.waitExit(timeoutMs: 60_000) {
                throw Failure(message: "the seccomp recorder (pid \(recorder.pid)) did not finish within a minute")
            }
            guard access(target, F_OK) == 0 else {
                throw Failure(message: "the seccomp recorder wrote no profile to \(target)")
            }
            Glibc.exit(status)
        } catch { Context.fail(error) }
    }
}

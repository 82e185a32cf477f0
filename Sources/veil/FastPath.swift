import Glibc
import VeilContainer
import VeilSpec

/// The commands containerd's shim, scripts and benchmarks run thousands of times, in the exact
/// shapes they use (`create --bundle B --pid-file P [--console-socket S] ID`, `run [-d] [--keep]
/// [--bundle B] ID`, `start ID`, `state ID`, `kill [--all] ID [SIG]`, `delete [--force] ID`,
/// `pause ID`, `resume ID`), parsed by hand: building swift-argument-parser's command tree and
/// the help check cost ~2-4 ms in this large static binary (every first dynamic cast of a type
/// scans all of its protocol conformances), more than the work itself.
/// Anything else (help, unknown flags, other commands) returns false and goes to the full parser,
/// which has the same semantics and the error messages.
enum FastPath {
    static func run(_ args: [String]) -> Bool {
        guard let command = args.first else { return false }
        if command == "exec" { return exec(args) }
        var positional: [String] = []
        var flags: [String: String] = [:]
        let valued: Set<String> = ["--bundle", "-b", "--pid-file", "--console-socket"]
        let boolean: Set<String> = ["--all", "-a", "--force", "-f", "--no-pivot", "--no-new-keyring", "--detach", "-d", "--keep", "--no-subreaper"]
        var index = 1
        while index < args.count {
            let arg = args[index]
            if arg.hasPrefix("-") {
                let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
                if valued.contains(parts[0]) {
                    if parts.count == 2 { flags[parts[0]] = parts[1] } else {
                        index += 1
                        guard index < args.count else { return false }
                        flags[parts[0]] = args[index]
                    }
                } else if boolean.contains(arg) {
                    flags[arg] = ""
                } else {
                    return false
                }
            } else {
                positional.append(arg)
            }
            index += 1
        }
        let allowed: [String: Set<String>] = [
            "create": ["--bundle", "-b", "--pid-file", "--console-socket", "--no-pivot", "--no-new-keyring"],
            "run": ["--bundle", "-b", "--pid-file", "--console-socket", "--no-pivot", "--no-new-keyring", "--detach", "-d", "--keep", "--no-subreaper"],
            "start": [], "state": [], "pause": [], "resume": [],
            "kill": ["--all", "-a"], "delete": ["--force", "-f"],
        ]
        guard let permitted = allowed[command], Set(flags.keys).isSubset(of: permitted) else { return false }
        let expected = command == "kill" ? 1...2 : 1...1
        guard expected.contains(positional.count) else { return false }
        let id = positional[0]
        if command == "run" {  // makes its own runtime
            Run.execute(id: id, options: createOptions(flags), detach: flags["--detach"] != nil || flags["-d"] != nil,
                        keep: flags["--keep"] != nil)
        }
        do {
            let runtime = try Context.runtime()
            switch command {
            case "create":
                _ = try runtime.create(id: id, options: createOptions(flags))
            case "start": try runtime.start(id: id)
            case "state": try State.print(runtime.state(id: id))
            case "pause": try runtime.pause(id: id)
            case "resume": try runtime.resume(id: id)
            case "kill":
                let name = positional.count > 1 ? positional[1] : "SIGTERM"
                guard let signal = SignalName.parse(name) else { throw Failure(message: "invalid signal \"\(name)\"") }
                try runtime.kill(id: id, signal: signal, all: flags["--all"] != nil || flags["-a"] != nil)
            case "delete": try runtime.delete(id: id, force: flags["--force"] != nil || flags["-f"] != nil)
            default: return false
            }
        } catch {
            Context.fail(error)
        }
        return true
    }

    /// `exec [-d|--detach] [--pid-file F] [-p|--process P] [--console-socket S] [-t|--tty] ID [CMD...]`:
    /// flags before the id only, everything after it is the command (as the full parser takes it).
    private static func exec(_ args: [String]) -> Bool {
        var request = ExecRequest(id: "")
        var index = 1
        while index < args.count, args[index].hasPrefix("-") {
            let parts = args[index].split(separator: "=", maxSplits: 1).map(String.init)
            func value() -> String? {
                if parts.count == 2 { return parts[1] }
                index += 1
                return index < args.count ? args[index] : nil
            }
            switch parts[0] {
            case "--detach", "-d": guard parts.count == 1 else { return false }; request.detach = true
            case "--tty", "-t": guard parts.count == 1 else { return false }; request.tty = true
            case "--pid-file": guard let v = value() else { return false }; request.pidFile = v
            case "--process", "-p": guard let v = value() else { return false }; request.process = v
            case "--console-socket": guard let v = value() else { return false }; request.consoleSocket = v
            default: return false
            }
            index += 1
        }
        // No id, or a `--` whose meaning the full parser owns.
        guard index < args.count, index + 1 == args.count || args[index + 1] != "--" else { return false }
        request.id = args[index]
        request.command = Array(args[(index + 1)...])
        request.run()
    }

    private static func createOptions(_ flags: [String: String]) -> CreateOptions {
        var options = CreateOptions(bundle: flags["--bundle"] ?? flags["-b"] ?? ".")
        options.pidFile = flags["--pid-file"]
        options.consoleSocket = flags["--console-socket"]
        options.noPivot = flags["--no-pivot"] != nil
        options.noNewKeyring = flags["--no-new-keyring"] != nil
        return options
    }
}

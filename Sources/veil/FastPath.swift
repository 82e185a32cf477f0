import Glibc
import VeilContainer
import VeilSpec

/// The commands containerd's shim and benchmarks run thousands of times, in the exact shapes
/// they use (`create --bundle B --pid-file P [--console-socket S] ID`, `start ID`, `state ID`,
/// `kill [--all] ID [SIG]`, `delete [--force] ID`, `pause ID`, `resume ID`), parsed by hand:
/// building swift-argument-parser's command tree costs ~1.4 ms, more than the work itself.
/// Anything else (help, unknown flags, other commands) returns false and goes to the full parser,
/// which has the same semantics and the error messages.
enum FastPath {
    static func run(_ args: [String]) -> Bool {
        guard let command = args.first else { return false }
        var positional: [String] = []
        var flags: [String: String] = [:]
        let valued: Set<String> = ["--bundle", "-b", "--pid-file", "--console-socket"]
        let boolean: Set<String> = ["--all", "-a", "--force", "-f", "--no-pivot", "--no-new-keyring"]
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
            "start": [], "state": [], "pause": [], "resume": [],
            "kill": ["--all", "-a"], "delete": ["--force", "-f"],
        ]
        guard let permitted = allowed[command], Set(flags.keys).isSubset(of: permitted) else { return false }
        let expected = command == "kill" ? 1...2 : 1...1
        guard expected.contains(positional.count) else { return false }
        let id = positional[0]
        do {
            let runtime = try Context.runtime()
            switch command {
            case "create":
                var options = CreateOptions(bundle: flags["--bundle"] ?? flags["-b"] ?? ".")
                options.pidFile = flags["--pid-file"]
                options.consoleSocket = flags["--console-socket"]
                options.noPivot = flags["--no-pivot"] != nil
                options.noNewKeyring = flags["--no-new-keyring"] != nil
                _ = try runtime.create(id: id, options: options)
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
}

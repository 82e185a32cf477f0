import ArgumentParser
import VeilSeccomp

/// Help and version in runc's layout (NAME / USAGE / COMMANDS / GLOBAL OPTIONS, `-v` lines),
/// because people and scripts read runc's and grep them; swift-argument-parser's own layout
/// is kept for nothing but the option tables it renders.
enum RuncStyleHelp {
    static let version = "0.1.0"
    static let specVersion = "1.1.0"

    /// What `veil -v` prints: runc's lines, with veil's name.
    static var versionText: String {
        let seccomp = SeccompFeatures.libseccompVersion
        return """
            veil version \(version)
            commit: \(version)
            spec: \(specVersion)
            libseccomp: \(seccomp.major).\(seccomp.minor).\(seccomp.micro)

            """
    }

    /// The commands' names (with aliases) and summaries, in the order `veil -h` lists them.
    static var commands: [(names: [String], abstract: String, type: ParsableCommand.Type)] {
        Veil.configuration.subcommands.map { type in
            ([type._commandName] + type.configuration.aliases, type.configuration.abstract, type)
        }
    }

    static func command(named name: String) -> ParsableCommand.Type? {
        commands.first { $0.names.contains(name) }?.type
    }

    static let globalOptions: [(String, String)] = [
        ("--debug", "enable debug logging (a line per phase, with the milliseconds since start)"),
        ("--log value", "set the log file to write veil's logs to (default is '/dev/stderr')"),
        ("--log-format value", "set the log format ('text' (default), or 'json') (default: \"text\")"),
        ("--root value", "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/veil\")"),
        ("--systemd-cgroup", "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:veil:434234\""),
        ("--isolation value", "the operator's isolation level, 'native' or 'sandbox' (default: \"sandbox\"; \"native\" when started as veil-native)"),
        ("--allow-lower-isolation", "let config.json's dev.veil.isolation annotation lower the level (it may always raise it)"),
        ("--sandbox-device value", "a host device a sandbox may receive beyond the default set (repeatable)"),
        ("--allow-systemd-properties", "let config.json set any org.systemd.property.* unit property at the sandbox level (default: timeouts, ordering, collection only)"),
        ("--allow-seccomp-record", "let config.json's dev.veil.seccomp-record annotation record the container's system calls (off by default)"),
        ("--help, -h", "show help"),
        ("--version, -v", "print the version"),
    ]

    static var topLevel: String {
        var text = """
            NAME:
               veil - \(Veil.configuration.abstract)

            veil runs OCI bundles as runc does, with the same commands and flags, at one of two
            isolation levels: "sandbox" (the default: the container's root is nobody on the host,
            and a warden answers the kernel calls the sandbox policy does not let through) or
            "native" (runc's semantics).

            To start a new instance of a container:

                # veil run [ -b bundle ] <container-id>

            USAGE:
               veil [global options] command [command options] [arguments...]

            VERSION:
               \(versionText.dropFirst("veil version ".count).dropLast())

            COMMANDS:

            """
        var rows = commands.map { ($0.names.joined(separator: ", "), $0.abstract) }
        rows.append(("help, h", "Shows a list of commands or help for one command"))
        text += table(rows)
        text += "\nGLOBAL OPTIONS:\n" + table(globalOptions)
        return text
    }

    /// A command's help: NAME and USAGE as runc writes them, then the argument and option tables.
    static func forCommand(_ type: ParsableCommand.Type) -> String {
        let generated = Veil.helpMessage(for: type, columns: 100)
        var out = "NAME:\n   veil \(type._commandName) - \(type.configuration.abstract)\n"
        for line in generated.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("OVERVIEW:") || line.contains("--version") { continue }
            if line.hasPrefix("USAGE: ") {
                out += "\nUSAGE:\n   " + line.dropFirst("USAGE: ".count) + "\n"
            } else if line.hasSuffix(":") && !line.hasPrefix(" ") {
                out += "\n" + line + "\n"
            } else if line.hasPrefix("  ") {
                out += " " + line + "\n"
            }
        }
        return out
    }

    private static func table(_ rows: [(String, String)]) -> String {
        let width = (rows.map(\.0.count).max() ?? 0) + 2
        return rows.map { "   " + $0.0 + String(repeating: " ", count: width - $0.0.count) + $0.1 + "\n" }.joined()
    }

    /// Handles help and version requests the way runc does; nil when `args` asks for neither.
    /// Returns the text to print and the exit status.
    static func handle(_ args: [String]) -> (text: String, toStderr: Bool, status: Int32)? {
        guard let first = args.first else { return (topLevel, false, 0) }
        switch first {
        case "-v", "--version": return (versionText, false, 0)
        case "-h", "--help": return (topLevel, false, 0)
        case "help", "h":
            guard args.count > 1 else { return (topLevel, false, 0) }
            guard let type = command(named: args[1]) else { return noTopic(args[1]) }
            return (forCommand(type), false, 0)
        default:
            guard let type = command(named: first) else {
                return first.hasPrefix("-") ? nil : noTopic(first)
            }
            // `-h` among the command's own flags, before its first argument (`exec ID sh -h` is the container's).
            for arg in args.dropFirst() {
                if arg == "-h" || arg == "--help" { return (forCommand(type), false, 0) }
                if !arg.hasPrefix("-") || arg == "--" { break }
            }
            return nil
        }
    }

    /// runc's answer to an unknown command (urfave/cli's), exit status 3.
    private static func noTopic(_ name: String) -> (String, Bool, Int32) {
        ("veil: No help topic for '\(name)'; \"veil --help\" lists the commands\n", true, 3)
    }
}

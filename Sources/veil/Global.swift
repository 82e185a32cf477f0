import Glibc
import VeilContainer
import VeilRegistry
import VeilSpec

/// runc's global flags come before the command name; they are read here so every command sees them.
struct GlobalOptions {
    var root = "/run/veil"
    var logFile: String?
    var logFormat = Logger.Format.text
    var debug = false
    var systemdCgroup = false
    /// `--isolation native|sandbox`: the operator's level, a floor that config.json's annotation may only raise.
    var isolation: IsolationLevel?
    /// `--sandbox-device PATH` (repeatable): host devices a sandbox may receive beyond the default set.
    var sandboxDevices: Set<String> = []
    /// `--allow-lower-isolation`: config.json's annotation may also lower the level (off by default:
    /// CRI fills annotations from pods, which tenants write).
    var allowLowerIsolation = false
    /// `--allow-systemd-properties`: at the sandbox level config.json may set any org.systemd.property.*
    /// unit property (off by default: CRI-O before 1.30 copies pod annotations there).
    var allowSystemdProperties = false
    /// `--allow-seccomp-record`: config.json's dev.veil.seccomp-record annotation may put a container
    /// in record mode (off by default: the profile is written on the host).
    var allowSeccompRecord = false
    /// `--seccomp-artifacts=false` switches off profiles named by annotation and pulled from registries.
    var seccompArtifacts = true
    /// `--seccomp-artifacts-from-images`: also read those annotations from the image's manifest.
    var seccompArtifactsFromImages = false
    /// `--registries-conf`, `--registry-auth-file`, `--registry-cert-dir`: how registries are reached.
    var registriesConf: String?
    var registryAuthFile: String?
    var registryCertDirectory: String?

    /// The program name that means `--isolation native`: an operator's symbolic link to veil, for
    /// runtimes that take a binary path and no arguments (CRI-O's runtime_path, podman --runtime,
    /// containerd's runc shim BinaryName).
    static let nativeProgramName = "veil-native"

    /// What the name veil was started under says: `veil-native` is `--isolation native`, unless
    /// the command line names a level itself.
    mutating func apply(programName argv0: String) {
        let base = argv0.split(separator: "/").last.map(String.init) ?? argv0
        if base == Self.nativeProgramName && isolation == nil { isolation = .native }
    }

    /// Splits `args` (without argv[0]) into the global options and the command's own arguments.
    static func parse(_ args: [String]) -> Result<(GlobalOptions, [String]), UsageError> {
        var options = GlobalOptions()
        var index = 0
        func value(_ name: String, inline: String?) -> Result<String, UsageError> {
            if let inline { return .success(inline) }
            index += 1
            guard index < args.count else { return .failure(UsageError("flag needs an argument: \(name)")) }
            return .success(args[index])
        }
        while index < args.count, args[index].hasPrefix("-"), args[index] != "-" {
            let arg = args[index]
            let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0].hasPrefix("--") ? String(parts[0].dropFirst(2)) : String(parts[0].dropFirst(1))
            let inline = parts.count > 1 ? parts[1] : nil
            switch name {
            case "root":
                switch value(arg, inline: inline) { case .success(let v): options.root = v; case .failure(let e): return .failure(e) }
            case "log":
                switch value(arg, inline: inline) { case .success(let v): options.logFile = v; case .failure(let e): return .failure(e) }
            case "log-format":
                switch value(arg, inline: inline) {
                case .success(let v):
                    guard let format = Logger.Format(rawValue: v) else { return .failure(UsageError("invalid log format \"\(v)\": must be text or json")) }
                    options.logFormat = format
                case .failure(let e): return .failure(e)
                }
            case "isolation":
                switch value(arg, inline: inline) {
                case .success(let v):
                    guard let level = IsolationLevel(rawValue: v) else {
                        return .failure(UsageError("invalid --isolation \"\(v)\": must be one of \(IsolationLevel.allCases.map(\.rawValue).joined(separator: ", "))"))
                    }
                    options.isolation = level
                case .failure(let e): return .failure(e)
                }
            case "sandbox-device":
                switch value(arg, inline: inline) {
                case .success(let v):
                    guard v.hasPrefix("/dev/") else { return .failure(UsageError("invalid --sandbox-device \"\(v)\": must be a path under /dev/")) }
                    options.sandboxDevices.insert(v)
                case .failure(let e): return .failure(e)
                }
            case "allow-lower-isolation", "allow-systemd-properties":
                // A security switch: `=false` must mean false, and anything else is a mistake.
                let enabled: Bool
                switch inline {
                case nil, "true": enabled = true
                case "false": enabled = false
                default: return .failure(UsageError("invalid \(arg): --\(name) takes no value (or =true, =false)"))
                }
                if name == "allow-lower-isolation" { options.allowLowerIsolation = enabled } else { options.allowSystemdProperties = enabled }
            case "allow-seccomp-record", "seccomp-artifacts", "seccomp-artifacts-from-images":
                // Switches: `=false` must mean false, and anything else is a mistake.
                let enabled: Bool
                switch inline {
                case nil, "true": enabled = true
                case "false": enabled = false
                default: return .failure(UsageError("invalid \(arg): --\(name) takes no value (or =true, =false)"))
                }
                switch name {
                case "allow-seccomp-record": options.allowSeccompRecord = enabled
                case "seccomp-artifacts": options.seccompArtifacts = enabled
                default: options.seccompArtifactsFromImages = enabled
                }
            case "registries-conf", "registry-auth-file", "registry-cert-dir":
                switch value(arg, inline: inline) {
                case .success(let v):
                    guard v.hasPrefix("/") else { return .failure(UsageError("invalid --\(name) \"\(v)\": must be an absolute path")) }
                    switch name {
                    case "registries-conf": options.registriesConf = v
                    case "registry-auth-file": options.registryAuthFile = v
                    default: options.registryCertDirectory = v
                    }
                case .failure(let e): return .failure(e)
                }
            case "debug": options.debug = true
            case "systemd-cgroup": options.systemdCgroup = true
            case "rootless", "criu":
                // Accepted for compatibility with runc's command line; their values are not used yet.
                if inline == nil && name == "criu" { index += 1 }
            case "version", "v", "help", "h":
                return .success((options, Array(args[index...])))
            default:
                return .failure(UsageError("flag provided but not defined: \(arg)"))
            }
            index += 1
        }
        return .success((options, Array(args[index...])))
    }
}

extension GlobalOptions {
    /// What create does with seccomp profiles named by annotation (nil: switched off).
    var seccompArtifactPolicy: SeccompArtifactPolicy? {
        guard seccompArtifacts else { return nil }
        var policy = SeccompArtifactPolicy()
        policy.fromImages = seccompArtifactsFromImages
        if let registriesConf { policy.registry.registriesConf = registriesConf }
        if let registryAuthFile { policy.registry.authFile = registryAuthFile }
        if let registryCertDirectory { policy.registry.certDirectory = registryCertDirectory }
        return policy
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The level settings a --debug trace starts with.
func isolationDescription(_ options: GlobalOptions) -> String {
    "root \(options.root), operator level \(options.isolation?.rawValue ?? "sandbox (default)")"
        + (options.allowLowerIsolation ? ", annotations may lower it" : "")
}

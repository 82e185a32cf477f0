import ArgumentParser
import Glibc
import VeilInstall

/// The flags `install` and `uninstall` share: what to register veil with, and where things go.
struct InstallTargets: ParsableArguments {
    @Flag(help: "containerd's CRI plugin (config.toml, version 1, 2 or 3).") var containerd = false
    @Option(name: .customLong("config"), help: "containerd's config file.") var config: String = InstallOptions.defaultContainerdConfig
    @Flag(help: "CRI-O (a drop-in under --crio-dir).") var crio = false
    @Option(name: .customLong("crio-dir"), help: "CRI-O's drop-in directory.") var crioDir: String = "/etc/crio/crio.conf.d"
    @Flag(help: "Docker (daemon.json).") var docker = false
    @Option(name: .customLong("docker-config"), help: "Docker's daemon.json.") var dockerConfig: String = "/etc/docker/daemon.json"
    @Option(help: "Where the binaries go.") var prefix: String = "/usr/local/bin"
    @Option(name: .customLong("runtime-name"), help: "The runtime (handler) name.") var runtimeName: String = "veil"
    @Flag(name: .customLong("no-binaries"), help: "Leave the binaries alone.") var noBinaries = false
    @Flag(name: .customLong("no-restart"), help: "Do not restart or reload the daemons.") var noRestart = false
    @Flag(name: .customLong("dry-run"), help: "Print what would change (a diff for configs); write nothing.") var dryRun = false

    func options() -> InstallOptions {
        var o = InstallOptions()
        o.containerd = containerd
        o.containerdConfig = config
        o.crio = crio
        o.crioDirectory = crioDir
        o.docker = docker
        o.dockerConfig = dockerConfig
        o.prefix = prefix
        o.runtimeName = runtimeName
        o.binaries = !noBinaries
        o.restart = !noRestart
        o.dryRun = dryRun
        if let state = getenv("VEIL_INSTALL_STATE"), state.pointee != 0 { o.statePath = String(cString: state) }
        return o
    }
}

struct Install: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Register veil with containerd, CRI-O or Docker and put its binaries in place.",
        discussion: """
            Idempotent: a second run changes nothing. The first edit of each file keeps a backup \
            (FILE.veil-backup-YYYYmmddHHMMSS) and is recorded in /var/lib/veil/install.json \
            ($VEIL_INSTALL_STATE), so `veil uninstall` can restore it byte for byte. \
            --kubernetes prints the RuntimeClasses (NAME and NAME-native) and writes nothing. \
            Two handlers are registered: NAME runs the sandbox level, NAME-native runs native (runc's \
            semantics); pods' dev.veil.isolation annotations do not reach veil unless --allow-lower-isolation.
            """)
    @OptionGroup var targets: InstallTargets
    @Option(name: [.customLong("config-path"), .customLong("shim-config")],
            help: "containerd: ConfigPath in the runtime's options table, the veil TOML the shim reads (isolation, allow_lower_isolation, log_level, root, binary).")
    var shimConfig: String?
    @Option(name: .customLong("isolation"),
            help: "With --config-path FILE: write FILE with `isolation = LEVEL` (native or sandbox) when it does not exist yet; uninstall removes it while unchanged.")
    var shimIsolation: String?
    @Option(name: .customLong("native-config-path"),
            help: "containerd: ConfigPath of the NAME-native handler, a TOML with isolation = \"native\" written when missing (default: veil-native.toml beside --config).")
    var nativeShimConfig: String?
    @Flag(name: .customLong("allow-lower-isolation"),
          help: "containerd, with --config-path FILE: pass pods' dev.veil.* annotations to veil and write allow_lower_isolation = true into FILE, so a pod may lower its level to native. Off by default: pods get native only through the NAME-native handler.")
    var allowLowerIsolation = false
    @Flag(name: .customLong("pass-seccomp-annotations"),
          help: "containerd: pass pods' seccomp-profile.kubernetes.cri-o.io/* annotations to veil (both handlers), so the seccomp profiles they name are pulled from registries (CRI-O's allowed_annotations has them by default).")
    var passSeccompAnnotations = false
    @Option(name: .customLong("crio-allowed-annotation"), help: "An allowed_annotations entry for CRI-O (repeatable; default seccomp-profile.kubernetes.cri-o.io).") var crioAnnotations: [String] = []
    @Flag(help: "Symbolic links to the running binaries instead of copies.") var link = false
    @Flag(help: "Print the RuntimeClasses for the handlers (NAME and NAME-native) to stdout.") var kubernetes = false
    @Option(name: .customLong("node-selector"), help: "RuntimeClass scheduling.nodeSelector entry key=value (repeatable).") var nodeSelector: [String] = []
    @Option(help: "RuntimeClass toleration key[=value][:Effect] (repeatable).") var toleration: [String] = []
    @Option(name: .customLong("overhead-cpu"), help: "RuntimeClass overhead.podFixed.cpu (e.g. 100m).") var overheadCPU: String?
    @Option(name: .customLong("overhead-memory"), help: "RuntimeClass overhead.podFixed.memory (e.g. 64Mi).") var overheadMemory: String?

    func run() throws {
        do {
            var options = targets.options()
            options.shimConfig = shimConfig
            options.shimIsolation = shimIsolation
            options.nativeShimConfig = nativeShimConfig
            options.allowLowerIsolation = allowLowerIsolation
            options.passSeccompAnnotations = passSeccompAnnotations
            options.link = link
            if !crioAnnotations.isEmpty { options.crioAnnotations = crioAnnotations.filter { !$0.isEmpty } }
            if kubernetes {
                var rc = RuntimeClassOptions()
                rc.name = options.runtimeName
                rc.handler = options.runtimeName
                rc.nodeSelector = nodeSelector
                rc.tolerations = toleration
                rc.overheadCPU = overheadCPU
                rc.overheadMemory = overheadMemory
                // Two RuntimeClasses: NAME (the sandbox) and NAME-native, which a cluster admin grants.
                let yaml = try RuntimeClassYAML.renderWithNative(rc)
                if !(options.containerd || options.crio || options.docker) {
                    writeOut(yaml)
                    return
                }
                let report = try Installer(options: options).install()
                InstallCommand.print(report, toStderr: true)
                writeOut(yaml)
                InstallCommand.finish(report)
                return
            }
            let report = try Installer(options: options).install()
            InstallCommand.print(report)
            InstallCommand.finish(report)
        } catch { Context.fail(error) }
    }
}

struct Uninstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall", abstract: "Undo `veil install`: restore each config (byte for byte when it is unchanged since) and remove the binaries.")
    @OptionGroup var targets: InstallTargets
    @Flag(help: "Everything `veil install` recorded.") var all = false

    func run() throws {
        do {
            var options = targets.options()
            options.all = all
            let report = try Installer(options: options).uninstall()
            InstallCommand.print(report)
            InstallCommand.finish(report)
        } catch { Context.fail(error) }
    }
}

enum InstallCommand {
    /// Progress and diffs on stdout, unless stdout carries YAML (--kubernetes); warnings on stderr.
    static func print(_ report: InstallReport, toStderr: Bool = false) {
        for line in report.lines {
            let text = line.hasSuffix("\n") ? line : line + "\n"
            if toStderr { writeError(text) } else { writeOut(text) }
        }
        for warning in report.warnings { writeError("warning: \(warning)\n") }
    }

    static func finish(_ report: InstallReport) {
        if !report.warnings.isEmpty { exit(1) }
    }
}

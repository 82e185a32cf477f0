import Glibc
import TOMLKit
import VeilLinux
import VeilSpec

/// What `veil install` / `veil uninstall` act on (the command line's flags).
public struct InstallOptions: Equatable {
    public static let defaultContainerdConfig = "/etc/containerd/config.toml"
    public static let defaultStatePath = "/var/lib/veil/install.json"
    public static let shimName = "containerd-shim-veil-v1"
    /// The sandbox level's supervisor, found beside veil.
    public static let wardenName = "veil-warden"
    /// `veil verify`'s CRI client, a binary of its own beside veil.
    public static let verifyName = "veil-verify"
    /// `veil checkpoint` and `veil restore`, a binary of its own beside veil.
    public static let checkpointName = "veil-checkpoint"
    /// veil started under this name runs `--isolation native` (a symbolic link veil install makes).
    public static let nativeBinaryName = "veil-native"
    /// The native handler's ConfigPath TOML, beside containerd's config unless given.
    public static let nativeShimConfigName = "veil-native.toml"

    public var containerd = false
    public var containerdConfig = InstallOptions.defaultContainerdConfig
    /// `ConfigPath` in the runtime's options table (the shim's own TOML).
    public var shimConfig: String?
    /// `--isolation`: written as the shim's TOML at `shimConfig` when that file does not exist yet.
    public var shimIsolation: String?
    /// ConfigPath of the `<runtimeName>-native` handler, a TOML saying isolation = "native"
    /// (nil: veil-native.toml beside containerd's config).
    public var nativeShimConfig: String?
    /// `--allow-lower-isolation`: pods' dev.veil.* annotations reach the runtime (pod_annotations,
    /// container_annotations) and `shimConfig` says allow_lower_isolation = true, so a pod may lower
    /// its level. Off by default: annotations are the tenants'.
    public var allowLowerIsolation = false
    /// `--pass-seccomp-annotations`: pods' seccomp-profile.kubernetes.cri-o.io/* annotations reach
    /// veil through containerd (both handlers), so profiles named by them are pulled from registries.
    public var passSeccompAnnotations = false
    public var crio = false
    public var crioDirectory = "/etc/crio/crio.conf.d"
    public var crioAnnotations = CRIODropIn.defaultAnnotations
    public var docker = false
    public var dockerConfig = "/etc/docker/daemon.json"
    /// Where the binaries go (and what the configs point at).
    public var prefix = "/usr/local/bin"
    public var runtimeName = "veil"
    /// Symbolic links to the running binaries instead of copies.
    public var link = false
    /// Install (and on uninstall remove) the binaries.
    public var binaries = true
    /// Restart the daemons when they run under systemd (only for their default config paths).
    public var restart = true
    /// Print what would change; write nothing.
    public var dryRun = false
    /// Uninstall: everything the state file records.
    public var all = false
    public var statePath = InstallOptions.defaultStatePath

    public init() {}
}

/// What happened, for the command line to print.
public struct InstallReport: Equatable {
    public var lines: [String] = []
    /// Things done only partly (a daemon that did not restart): the command exits non-zero.
    public var warnings: [String] = []
}

public struct Installer {
    public let options: InstallOptions
    let host: InstallHost

    public init(options: InstallOptions, host: InstallHost = SystemHost()) {
        self.options = options
        self.host = host
    }

    var containerdPath: String { Paths.absolute(options.containerdConfig) }
    var crioPath: String { Paths.absolute(options.crioDirectory) + "/" + CRIODropIn.fileName }
    var dockerPath: String { Paths.absolute(options.dockerConfig) }
    var prefix: String { Paths.absolute(options.prefix) }
    var runtimeBinary: String { prefix + "/veil" }
    /// The name veil takes as `--isolation native` (a link to veil beside it, for CRI-O).
    var nativeRuntimeBinary: String { prefix + "/" + InstallOptions.nativeBinaryName }
    var nativeRuntimeName: String { ContainerdConfig.Registration.nativeName(of: options.runtimeName) }
    /// The native handler's TOML: given, or beside containerd's config.
    var nativeShimConfigPath: String {
        options.nativeShimConfig.map(Paths.absolute) ?? Paths.parent(containerdPath) + "/" + InstallOptions.nativeShimConfigName
    }

    /// A config file edit, planned before anything is written.
    struct FileChange {
        var kind: InstallState.Kind
        var path: String
        var original: [UInt8]?
        var new: [UInt8]
        var createdDepth: Int?
        var label: String
    }

    /// A binary to put under --prefix.
    struct BinaryChange {
        var source: String
        var target: String
        /// A symbolic link with this (relative) content instead of a copy or link of `source`.
        var relativeLink: String? = nil
    }

    // MARK: install

    public func install() throws(InstallError) -> InstallReport {
        guard options.containerd || options.crio || options.docker else {
            throw .usage("choose what to register veil with: --containerd, --crio, --docker (or --kubernetes to print a RuntimeClass)")
        }
        try RuntimeClassYAML.checkName(options.runtimeName, what: "--runtime-name")
        if let shim = options.shimConfig, !shim.hasPrefix("/") { throw .usage("--config-path \(shim): must be an absolute path") }
        if let isolation = options.shimIsolation {
            guard options.containerd, options.shimConfig != nil else {
                throw .usage("--isolation writes the shim's TOML: it needs --containerd and --config-path FILE")
            }
            do { _ = try IsolationLevel.parse(isolation, source: "--isolation") } catch { throw .usage(error.description) }
        }
        if options.allowLowerIsolation {
            guard options.containerd, options.shimConfig != nil else {
                throw .usage("--allow-lower-isolation writes allow_lower_isolation = true into the shim's TOML: it needs --containerd and --config-path FILE")
            }
        }
        try RuntimeClassYAML.checkName(nativeRuntimeName, what: "the native handler's name (--runtime-name + \"-native\")")
        if let native = options.nativeShimConfig, !native.hasPrefix("/") { throw .usage("--native-config-path \(native): must be an absolute path") }
        var state = try InstallState.load(options.statePath)
        var report = InstallReport()

        // Plan every change first: bad input anywhere means nothing is written.
        var files: [FileChange] = []
        // The shim's TOML first: once containerd points at it, it must exist.
        if let change = try planShimConfig() { files.append(change) }
        if options.containerd { files.append(try planNativeShimConfig()) }
        if options.containerd { files.append(try planContainerd()) }
        if options.crio { files.append(try planCRIO()) }
        if options.docker { files.append(try planDocker()) }
        let binaries = options.binaries ? try planBinaries(state: state) : []

        if options.dryRun {
            for change in binaries {
                if let relative = change.relativeLink {
                    report.lines.append("would link \(change.target) to \(relative)")
                } else {
                    report.lines.append("would \(options.link ? "link" : "copy") \(change.source) to \(change.target)")
                }
            }
            for change in files {
                if change.original == change.new {
                    report.lines.append("\(change.path): " + (change.kind == .shimConfig ? change.label : "veil is already registered; nothing to change"))
                } else {
                    report.lines.append(LineDiff.unified(old: text(change.original), new: text(change.new),
                                                         oldName: change.original == nil ? "/dev/null" : change.path,
                                                         newName: change.path))
                }
            }
            report.lines.append("dry run: nothing was written")
            return report
        }

        for change in binaries { try installBinary(change, state: &state, report: &report) }
        for change in files {
            guard change.original != change.new else {
                if change.kind == .shimConfig {
                    report.lines.append("\(change.path): \(change.label)")
                    continue
                }
                report.lines.append("\(change.path): veil is already registered as \(change.label); nothing to change")
                continue
            }
            try write(change, state: &state)
            if change.kind == .shimConfig {
                report.lines.append("\(change.path): wrote \(change.label)")
                continue
            }
            report.lines.append("\(change.path): registered veil as \(change.label)" + (state.entry(change.kind, path: change.path)?.backup.map { " (backup: \($0))" } ?? ""))
            if change.kind == .containerd { report.lines.append(levelsNote) }
            switch change.kind {
            case .containerd: restart(service: "containerd", action: "restart", configIsDefault: change.path == InstallOptions.defaultContainerdConfig, verb: "load", report: &report)
            case .crio: restart(service: "crio", action: "restart", configIsDefault: change.path == "/etc/crio/crio.conf.d/" + CRIODropIn.fileName, verb: "load", report: &report)
            case .docker: restart(service: "docker", action: "reload", configIsDefault: change.path == "/etc/docker/daemon.json", verb: "load", report: &report)
            case .binary, .shimConfig: break
            }
        }
        return report
    }

    /// The shim's TOML with `--isolation` and/or `--allow-lower-isolation`, when the file is not
    /// there yet (an existing one is the administrator's: left as it is). Uninstall removes it
    /// while it is unchanged.
    func planShimConfig() throws(InstallError) -> FileChange? {
        let driver = try nodeSystemdCgroup()
        guard options.shimIsolation != nil || options.allowLowerIsolation || driver != nil, let shimConfig = options.shimConfig else { return nil }
        let settings = Self.shimSettings(isolation: options.shimIsolation, allowLower: options.allowLowerIsolation, systemdCgroup: driver)
        return try planTOML(at: Paths.absolute(shimConfig), settings: settings, label: "the shim's runtime options")
    }

    /// The native handler's TOML (isolation = "native"), when the file is not there yet.
    func planNativeShimConfig() throws(InstallError) -> FileChange {
        let settings = Self.shimSettings(isolation: IsolationLevel.native.rawValue, allowLower: false, systemdCgroup: try nodeSystemdCgroup())
        return try planTOML(at: nativeShimConfigPath, settings: settings, label: "the \(nativeRuntimeName) handler's runtime options")
    }

    /// A TOML veil writes at a ConfigPath: left as it is when it exists, saying whether it holds `settings`.
    func planTOML(at path: String, settings: [String], label: String) throws(InstallError) -> FileChange {
        let written = Array(Self.shimConfigText(settings: settings).utf8)
        let said = settings.joined(separator: ", ")
        if let original = try readIfPresent(path) {
            let same = original == written || Self.holds(settings, text(original))
            return FileChange(kind: .shimConfig, path: path, original: original, new: original, createdDepth: nil,
                              label: same ? "it already sets \(said)" : "it exists: left as it is (\(said) not applied)")
        }
        return FileChange(kind: .shimConfig, path: path, original: nil, new: written, createdDepth: nil, label: label + " (\(said))")
    }

    /// The TOML lines for the shim's settings, e.g. `isolation = "native"`.
    static func shimSettings(isolation: String?, allowLower: Bool, systemdCgroup: Bool? = nil) -> [String] {
        var lines: [String] = []
        if let isolation { lines.append("isolation = \(TOMLDoc.quote(isolation))") }
        if allowLower { lines.append("\(IsolationLevel.allowLoweringKey) = true") }
        if let systemdCgroup { lines.append("systemd_cgroup = \(systemdCgroup)") }
        return lines
    }

    /// containerd's runc handler's cgroup driver, which veil's handlers keep (nil: not said, or no containerd).
    func nodeSystemdCgroup() throws(InstallError) -> Bool? {
        guard options.containerd, let original = try readIfPresent(containerdPath) else { return nil }
        return try ContainerdConfig.runcSystemdCgroup(in: text(original), file: containerdPath)
    }

    /// True when the TOML `text` sets every key of `settings` to the same value.
    static func holds(_ settings: [String], _ text: String) -> Bool {
        guard let wanted = try? TOMLDoc.parse(settings.joined(separator: "\n"), file: ""),
              let found = try? TOMLDoc.parse(text, file: "") else { return false }
        return wanted.keys.allSatisfy { key in
            guard let a = wanted[key], let b = found[key] else { return false }
            return a.string == b.string && a.bool == b.bool
        }
    }

    /// What `--isolation`/`--allow-lower-isolation` (and the native handler) write at ConfigPath
    /// (the keys containerd-shim-veil-v1 reads).
    static func shimConfigText(settings: [String]) -> String {
        """
        # veil's runtime options, read by containerd-shim-veil-v1 at each container's creation
        # (ConfigPath in containerd's config.toml). Written by `veil install`.
        # Keys: isolation = "native" | "sandbox" (the operator's level: a pod's dev.veil.isolation
        #       annotation may raise it, never lower it); allow_lower_isolation = true (lets the
        #       annotation lower it too); log_level = "info" | "debug";
        #       root = "/run/containerd/veil" (veil's state root); binary = "/usr/local/bin/veil";
        #       systemd_cgroup = true | false (the node's cgroup driver, as its runc handler's SystemdCgroup).

        """ + settings.map { $0 + "\n" }.joined()
    }

    /// The report's line on who picks a container's level.
    var levelsNote: String {
        if options.allowLowerIsolation {
            return "handler \(options.runtimeName) passes pods' dev.veil.* annotations to veil and \(options.shimConfig ?? "its ConfigPath") sets "
                + "\(IsolationLevel.allowLoweringKey) = true: a pod may lower its level to native with \(IsolationLevel.annotation) (veil doctor warns about it); "
                + "handler \(nativeRuntimeName) runs native"
        }
        return "handler \(options.runtimeName) runs the sandbox level and pods' annotations do not reach veil; handler \(nativeRuntimeName) runs native "
            + "(grant it with its own RuntimeClass: veil install --kubernetes prints both)"
    }

    func planContainerd() throws(InstallError) -> FileChange {
        let path = containerdPath
        let original = try readIfPresent(path)
        var defaultVersion = 2
        let blank = original.map { String(decoding: $0, as: UTF8.self).allSatisfy { $0.isWhitespace } } ?? true
        if blank {
            let out = host.run(["containerd", "--version"]).flatMap { $0.status == 0 ? $0.output : nil }
            defaultVersion = ContainerdConfig.defaultVersion(containerdVersionOutput: out)
        }
        let registration = ContainerdConfig.Registration(name: options.runtimeName, shimConfig: options.shimConfig,
                                                         nativeShimConfig: nativeShimConfigPath, passAnnotations: options.allowLowerIsolation,
                                                         passSeccompAnnotations: options.passSeccompAnnotations)
        let plan = try ContainerdConfig.planInstall(original: original.map(text), file: path, registration: registration, defaultVersion: defaultVersion)
        return FileChange(kind: .containerd, path: path, original: original, new: plan.changed ? Array(plan.text.utf8) : original ?? [],
                          createdDepth: plan.createdDepth,
                          label: "runtimes \(options.runtimeName) and \(nativeRuntimeName) (\(ContainerdConfig.runtimeType), config version \(plan.version))")
    }

    /// The allowed_annotations veil's CRI-O handlers get: the operator's list, else the defaults the
    /// installed CRI-O knows. CRI-O ignores a handler (with only a warning in its log) whose list
    /// names an annotation it does not know, and the seccomp-profile one is CRI-O 1.30's.
    var crioAnnotations: [String] {
        guard options.crioAnnotations == CRIODropIn.defaultAnnotations,
              let output = host.run(["crio", "--version"]).flatMap({ $0.status == 0 ? $0.output : nil }),
              let version = CRIODropIn.version(output) else { return options.crioAnnotations }
        return version.lexicographicallyPrecedes(CRIODropIn.seccompAnnotationSince) ? [] : options.crioAnnotations
    }

    func planCRIO() throws(InstallError) -> FileChange {
        let path = crioPath
        let original = try readIfPresent(path)
        if let original { _ = try TOMLDoc.parse(text(original), file: path) }
        let new = CRIODropIn.render(name: options.runtimeName, runtimePath: runtimeBinary, nativeRuntimePath: nativeRuntimeBinary,
                                    annotations: crioAnnotations)
        _ = try TOMLDoc.parse(new, file: path)
        return FileChange(kind: .crio, path: path, original: original, new: Array(new.utf8), createdDepth: nil,
                          label: "CRI-O runtime handlers \(options.runtimeName) and \(nativeRuntimeName) (\(nativeRuntimeBinary), a link to veil)")
    }

    func planDocker() throws(InstallError) -> FileChange {
        let path = dockerPath
        let original = try readIfPresent(path)
        let plan = try DockerConfig.planInstall(original: original.map(text), file: path, name: options.runtimeName, runtimePath: runtimeBinary)
        return FileChange(kind: .docker, path: path, original: original, new: plan.changed ? Array(plan.text.utf8) : original ?? [],
                          createdDepth: plan.createdRuntimes ? 1 : nil, label: "Docker runtime \(options.runtimeName)")
    }

    func planBinaries(state: InstallState) throws(InstallError) -> [BinaryChange] {
        guard let exe = host.executablePath, FS.exists(exe) else {
            throw .usage("cannot find the running veil binary (/proc/self/exe): use --no-binaries and install it yourself")
        }
        var changes: [BinaryChange] = []
        let directory = Paths.parent(exe)
        for (source, name) in [(exe, "veil"), (directory + "/" + InstallOptions.shimName, InstallOptions.shimName),
                               (directory + "/" + InstallOptions.wardenName, InstallOptions.wardenName),
                               (directory + "/" + InstallOptions.verifyName, InstallOptions.verifyName),
                               (directory + "/" + InstallOptions.checkpointName, InstallOptions.checkpointName)] {
            guard FS.exists(source) else { continue }
            let target = prefix + "/" + name
            if try binaryInPlace(source: source, target: target) { continue }
            changes.append(BinaryChange(source: source, target: target))
        }
        // veil-native: veil under the name that means --isolation native, for runtimes that take a
        // binary path and no flags (CRI-O's runtime_path).
        if readLink(nativeRuntimeBinary) != "veil" {
            changes.append(BinaryChange(source: runtimeBinary, target: nativeRuntimeBinary, relativeLink: "veil"))
        }
        return changes
    }

    /// True when `target` already is `source` (same file, the same link, or an identical copy).
    func binaryInPlace(source: String, target: String) throws(InstallError) -> Bool {
        var a = stat(), b = stat(), l = stat()
        guard stat(source, &a) == 0 else { throw .io(LinuxError("stat", source), file: source) }
        guard lstat(target, &l) == 0 else { return false }
        if options.link {
            return (l.st_mode & S_IFMT) == S_IFLNK && readLink(target) == source
        }
        guard (l.st_mode & S_IFMT) == S_IFREG, stat(target, &b) == 0 else { return false }
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino { return true }
        guard a.st_size == b.st_size else { return false }
        do { return try FS.readFile(source) == FS.readFile(target) } catch { return false }
    }

    func installBinary(_ change: BinaryChange, state: inout InstallState, report: inout InstallReport) throws(InstallError) {
        let target = change.target
        var entry = state.entry(.binary, path: target) ?? InstallState.Entry(
            kind: .binary, path: target, backup: nil, createdFile: !exists(target), createdDirectories: Paths.missingDirectories(for: target),
            written: "", name: Paths.base(target), createdDepth: nil, linkTarget: nil)
        let firstTime = state.entry(.binary, path: target).map { $0.written != fingerprint(target) } ?? true
        if firstTime { entry.backup = nil; entry.createdFile = !exists(target); entry.createdDirectories = Paths.missingDirectories(for: target) }
        // Someone else's file: keep it to put back on uninstall.
        let backup = firstTime && exists(target) ? try uniqueBackupPath(for: target) : nil
        do throws(LinuxError) {
            try FS.mkdirAll(Paths.parent(target))
            let tmp = target + ".veil-tmp\(getpid())"
            unlink(tmp)
            if let relative = change.relativeLink {
                try sys("symlink", tmp) { symlink(relative, tmp) }
                entry.linkTarget = relative
            } else if options.link {
                try sys("symlink", tmp) { symlink(change.source, tmp) }
                entry.linkTarget = change.source
            } else {
                let bytes = try FS.readFile(change.source)
                try FS.writeFile(tmp, bytes, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o755)
                chmod(tmp, 0o755)
                entry.linkTarget = nil
            }
            // The old file gets a second name, then the new one replaces it in one rename: the
            // target path never goes missing (shims may be starting it right now).
            do throws(LinuxError) {
                if let backup {
                    try sys("link", backup) { link(target, backup) }
                    entry.backup = backup
                }
                try sys("rename", target) { rename(tmp, target) }
            } catch {
                unlink(tmp)
                throw error
            }
        } catch {
            throw .io(error, file: target)
        }
        entry.written = fingerprint(target) ?? ""
        state.put(entry)
        try state.save(options.statePath)
        let what = change.relativeLink.map { "linked \(target) to \($0)" } ?? "\(options.link ? "linked" : "copied") \(change.source) to \(target)"
        report.lines.append(what + (entry.backup.map { " (previous file kept as \($0))" } ?? ""))
    }

    /// Writes a config change, backing up the original the first time and recording it.
    func write(_ change: FileChange, state: inout InstallState) throws(InstallError) {
        let path = change.path
        var mode: mode_t = 0o644
        var st = stat()
        if stat(path, &st) == 0 { mode = st.st_mode & 0o7777 }
        var entry: InstallState.Entry
        // A record whose file was changed by someone else since is stale: its backup predates their
        // edit, so this install starts a new record (and backup) instead. The old backup stays on disk.
        if let previous = state.entry(change.kind, path: path), previous.written == "sha256:" + SHA256.hex(change.original ?? []) {
            entry = previous
            if let depth = change.createdDepth, previous.createdDepth == nil || change.kind == .containerd && depth < (previous.createdDepth ?? depth) {
                entry.createdDepth = depth
            }
        } else {
            entry = InstallState.Entry(kind: change.kind, path: path, backup: nil, createdFile: change.original == nil,
                                       createdDirectories: Paths.missingDirectories(for: path), written: "",
                                       name: options.runtimeName, createdDepth: change.createdDepth, linkTarget: nil)
            if let original = change.original {
                let backup = try uniqueBackupPath(for: path)
                do { try FS.writeFile(backup, original, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode) } catch { throw .io(error, file: backup) }
                entry.backup = backup
            }
        }
        entry.written = "sha256:" + SHA256.hex(change.new)
        state.put(entry)
        try state.save(options.statePath)
        do {
            try FS.mkdirAll(Paths.parent(path))
            try FS.writeAtomically(path, change.new, mode: mode)
            chmod(path, mode)
        } catch { throw .io(error, file: path) }
    }

    // MARK: uninstall

    public func uninstall() throws(InstallError) -> InstallReport {
        var state = try InstallState.load(options.statePath)
        var report = InstallReport()
        var kinds: [(InstallState.Kind, String)] = []
        if options.all {
            kinds = state.entries.filter { $0.kind != .binary }.map { ($0.kind, $0.path) }
        } else {
            guard options.containerd || options.crio || options.docker else {
                throw .usage("choose what to remove veil from: --containerd, --crio, --docker, or --all (everything `veil install` recorded)")
            }
            if options.containerd {
                kinds.append((.containerd, containerdPath))
                kinds += state.entries.filter { $0.kind == .shimConfig }.map { ($0.kind, $0.path) }
            }
            if options.crio { kinds.append((.crio, crioPath)) }
            if options.docker { kinds.append((.docker, dockerPath)) }
        }

        // Plan the edits of files changed since install, so bad input stops everything early.
        var plans: [(InstallState.Kind, String, Undo)] = []
        for (kind, path) in kinds { plans.append((kind, path, try planUndo(kind: kind, path: path, entry: state.entry(kind, path: path)))) }

        for (kind, path, undo) in plans {
            let entry = state.entry(kind, path: path)
            let changed: Bool
            if options.dryRun {
                report.lines.append(undo.describe(path: path))
                continue
            }
            switch undo {
            case .nothing(let why):
                report.lines.append("\(path): \(why)")
                changed = false
            case .restore(let backup):
                do {
                    let bytes = try FS.readFile(backup)
                    var st = stat()
                    let mode: mode_t = stat(backup, &st) == 0 ? st.st_mode & 0o7777 : 0o644
                    try FS.writeAtomically(path, bytes, mode: mode)
                    chmod(path, mode)
                    unlink(backup)
                } catch { throw .io(error, file: path) }
                report.lines.append("\(path): restored the original from \(backup)")
                changed = true
            case .delete:
                if unlink(path) != 0 && errno != ENOENT { throw .io(LinuxError("unlink", path), file: path) }
                removeDirectories(entry?.createdDirectories ?? [])
                report.lines.append("\(path): removed (veil created it)")
                changed = true
            case .edit(let new, let note):
                var st = stat()
                let mode: mode_t = stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0o644
                do { try FS.writeAtomically(path, new, mode: mode) } catch { throw .io(error, file: path) }
                chmod(path, mode)
                report.lines.append("\(path): \(note)")
                changed = true
            }
            state.drop(kind, path: path)
            try state.save(options.statePath)
            if changed {
                switch kind {
                case .containerd: restart(service: "containerd", action: "restart", configIsDefault: path == InstallOptions.defaultContainerdConfig, verb: "unload", report: &report)
                case .crio: restart(service: "crio", action: "restart", configIsDefault: path == "/etc/crio/crio.conf.d/" + CRIODropIn.fileName, verb: "unload", report: &report)
                case .docker: restart(service: "docker", action: "reload", configIsDefault: path == "/etc/docker/daemon.json", verb: "unload", report: &report)
                case .binary, .shimConfig: break
                }
            }
        }

        // The binaries go when no registration is left that needs them.
        let configsLeft = state.entries.contains { $0.kind != .binary }
        if options.binaries && !configsLeft {
            var directories: [String] = []
            defer { removeDirectories(directories) }
            for entry in state.entries where entry.kind == .binary {
                if options.dryRun {
                    report.lines.append("would remove \(entry.path)" + (entry.backup.map { " and put back \($0)" } ?? ""))
                    continue
                }
                if fingerprint(entry.path) == entry.written {
                    unlink(entry.path)
                    if let backup = entry.backup, rename(backup, entry.path) != 0 {
                        throw .io(LinuxError("rename", backup), file: entry.path)
                    }
                    directories += entry.createdDirectories
                    report.lines.append("removed \(entry.path)" + (entry.backup.map { " (put back the previous file from \($0))" } ?? ""))
                } else {
                    report.lines.append("\(entry.path): changed since veil installed it; left in place")
                }
                state.drop(.binary, path: entry.path)
                try state.save(options.statePath)
            }
        } else if options.binaries && state.entries.contains(where: { $0.kind == .binary }) && !options.dryRun {
            report.lines.append("binaries kept: still registered in " + state.entries.filter { $0.kind != .binary }.map(\.path).joined(separator: ", "))
        }
        if options.dryRun { report.lines.append("dry run: nothing was written") }
        return report
    }

    enum Undo {
        case nothing(String)
        case restore(backup: String)
        case delete
        case edit([UInt8], note: String)

        func describe(path: String) -> String {
            switch self {
            case .nothing(let why): return "\(path): \(why)"
            case .restore(let backup): return "would restore \(path) from \(backup)"
            case .delete: return "would remove \(path)"
            case .edit(_, let note): return "would edit \(path): \(note)"
            }
        }
    }

    func planUndo(kind: InstallState.Kind, path: String, entry: InstallState.Entry?) throws(InstallError) -> Undo {
        let current = try readIfPresent(path)
        guard let current else {
            return .nothing("not there; nothing to undo")
        }
        let name = entry?.name ?? options.runtimeName
        if let entry, entry.written == "sha256:" + SHA256.hex(current) {
            if let backup = entry.backup {
                guard exists(backup) else {
                    throw .io(file: backup, message: "the backup of \(path) is missing; restore it by hand or edit the file")
                }
                return .restore(backup: backup)
            }
            if entry.createdFile { return .delete }
        }
        let changedNote = entry == nil ? "no install record" : "changed since veil install"
        let keptBackup = entry?.backup.map { "; backup left at \($0)" } ?? ""
        switch kind {
        case .containerd:
            guard let new = try ContainerdConfig.planRemoval(text: text(current), file: path, name: name, createdDepth: entry?.createdDepth) else {
                return .nothing("no veil runtime registered (\(changedNote)); nothing to change")
            }
            return .edit(Array(new.utf8), note: "\(changedNote): removed only the runtime table \"\(name)\"\(keptBackup)")
        case .crio:
            guard let new = try CRIODropIn.planRemoval(text: text(current), file: path, name: name) else {
                return .delete
            }
            return .edit(Array(new.utf8), note: "\(changedNote): removed only the runtime table \"\(name)\", kept the rest\(keptBackup)")
        case .docker:
            guard let new = try DockerConfig.planRemoval(text: text(current), file: path, name: name, removeEmptyRuntimes: entry?.createdDepth == 1) else {
                return .nothing("no veil runtime registered (\(changedNote)); nothing to change")
            }
            return .edit(Array(new.utf8), note: "\(changedNote): removed only runtimes.\(name)\(keptBackup)")
        case .shimConfig:
            return .nothing("changed since veil install wrote it; left in place")
        case .binary:
            return .nothing("")
        }
    }

    // MARK: helpers

    func restart(service: String, action: String, configIsDefault: Bool, verb: String, report: inout InstallReport) {
        let hint = "\(action) \(service) to \(verb) the veil runtime"
        guard options.restart, configIsDefault else {
            report.lines.append(hint)
            return
        }
        guard let active = host.run(["systemctl", "is-active", "--quiet", service]), active.status == 0 else {
            report.lines.append(hint)
            return
        }
        if let result = host.run(["systemctl", action, service]), result.status == 0 {
            report.lines.append("ran systemctl \(action) \(service)")
        } else {
            report.warnings.append("systemctl \(action) \(service) failed: see journalctl -u \(service)")
        }
    }

    func readIfPresent(_ path: String) throws(InstallError) -> [UInt8]? {
        guard exists(path) else { return nil }
        do { return try FS.readFile(path) } catch { throw .io(error, file: path) }
    }

    func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    func text(_ bytes: [UInt8]?) -> String { String(decoding: bytes ?? [], as: UTF8.self) }

    func uniqueBackupPath(for path: String) throws(InstallError) -> String {
        let base = path + ".veil-backup-" + host.timestamp()
        if !exists(base) { return base }
        for n in 2..<1000 where !exists("\(base)-\(n)") { return "\(base)-\(n)" }
        throw .io(file: path, message: "too many backups named \(base)-N")
    }

    func removeDirectories(_ directories: [String]) {
        for dir in directories.reversed() { rmdir(dir) }
    }

    func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// How a binary veil installed is recognised later.
    func fingerprint(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) == S_IFLNK { return readLink(path).map { "link:" + $0 } }
        return "stat:\(st.st_size):\(st.st_ino):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }
}

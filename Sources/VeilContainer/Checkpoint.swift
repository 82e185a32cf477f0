import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSpec

/// The CRIU flags runc's `checkpoint` and `restore` share.
public struct CRIUFlags: Sendable {
    public var tcpEstablished = false
    public var externalUnixSockets = false
    public var shellJob = false
    public var fileLocks = false
    public var manageCgroupsMode: String?

    public init() {}

    var arguments: [String] {
        var args: [String] = []
        if tcpEstablished { args.append("--tcp-established") }
        if externalUnixSockets { args.append("--ext-unix-sk") }
        if shellJob { args.append("--shell-job") }
        if fileLocks { args.append("--file-locks") }
        return args
    }
}

/// runc's `checkpoint` flags.
public struct CheckpointOptions: Sendable {
    public var imagePath: String
    public var workPath: String?
    public var parentPath: String?
    public var leaveRunning = false
    public var preDump = false
    public var criu = CRIUFlags()
    public var emptyNamespaces: [String] = []
    public var autoDedup = false
    /// runc's `--page-server ADDRESS:PORT`: the pages go to a page server there (`criu page-server`),
    /// or, with `lazyPages`, CRIU serves them on that port to a restore's lazy-pages daemon.
    public var pageServer: String?
    /// runc's `--lazy-pages`: the memory stays with the frozen container until a lazy restore
    /// (`criu lazy-pages`, then `restore --lazy-pages`) has fetched it all.
    public var lazyPages = false
    /// runc's `--status-fd`: CRIU writes a byte to it once its lazy page server listens.
    public var statusFD: Int32?

    public init(imagePath: String) { self.imagePath = imagePath }
}

/// runc's `restore` flags.
public struct RestoreOptions: Sendable {
    public var imagePath: String
    public var workPath: String?
    public var bundle: String
    public var pidFile: String?
    public var criu = CRIUFlags()
    /// runc's --empty-ns at restore: the network namespace CRIU makes is left as made (lo down).
    public var emptyNamespaces: [String] = []
    public var autoDedup = false
    /// An unpacked archive's top directory, whose rootfs-diff.tar and deleted.files are applied
    /// to the rootfs before CRIU runs.
    public var rootfsChanges: String?
    /// runc's `--lazy-pages`: the memory comes from a `criu lazy-pages` daemon the caller runs on
    /// the work directory.
    public var lazyPages = false
    /// runc's `--console-socket`: a container checkpointed with a terminal gets a new pty, whose
    /// master goes there.
    public var consoleSocket: String?
    /// Restore without `--detach`: the restored init becomes our child (CRIU's sibling), for the
    /// caller to wait on as `run` does.
    public var foreground = false

    public init(imagePath: String, bundle: String) {
        self.imagePath = imagePath
        self.bundle = bundle
    }
}

/// What a checkpoint saved beside CRIU's images, for an archive's metadata.
public struct CheckpointedContainer: Sendable {
    public let record: ContainerRecord
    /// The config as the container ran (state directory's copy), decoded and as bytes.
    public let spec: Spec
    public let configJSON: [UInt8]
}

/// Checkpoint and restore through CRIU's command line (`criu dump` / `criu restore`): what runc
/// passes over CRIU's RPC, as flags (see README, "Checkpoint and restore"); what the sandbox level
/// adds is in SandboxCheckpoint.swift.
extension Runtime {
    public func checkpoint(id: String, options: CheckpointOptions) throws(ContainerError) -> CheckpointedContainer {
        let record = try store.load(id)
        let status = store.status(of: record)
        guard status == .running || status == .paused else { throw .invalidState(id: id, status: status, action: "checkpoint") }
        let sandboxed = (record.isolation ?? .native) == .sandbox
        if sandboxed, let owner = record.sandboxOwner, owner != id {
            throw .unsupported("cannot checkpoint container \"\(id)\" alone: it runs in the sandbox of pod container \"\(owner)\", whose namespaces and warden it shares")
        }
        if sandboxed && (options.lazyPages || options.pageServer != nil) {
            throw .unsupported("cannot checkpoint container \"\(id)\" with \(options.lazyPages ? "--lazy-pages" : "--page-server") at the sandbox level: "
                               + "CRIU runs in the sandbox's network namespace, where no page server or lazy-pages daemon of the host can reach it")
        }
        let pageServer = try options.pageServer.map(CRIU.pageServer)
        if let fd = options.statusFD {
            let flags = fcntl(fd, F_GETFL)
            guard flags >= 0, flags & O_ACCMODE != O_RDONLY else {
                throw .invalidConfig(file: "command line", field: "--status-fd", reason: "\(fd) is not an open descriptor this process can write")
            }
            guard options.lazyPages else { throw .invalidConfig(file: "command line", field: "--status-fd", reason: "only with --lazy-pages (CRIU writes it when its lazy page server listens)") }
        }
        let (spec, configJSON) = try store.loadConfigAndBytes(id)
        let configuration = try CRIU.Configuration(spec, sandboxed: sandboxed, log: "dump.log")
        let criu = try CRIU.binary()
        var args = [criu, options.preDump ? "pre-dump" : "dump", "--tree", "\(record.pid)",
                    "--images-dir", options.imagePath, "--work-dir", options.workPath ?? options.imagePath,
                    "-v4", "--root", record.rootfs] + configuration.arguments
        // A sandbox's own mounts (its tmpfs of views and device nodes, its FUSE views) are external.
        let sandboxFile = sandboxed ? try sandboxExternals(initPid: record.pid) : nil
        let own = Set(sandboxFile?.externals.map(\.mountpoint) ?? [])
        for external in sandboxFile?.externals ?? [] { args += ["--external", "mnt[\(external.mountpoint)]:\(external.key)"] }
        args += CRIU.mountMapFlags(CRIU.externalMounts(spec, bundle: record.bundle, cgroup: record.cgroup, restoring: nil).filter { !own.contains($0.destination) })
        // As runc: CRIU freezes the tree through the cgroup's freezer (no fork escapes the dump),
        // and a paused container's stays frozen after a --leave-running dump.
        if let freezer = record.cgroup?.freezerDirectory { args += ["--freeze-cgroup", freezer] }
        args += options.criu.arguments
        if let mode = options.criu.manageCgroupsMode {
            guard CRIU.cgroupModes.contains(mode) else {
                throw .invalidConfig(file: "command line", field: "--manage-cgroups-mode", reason: "\(mode): must be one of \(CRIU.cgroupModes.joined(separator: ", "))")
            }
            args.append("--manage-cgroups=\(mode)")
        } else {
            args.append("--manage-cgroups")
        }
        // A namespace veil made is saved empty already (networkNamespaceFlags). A sandbox's is the
        // host's: CRIU runs in it and saves none.
        if try CRIU.emptyNetwork(options.emptyNamespaces), spec.linux?.namespaces?.first(where: { $0.type == .network })?.path != nil, !sandboxed {
            args += ["--empty-ns", "net"]
        }
        if !sandboxed { args += CRIU.networkNamespaceFlags(spec, restoring: false) }
        // The init's stdio, as runc records it: pipes (a shim's, a caller's) are dumped as pipes and
        // given back by the restoring caller; a file of the host's (its /dev/null) is external.
        let stdio = CRIU.stdio(of: record.pid)
        for descriptor in Set(stdio) where descriptor.hasPrefix("file[") || descriptor.hasPrefix("tty[") { args += ["--external", descriptor] }
        // A terminal's pty has its master outside the container (the console socket's holder):
        // the slave is external, and so is /dev/console, a bind of it; restore gives a new pty.
        if stdio.contains(where: { $0.hasPrefix("tty[") }) {
            for mountpoint in CRIU.ptyBindMounts(of: record.pid) { args += ["--external", "mnt[\(mountpoint)]:\(CRIU.consoleKey)"] }
        }
        if options.leaveRunning { args.append("--leave-running") }
        if options.autoDedup { args.append("--auto-dedup") }
        if options.preDump { args.append("--track-mem") }
        // As runc over CRIU's RPC: with --lazy-pages the dump serves the pages itself on the port.
        if options.lazyPages {
            args.append("--lazy-pages")
            if let pageServer { args += ["--address", pageServer.address, "--port", String(pageServer.port)] }
            if let fd = options.statusFD { args += ["--status-fd", String(fd)] }
        } else if let pageServer {
            args += ["--page-server", "--address", pageServer.address, "--port", String(pageServer.port)]
        }
        if let parent = options.parentPath {
            // By name: the image directory is made only after every check.
            guard FS.isDirectory(FS.lexicallyAbsolute(parent, base: options.imagePath)) else {
                throw .invalidConfig(file: "command line", field: "--parent-path", reason: "\(parent) is not a directory (relative to --image-path)")
            }
            args += ["--prev-images-dir", parent, "--track-mem"]
        }
        log.debug("checkpoint \(id): \(args.joined(separator: " "))")
        // Made once every flag is checked: a refused checkpoint leaves no directory behind.
        try wrap("creating --image-path \(options.imagePath)") { try FS.mkdirAll(options.imagePath, mode: 0o700) }
        if let work = options.workPath { try wrap("creating --work-path \(work)") { try FS.mkdirAll(work, mode: 0o700) } }
        if let json = try? JSONEncoder().encode(stdio) {
            try wrap("writing \(CRIU.descriptorsFile)") { try FS.writeFile(options.imagePath + "/" + CRIU.descriptorsFile, Array(json), mode: 0o600) }
        }
        let command = sandboxed ? [try Self.nsenter(), "--net=/proc/\(record.pid)/ns/net"] + args : args
        try CRIU.run(command, log: (options.workPath ?? options.imagePath) + "/" + configuration.log, what: options.preDump ? "pre-dump" : "dump")
        if let sandboxFile, let json = try? JSONEncoder().encode(sandboxFile) {
            try wrap("writing \(SandboxCheckpointFile.name)") { try FS.writeFile(options.imagePath + "/" + SandboxCheckpointFile.name, Array(json), mode: 0o600) }
        }
        log.debug("checkpoint \(id): CRIU saved the container in \(options.imagePath)")
        if !options.leaveRunning && !options.preDump {
            // As runc: the container is gone once CRIU has saved it (anything CRIU left, a process
            // forked meanwhile, goes as delete would make it go).
            killAndWait(record)
            try destroy(record)
        }
        return CheckpointedContainer(record: record, spec: spec, configJSON: configJSON)
    }

    /// `restore`: a new container `id` from the bundle, its processes brought back by CRIU into a
    /// cgroup made as `create` makes it. With `options.foreground` the init is our child, for
    /// `waitRestored`.
    public func restore(id: String, options: RestoreOptions) throws(ContainerError) -> ContainerRecord {
        try StateStore.validate(id: id)
        guard FS.isDirectory(options.imagePath), FS.exists(options.imagePath + "/inventory.img") else {
            throw .invalidConfig(file: "command line", field: "--image-path", reason: "\(options.imagePath) holds no CRIU images (no inventory.img)")
        }
        let bundle = FS.realPath(options.bundle) ?? options.bundle
        var spec: Spec
        do { spec = try Spec.load(bundle: bundle); try spec.validate() } catch {
            throw .invalidConfig(file: bundle + "/config.json", field: "", reason: "\(error)")
        }
        let emptyNetwork = try CRIU.emptyNetwork(options.emptyNamespaces)
        if let mode = options.criu.manageCgroupsMode, mode != "soft" && mode != "ignore" {
            throw .invalidConfig(file: "command line", field: "--manage-cgroups-mode", reason: CRIU.cgroupModes.contains(mode)
                ? "\(mode): veil restores into the cgroups it makes from the bundle's config.json (soft or ignore); CRIU's \(mode) mode would bring back the checkpointed cgroups' settings instead"
                : "\(mode): must be one of \(CRIU.cgroupModes.joined(separator: ", "))")
        }
        let level: IsolationLevel
        do { level = try IsolationLevel.resolve(annotations: spec.annotations, floor: isolation, allowLowering: allowLowerIsolation) } catch {
            throw .invalidConfig(file: "config.json", field: error.source, reason: "\(error)")
        }
        if level == .sandbox && !FS.exists(options.imagePath + "/" + SandboxCheckpointFile.name) {
            throw .unsupported(SandboxCheckpointFile.nativeCheckpoint(id: id, imagePath: options.imagePath))
        }
        if level == .sandbox && options.lazyPages {
            throw .unsupported("cannot restore container \"\(id)\" with --lazy-pages at the sandbox level: a sandbox is checkpointed whole (its checkpoint never serves pages lazily), and its restore reads images staged for the sandbox's ids")
        }
        if level == .native && FS.exists(options.imagePath + "/" + SandboxCheckpointFile.name) {
            throw .unsupported("cannot restore container \"\(id)\" at the native level: it was checkpointed at the sandbox level, whose policy its processes carry; "
                               + "restore it at the sandbox level (the operator's default; not veil --isolation native)")
        }
        let savedStdio = CRIU.savedStdio(imagePath: options.imagePath)
        if options.consoleSocket == nil && CRIU.Terminal.key(in: savedStdio) != nil {
            throw .invalidConfig(file: "command line", field: "--console-socket", reason: "the container was checkpointed with a terminal: its restore needs a console socket for the new pty's master")
        }
        let configuration = try CRIU.Configuration(spec, sandboxed: level == .sandbox, log: "restore.log")
        let scope = systemdCgroup ? try planScope(spec, id: id, level: level) : nil
        let rootfsConfigured = spec.root.path.hasPrefix("/") ? spec.root.path : bundle + "/" + spec.root.path
        guard FS.isDirectory(rootfsConfigured), let rootfs = FS.realPath(rootfsConfigured) else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "rootfs \(rootfsConfigured) does not exist or is not a directory")
        }
        let criu = CRIU.RestoreRun(binary: try CRIU.binary(), configuration: configuration, savedStdio: savedStdio)
        if let changes = options.rootfsChanges { try RootfsChanges.apply(from: changes, to: rootfs) }
        try CRIU.makeMountPoints(spec, rootfs: rootfs, bundle: bundle)
        let directory = store.directory(id)
        try wrap("creating state root") { try FS.mkdirAll(store.root, mode: 0o711) }
        if mkdir(directory, 0o711) != 0 {
            if errno == EEXIST { throw .alreadyExists(id: id) }
            throw LinuxError("mkdir", directory).context("creating state directory")
        }
        var cleanup = Cleanup(directory: directory)
        defer { cleanup.run() }
        let cgroup: Cgroup
        if let scope { cgroup = try makeScopeCgroup(scope, cleanup: &cleanup) } else { cgroup = try makeCgroup(spec, id: id, cleanup: &cleanup) }
        let target = RestoreTarget(cgroup: cgroup, scope: scope)
        let record = level == .sandbox
            ? try restoreSandbox(id: id, spec: spec, bundle: bundle, rootfs: rootfs, directory: directory, target: target,
                                 cleanup: &cleanup, options: options, criu: criu)
            : try restoreNative(id: id, spec: spec, bundle: bundle, rootfs: rootfs, directory: directory, target: target,
                                cleanup: &cleanup, options: options, criu: criu, emptyNetwork: emptyNetwork)
        if let pidFile = options.pidFile {
            try wrap("writing pid file") { try FS.writeAtomically(FS.absolute(pidFile), Array("\(record.pid)".utf8)) }
        }
        cleanup.disarm()
        return record
    }

    /// `restore` at the native level, as runc's: CRIU brings back the namespaces it saved.
    private func restoreNative(id: String, spec: Spec, bundle: String, rootfs: String, directory: String, target: RestoreTarget,
                               cleanup: inout Cleanup, options: RestoreOptions, criu: CRIU.RestoreRun, emptyNetwork: Bool) throws(ContainerError) -> ContainerRecord {
        let cgroup = target.cgroup
        // CRIU mounts the container's root from a mount point of its own, as runc gives it.
        let criuRoot = directory + "/criu-root"
        try wrap("creating \(criuRoot)") { try FS.mkdirAll(criuRoot, mode: 0o700) }
        try wrap("bind-mounting the rootfs for CRIU") { try Mounts.mount(rootfs, criuRoot, type: nil, flags: UInt(MS_BIND) | UInt(MS_REC)) }
        defer { _ = umount2(criuRoot, Int32(MNT_DETACH)); rmdir(criuRoot) }
        let pidFile = directory + "/restored.pid"
        var args = [criu.binary, "restore", "--images-dir", options.imagePath, "--work-dir", options.workPath ?? options.imagePath,
                    "-v4", "--root", criuRoot, "--restore-detached", "--pidfile", pidFile, "--manage-cgroups=ignore"]
        args += criu.arguments(options)
        args += CRIU.mountMapFlags(CRIU.externalMounts(spec, bundle: bundle, cgroup: cgroup, restoring: cgroup))
        args += CRIU.networkNamespaceFlags(spec, restoring: true)
        if options.lazyPages { args.append("--lazy-pages") }
        let terminal = try criu.terminal(options)
        defer { terminal?.slave.close() }
        args += terminal?.arguments ?? []
        log.debug("restore \(id): \(args.joined(separator: " "))")
        let pid = try CRIU.restore(args, log: criu.log(options), pidFile: pidFile, id: id, stdio: terminal?.slave) { (pid) throws(ContainerError) in
            try place(restoring: pid, in: target, id: id, sandbox: false, cleanup: &cleanup)
        }
        cleanup.initPid = pid
        // A namespace veil made had its loopback up (create brings it up, as runc's); CRIU made it
        // anew and empty, and --empty-ns network asks for it to stay so.
        if !emptyNetwork, let network = spec.linux?.namespaces?.first(where: { $0.type == .network }), network.path == nil {
            try wrap("bringing up lo in the restored network namespace") {
                try NetworkInterface.bringUp("lo", inNamespace: "/proc/\(pid)/ns/net")
            }
        }
        var record = ContainerRecord(id: id, ociVersion: spec.ociVersion, pid: pid, pidStartTime: ProcessInfo.startTime(pid),
                                     bundle: bundle, rootfs: rootfs, created: Clock.rfc3339Now(), owner: "",
                                     annotations: spec.annotations, cgroup: cgroup, hooks: spec.hooks)
        record.isolation = .native
        try store.recordConfig(copying: bundle + "/config.json", id: id)
        try store.save(record)
        log.debug("restore \(id): restored, init pid \(pid)")
        return record
    }
}

/// Where a restored container lives: the cgroup veil made, or the systemd scope it starts.
struct RestoreTarget {
    let cgroup: Cgroup
    let scope: ScopePlan?
}

extension Runtime {
    /// CRIU's process, held before it runs, put where the restored container lives (so every
    /// restored process is there from its fork): written into the cgroup, or made the systemd
    /// scope's process, as runc applies its cgroup manager to CRIU's pid. A sandbox that starts
    /// its own warden gets the warden's cgroup in the scope once systemd made it.
    func place(restoring pid: Int32, in target: RestoreTarget, id: String, sandbox: Bool, cleanup: inout Cleanup) throws(ContainerError) {
        guard let scope = target.scope else {
            do { try target.cgroup.addProcess(pid) } catch { throw .cgroup(context: "moving CRIU into the container's cgroup", error) }
            return
        }
        let pending = try beginScope(scope, id: id, cleanup: &cleanup, pid: pid)
        try finishScope(pending, scope, id: id, cgroup: target.cgroup, wardenCgroup: sandbox)
    }
}

/// The `criu` binary and the flags veil builds for it.
enum CRIU {
    static let cgroupModes = ["soft", "full", "strict", "ignore"]

    /// runc's --empty-ns values: true when the network namespace is named (the only one CRIU can
    /// leave empty), an error for any other.
    static func emptyNetwork(_ namespaces: [String]) throws(ContainerError) -> Bool {
        for namespace in namespaces where namespace != "network" && namespace != "net" {
            throw .invalidConfig(file: "command line", field: "--empty-ns", reason: "\(namespace): CRIU can leave only the network namespace empty")
        }
        return !namespaces.isEmpty
    }

    /// The init's stdio at checkpoint (runc's file name and format: a JSON array, fd 0 to 2).
    static let descriptorsFile = "descriptors.json"

    /// What fd 0-2 of `pid` are, in the terms CRIU's --external and --inherit-fd use: "pipe:[N]"
    /// for a pipe, "file[MNT:INODE]" (hex) for a file on a mount outside the container's mount
    /// namespace, else the link's text.
    static func stdio(of pid: Int32) -> [String] {
        let containerMounts = Set(((try? FS.readString("/proc/\(pid)/mountinfo")) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        return (0...2).map { fd in
            let link = FS.readLink("/proc/\(pid)/fd/\(fd)") ?? ""
            guard link.hasPrefix("/") else { return link }
            var tty = stat()
            // A pty slave (Unix98 majors 136-143), as CRIU names it: tty[rdev:dev].
            if link.hasPrefix("/dev/pts/"), stat("/proc/\(pid)/fd/\(fd)", &tty) == 0, (136...143).contains((UInt64(tty.st_rdev) >> 8) & 0xfff | (UInt64(tty.st_rdev) >> 32) & ~0xfff) {
                return "tty[\(String(UInt64(tty.st_rdev), radix: 16)):\(String(UInt64(tty.st_dev), radix: 16))]"
            }
            let info = (try? FS.readString("/proc/\(pid)/fdinfo/\(fd)")) ?? ""
            guard let mountLine = info.split(separator: "\n").first(where: { $0.hasPrefix("mnt_id:") }),
                  let mountID = UInt64(mountLine.dropFirst("mnt_id:".count).filter { !$0.isWhitespace }),
                  !containerMounts.contains(String(mountID)) else { return link }
            var st = stat()
            guard stat("/proc/\(pid)/fd/\(fd)", &st) == 0 else { return link }
            return "file[\(String(mountID, radix: 16)):\(String(UInt64(st.st_ino), radix: 16))]"
        }
    }

    static let consoleKey = "veil-console"

    /// runc's CRIU configuration file: the one config.json's `org.criu.config` annotation names (an
    /// empty value: none), else the operator's /etc/criu/runc.conf when it exists. Its options
    /// come before veil's on CRIU's command line (runc's RPC lets the file override its own): its
    /// `log-file` is kept. At the sandbox level the annotation, which a tenant writes, is refused:
    /// a CRIU configuration can name scripts CRIU runs as host root (`action-script`).
    struct Configuration {
        static let annotation = "org.criu.config"
        static let operatorFile = "/etc/criu/runc.conf"
        let file: String?
        let log: String

        init(_ spec: Spec, sandboxed: Bool, log defaultLog: String) throws(ContainerError) {
            if let named = spec.annotations?[Self.annotation] {
                if sandboxed {
                    throw .invalidConfig(file: "config.json", field: "annotations[\(Self.annotation)]",
                                         reason: "a CRIU configuration from the container's annotations is refused at the sandbox level: it can make CRIU run host commands (action-script)")
                }
                guard named.isEmpty || (named.hasPrefix("/") && FS.exists(named) && !FS.isDirectory(named)) else {
                    throw .invalidConfig(file: "config.json", field: "annotations[\(Self.annotation)]", reason: "\(named) is not an absolute path to a file")
                }
                file = named.isEmpty ? nil : named
            } else {
                file = FS.exists(Self.operatorFile) ? Self.operatorFile : nil
            }
            log = file.flatMap(Self.logFile) ?? defaultLog
        }

        var arguments: [String] { (file.map { ["--config", $0] } ?? []) + ["--log-file", log] }

        /// The file's `log-file` option (`log-file NAME` or `log-file=NAME`), as CRIU reads it.
        static func logFile(in path: String) -> String? {
            guard let text = try? FS.readString(path) else { return nil }
            for line in text.split(separator: "\n") {
                let words = line.trimmingWhitespace.split(maxSplits: 1, whereSeparator: { $0 == "=" || $0 == " " || $0 == "\t" })
                if words.count == 2, words[0] == "log-file" || words[0] == "--log-file" {
                    return words[1].trimmingWhitespace
                }
            }
            return nil
        }
    }

    /// Mount points of binds of a pty slave in `pid`'s mount namespace (/dev/console of a terminal).
    static func ptyBindMounts(of pid: Int32) -> [String] {
        Mounts.entries(pid: String(pid)).filter { $0.fileSystemType == "devpts" && $0.root != "/" && $0.root != "/ptmx" }.map(\.mountPoint)
    }

    /// What a restore reads of the images and of config.json before anything exists, and the CRIU
    /// flags both levels build from it and from restore's options.
    struct RestoreRun {
        let binary: String
        let configuration: Configuration
        /// The init's stdio as the checkpoint recorded it (`descriptorsFile`).
        let savedStdio: [String]

        /// The configuration file, runc's restore flags, the saved stdio handed over, --auto-dedup,
        /// and, in the foreground, the init restored as CRIU's sibling (our child).
        func arguments(_ options: RestoreOptions) -> [String] {
            configuration.arguments + options.criu.arguments + CRIU.inheritedStdio(savedStdio)
                + (options.autoDedup ? ["--auto-dedup"] : []) + (options.foreground ? ["--restore-sibling"] : [])
        }

        /// Where CRIU's log is read from.
        func log(_ options: RestoreOptions) -> String { (options.workPath ?? options.imagePath) + "/" + configuration.log }

        /// The new pty of a container checkpointed with a terminal (restore checked the console
        /// socket is given); nil without one.
        func terminal(_ options: RestoreOptions) throws(ContainerError) -> Terminal? {
            guard let key = Terminal.key(in: savedStdio), let socket = options.consoleSocket else { return nil }
            return try Terminal(key: key, consoleSocket: socket)
        }
    }

    /// `descriptorsFile` of a checkpoint: fd 0-2 as `stdio(of:)` named them; none when absent.
    static func savedStdio(imagePath: String) -> [String] {
        guard let bytes = try? FS.readFile(imagePath + "/" + descriptorsFile),
              let saved = try? JSONDecoder().decode([String].self, from: Data(bytes)) else { return [] }
        return saved
    }

    /// A restored terminal container's new pty: its master sent to the console socket, its slave
    /// given to CRIU for the saved one (fds 0-2) and bound on /dev/console.
    struct Terminal {
        let slave: FileDescriptor
        let arguments: [String]

        /// The saved pty slave's key (`tty[rdev:dev]`), when the container had a terminal.
        static func key(in savedStdio: [String]) -> String? { savedStdio.first { $0.hasPrefix("tty[") } }

        init(key: String, consoleSocket: String) throws(ContainerError) {
            let (master, slavePath) = try wrap("opening a pty") { try Pty.open() }
            defer { master.close() }
            slave = try wrap("opening \(slavePath)") { try FileDescriptor.open(slavePath, O_RDWR | O_NOCTTY) }
            do throws(ContainerError) {
                let socket = try wrap("connecting console socket \(consoleSocket)") { try UnixSocket.connect(path: consoleSocket) }
                defer { socket.close() }
                try wrap("sending the pty to the console socket") { try UnixSocket.sendFD(socket: socket.raw, fd: master.raw, message: slavePath) }
            } catch {
                slave.close()
                throw error
            }
            arguments = ["--inherit-fd", "fd[0]:\(key)", "--external", "mnt[\(consoleKey)]:\(slavePath)"]
        }
    }

    /// Restore's flags that make the saved stdio's pipes and host files ours (the restoring
    /// caller's) fd 0, 1, 2.
    static func inheritedStdio(_ saved: [String]) -> [String] {
        var given = Set<String>()
        var args: [String] = []
        for (fd, descriptor) in saved.enumerated() where (descriptor.hasPrefix("pipe:[") || descriptor.hasPrefix("file[")) && given.insert(descriptor).inserted {
            args += ["--inherit-fd", "fd[\(fd)]:\(descriptor)"]
        }
        return args
    }

    /// runc's `--page-server ADDRESS:PORT` (the last colon splits, so an IPv6 address may hold others).
    static func pageServer(_ text: String) throws(ContainerError) -> (address: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw .invalidConfig(file: "command line", field: "--page-server", reason: "\(text): want ADDRESS:PORT")
        }
        var address = String(text[..<colon])
        if address.hasPrefix("[") && address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        guard !address.isEmpty else { throw .invalidConfig(file: "command line", field: "--page-server", reason: "\(text): want ADDRESS:PORT") }
        return (address, port)
    }

    static func binary() throws(ContainerError) -> String {
        var directories = (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":").map(String.init)
        directories += ["/usr/sbin", "/sbin", "/usr/local/sbin"]
        guard let found = directories.map({ $0 + "/criu" }).first(where: { access($0, X_OK) == 0 }) else {
            throw .unsupported("checkpoint and restore need CRIU, which is not installed (apt-get install criu)")
        }
        return found
    }

    /// What runc prepares before a restore: the mount points of config.json's mounts, made in the
    /// rootfs as `create` made them (a fresh snapshot of the image, as containerd's restore gives,
    /// lacks them and CRIU will not make them), except below a tmpfs, whose content CRIU brings
    /// back, and cgroup mounts (below /sys, whose mount shows them). A bind of a file gets a file.
    static func makeMountPoints(_ spec: Spec, rootfs: String, bundle: String) throws(ContainerError) {
        let mounts = spec.mounts ?? []
        let tmpfs = mounts.filter { $0.type == "tmpfs" }.map { $0.destination.hasSuffix("/") ? $0.destination : $0.destination + "/" }
        for (index, mount) in mounts.enumerated() where mount.type != "cgroup" && mount.type != "cgroup2" {
            if tmpfs.contains(where: { mount.destination.hasPrefix($0) }) { continue }
            var isFile = false
            if mount.isBind, let source = mount.hostSource(bundle: bundle) { isFile = !FS.isDirectory(source) }
            let field = "mounts[\(index)].destination"
            let components: [String]
            do { components = try RootPath.resolve(root: rootfs, path: mount.destination) } catch {
                throw .invalidConfig(file: "config.json", field: field, reason: "\"\(mount.destination)\" escapes the container root through symlink \(error.symlink)")
            }
            do { _ = try RootPath.create(root: rootfs, components: components, lastIsFile: isFile) } catch {
                throw .invalidConfig(file: "config.json", field: field, reason: "making its mount point for the restore: \(error)")
            }
        }
    }

    /// Bind mounts of host paths are outside what CRIU can save: each is named external by its
    /// destination, and a restore maps the destination back to the bundle's source. The cgroup
    /// mount is such a bind too (the container's own cgroup directory, or one per v1 hierarchy on
    /// a tmpfs): a restore maps it to the new container's cgroup.
    static func externalMounts(_ spec: Spec, bundle: String, cgroup: Cgroup?, restoring newCgroup: Cgroup?) -> [(destination: String, source: String)] {
        var pairs: [(destination: String, source: String)] = []
        for mount in spec.mounts ?? [] {
            if mount.type == "cgroup" || mount.type == "cgroup2" {
                guard let cgroup else { continue }
                if cgroup.unifiedOnly {
                    let source = newCgroup.flatMap { $0.paths["unified"] ?? $0.paths.values.first }
                    pairs.append((mount.destination, source ?? mount.destination))
                } else {
                    for name in cgroup.paths.keys.sorted() {
                        let destination = mount.destination + "/" + name
                        pairs.append((destination, newCgroup?.paths[name] ?? destination))
                    }
                }
                continue
            }
            guard mount.isBind, let hostSource = mount.hostSource(bundle: bundle) else { continue }
            pairs.append((mount.destination, newCgroup != nil ? hostSource : mount.destination))
        }
        return pairs
    }

    /// CRIU's flags for external mounts: `--ext-mount-map DEST:SOURCE` each.
    static func mountMapFlags(_ pairs: [(destination: String, source: String)]) -> [String] {
        pairs.flatMap { ["--ext-mount-map", $0.destination + ":" + $0.source] }
    }

    /// The network namespace, as runc hands it to CRIU. One veil made (no path) is saved empty and
    /// made empty at restore ("runc doesn't manage network devices and their configuration": its
    /// addresses, routes and rules are the network plugin's, and CRIU would run ip and iptables
    /// eight times to save them); restore brings its loopback up. One joined by path (a pod's, made
    /// by CNI) is external: the restored container joins the path its new config names.
    static func networkNamespaceFlags(_ spec: Spec, restoring: Bool) -> [String] {
        guard let network = spec.linux?.namespaces?.first(where: { $0.type == .network }) else { return [] }
        guard let path = network.path else { return ["--empty-ns", "net"] }
        if restoring {
            // Inherited by CRIU (no close-on-exec); the process ends soon after, closing it.
            let fd = open(path, O_RDONLY)
            return fd >= 0 ? ["--inherit-fd", "fd[\(fd)]:\(externalNetworkKey)"] : []
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        return ["--external", "net[\(st.st_ino)]:\(externalNetworkKey)"]
    }

    static let externalNetworkKey = "veil-network-namespace"

    /// CRIU's whole environment (it runs ip and iptables for a network namespace it restores).
    static let environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Runs `command` (`criu restore ...`, after a prefix such as nsenter) once `place` has put its
    /// process where the container lives: the restored tree inherits CRIU's cgroup, so no restored
    /// process is ever outside it. Returns the restored init's pid, which CRIU wrote to `pidFile`
    /// (removed).
    static func restore(_ command: [String], log: String, pidFile: String, id: String, stdio terminal: FileDescriptor? = nil,
                        place: (Int32) throws(ContainerError) -> Void) throws(ContainerError) -> Int32 {
        // A shell holds until it reads a line on fd 3, then becomes CRIU: placed first, CRIU forks
        // every restored process where the container lives. Its stdio is ours, or the new pty's
        // slave (CRIU hands it on).
        let gate = try wrap("a pipe for CRIU's start") { try FileDescriptor.pipe() }
        defer { gate.reader.close(); gate.writer.close() }
        let wrapper = ["/bin/sh", "-c", "read -r go <&3 && exec 3<&- && exec \"$@\"", "sh"] + command
        var placing: [Int32: Int32] = [3: gate.reader.raw]
        for fd: Int32 in 0...2 where terminal != nil || fcntl(fd, F_GETFD) >= 0 { placing[fd] = terminal?.raw ?? fd }
        let child: Int32
        do { child = try Spawner.spawn(wrapper[0], wrapper, placing: placing, env: environment) } catch {
            throw error.context("running \(command[0])")
        }
        gate.reader.close()
        do throws(ContainerError) { try place(child) } catch {
            Glibc.kill(child, SIGKILL)
            _ = try? Wait.waitpid(child)
            throw error
        }
        _ = write(gate.writer.raw, "\n", 1)
        gate.writer.close()
        try wait(child, log: log, what: "restore")
        let pidText = (try? FS.readString(pidFile))?.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard let pid = Int32(pidText), pid > 0 else { throw .initFailed("restore \(id): CRIU wrote no pid to \(pidFile)") }
        unlink(pidFile)
        return pid
    }

    /// Runs CRIU to the end; a failure carries the last lines of its log.
    static func run(_ args: [String], log: String, what: String) throws(ContainerError) {
        let child: Spawner.Child
        do { child = try Spawner.spawn(path: args[0], args: args, env: environment, withStdinPipe: false) } catch {
            throw error.context("running \(args[0])")
        }
        try wait(child.pid, log: log, what: what)
    }

    private static func wait(_ pid: Int32, log: String, what: String) throws(ContainerError) {
        let status: Int32
        do { status = try Wait.waitpid(pid) } catch { throw error.context("waiting for criu \(what)") }
        guard status == 0 else {
            let lines = ((try? FS.readString(log)) ?? "").split(separator: "\n")
            let errors = lines.filter { $0.contains("Error") || $0.contains("error") }.suffix(4)
            let tail = (errors.isEmpty ? lines.suffix(4) : errors).joined(separator: " | ")
            throw .failed(context: "criu \(what) exited with status \(status) (log: \(log))", cause: CRIUFailure(lastLines: String(tail)))
        }
    }

    struct CRIUFailure: Error, CustomStringConvertible {
        let lastLines: String
        var description: String { lastLines.isEmpty ? "no log" : lastLines }
    }
}

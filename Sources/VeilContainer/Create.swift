import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec
import VeilSystemd

public struct CreateOptions: Sendable {
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    /// An already connected console socket: a foreground `run` of a terminal container receives the pty itself.
    public var consoleConnection: Int32?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds = 0
    /// Record mode (`veil seccomp record`): the profile of the calls the container makes is written here when it exits.
    public var seccompRecordOutput: String?
    /// Where the recorder's messages go (default: recorder.log in the container's state directory).
    public var seccompRecordLog: String?
    public init(bundle: String) { self.bundle = bundle }
}

/// A created container whose init waits on the exec fifo.
public struct CreatedContainer {
    public let record: ContainerRecord
    public let initPid: Int32
    public let terminal: Bool
    /// Record mode: the recorder, which writes the profile once the container is gone.
    public var recorderPid: Int32?
}

public struct Runtime {
    public let store: StateStore
    public let log: Logger
    /// The operator's level (`--isolation`, the shim's config): a floor a container's annotation may only raise.
    public var isolation: IsolationLevel?
    /// `--allow-lower-isolation`: the annotation may also lower the level.
    public var allowLowerIsolation = false
    /// Where sandboxes' host uid ranges come from.
    public var idPool = IDPool.default
    /// Host device nodes the operator lets into sandboxes beyond the default set (`--sandbox-device`).
    public var sandboxDevices: Set<String> = []
    /// `--allow-seccomp-record`: config.json's dev.veil.seccomp-record annotation may ask for record mode.
    public var allowSeccompRecord = false
    /// Seccomp profiles named by annotation and pulled from registries (nil: the operator switched them off).
    public var seccompArtifacts: SeccompArtifactPolicy? = SeccompArtifactPolicy()
    /// `--systemd-cgroup`: containers live in systemd scope units ("slice:prefix:name" cgroupsPath).
    public var systemdCgroup = false
    /// `--allow-systemd-properties`: at the sandbox level, config.json may set any org.systemd.property.*
    /// (by default only the ones container managers send: timeouts, ordering, garbage collection).
    public var allowSystemdProperties = false

    public init(root: String, log: Logger, isolation: IsolationLevel? = nil) {
        store = StateStore(root: root)
        self.log = log
        self.isolation = isolation
    }

    /// `create`: everything up to the point where the init blocks on the exec fifo. Each phase
    /// is its own function; anything made on the host is undone by `Cleanup` if a later one fails.
    public func create(id: String, options: CreateOptions) throws(ContainerError) -> CreatedContainer {
        var config = try validate(id: id, options: options)
        defer { config.closeJoins() }
        var host = try prepareHost(&config)
        defer {
            host.closeDescriptors()
            host.cleanup.run()
        }
        let (initPid, channel) = try startInit(&config, &host, options: options)
        var record = ContainerRecord(
            id: id, ociVersion: config.spec.ociVersion, pid: initPid, pidStartTime: ProcessInfo.startTime(initPid),
            bundle: config.bundle, rootfs: config.rootfs, created: Clock.rfc3339Now(), owner: "",
            annotations: config.spec.annotations, cgroup: host.cgroup, hooks: config.spec.hooks)
        record.isolation = config.level
        record.sandboxOwner = config.sandbox?.ownerID
        record.sandboxSlot = config.sandbox?.slot
        record.sandboxDirectory = config.sandbox?.publicDirectory
        let state = store.ociState(of: record, status: .creating)
        // An init cloned without stage 1 may have failed before it read anything: its report wins.
        try channel.answering { () throws(ContainerError) in
            try deliverPlan(config, &host, to: channel, initPid: initPid, state: state, options: options)
        }
        try channel.answering { () throws(ContainerError) in
            try writeWardenInputs(config, host)
            try startWarden(config, &host, record: &record)
            try persistConfig(config)
        }
        try serveInit(config, &host, channel, record: &record, state: state, options: options)
        try persist(record: record, pidFile: options.pidFile)
        host.cleanup.disarm()
        if let recorder = host.cleanup.recorder { SeccompRecordMode.commit(recorder.commitPipe) }
        log.debug("create \(id): created; the init waits on the exec fifo")
        var created = CreatedContainer(record: record, initPid: initPid, terminal: config.terminal)
        created.recorderPid = host.cleanup.recorder?.pid
        return created
    }

    /// Reads and checks config.json and everything it names, before anything exists on the host.
    private func validate(id: String, options: CreateOptions) throws(ContainerError) -> CreateConfig {
        try StateStore.validate(id: id)
        let bundle = FS.realPath(options.bundle) ?? options.bundle
        var spec: Spec
        do { spec = try Spec.load(bundle: bundle); try spec.validate() } catch {
            throw .invalidConfig(file: bundle + "/config.json", field: "", reason: "\(error)")
        }
        guard let process = spec.process else {
            throw .invalidConfig(file: "config.json", field: "process", reason: "required to create a container")
        }
        let rootfsConfigured = spec.root.path.hasPrefix("/") ? spec.root.path : bundle + "/" + spec.root.path
        guard FS.isDirectory(rootfsConfigured), let rootfs = FS.realPath(rootfsConfigured) else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "rootfs \(rootfsConfigured) does not exist or is not a directory")
        }
        let terminal = process.terminal == true
        if !terminal && options.consoleSocket != nil {
            throw .invalidConfig(file: "config.json", field: "process.terminal", reason: "cannot use console socket if veil will not allocate a tty (terminal is false)")
        }
        if terminal && options.consoleSocket == nil && options.consoleConnection == nil {
            throw .invalidConfig(file: "config.json", field: "process.terminal", reason: "a terminal needs --console-socket (or a foreground run)")
        }
        let recordOutput = try SeccompRecordMode.output(spec: spec, requested: options.seccompRecordOutput, allowed: allowSeccompRecord)
        if recordOutput != nil { try SeccompRecordMode.refuseNotifyingProfile(spec) }
        let level: IsolationLevel
        do { level = try IsolationLevel.resolve(annotations: spec.annotations, floor: isolation, allowLowering: allowLowerIsolation) } catch {
            throw .invalidConfig(file: "config.json", field: error.source, reason: "\(error)")
        }
        log.debug("create \(id): config read from \(bundle), level \(level.rawValue)")
        let artifact = try applySeccompArtifact(id: id, to: &spec)
        var sandbox: SandboxContext?
        if level == .sandbox {
            do throws(SandboxError) {
                sandbox = try sandboxBuilder.prepare(id: id, stateDirectory: store.directory(id), spec: &spec, pod: podOwner(of: spec, id: id))
            } catch { throw .sandbox(error) }
            if let dropped = sandbox?.droppedDevices, !dropped.isEmpty {
                log.debug("sandbox: host devices not passed (allow with --sandbox-device): \(dropped.joined(separator: " "))")
            }
        }
        let namespaces = spec.linux?.namespaces ?? []
        if spec.hostname != nil && spec.hostname != "" && !namespaces.contains(where: { $0.type == .uts }) {
            throw .invalidConfig(file: "config.json", field: "hostname", reason: "setting a hostname needs a private uts namespace")
        }
        try SysctlRules.check(spec)
        if options.noPivot, let name = spec.linux?.rootfsPropagation, let flags = MountOptions.propagationFlags(name), flags & UInt(MS_PRIVATE) != 0 {
            throw .invalidConfig(file: "config.json", field: "linux.rootfsPropagation", reason: "\(name) is not safe without pivot_root (--no-pivot)")
        }
        guard namespaces.contains(where: { $0.type == .mount }) else {
            throw .invalidConfig(file: "config.json", field: "linux.namespaces", reason: "a mount namespace is required")
        }
        let scope = systemdCgroup ? try planScope(spec, id: id, level: level) : nil
        let seccomp = artifact != nil ? artifact?.program : try compileSeccomp(spec)
        var record: (output: String, filter: SeccompProgram)?
        if let recordOutput {
            record = (recordOutput, try SeccompRecordMode.filter())
            if options.seccompRecordOutput == nil {
                try wrap("creating \(SeccompRecordMode.recordingsDirectory)") { try FS.mkdirAll(SeccompRecordMode.recordingsDirectory, mode: 0o700) }
            }
        }
        // Namespaces to join: opened now so a wrong path fails before anything exists (and last
        // here, so no failure above leaves them open).
        var joins: [(fd: FileDescriptor, type: LinuxNamespaceType)] = []
        for (index, ns) in namespaces.enumerated() {
            guard let path = ns.path else { continue }
            do { joins.append((try FileDescriptor.open(path, O_RDONLY), ns.type)) } catch {
                joins.forEach { $0.fd.close() }
                throw .invalidConfig(file: "config.json", field: "linux.namespaces[\(index)].path", reason: "\(error)")
            }
        }
        // The user namespace last: as host root we may join any other namespace first, including
        // one its owner does not own (a host-network pod's container joins the host's UTS
        // namespace through the pod's sandbox), which we could not from inside it.
        joins.sort { $0.type != .user && $1.type == .user }
        return CreateConfig(id: id, bundle: bundle, spec: spec, rootfs: rootfs, terminal: terminal, level: level,
                            sandbox: sandbox, seccomp: seccomp, record: record, joins: joins, scope: scope)
    }

    /// The state directory, the exec fifo, the cgroup with its limits and, at the sandbox level,
    /// the sandbox's id range, /proc views and device nodes.
    private func prepareHost(_ config: inout CreateConfig) throws(ContainerError) -> PreparedHost {
        let id = config.id
        let directory = store.directory(id)
        do { try FS.mkdirAll(store.root, mode: 0o711) } catch { throw error.context("creating state root") }
        if mkdir(directory, 0o711) != 0 {
            if errno == EEXIST { throw .alreadyExists(id: id) }
            throw LinuxError("mkdir", directory).context("creating state directory")
        }
        var cleanup = Cleanup(directory: directory)
        let fifo = store.fifoPath(id)
        if mkfifo(fifo, 0o622) != 0 { cleanup.run(); throw LinuxError("mkfifo", fifo).context("creating exec fifo") }
        chmod(fifo, 0o622)  // umask would otherwise narrow who may open it from a user namespace
        let cgroup: Cgroup
        do throws(ContainerError) {
            if let scope = config.scope {
                cgroup = try makeScopeCgroup(scope, cleanup: &cleanup)
            } else {
                cgroup = try makeCgroup(config.spec, id: id, cleanup: &cleanup)
            }
        } catch {
            cleanup.run()
            throw error
        }
        var host = PreparedHost(cgroup: cgroup, fifo: fifo, cleanup: cleanup)
        if !config.allocatesAfterClone {
            do throws(ContainerError) { try allocateSandbox(&config, &host) } catch {
                host.cleanup.run()
                throw error
            }
        }
        return host
    }

    /// Sandbox level: `reserveSandbox` and `furnishSandbox` at once.
    private func allocateSandbox(_ config: inout CreateConfig, _ host: inout PreparedHost) throws(ContainerError) {
        try reserveSandbox(&config, &host)
        try furnishSandbox(&config, &host)
    }

    /// Sandbox level: what the sandbox's namespaces must find made (`SandboxBuilder.reserve`).
    private func reserveSandbox(_ config: inout CreateConfig, _ host: inout PreparedHost) throws(ContainerError) {
        guard var context = config.sandbox else { return }
        do throws(SandboxError) { try sandboxBuilder.reserve(&context, spec: &config.spec, undo: &host.cleanup.sandbox) } catch { throw .sandbox(error) }
        config.sandbox = context
        log.debug("create \(config.id): sandbox slot \(context.slot.map(String.init) ?? "shared") allocated")
    }

    /// Sandbox level: the /proc views and the device nodes (`SandboxBuilder.furnish`).
    private func furnishSandbox(_ config: inout CreateConfig, _ host: inout PreparedHost) throws(ContainerError) {
        guard var context = config.sandbox else { return }
        do throws(SandboxError) { host.deviceNodes = try sandboxBuilder.furnish(&context, spec: config.spec, cgroup: host.cgroup) } catch {
            throw .sandbox(error)
        }
        config.sandbox = context
        log.debug("create \(config.id): the sandbox's /proc views and devices made")
    }

    /// Sandbox level, a sandbox of its own: the record and the warden's inputs, while the init builds.
    private func writeWardenInputs(_ config: CreateConfig, _ host: PreparedHost) throws(ContainerError) {
        guard let context = config.sandbox else { return }
        do throws(SandboxError) { try sandboxBuilder.writeWardenInputs(context, id: config.id, spec: config.spec, cgroup: host.cgroup) } catch {
            throw .sandbox(error)
        }
    }

    /// The container's cgroup with linux.resources applied.
    func makeCgroup(_ spec: Spec, id: String, cleanup: inout Cleanup) throws(ContainerError) -> Cgroup {
        let cgroup: Cgroup
        do { cgroup = try Cgroup.create(cgroupsPath: spec.linux?.cgroupsPath, containerID: id) } catch {
            switch error {
            case .invalidPath, .systemdPathUnsupported:
                throw .invalidConfig(file: "config.json", field: "linux.cgroupsPath", reason: "\(error)")
            default:
                throw .cgroup(context: "creating the container's cgroup", error)
            }
        }
        cleanup.cgroup = cgroup
        // As runc: never join a frozen cgroup (the init would hang in D state, and we with it).
        if cgroup.isFrozenByAnyone() {
            throw .invalidConfig(file: "config.json", field: "linux.cgroupsPath", reason: "container's cgroup unexpectedly frozen (thaw it first)")
        }
        if let present = try? cgroup.processes(), !present.isEmpty {
            log.warning("container's cgroup is not empty: \(present.count) process(es) found")
        }
        do { try cgroup.apply(CgroupResources(spec: spec)) } catch {
            throw .resources(error, file: "config.json", field: "linux.resources", context: "applying linux.resources")
        }
        log.debug("create \(id): cgroup \(cgroup.paths["memory"] ?? cgroup.paths.values.sorted().first ?? "") ready")
        return cgroup
    }

    /// Clones stage 1 and the init, or the init alone where stage 1 has nothing to do
    /// (`SpawnRequest.clonesInitDirectly`); returns the init's host pid and the channel to it.
    private func startInit(_ config: inout CreateConfig, _ host: inout PreparedHost, options: CreateOptions) throws(ContainerError) -> (Int32, InitChannel) {
        let spec = config.spec
        let namespaces = spec.linux?.namespaces ?? []
        // Everything the init needs, as fds placed after the preserved ones (InitFD).
        let fifoFD = try wrap("opening exec fifo") { try FileDescriptor.open(host.fifo, O_PATH) }
        let consoleFD = config.terminal ? try connectConsole(socketPath: options.consoleSocket, connection: options.consoleConnection) : nil
        defer {
            fifoFD.close()
            consoleFD?.close()
        }
        var request = SpawnRequest(cgroup: host.cgroup, preserveFds: options.preserveFds)
        request.awaitScope = config.scope != nil
        request.oomScoreAdj = spec.process?.oomScoreAdj
        request.joins = config.joins.map { ($0.fd.raw, $0.type.cloneFlag) }
        request.unshareUser = config.creates(.user)
        for ns in namespaces where ns.path == nil && ns.type != .user { request.unshareFlags |= ns.type.cloneFlag }
        if let offsets = spec.linux?.timeOffsets, config.creates(.time) {
            request.timeOffsets = offsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.secs ?? 0) \($0.value.nanosecs ?? 0)\n" }.joined()
        }
        if config.level == .sandbox, let network = HostOwnedNetwork.plan(for: spec) {
            request.network = network
            if network.create { request.unshareFlags &= ~LinuxNamespaceType.network.cloneFlag }
        }
        request.extraFDs = [fifoFD.raw] + (consoleFD.map { [$0.raw] } ?? [])
        request.directInitAllowed = true
        let (child, channel) = try spawn(request)
        config.closeJoins()
        host.networkPrepared = request.network != nil
        host.hasConsole = consoleFD != nil
        if request.clonesInitDirectly {
            host.cleanup.initPid = child
            log.debug("create \(config.id): init running (pid \(child))")
            try channel.answering { () throws(ContainerError) in
                try channel.send(InitChannel.PendingPlan(makePlan(config, host, options: options), requestsBefore: 0))
            }
            return (child, channel)
        }
        let stage1 = child
        defer { _ = try? Wait.waitpid(stage1) }
        log.debug("create \(config.id): stage 1 cloned (pid \(stage1))")
        var pendingScope: PendingScope?
        do throws(ContainerError) {
            if let scope = config.scope { pendingScope = try beginScope(scope, id: config.id, cleanup: &host.cleanup, pid: stage1) }
            if config.allocatesAfterClone { try reserveSandbox(&config, &host) }
        } catch {
            Glibc.kill(stage1, SIGKILL)  // it waits for our answer: the deferred waitpid would never return
            throw error
        }
        let plan = InitChannel.PendingPlan(makePlan(config, host, options: options), requestsBefore: request.stage1Requests)
        // What the plan's late part carries is made while stage 1 goes on and the init decodes the plan.
        let initPid = try channel.awaitInitPid(whileInitStarts: { () throws(ContainerError) in
            if config.allocatesAfterClone { try furnishSandbox(&config, &host) }
            do throws(SandboxError) {
                try config.sandbox?.startServingViews()
                if let sandbox = config.sandbox, let userns = host.userNamespace {
                    defer {
                        userns.close()
                        host.userNamespace = nil
                    }
                    host.idmapped = try sandboxBuilder.idmappedMounts(sandbox, userNamespace: userns, rootfs: config.rootfs, spec: config.spec, bundle: config.bundle)
                    log.debug("create \(config.id): id-mapped mounts made")
                }
            } catch { throw .sandbox(error) }
        }, placeInScope: { () throws(ContainerError) in
            guard let scope = config.scope, let pendingScope else { throw .initFailed("stage 1 waits for a systemd scope it does not have") }
            try finishScope(pendingScope, scope, id: config.id, cgroup: host.cgroup, wardenCgroup: config.sandbox.map { $0.owner == nil } ?? false)
        }, writeIDMaps: { () throws(ContainerError) in
            // The sandbox's allocation chose its id maps.
            try writeIDMap("/proc/\(stage1)/uid_map", config.spec.linux?.uidMappings ?? [], field: "linux.uidMappings")
            try writeIDMap("/proc/\(stage1)/gid_map", config.spec.linux?.gidMappings ?? [], field: "linux.gidMappings")
            // The init will be in stage 1's user namespace: the id-mapped mounts need not wait for it.
            if let sandbox = config.sandbox, !sandbox.userNamespaceGiven {
                do throws(SandboxError) { host.userNamespace = try SandboxBuilder.userNamespace(of: stage1) } catch { throw .sandbox(error) }
            }
        }, sysctlKeys: request.network?.sysctls.map { $0.key } ?? [], plan: plan)
        host.cleanup.initPid = initPid
        log.debug("create \(config.id): init running (pid \(initPid))")
        return (initPid, channel)
    }

    /// What the init builds and runs: everything known before it exists.
    private func makePlan(_ config: CreateConfig, _ host: PreparedHost, options: CreateOptions) -> InitPlan {
        let spec = config.spec
        var plan = InitPlan(
            id: config.id, spec: spec.forInit, bundle: config.bundle,
            noPivot: options.noPivot, preserveFds: options.preserveFds, hasConsoleSocket: host.hasConsole,
            cgroupPaths: host.cgroup.paths, cgroupUnifiedOnly: host.cgroup.unifiedOnly,
            newUserNamespace: config.inUserNamespace,
            newMountNamespace: config.creates(.mount), seccomp: config.seccomp.map(SeccompPlan.init))
        plan.recordSeccomp = config.record.map { SeccompPlan($0.filter) }
        plan.networkPrepared = host.networkPrepared
        if let sandbox = config.sandbox {
            // Record mode: a filter chain holds one listener at most (the kernel says EBUSY to a
            // second), and the record filter's takes the policy's notified calls anyway.
            plan.sandboxSeccomp = SeccompPlan(config.record == nil ? sandbox.program
                                              : SeccompProgram(filter: sandbox.program.filter, flags: sandbox.program.flags, usesNotify: false))
        }
        return plan
    }

    /// The plan's late part, followed by the mounts host root opened for the init: the id-mapped
    /// rootfs and bind sources (sandbox level), or bind sources opened outside a new user namespace.
    private func deliverPlan(_ config: CreateConfig, _ host: inout PreparedHost, to channel: InitChannel, initPid: Int32, state: OCIState, options: CreateOptions) throws(ContainerError) {
        let spec = config.spec
        let sandbox = config.sandbox
        var mapped = host.idmapped
        host.idmapped = nil  // closed below with the other descriptors
        if mapped == nil, let sandbox, !sandbox.userNamespaceGiven {
            do throws(SandboxError) { mapped = try sandboxBuilder.idmappedMounts(sandbox, memberPid: initPid, rootfs: config.rootfs, spec: spec, bundle: config.bundle) } catch {
                throw .sandbox(error)
            }
            log.debug("create \(config.id): id-mapped mounts made")
        }
        let openedSources = mapped == nil && config.inUserNamespace ? try openBindSources(initPid: initPid, spec: spec, bundle: config.bundle) : []
        var fds: [(label: String, fd: FileDescriptor)] = []
        if let mapped { fds = [("rootfs", mapped.rootfs)] + mapped.mounts.map { ("mount", $0.1) } }
        fds += openedSources.map { ("source", $0.1) }
        defer { fds.forEach { $0.fd.close() } }

        var late = InitPlan.Late(state: state, rootfs: mapped != nil ? sandbox?.mountPoint ?? config.rootfs : config.rootfs)
        late.openedSources = openedSources.map(\.0)
        if let sandbox {
            late.idmappedRootfs = mapped != nil
            late.idmappedMounts = mapped?.mounts.map(\.0) ?? []
            late.sandboxDeviceNodes = host.deviceNodes
            // The owner's allocation just computed it; a later container of the pod reads the owner's record.
            late.cpus = sandbox.owner == nil ? sandbox.cpus : (try? SandboxRecord.load(directory: sandbox.ownerDirectory))?.cpus
        }
        try channel.deliver(late, fds: fds)
        log.debug("create \(config.id): plan delivered")
    }

    /// Answers the init until it is ready: hooks, the seccomp agent's listener and, at the
    /// sandbox level, the policy's listener for a new warden (or the pod's running one).
    private func serveInit(_ config: CreateConfig, _ host: inout PreparedHost, _ channel: InitChannel, record: inout ContainerRecord, state: OCIState, options: CreateOptions) throws(ContainerError) {
        let spec = config.spec
        try channel.serveUntilReady { (request) throws(ContainerError) in
            switch request {
            case .runHooks:
                log.debug("create \(config.id): the init asks for its hooks")
                try HookRunner.run(spec.hooks?.prestart, phase: "prestart", state: state)
                try HookRunner.run(spec.hooks?.createRuntime, phase: "createRuntime", state: state)
            case .seccompListener(let listener):
                try forwardSeccompListener(listener, spec: spec, state: state)
            case .recordListener(let listener):
                guard let output = config.record?.output else { throw .initFailed("a record listener from a container not recorded") }
                let recorder = try SeccompRecordMode.startRecorder(
                    listener: listener, output: output, initPid: record.pid, wardenDirectory: config.sandbox?.wardenInputs,
                    log: options.seccompRecordLog ?? store.directory(config.id) + "/recorder.log")
                host.cleanup.recorder = recorder
                log.debug("create \(config.id): recorder started (pid \(recorder.pid)), profile to \(output)")
                // Sandbox level: the warden gets the recorder's anchor listener (see SeccompRecordMode).
                if let anchor = recorder.anchor {
                    defer { anchor.close() }
                    try attachWarden(config, &host, listener: anchor, record: &record)
                }
            case .sandboxListener(let listener):
                log.debug("create \(config.id): the sandbox policy's listener received")
                try attachWarden(config, &host, listener: listener, record: &record)
            }
        }
    }

    /// Sandbox level, a container that owns its sandbox: its warden, started as soon as the init
    /// has its plan, so that its exec and start-up overlap the init's build.
    private func startWarden(_ config: CreateConfig, _ host: inout PreparedHost, record: inout ContainerRecord) throws(ContainerError) {
        guard let sandbox = config.sandbox, sandbox.owner == nil else { return }
        do throws(SandboxError) {
            let warden = try sandboxBuilder.startWarden(sandbox, initPid: record.pid, undo: &host.cleanup.sandbox)
            record.wardenPid = warden.pid
            record.wardenStartTime = warden.startTime
            log.debug("create \(config.id): warden started (pid \(warden.pid))")
        } catch { throw .sandbox(error) }
    }

    /// Sandbox level: `listener` to the container's own warden, or to the pod's running one.
    private func attachWarden(_ config: CreateConfig, _ host: inout PreparedHost, listener: FileDescriptor, record: inout ContainerRecord) throws(ContainerError) {
        guard let sandbox = config.sandbox else { throw .initFailed("a sandbox listener from a native container") }
        do throws(SandboxError) {
            if sandbox.owner == nil {
                guard record.wardenPid != nil else { throw SandboxError.unsupported("a sandbox listener before the warden started") }
                try SandboxBuilder.handToWarden(sandbox, listener: listener)
                log.debug("create \(config.id): listener handed to the warden")
            } else {
                try SandboxBuilder.sendToWarden(directory: sandbox.ownerDirectory, listener: listener, guarding: record.pid)
            }
        } catch { throw .sandbox(error) }
    }

    /// The config the container was made from, written while the init builds its root (in the
    /// state directory, which a failed create removes whole).
    private func persistConfig(_ config: CreateConfig) throws(ContainerError) {
        // The spec as run when veil changed it (the sandbox's rewrite, a pulled profile): exec uses it.
        if config.sandbox != nil || config.spec.annotations?[SeccompArtifactAnnotation.applied] != nil {
            try store.saveConfig(config.spec, id: config.id)
        } else {
            try store.recordConfig(copying: config.bundle + "/config.json", id: config.id)
        }
    }

    /// The state record and the pid file, once the init is ready.
    private func persist(record: ContainerRecord, pidFile: String?) throws(ContainerError) {
        try store.save(record)
        if let pidFile {
            try wrap("writing pid file") { try FS.writeAtomically(FS.absolute(pidFile), Array("\(record.pid)".utf8)) }
        }
    }

    func connectConsole(socketPath: String?, connection: Int32?) throws(ContainerError) -> FileDescriptor? {
        if let socketPath {
            return try wrap("connecting console socket \(socketPath)") { try UnixSocket.connect(path: socketPath) }
        }
        if let connection {
            return FileDescriptor(try wrap("dup console socket") { try sysNeg("fcntl(F_DUPFD_CLOEXEC)") { veil_dup_cloexec_above(connection, 3) } })
        }
        return nil
    }

    /// The machinery of the sandbox level, configured by the operator's options.
    var sandboxBuilder: SandboxBuilder { SandboxBuilder(idPool: idPool, allowedDevices: sandboxDevices) }

    /// The pod sandbox a CRI container belongs to: the sandbox container its annotations name
    /// (containerd's or CRI-O's keys), when it runs here at sandbox level.
    func podOwner(of spec: Spec, id: String) -> (id: String, owner: SpecTransform.Owner)? {
        guard let role = PodAnnotations(spec.annotations), role.kind == .container,
              let sandboxID = role.sandboxID, sandboxID != id,
              let record = try? store.load(sandboxID), record.isolation == .sandbox,
              store.status(of: record) != .stopped else { return nil }
        return (sandboxID, SpecTransform.Owner(initPid: record.pid, directory: store.directory(sandboxID)))
    }

    /// linux.seccomp compiled now, so a bad profile fails create before anything exists.
    func compileSeccomp(_ spec: Spec) throws(ContainerError) -> SeccompProgram? {
        guard let profile = spec.linux?.seccomp, SeccompProgram.isEnabled(profile) else { return nil }
        do { return try SeccompProgram.compile(profile) } catch {
            throw .invalidConfig(file: "config.json", field: "", reason: "\(error)")
        }
    }

    /// Hands the init's seccomp listener to the agent at linux.seccomp.listenerPath, as the OCI spec says.
    func forwardSeccompListener(_ listener: FileDescriptor, spec: Spec, state: OCIState) throws(ContainerError) {
        guard let path = spec.linux?.seccomp?.listenerPath, !path.isEmpty else {
            throw .invalidConfig(file: "config.json", field: "linux.seccomp.listenerPath", reason: "required with SCMP_ACT_NOTIFY")
        }
        try wrap("sending the seccomp listener to \(path)") {
            try SeccompNotifyForwarder.send(listener: listener.raw, to: path, stateJSON: JSON.encode(state), metadata: spec.linux?.seccomp?.listenerMetadata)
        }
    }

    private func writeIDMap(_ path: String, _ mappings: [LinuxIDMapping], field: String) throws(ContainerError) {
        guard !mappings.isEmpty else {
            throw .invalidConfig(file: "config.json", field: field, reason: "a new user namespace needs mappings")
        }
        let text = mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        do { try FS.writeString(path, text, flags: O_WRONLY) } catch {
            throw .invalidConfig(file: "config.json", field: field, reason: "\(error)")
        }
    }
}

/// A container's configuration once `create` has checked it, before anything exists on the host.
private struct CreateConfig {
    let id: String
    let bundle: String
    var spec: Spec
    /// Absolute host path of the rootfs, symlinks resolved.
    let rootfs: String
    let terminal: Bool
    let level: IsolationLevel
    var sandbox: SandboxContext?
    let seccomp: SeccompProgram?
    /// Record mode: where the profile goes, and the record filter.
    let record: (output: String, filter: SeccompProgram)?
    /// Namespaces to join by path, opened; the user namespace last.
    var joins: [(fd: FileDescriptor, type: LinuxNamespaceType)]
    /// The systemd scope to place the container in (`--systemd-cgroup`).
    let scope: ScopePlan?

    mutating func closeJoins() {
        joins.forEach { $0.fd.close() }
        joins = []
    }

    /// The container runs in a user namespace, made or joined (the plan's `newUserNamespace`).
    var inUserNamespace: Bool { spec.linux?.namespaces?.contains { $0.type == .user } == true }

    /// A namespace of this type is made for the container (not joined).
    func creates(_ type: LinuxNamespaceType) -> Bool {
        spec.linux?.namespaces?.contains { $0.type == type && $0.path == nil } == true
    }

    /// A sandbox with a new user namespace is prepared on the host after stage 1 is cloned, while
    /// stage 1 (and systemd, making its scope) work: `reserveSandbox` before we write its id maps
    /// (stage 1 makes the mount namespace, which must see the sandbox's mounts, only after), then
    /// `furnishSandbox` while the init starts.
    var allocatesAfterClone: Bool { sandbox != nil && creates(.user) }
}

/// What `create` made on the host so far, undone by `cleanup` unless the create succeeds.
private struct PreparedHost {
    let cgroup: Cgroup
    let fifo: String
    var cleanup: Cleanup
    /// Sandbox level: device nodes host root made, by container path.
    var deviceNodes: [String: String] = [:]
    /// Sandbox level: the sandbox's user namespace, opened while stage 1 waited for its id maps.
    var userNamespace: FileDescriptor?
    /// Sandbox level: the id-mapped rootfs and bind sources, until the plan's late part takes them.
    var idmapped: (rootfs: FileDescriptor, mounts: [(Int, FileDescriptor)])?
    var networkPrepared = false
    var hasConsole = false

    mutating func closeDescriptors() {
        userNamespace?.close()
        userNamespace = nil
        if let idmapped {
            idmapped.rootfs.close()
            idmapped.mounts.forEach { $0.1.close() }
        }
        idmapped = nil
    }
}

/// Undoes a half-made container: kills the init, undoes the sandbox, removes the cgroup and the state directory.
struct Cleanup {
    let directory: String
    var cgroup: Cgroup?
    /// The systemd scope started for the container, stopped if the create fails.
    var scope: SystemdScope?
    var initPid: Int32?
    /// Record mode's recorder: a failed create leaves no profile behind.
    var recorder: SeccompRecordMode.Recorder?
    var sandbox = SandboxUndo()
    private var armed = true

    init(directory: String) { self.directory = directory }

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        // The recorder first; one that already saw the init die finds its commit pipe closed unwritten.
        if let recorder {
            recorder.commitPipe.close()
            kill(recorder.pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(recorder.pid, &status, 0)
        }
        if let initPid {
            kill(initPid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(initPid, &status, 0)
        }
        sandbox.run()
        try? scope?.stop()
        try? cgroup?.destroy()
        try? FS.removeAll(directory)
    }
}


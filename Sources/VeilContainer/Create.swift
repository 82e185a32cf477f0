import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec

public struct CreateOptions: Sendable {
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    /// An already connected console socket: a foreground `run` of a terminal container receives the pty itself.
    public var consoleConnection: Int32?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds = 0
    public init(bundle: String) { self.bundle = bundle }
}

/// A created container whose init waits on the exec fifo.
public struct CreatedContainer {
    public let record: ContainerRecord
    public let initPid: Int32
    public let terminal: Bool
}

private let namespaceFlags: [LinuxNamespaceType: Int32] = [
    .pid: 0x2000_0000, .network: 0x4000_0000, .mount: 0x0002_0000, .ipc: 0x0800_0000,
    .uts: 0x0400_0000, .user: 0x1000_0000, .cgroup: 0x0200_0000, .time: 0x0000_0080,
]

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

    public init(root: String, log: Logger, isolation: IsolationLevel? = nil) {
        store = StateStore(root: root)
        self.log = log
        self.isolation = isolation
    }

    /// `create`: everything up to the point where the init blocks on the exec fifo.
    public func create(id: String, options: CreateOptions) throws(ContainerError) -> CreatedContainer {
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
        let level: IsolationLevel
        do { level = try IsolationLevel.resolve(annotations: spec.annotations, floor: isolation, allowLowering: allowLowerIsolation) } catch {
            throw .invalidConfig(file: "config.json", field: error.source, reason: "\(error)")
        }
        log.debug("create \(id): config read from \(bundle), level \(level.rawValue)")
        var sandbox = level == .sandbox ? try prepareSandbox(id: id, spec: &spec) : nil
        let namespaces = spec.linux?.namespaces ?? []
        let wants = { (type: LinuxNamespaceType) in namespaces.contains { $0.type == type && $0.path == nil } }
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
        let seccomp = try compileSeccomp(spec)
        // Namespaces to join: open them now so a wrong path fails before anything exists.
        var joins: [(fd: FileDescriptor, type: Int32)] = []
        for (index, ns) in namespaces.enumerated() {
            guard let path = ns.path else { continue }
            do { joins.append((try FileDescriptor.open(path, O_RDONLY), namespaceFlags[ns.type] ?? 0)) } catch {
                throw .invalidConfig(file: "config.json", field: "linux.namespaces[\(index)].path", reason: "\(error)")
            }
        }
        // The user namespace last: as host root we may join any other namespace first, including
        // one its owner does not own (a host-network pod's container joins the host's UTS
        // namespace through the pod's sandbox), which we could not from inside it.
        joins.sort { !($0.type == namespaceFlags[.user]) && ($1.type == namespaceFlags[.user]) }

        let directory = store.directory(id)
        do { try FS.mkdirAll(store.root, mode: 0o711) } catch { throw error.context("creating state root") }
        if mkdir(directory, 0o711) != 0 {
            if errno == EEXIST { throw .alreadyExists(id: id) }
            throw LinuxError("mkdir", directory).context("creating state directory")
        }
        var cleanup = Cleanup(directory: directory)
        defer { cleanup.run() }

        let fifo = store.fifoPath(id)
        if mkfifo(fifo, 0o622) != 0 { throw LinuxError("mkfifo", fifo).context("creating exec fifo") }
        chmod(fifo, 0o622)  // umask would otherwise narrow who may open it from a user namespace

        let cgroup: Cgroup
        do {
            cgroup = try Cgroup.create(cgroupsPath: spec.linux?.cgroupsPath, containerID: id)
            cleanup.cgroup = cgroup
            // As runc: never join a frozen cgroup (the init would hang in D state, and we with it).
            if cgroup.isFrozenByAnyone() {
                throw ContainerError.invalidConfig(file: "config.json", field: "linux.cgroupsPath",
                                                   reason: "container's cgroup unexpectedly frozen (thaw it first)")
            }
            if let present = try? cgroup.processes(), !present.isEmpty {
                log.warning("container's cgroup is not empty: \(present.count) process(es) found")
            }
            try cgroup.apply(CgroupResources(spec: spec))
        } catch let error as ContainerError {
            throw error
        } catch {
            throw .invalidConfig(file: "config.json", field: "linux.resources", reason: "\(error)")
        }
        log.debug("create \(id): cgroup \(cgroup.paths["memory"] ?? cgroup.paths.values.sorted().first ?? "") ready")
        if var context = sandbox {
            try allocateSandbox(&context, id: id, spec: &spec, cgroup: cgroup, cleanup: &cleanup)
            sandbox = context
            log.debug("create \(id): sandbox slot \(context.slot.map(String.init) ?? "shared") allocated")
        }
        var deviceNodes: [String: String] = [:]
        if let context = sandbox, !context.userNamespaceGiven {
            let hostID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID
                ?? (try? SandboxRecord.load(directory: context.ownerDirectory(store)))?.hostID ?? 0
            deviceNodes = try SandboxDevices.make(publicDirectory: context.publicDirectory, devices: spec.linux?.devices ?? [],
                                                  allowedPaths: sandboxDevices, hostID: hostID, idCount: idPool.blockSize)
        }

        // Everything the init needs, as fds placed after the preserved ones.
        let fifoFD = try wrap("opening exec fifo") { try FileDescriptor.open(fifo, O_PATH) }
        var consoleFD: FileDescriptor?
        if terminal {
            consoleFD = try connectConsole(socketPath: options.consoleSocket, connection: options.consoleConnection)
        }
        var request = SpawnRequest(cgroup: cgroup, preserveFds: options.preserveFds)
        request.joins = joins.map { ($0.fd.raw, $0.type) }
        request.unshareUser = wants(.user)
        for ns in namespaces where ns.path == nil && ns.type != .user { request.unshareFlags |= namespaceFlags[ns.type] ?? 0 }
        if let offsets = spec.linux?.timeOffsets, wants(.time) {
            request.timeOffsets = offsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.secs ?? 0) \($0.value.nanosecs ?? 0)\n" }.joined()
        }
        if level == .sandbox, let network = HostOwnedNetwork.plan(for: spec) {
            request.network = network
            if network.create { request.unshareFlags &= ~(namespaceFlags[.network] ?? 0) }
        }
        request.extraFDs = [fifoFD.raw] + (consoleFD.map { [$0.raw] } ?? [])
        let (stage1, parentEnd) = try spawn(request)
        log.debug("create \(id): stage 1 cloned (pid \(stage1))")
        try sandbox?.procfs?.startServing()
        joins.forEach { $0.fd.close() }
        fifoFD.close()
        consoleFD?.close()

        let initPid = try handshake(stage1: stage1, sync: parentEnd, spec: spec, cgroup: cgroup, sysctlKeys: request.network?.sysctls.map(\.key) ?? [], cleanup: &cleanup)
        log.debug("create \(id): init running (pid \(initPid))")
        var record = ContainerRecord(
            id: id, ociVersion: spec.ociVersion, pid: initPid, pidStartTime: ProcessInfo.startTime(initPid),
            bundle: bundle, rootfs: rootfs, created: Clock.rfc3339Now(), owner: "",
            annotations: spec.annotations, cgroup: cgroup, hooks: spec.hooks)
        record.isolation = level
        record.sandboxOwner = sandbox?.ownerID
        record.sandboxSlot = sandbox?.slot
        record.sandboxDirectory = sandbox?.publicDirectory
        let state = store.ociState(of: record, status: .creating)
        let mapped = try sandbox.flatMap { (context) throws(ContainerError) in
            context.userNamespaceGiven ? nil : try idmappedMounts(initPid: initPid, rootfs: rootfs, spec: spec, bundle: bundle, sandboxDirectory: context.ownerDirectory(store))
        }
        var initPlan = InitPlan(
            id: id, spec: spec, bundle: bundle, rootfs: mapped != nil ? sandbox?.mountPoint ?? rootfs : rootfs, noPivot: options.noPivot,
            preserveFds: options.preserveFds, hasConsoleSocket: consoleFD != nil,
            cgroupPaths: cgroup.paths, cgroupUnifiedOnly: cgroup.unifiedOnly,
            newUserNamespace: namespaces.contains { $0.type == .user }, newMountNamespace: wants(.mount), state: state,
            seccomp: seccomp.map(SeccompPlan.init))
        initPlan.networkPrepared = request.network != nil
        let openedSources = mapped == nil && initPlan.newUserNamespace ? try openBindSources(initPid: initPid, spec: spec, bundle: bundle) : []
        initPlan.openedSources = openedSources.map(\.0)
        if let sandbox {
            initPlan.sandboxSeccomp = SeccompPlan(sandbox.program)
            initPlan.idmappedRootfs = mapped != nil
            initPlan.idmappedMounts = mapped?.mounts.map(\.0) ?? []
            initPlan.sandboxDeviceNodes = deviceNodes
            initPlan.cpus = (try? SandboxRecord.load(directory: sandbox.ownerDirectory(store)))?.cpus
        }
        try wrap("sending plan to init") { try parentEnd.send(type: UInt32(VEIL_SYNC_PLAN), payload: JSON.encode(initPlan)) }
        if let mapped {
            try wrap("sending the id-mapped mounts to init") {
                try UnixSocket.sendFD(socket: parentEnd.fd.raw, fd: mapped.rootfs.raw, message: "rootfs")
                for (_, fd) in mapped.mounts { try UnixSocket.sendFD(socket: parentEnd.fd.raw, fd: fd.raw, message: "mount") }
            }
            mapped.rootfs.close()
            mapped.mounts.forEach { $0.1.close() }
        }
        try wrap("sending the bind mounts' sources to init") {
            for (_, fd) in openedSources { try UnixSocket.sendFD(socket: parentEnd.fd.raw, fd: fd.raw, message: "source") }
        }
        openedSources.forEach { $0.1.close() }

        try converse(with: parentEnd, spec: spec, state: state, pid: initPid) { (listener) throws(ContainerError) in
            guard let sandbox else { throw .initFailed("a sandbox listener from a native container") }
            if sandbox.owner == nil {
                let (pid, start) = try startWarden(directory: directory, listener: listener, initPid: initPid, procfs: sandbox.procfs)
                record.wardenPid = pid
                record.wardenStartTime = start
                cleanup.wardenPid = pid
                log.debug("create \(id): warden started (pid \(pid))")
            } else {
                try sendToWarden(directory: sandbox.ownerDirectory(store), listener: listener, guarding: initPid)
            }
        }
        if sandbox != nil {
            try store.saveConfig(spec, id: id)
        } else {
            try store.recordConfig(copying: bundle + "/config.json", id: id)
        }
        try store.save(record)
        if let pidFile = options.pidFile {
            try wrap("writing pid file") { try FS.writeAtomically(absolute(pidFile), Array("\(initPid)".utf8)) }
        }
        cleanup.disarm()
        log.debug("create \(id): created; the init waits on the exec fifo")
        return CreatedContainer(record: record, initPid: initPid, terminal: terminal)
    }

    /// Clones stage 1 and the init (see veil_spawn.c) and returns stage 1's pid with our end of
    /// the sync socket. The init runs `veil init` with the sync socket at 3+preserveFds and the
    /// request's extra fds after it, and no other descriptor of ours.
    func spawn(_ request: SpawnRequest) throws(ContainerError) -> (Int32, SyncSocket) {
        let (parentEnd, childEnd) = try wrap("sync socket") { try SyncSocket.pair() }
        // CVE-2019-5736: the init is exec'd from a detached read-only bind mount of our binary,
        // so /proc/<pid>/exe never opens for writing, and nothing is mounted where the container sees it.
        let exe = (try? readLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        let exeFD = FileDescriptor(try wrap("protecting \(exe)") { try sysNeg("open_tree", exe) { veil_readonly_exe_fd(exe) } })
        // Above every target slot, so the dup2 shuffle in the child cannot clobber a source.
        var highExtras: [FileDescriptor] = []
        for fd in [childEnd.fd.raw] + request.extraFDs {
            highExtras.append(FileDescriptor(try wrap("dup") { try sysNeg("fcntl(F_DUPFD_CLOEXEC)") { veil_dup_cloexec_above(fd, Int32(3 + request.preserveFds + 16)) } }))
        }
        let (tasksFiles, v2Directory) = request.cgroup?.joinTargets ?? ([], nil)
        var cgroupFDs: [FileDescriptor] = []
        for file in tasksFiles.prefix(Int(VEIL_MAX_CGROUPS)) {
            cgroupFDs.append(try wrap("opening \(file)") { try FileDescriptor.open(file, O_WRONLY) })
        }
        var v2FD: FileDescriptor?
        if let dir = v2Directory {
            v2FD = try wrap("opening \(dir)") { try FileDescriptor.open(dir, O_PATH | O_DIRECTORY) }
        }
        let argv = CStringArray([exe, "init"])
        let envp = CStringArray(["\(InitFD.environmentKey)=\(3 + request.preserveFds)"])
        let exeC = CStringArray([exe])
        let offsetsC = request.timeOffsets.map { CStringArray([$0]) }
        let sysctlPairs: [CChar] = (request.network?.sysctls ?? []).flatMap { pair in
            Array(pair.path.utf8CString) + Array(pair.value.utf8CString)
        }

        var plan = veil_spawn_plan()
        plan.exe_path = UnsafePointer(exeC.pointers[0])
        plan.exe_fd = exeFD.raw
        plan.join_count = Int32(min(request.joins.count, Int(VEIL_MAX_JOIN)))
        withUnsafeMutableBytes(of: &plan.join_fds) { raw in
            let fds = raw.bindMemory(to: Int32.self)
            for (i, join) in request.joins.prefix(Int(VEIL_MAX_JOIN)).enumerated() { fds[i] = join.fd }
        }
        withUnsafeMutableBytes(of: &plan.join_types) { raw in
            let types = raw.bindMemory(to: Int32.self)
            for (i, join) in request.joins.prefix(Int(VEIL_MAX_JOIN)).enumerated() { types[i] = join.type }
        }
        plan.unshare_user = request.unshareUser ? 1 : 0
        plan.unshare_flags = request.unshareFlags
        if let offsetsC, let text = offsetsC.pointers[0] { plan.timens_offsets = UnsafePointer(text); plan.timens_offsets_len = strlen(text) }
        plan.sync_fd = childEnd.fd.raw
        plan.preserve_fds = Int32(request.preserveFds)
        withUnsafeMutableBytes(of: &plan.extra_fds) { raw in
            let fds = raw.bindMemory(to: Int32.self)
            for (i, fd) in highExtras.enumerated() { fds[i] = fd.raw }
        }
        plan.extra_count = Int32(highExtras.count)
        plan.protect_exe = 0
        withUnsafeMutableBytes(of: &plan.cgroup_tasks_fds) { raw in
            let fds = raw.bindMemory(to: Int32.self)
            for (i, fd) in cgroupFDs.enumerated() { fds[i] = fd.raw }
        }
        plan.cgroup_tasks_count = Int32(cgroupFDs.count)
        plan.cgroup_v2_fd = v2FD?.raw ?? -1
        if let network = request.network {
            plan.pre_user_unshare_flags = network.create ? namespaceFlags[.network] ?? 0 : 0
            plan.bring_up_loopback = network.create ? 1 : 0
        }

        let stage1 = argv.pointers.withUnsafeBufferPointer { argvBuffer in
            envp.pointers.withUnsafeBufferPointer { envpBuffer in
                sysctlPairs.withUnsafeBufferPointer { pairs in
                    plan.argv = UnsafePointer(argvBuffer.baseAddress)
                    plan.envp = UnsafePointer(envpBuffer.baseAddress)
                    if !pairs.isEmpty {
                        plan.net_sysctls = pairs.baseAddress
                        plan.net_sysctls_len = pairs.count
                    }
                    return veil_spawn_init(&plan)
                }
            }
        }
        if stage1 < 0 { throw LinuxError("clone", "container init", errno: -stage1).context("starting container process") }
        return (stage1, parentEnd)
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

    /// Stage 1 asks for id maps (with a new user namespace), then reports the init's pid.
    private func handshake(stage1: Int32, sync: SyncSocket, spec: Spec, cgroup: Cgroup, sysctlKeys: [String] = [], cleanup: inout Cleanup) throws(ContainerError) -> Int32 {
        defer { _ = try? Wait.waitpid(stage1) }
        var initPid: Int32 = 0
        while initPid == 0 {
            guard let message = try wrap("reading from container init", { try sync.receive() }) else {
                throw .initFailed("container init exited before reporting its pid")
            }
            switch Int(message.type) {
            case Int(VEIL_SYNC_STAGE1_READY):
                do {
                    try writeIDMap("/proc/\(stage1)/uid_map", spec.linux?.uidMappings ?? [], field: "linux.uidMappings")
                    try writeIDMap("/proc/\(stage1)/gid_map", spec.linux?.gidMappings ?? [], field: "linux.gidMappings")
                } catch let error as ContainerError {
                    try? sync.send(type: UInt32(VEIL_SYNC_ABORT))
                    throw error
                }
                try wrap("writing to container init") { try sync.send(type: UInt32(VEIL_SYNC_ACK)) }
            case Int(VEIL_SYNC_INIT_PID):
                initPid = message.payload.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                cleanup.initPid = initPid
            case Int(VEIL_SYNC_CHILD_ERROR):
                throw .initFailed(childError(message.payload, sysctlKeys: sysctlKeys))
            default:
                throw .initFailed("unexpected message \(message.type) from container init")
            }
        }
        return initPid
    }

    /// The init's requests until it reports ready (or an error).
    /// linux.seccomp compiled now, so a bad profile fails create before anything exists.
    func compileSeccomp(_ spec: Spec) throws(ContainerError) -> SeccompProgram? {
        guard let profile = spec.linux?.seccomp, SeccompProgram.isEnabled(profile) else { return nil }
        do { return try SeccompProgram.compile(profile) } catch {
            throw .invalidConfig(file: "config.json", field: "", reason: "\(error)")
        }
    }

    /// Hands the init's seccomp listener to the agent at linux.seccomp.listenerPath, as the OCI spec says.
    func forwardSeccompListener(_ sync: SyncSocket, spec: Spec, state: OCIState) throws(ContainerError) {
        let (listener, _) = try wrap("receiving the seccomp listener") { try UnixSocket.receiveFD(socket: sync.fd.raw) }
        guard let path = spec.linux?.seccomp?.listenerPath, !path.isEmpty else {
            throw .invalidConfig(file: "config.json", field: "linux.seccomp.listenerPath", reason: "required with SCMP_ACT_NOTIFY")
        }
        try wrap("sending the seccomp listener to \(path)") {
            try SeccompNotifyForwarder.send(listener: listener.raw, to: path, stateJSON: JSON.encode(state), metadata: spec.linux?.seccomp?.listenerMetadata)
        }
    }

    private func converse(with sync: SyncSocket, spec: Spec, state: OCIState, pid: Int32,
                          sandboxListener: (FileDescriptor) throws(ContainerError) -> Void) throws(ContainerError) {
        while true {
            guard let message = try wrap("reading from container init", { try sync.receive() }) else {
                throw .initFailed("container init exited during setup")
            }
            if Int(message.type) == Int(VEIL_SYNC_CHILD_ERROR) { throw .initFailed(childError(message.payload)) }
            guard let reply = try? JSONDecoder().decode(InitMessage.self, from: Data(message.payload)) else {
                throw .initFailed("malformed message from container init")
            }
            switch reply.kind {
            case .runHooks:
                try HookRunner.run(spec.hooks?.prestart, phase: "prestart", state: state)
                try HookRunner.run(spec.hooks?.createRuntime, phase: "createRuntime", state: state)
                try wrap("writing to container init") { try sync.send(type: UInt32(VEIL_SYNC_ACK)) }
            case .seccompListener:
                try forwardSeccompListener(sync, spec: spec, state: state)
            case .sandboxListener:
                let (listener, _) = try wrap("receiving the sandbox's seccomp listener") { try UnixSocket.receiveFD(socket: sync.fd.raw) }
                defer { listener.close() }
                try sandboxListener(listener)
            case .ready:
                return
            case .error:
                throw .initFailed(reply.message ?? "container init failed")
            }
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

    func childError(_ payload: [UInt8], sysctlKeys: [String] = []) -> String {
        guard payload.count >= 8 else { return "container init failed" }
        let code = payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: Int32.self) }
        let step = payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        let steps = [11: "joining its cgroups", 1: "joining a namespace", 2: "creating the user namespace", 3: "waiting for the runtime",
                     4: "becoming root in the user namespace", 5: "creating namespaces", 6: "setting time offsets",
                     7: "cloning the init", 8: "protecting the runtime binary", 9: "arranging fds", 10: "executing veil init",
                     12: "setting up its network namespace"]
        let names: [Int32: String] = [0x1000_0000: "user", 0x4000_0000: "network", 0x2000_0000: "pid", 0x0002_0000: "mount",
                                      0x0800_0000: "ipc", 0x0400_0000: "uts", 0x0200_0000: "cgroup", 0x0000_0080: "time"]
        let detail = payload.count >= 12 ? payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: Int32.self) } : 0
        var what = names[detail].map { " (\($0) namespace)" } ?? ""
        if step == Int32(VEIL_STEP_NETWORK.rawValue) {
            what = detail == 0 ? " (bringing up lo)" : sysctlKeys.indices.contains(Int(detail) - 1) ? " (linux.sysctl \"\(sysctlKeys[Int(detail) - 1])\")" : ""
        }
        return "container init failed \(steps[Int(step)] ?? "step \(step)")\(what): \(String(cString: strerror(code)))"
    }
}

/// What `spawn` needs to start a container process: which namespaces to join (fds, user
/// namespace first) or create, which cgroup to enter, and which fds to hand over.
struct SpawnRequest {
    var cgroup: Cgroup?
    var preserveFds: Int
    var joins: [(fd: Int32, type: Int32)] = []
    var unshareUser = false
    var unshareFlags: Int32 = 0
    var timeOffsets: String?
    /// Placed after the sync socket: 3 + preserveFds + 1 + index in the init.
    var extraFDs: [Int32] = []
    /// Sandbox level: the network namespace is made, configured and its sysctls written by
    /// stage 1 as host root, before the user namespace exists (see `HostOwnedNetwork`).
    var network: HostOwnedNetwork?

    init(cgroup: Cgroup?, preserveFds: Int) {
        self.cgroup = cgroup
        self.preserveFds = preserveFds
    }
}

/// Undoes a half-made container: kills the init, removes the cgroup and the state directory.
struct Cleanup {
    let directory: String
    var cgroup: Cgroup?
    var initPid: Int32?
    var idSlot: (IDPool, UInt32)?
    var wardenPid: Int32?
    var publicDirectory: String?
    var procfs: ProcfsBridge?
    private var armed = true

    init(directory: String) { self.directory = directory }

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        if let initPid {
            kill(initPid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(initPid, &status, 0)
        }
        if let wardenPid { kill(wardenPid, SIGKILL); _ = waitpid(wardenPid, nil, WNOHANG) }
        try? cgroup?.destroy()
        if let (pool, slot) = idSlot { pool.release(slot: slot, owner: directory) }
        procfs?.remove()
        if let publicDirectory {
            SandboxDevices.unmount(publicDirectory: publicDirectory)
            try? FS.removeAll(publicDirectory)
        }
        try? FS.removeAll(directory)
    }
}

func readLink(_ path: String) throws(LinuxError) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = try sys("readlink", path) { readlink(path, &buffer, buffer.count - 1) }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FS.currentDirectory() + "/" + path
}

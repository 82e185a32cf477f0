import CVeilLinux
import Glibc
import VeilCgroups
import VeilLinux
import VeilSeccomp
import VeilSpec
import VeilWarden

/// The sandbox side of `create`: which sandbox the container belongs to (its own, or its pod's),
/// the spec rewritten for it, the id range, and the warden.
public struct SandboxContext {
    /// Set when the container joins its pod's sandbox rather than owning one.
    public var owner: SpecTransform.Owner?
    /// The container that owns the sandbox: this one, or its pod's sandbox container.
    public var ownerID: String
    /// Where the owner keeps sandbox.json and warden.sock.
    public var ownerDirectory: String
    public var slot: UInt32?
    public var program: SeccompProgram
    /// Host devices config.json named that the sandbox leaves out (the operator's `--sandbox-device` lets them in).
    public var droppedDevices: [String] = []
    /// `/run/veil-sandbox/<id>-<random>`: what the sandbox's root must reach by path, where every
    /// host uid can (it cannot traverse a bundle or state path under a 0700 directory of the
    /// host's root): `rootfs`, the empty directory the init attaches the id-mapped rootfs on, and,
    /// for the sandbox's owner, the generated /proc views (`liveViews`, `fixedViews`).
    public var publicDirectory: String
    public var mountPoint: String { publicDirectory + "/rootfs" }
    /// The owner's public directory: this one, or the pod's sandbox's.
    public var ownerPublicDirectory: String
    /// What the owner's warden reads as it starts (warden.conf, dmesg, warden.bpf, the fixed /proc
    /// views' texts), on the owner's public tmpfs but in a directory only host root may list.
    public var wardenInputs: String { ownerPublicDirectory + "/warden" }
    /// The owner's live /proc views (`ProcView.isLive`): a FUSE mount where it works.
    public var liveViews: String { ownerPublicDirectory + "/proc" }
    /// The owner's fixed /proc views (`ProcView.isLive` false) as plain files.
    public var fixedViews: String { ownerPublicDirectory + "/views" }
    /// config.json brought its own user namespace and mappings: veil keeps them, allocates no
    /// range and id-maps nothing (ownership is the config's business, as with runc).
    public var userNamespaceGiven = false
    /// The owner's /proc views as a FUSE mount, served here until the warden takes over.
    var procfs: ProcfsBridge?
    /// CRI-O's pinned namespaces this pod sandbox replaced by its own (recorded in sandbox.json).
    public var adoptedNamespaces: [AdoptedNamespace] = []
    /// The CPUs the sandbox's quota allows (nproc inside), as `furnish` recorded it; nil for a
    /// pod's later container, whose owner's sandbox.json says.
    public var cpus: Int?
    /// The sandbox's boot (its uptime's zero), as `furnish` took it.
    var bootedAt: UInt64 = 0
    /// The fixed /proc views' texts `furnish` wrote, for the warden's copy.
    var fixedViewTexts: [ProcView: String] = [:]

    public static let publicParent = "/run/veil-sandbox"

    /// Starts answering the /proc views' FUSE requests: only once the init is cloned (a clone
    /// of a process with a second thread could inherit a lock that thread holds).
    public func startServingViews() throws(SandboxError) { try procfs?.startServing() }

    /// Removes what a deleted (or never finished) sandbox left under /run/veil-sandbox: its tmpfs
    /// goes with everything mounted in it (the /proc views), then the empty mount point.
    public static func removePublicDirectory(_ directory: String) {
        guard directory.hasPrefix(publicParent + "/") else { return }
        if umount2(directory, Int32(MNT_DETACH)) == 0, rmdir(directory) == 0 { return }
        // A directory of an older veil (plain directories, a tmpfs for the device nodes only), or
        // of a create that failed before its tmpfs was mounted.
        ProcfsBridge.unmount(publicDirectory: directory)
        SandboxDevices.unmount(publicDirectory: directory)
        try? FS.removeAll(directory)
    }

    /// The public directory is a small tmpfs of its own: its mount points, device nodes and (without
    /// FUSE) view files cost no journalled writes of the host's /run (which is not always a tmpfs:
    /// under CPU contention each such write can wait on the journal's thread for a time slice), and
    /// one unmount removes them all.
    static func mountPublicDirectory(_ directory: String) throws(LinuxError) {
        try FS.mkdirAll(publicParent, mode: 0o755)
        try sys("mkdir", directory) { mkdir(directory, 0o755) }
        // Not nodev: the sandbox's device nodes are made here (`SandboxDevices`).
        try Mounts.mount("veil-sandbox", directory, type: "tmpfs", flags: UInt(MS_NOSUID) | UInt(MS_NOEXEC),
                         data: "mode=755,size=4m,nr_inodes=1024")
    }
}

/// Undoes what `SandboxBuilder` made for a create that failed later.
public struct SandboxUndo {
    var idSlot: (pool: IDPool, slot: UInt32, owner: String)?
    var publicDirectory: String?
    var procfs: ProcfsBridge?
    public var wardenPid: Int32?

    public init() {}

    public func run() {
        if let wardenPid { kill(wardenPid, SIGKILL); _ = waitpid(wardenPid, nil, WNOHANG) }
        if let (pool, slot, owner) = idSlot { pool.release(slot: slot, owner: owner) }
        procfs?.remove()
        if let publicDirectory { SandboxContext.removePublicDirectory(publicDirectory) }
    }
}

/// The compiled sandbox policy, cached (`PolicyCache`): compiling it with libseccomp costs
/// milliseconds that every sandboxed create would otherwise pay.
public enum SandboxProgram {
    public static let cacheDirectory = "/run/veil-cache"

    public static func load(cacheDirectory: String = cacheDirectory) throws(SandboxError) -> SeccompProgram {
        let path = PolicyCache.path("sandbox-policy", suffix: "bpf", directory: cacheDirectory) { SandboxPolicy.fingerprint }
        let filter = try PolicyCache.load(path, directory: cacheDirectory, valid: { !$0.isEmpty && $0.count % 8 == 0 }) { () throws(SandboxError) -> [UInt8] in
            do { return try SeccompProgram.compile(SandboxPolicy.profile, field: "sandbox policy").filter } catch {
                throw .system(context: "compiling the sandbox policy", cause: error)
            }
        }
        return SeccompProgram(filter: filter, flags: SandboxPolicy.filterFlags, usesNotify: true)
    }

    /// The policy's counts for a sandbox's boot log (those `veil sandbox policy` prints), cached
    /// beside the program for the same reason.
    public static func summary(cacheDirectory: String = cacheDirectory) -> SandboxPolicy.Summary {
        let path = PolicyCache.path("sandbox-policy", suffix: "summary", directory: cacheDirectory) { SandboxPolicy.fingerprint }
        let text = PolicyCache.load(path, directory: cacheDirectory, valid: { SandboxPolicy.Summary(text: $0) != nil }) {
            Array(SandboxPolicy.summary.text.utf8)
        }
        return SandboxPolicy.Summary(text: text) ?? SandboxPolicy.summary
    }
}

/// Everything that makes a sandbox, in the order `create` calls it: `prepare` (the spec, before
/// anything exists), `reserve` (the public directory's mounts, the id range), `furnish` (the /proc
/// views, device nodes), `idmappedMounts` (once the sandbox's user namespace exists),
/// `writeWardenInputs` and `startWarden`, or `sendToWarden` for a pod's later container;
/// `allocate` is the first three at once (restore).
public struct SandboxBuilder {
    /// Where sandboxes' host uid ranges come from.
    public var idPool: IDPool
    /// Host device nodes the operator lets into sandboxes beyond the default set (`--sandbox-device`).
    public var allowedDevices: Set<String>

    public init(idPool: IDPool, allowedDevices: Set<String>) {
        self.idPool = idPool
        self.allowedDevices = allowedDevices
    }

    /// Rewrites `spec` for the sandbox (before anything exists); the id range comes later.
    /// `stateDirectory`: the container's; `pod`: its pod's sandbox, when it joins one.
    public func prepare(id: String, stateDirectory: String, spec: inout Spec, pod: (id: String, owner: SpecTransform.Owner)?) throws(SandboxError) -> SandboxContext {
        if let profile = spec.linux?.seccomp, (profile.syscalls ?? []).contains(where: { $0.action == "SCMP_ACT_NOTIFY" }) || profile.defaultAction == "SCMP_ACT_NOTIFY" {
            throw .refused(field: "linux.seccomp", reason: "SCMP_ACT_NOTIFY cannot be combined with the sandbox level (its warden holds the listener): \(SandboxError.nativeRemedy)")
        }
        let userNamespaceGiven = spec.linux?.namespaces?.contains { $0.type == .user } == true
        var adopted: [AdoptedNamespace] = []
        if !userNamespaceGiven, let role = PodAnnotations(spec.annotations), role.manager == .crio {
            switch (role.kind, pod) {
            case (.sandbox, nil):
                adopted = try PodNamespaces.adopt(&spec)
            case (.container, let pod?):
                let record = try? SandboxRecord.load(directory: pod.owner.directory)
                try PodNamespaces.mapMember(&spec, adopted: record?.adoptedNamespaces ?? [], ownerInitPid: pod.owner.initPid)
            case (.container, nil):
                throw .refused(field: "annotations[\"io.kubernetes.cri-o.SandboxID\"]",
                               reason: "pod sandbox \(role.sandboxID ?? "?") does not run here at the sandbox level: CRI-O dropped this pod's infra container "
                                   + "(drop_infra_ctr = true), and the sandbox level needs it to hold the pod's namespaces: set drop_infra_ctr = false "
                                   + "(veil install --crio does), or \(SandboxError.nativeRemedy)")
            case (.sandbox, _?):
                break
            }
        }
        if !userNamespaceGiven { try refuseForeignNamespaces(spec, pod: pod?.owner) }
        let publicDirectory = SandboxContext.publicParent + "/" + id + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        var ownerPublicDirectory = publicDirectory
        if let pod {
            guard let owner = try? SandboxRecord.load(directory: pod.owner.directory), let views = owner.publicDirectory else {
                throw .corrupt(path: pod.owner.directory, reason: "the pod's sandbox \(pod.id) has no sandbox record")
            }
            ownerPublicDirectory = views
        }
        let program = try SandboxProgram.load()
        var context = SandboxContext(owner: pod?.owner, ownerID: pod?.id ?? id, ownerDirectory: pod?.owner.directory ?? stateDirectory,
                                     slot: nil, program: program, publicDirectory: publicDirectory,
                                     ownerPublicDirectory: ownerPublicDirectory)
        let boottime = Int64(BootClock.now() / 1_000_000_000)
        spec = SpecTransform.apply(spec, hostID: 0, idCount: idPool.blockSize, owner: pod?.owner, viewDirectory: context.liveViews,
                                   fixedViewDirectory: context.fixedViews, bootOffsetSeconds: -boottime)
        SpecTransform.hardenBindMounts(&spec)
        context.droppedDevices = SpecTransform.dropHostDevices(&spec, allowed: allowedDevices)
        context.userNamespaceGiven = userNamespaceGiven
        context.adoptedNamespaces = adopted
        return context
    }

    /// The host's pid and IPC namespaces are not shared with a sandbox (as gVisor, which offers
    /// neither): their processes and shared memory belong to the host, and the kernel would refuse
    /// the sandbox's /proc and mqueue mounts anyway (only the namespace's owning user namespace may
    /// mount them). For the same reason a pid or IPC namespace joined by path must belong to the
    /// sandbox's user namespace: the pod's. Refused before anything exists, naming the way out; the
    /// host's network namespace is fine (hostNetwork pods), and a config with its own user
    /// namespace is its own.
    func refuseForeignNamespaces(_ spec: Spec, pod: SpecTransform.Owner?) throws(SandboxError) {
        let namespaces = spec.linux?.namespaces ?? []
        let remedy = SandboxError.nativeRemedy
        for (index, namespace) in namespaces.enumerated() where namespace.type == .pid || namespace.type == .ipc {
            guard let path = namespace.path else { continue }
            let field = "linux.namespaces[\(index)].path"
            let owner: Namespaces.Identity
            do { owner = try Namespaces.owner(of: path) } catch {
                throw .refused(field: field, reason: "\(error)")
            }
            let podUsers = pod.flatMap { try? Namespaces.identity("/proc/\($0.initPid)/ns/user") }
            if owner != podUsers {
                throw .refused(field: field,
                               reason: "the \(namespace.type.rawValue) namespace \(path) belongs to another user namespace than the sandbox's, which could not mount its \(namespace.type == .pid ? "/proc" : "mqueue"): join only namespaces of the same pod, or \(remedy)")
            }
        }
        for (type, what) in [(LinuxNamespaceType.pid, "processes (hostPID)"), (.ipc, "IPC objects (hostIPC)")]
        where !namespaces.contains(where: { $0.type == type }) {
            throw .refused(field: "linux.namespaces",
                           reason: "no \(type.rawValue) namespace means sharing the host's \(what), which the sandbox level does not allow: add a \(type.rawValue) namespace, or \(remedy)")
        }
    }

    /// The container's device nodes, made by host root (see `SandboxDevices`), by container path;
    /// none when config.json brought its own user namespace.
    func makeDeviceNodes(_ context: SandboxContext, spec: Spec) throws(SandboxError) -> [String: String] {
        guard !context.userNamespaceGiven else { return [:] }
        let hostID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID
            ?? (try? SandboxRecord.load(directory: context.ownerDirectory))?.hostID ?? 0
        return try SandboxDevices.make(publicDirectory: context.publicDirectory, devices: spec.linux?.devices ?? [],
                                       allowedPaths: allowedDevices, hostID: hostID, idCount: idPool.blockSize)
    }

    /// Once the state directory exists: `reserve`, `furnish` and `writeWardenInputs` at once.
    public func allocate(_ context: inout SandboxContext, id: String, spec: inout Spec, cgroup: Cgroup, undo: inout SandboxUndo) throws(SandboxError) -> [String: String] {
        try reserve(&context, spec: &spec, undo: &undo)
        let deviceNodes = try furnish(&context, spec: spec, cgroup: cgroup)
        try writeWardenInputs(context, id: id, spec: spec, cgroup: cgroup)
        return deviceNodes
    }

    /// What must exist before the sandbox's user and mount namespaces are made: the public
    /// directory with its mounts (a mount namespace made earlier would not see them) and, for a
    /// sandbox of its own, the id range `spec`'s maps now name. Quick, since a stage 1 waits on it
    /// for its id maps; `furnish` does the rest while the init starts.
    public func reserve(_ context: inout SandboxContext, spec: inout Spec, undo: inout SandboxUndo) throws(SandboxError) {
        let mountPoint = context.mountPoint
        try attempt("creating \(mountPoint)") {
            undo.publicDirectory = context.publicDirectory
            try SandboxContext.mountPublicDirectory(context.publicDirectory)
            try sys("mkdir", mountPoint) { mkdir(mountPoint, 0o755) }
        }
        guard context.owner == nil else { return }
        let directory = context.ownerDirectory
        if !context.userNamespaceGiven {
            let slot = try attempt("allocating a uid range") { try idPool.allocate(owner: directory) }
            context.slot = slot
            undo.idSlot = (idPool, slot, directory)
            let hostID = idPool.hostID(slot: slot)
            spec.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idPool.blockSize)]
            spec.linux?.gidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idPool.blockSize)]
        }
        let views = context.liveViews
        _ = try attempt("creating \(views)") { try sys("mkdir", views) { mkdir(views, 0o755) } }
        // Live views (meminfo and stat made at every read) where FUSE works; their texts come
        // with `furnish`, before anything is answered.
        if let bridge = ProcfsBridge.mount(views) {
            context.procfs = bridge
            undo.procfs = bridge
        }
    }

    /// What the init's build reads from the host once `reserve` is done: the /proc views (fixed
    /// files, the live views' texts) and the device nodes, returned by container path.
    public func furnish(_ context: inout SandboxContext, spec: Spec, cgroup: Cgroup) throws(SandboxError) -> [String: String] {
        guard context.owner == nil else { return try makeDeviceNodes(context, spec: spec) }
        let cpu = spec.linux?.resources?.cpu
        let cpus = ProcViews.cpus(quota: cpu?.quota, period: cpu?.period)
        context.cpus = cpus
        context.bootedAt = BootClock.now()
        let identity = KernelIdentity.current()
        let hostCPUs = (try? FS.readString("/proc/cpuinfo")) ?? ""
        let cpuinfo = cpus.map { ProcViews.cpuinfo(host: hostCPUs, count: $0) } ?? hostCPUs
        let texts: [ProcView: String] = [
            .version: identity.procVersion, .cpuinfo: cpuinfo, .cmdline: identity.commandLine,
            .osrelease: identity.release + "\n", .kernelVersion: identity.version + "\n",
        ]
        context.fixedViewTexts = texts
        // The fixed views as plain files (the tmpfs is fresh: nothing reads them yet).
        let fixed = context.fixedViews
        try attempt("writing the fixed /proc views in \(fixed)") {
            try sys("mkdir", fixed) { mkdir(fixed, 0o755) }
            for (view, text) in texts {
                try FS.writeFile(fixed + "/" + view.fileName, Array(text.utf8), mode: 0o444)
            }
        }
        if let bridge = context.procfs {
            // Until the warden takes over, only create's mounts look the live views up, which a
            // live view's content does not matter to.
            bridge.setTexts(texts)
        } else {
            // Without FUSE, plain files, written now.
            var hostTotal: UInt64 = 0, hostFree: UInt64 = 0
            veil_host_memory(&hostTotal, &hostFree)
            let limit = spec.linux?.resources?.memory?.limit.flatMap { $0 > 0 ? UInt64($0) : nil }
            let sample = ProcStat.sample(wardenConfig(identity, context: context, cgroup: cgroup, bootLog: ""))
            let views = context.liveViews
            let live: [ProcView: String] = [
                .meminfo: MemInfo.text(totalBytes: min(limit ?? hostTotal, hostTotal), usedBytes: 0),
                .stat: ProcStat.text(sample), .loadavg: ProcStat.loadavg(sample),
            ]
            for (view, text) in texts.merging(live, uniquingKeysWith: { $1 }) {
                try attempt("writing \(views)/\(view.fileName)") { try FS.writeFile(views + "/" + view.fileName, Array(text.utf8), mode: 0o444) }
            }
        }
        return try makeDeviceNodes(context, spec: spec)
    }

    /// The sandbox record and what the warden reads as it starts (its configuration, cgroup,
    /// seccomp filter, boot log and the fixed views' texts), once `furnish` is done: only the
    /// warden needs them, so this runs while the init builds its root.
    public func writeWardenInputs(_ context: SandboxContext, id: String, spec: Spec, cgroup: Cgroup) throws(SandboxError) {
        guard context.owner == nil else { return }
        let inputs = context.wardenInputs
        _ = try attempt("creating \(inputs)") { try sys("mkdir", inputs) { mkdir(inputs, 0o711) } }
        let identity = KernelIdentity.current()
        // The boot log's counts are the ones `veil sandbox policy` prints.
        let summary = SandboxProgram.summary()
        let counts = (direct: summary.direct, emulated: summary.emulated, refused: summary.refused)
        var warden = wardenConfig(identity, context: context, cgroup: cgroup, bootLog: identity.bootLog(sandboxID: id, policy: counts))
        var record = SandboxRecord(
            id: id, slot: context.slot, hostID: spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID ?? 0,
            idCount: idPool.blockSize, identity: identity, bootLog: warden.bootLog, bootedAt: warden.bootedAt,
            memoryDirectory: warden.memoryDirectory, memoryUnified: warden.memoryUnified, cpus: context.cpus,
            publicDirectory: context.publicDirectory)
        if !context.adoptedNamespaces.isEmpty { record.adoptedNamespaces = context.adoptedNamespaces }
        try record.save(directory: context.ownerDirectory)
        try confineWarden(&warden, cgroup: cgroup, directory: inputs)
        try attempt("writing the warden's configuration") { try warden.save(directory: inputs) }
        try attempt("writing the /proc views for the warden") {
            for (view, text) in context.fixedViewTexts {
                try FS.writeAtomically(inputs + "/" + view.stateFileName, Array(text.utf8), mode: 0o644)
            }
        }
    }

    /// The warden's configuration but for its own cgroup (`confineWarden`): the sandbox's identity
    /// and boot, and the cgroup files its /proc/meminfo and /proc/stat are made from.
    func wardenConfig(_ identity: KernelIdentity, context: SandboxContext, cgroup: Cgroup, bootLog: String) -> WardenConfig {
        var warden = WardenConfig(release: identity.release, version: identity.version, machine: identity.machine,
                                  bootedAt: context.bootedAt,
                                  memoryDirectory: cgroup.paths["memory"] ?? (cgroup.unifiedOnly ? cgroup.paths.values.first : nil),
                                  memoryUnified: cgroup.paths["memory"] == nil && cgroup.unifiedOnly, bootLog: bootLog)
        warden.cpuDirectory = cgroup.paths["cpuacct"] ?? cgroup.paths["unified"]
        warden.cpuUnified = cgroup.paths["cpuacct"] == nil
        warden.cpus = context.cpus
        return warden
    }

    /// The warden's cgroup (a child of the container's, so the sandbox pays for it) and its own
    /// seccomp filter (`warden.bpf` in its input directory).
    func confineWarden(_ warden: inout WardenConfig, cgroup: Cgroup, directory: String) throws(SandboxError) {
        warden.cgroups = try attempt("creating the warden's cgroup") { try cgroup.makeSupervisorCgroups() }
        let program: SeccompProgram
        do { program = try WardenPolicy.program(cacheDirectory: SandboxProgram.cacheDirectory) } catch {
            throw .system(context: "compiling the warden's seccomp filter", cause: error)
        }
        try attempt("writing the warden's seccomp filter") {
            try FS.writeAtomically(directory + "/" + WardenConfig.filterName, program.filter, mode: 0o600)
        }
    }

    /// Detached, id-mapped copies of the rootfs and of the bind mounts' sources, for the init to
    /// attach in its mount namespace: files owned by host root appear owned by the sandbox's root.
    /// Bind sources on filesystems that cannot be id-mapped (proc, sysfs, devtmpfs) stay plain binds.
    /// `memberPid`: a process in the sandbox's user namespace.
    public func idmappedMounts(_ context: SandboxContext, memberPid: Int32, rootfs: String, spec: Spec, bundle: String) throws(SandboxError) -> (rootfs: FileDescriptor, mounts: [(Int, FileDescriptor)]) {
        let userns = try Self.userNamespace(of: memberPid)
        defer { userns.close() }
        return try idmappedMounts(context, userNamespace: userns, rootfs: rootfs, spec: spec, bundle: bundle)
    }

    /// The user namespace `pid` is in, opened.
    public static func userNamespace(of pid: Int32) throws(SandboxError) -> FileDescriptor {
        try attempt("opening the sandbox's user namespace") { try FileDescriptor.open("/proc/\(pid)/ns/user", O_RDONLY) }
    }

    public func idmappedMounts(_ context: SandboxContext, userNamespace userns: FileDescriptor, rootfs: String, spec: Spec, bundle: String) throws(SandboxError) -> (rootfs: FileDescriptor, mounts: [(Int, FileDescriptor)]) {
        let hostID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID
            ?? (try? SandboxRecord.load(directory: context.ownerDirectory))?.hostID ?? 0
        let root = try IDMappedRootfs.make(rootfs: rootfs, userns: userns.raw, hostID: hostID)
        var mounts: [(Int, FileDescriptor)] = []
        for (index, mount) in (spec.mounts ?? []).enumerated() {
            let options = MountOptions.parse(mount.options ?? [])
            guard options.isBind || mount.type == "bind", var source = mount.source else { continue }
            if !source.hasPrefix("/") { source = bundle + "/" + source }
            if source.hasPrefix(SandboxContext.publicParent + "/") { continue }  // veil's /proc views: readable by everyone already
            var fd = veil_idmapped_tree(source, userns.raw, options.isRecursiveBind ? 1 : 0)
            if fd == -EINVAL {
                // A filesystem that cannot be id-mapped (tmpfs before Linux 6.3: containerd's pod
                // /dev/shm on Debian 12's kernel) goes in as it is, opened by host root, where the
                // sandbox's root could not reach it through containerd's 0700 state directory;
                // its files then show as nobody, as under runc with a user namespace.
                fd = veil_idmapped_tree(source, -1, options.isRecursiveBind ? 1 : 0)
            }
            if fd >= 0 { mounts.append((index, FileDescriptor(fd))) }
        }
        return (root, mounts)
    }

    /// The warden for a sandbox this container owns, started while the init builds its root:
    /// `veil-warden <state dir> <init> <wardenInputs>` with the control socket and the sandbox's
    /// UTS namespace where `Warden` expects them (fd 3 a placeholder). Its exec, start-up and
    /// confinement then overlap the init's build instead of following it; `handToWarden` gives it
    /// the policy's listener and the /proc views once the init has installed its filter.
    public func startWarden(_ context: SandboxContext, initPid: Int32, undo: inout SandboxUndo) throws(SandboxError) -> (pid: Int32, startTime: UInt64?) {
        let directory = context.ownerDirectory
        let socketPath = directory + "/" + SandboxRecord.wardenSocketName
        let control = try attempt("listening on \(socketPath)") { try UnixSocket.listen(path: socketPath, mode: 0o600) }
        defer { control.close() }
        let uts = try attempt("opening the sandbox's UTS namespace") { try FileDescriptor.open("/proc/\(initPid)/ns/uts", O_RDONLY) }
        defer { uts.close() }
        let placeholder = try attempt("opening /dev/null") { try FileDescriptor.open("/dev/null", O_RDONLY) }
        defer { placeholder.close() }
        let exe = try Self.wardenBinary()
        let log = directory + "/warden.log"
        // spawnDetached places its fds from 3 on, in order.
        let fds = [placeholder.raw, control.raw, uts.raw]
        guard Warden.controlFD == 4, Warden.utsNamespaceFD == 5 else {
            throw .unsupported("the warden's descriptors are not where veil places them")
        }
        let pid = try attempt("starting the warden \(exe)") {
            try Spawner.spawnDetached(exe, ["veil-warden", directory, String(initPid), context.wardenInputs], fds: fds, stderrPath: log)
        }
        undo.wardenPid = pid
        return (pid, ProcessInfo.startTime(pid))
    }

    /// The first listener for the warden `startWarden` started, after the /proc views' FUSE
    /// connection (this process stops serving it first). Neither waits for the warden's answer:
    /// it guards the init already, and were it to die, its sentinel would take the container along.
    public static func handToWarden(_ context: SandboxContext, listener: FileDescriptor) throws(SandboxError) {
        if let fuse = context.procfs?.handOver() {
            defer { close(fuse) }
            try send(fuse, message: "procfs", directory: context.ownerDirectory, awaitingAnswer: false)
        }
        try send(listener.raw, message: "listener", directory: context.ownerDirectory, awaitingAnswer: false)
    }

    /// veil-warden: beside this binary (a build or an install), else on PATH.
    static func wardenBinary() throws(SandboxError) -> String {
        let exe = FS.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
        var candidates = [String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/veil-warden"]
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        candidates += path.split(separator: ":").map { $0 + "/veil-warden" }
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw .unsupported("the sandbox level needs veil-warden beside \(exe) or on PATH (make install puts it there)")
        }
        return found
    }

    /// Hands a listener (from an exec'd process or a pod member) to the sandbox's running warden.
    /// `guarding`: the process the warden kills if it dies itself (a pod member's init).
    public static func sendToWarden(directory: String, listener: FileDescriptor, guarding pid: Int32? = nil) throws(SandboxError) {
        try send(listener.raw, message: pid.map { "pid:\($0)" } ?? "listener", directory: directory, awaitingAnswer: true)
    }

    /// One descriptor with its message over the warden's control socket.
    static func send(_ fd: Int32, message: String, directory: String, awaitingAnswer: Bool) throws(SandboxError) {
        let path = directory + "/" + SandboxRecord.wardenSocketName
        let what = message == "procfs" ? "the /proc views' connection" : "the seccomp listener"
        try attempt("handing \(what) to the warden at \(path)") {
            let socket = try UnixSocket.connect(path: path)
            defer { socket.close() }
            try UnixSocket.sendFD(socket: socket.raw, fd: fd, message: message)
            guard awaitingAnswer else { return }
            var ack = [UInt8](repeating: 0, count: 2)
            guard read(socket.raw, &ack, 2) == 2 else { throw LinuxError("read", "warden acknowledgement", errno: EPIPE) }
        }
    }
}

/// The rootfs as the sandbox's root sees it. A plain directory is id-mapped directly; an overlay
/// (containerd's snapshots) cannot be, so it is rebuilt from id-mapped copies of its layers.
enum IDMappedRootfs {
    static func make(rootfs: String, userns: Int32, hostID: UInt32) throws(SandboxError) -> FileDescriptor {
        if veil_is_overlay(rootfs) == 1 {
            return try overlay(rootfs: rootfs, userns: userns, hostID: hostID)
        }
        let fd = veil_idmapped_tree(rootfs, userns, 0)
        guard fd >= 0 else {
            throw .refused(field: "root.path", reason: "the sandbox needs an id-mapped rootfs, and \(rootfs) cannot be id-mapped (\(String(cString: strerror(-fd)))): use a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs), or \(SandboxError.nativeRemedy)")
        }
        return FileDescriptor(fd)
    }

    /// The overlay's layers go in id-mapped, its upper (containerd's snapshot) as the topmost of
    /// them; writes go to a fresh upper beside the snapshot's, owned by the sandbox's root. (An
    /// id-mapped upper would make the overlay create its work directory as host root, which the
    /// mapping cannot represent.) containerd removes it with the snapshot.
    static func overlay(rootfs: String, userns: Int32, hostID: UInt32) throws(SandboxError) -> FileDescriptor {
        guard let options = Mounts.superOptions(mountPoint: rootfs) else {
            throw .refused(field: "root.path", reason: "\(rootfs) is an overlay whose options cannot be read from /proc/self/mountinfo")
        }
        var kept: [FileDescriptor] = []
        func mapped(_ path: String) throws(SandboxError) -> String {
            let fd = veil_idmapped_tree(path, userns, 0)
            guard fd >= 0 else {
                throw .refused(field: "root.path", reason: "overlay layer \(path) cannot be id-mapped: \(String(cString: strerror(-fd)))")
            }
            kept.append(FileDescriptor(fd))
            return "/proc/self/fd/\(fd)"
        }
        defer { kept.forEach { $0.close() } }
        guard let lower = options["lowerdir"] else {
            throw .refused(field: "root.path", reason: "overlay \(rootfs) has no lowerdir")
        }
        var layers = lower.split(separator: ":").map(String.init)
        var upper = "", work = ""
        if let upperDir = options["upperdir"] {
            layers.insert(upperDir, at: 0)
            let fresh = String(upperDir[..<(upperDir.lastIndex(of: "/") ?? upperDir.endIndex)]) + "/veil-sandbox"
            upper = fresh + "/fs"
            work = fresh + "/work"
            do {
                try FS.mkdirAll(upper, mode: 0o755)
                try FS.mkdirAll(work, mode: 0o700)
                try sys("chown", upper) { chown(upper, hostID, hostID) }
            } catch {
                throw .refused(field: "root.path", reason: "preparing the sandbox's upper layer beside \(upperDir): \(error)")
            }
        }
        let lowers = try layers.map { (layer) throws(SandboxError) -> String in try mapped(layer) }
        var fd = veil_overlay_mount(lowers.joined(separator: ":"), upper, work, "")
        if fd == -EINVAL, !upper.isEmpty {
            // Kernels before 6.15 take no detached mount as a layer (overlayfs clones each layer's
            // mount, which must then be in our namespace): attach the id-mapped layers for the
            // moment the overlay is made, beside its upper; the overlay keeps private clones.
            fd = try overlayOnAttachedLayers(kept, directory: String(upper.dropLast("/fs".count)) + "/layers", upper: upper, work: work)
        }
        guard fd >= 0 else {
            throw .refused(field: "root.path", reason: "rebuilding overlay \(rootfs) on id-mapped layers: \(String(cString: strerror(-fd)))")
        }
        return FileDescriptor(fd)
    }
}

extension IDMappedRootfs {
    static func overlayOnAttachedLayers(_ layers: [FileDescriptor], directory: String, upper: String, work: String) throws(SandboxError) -> Int32 {
        var attached: [String] = []
        defer {
            // rmdir only: a removal that recursed could reach into a layer still mounted there.
            for path in attached.reversed() { umount2(path, Int32(MNT_DETACH)) }
            for index in layers.indices { rmdir(directory + "/\(index)") }
            rmdir(directory)
        }
        for (index, layer) in layers.enumerated() {
            let target = directory + "/\(index)"
            do { try FS.mkdirAll(target, mode: 0o700) } catch {
                throw .refused(field: "root.path", reason: "preparing \(target) for an id-mapped layer: \(error)")
            }
            let attachedResult = veil_attach_mount(layer.raw, target)
            guard attachedResult == 0 else {
                throw .refused(field: "root.path", reason: "attaching an id-mapped layer at \(target): \(String(cString: strerror(-attachedResult)))")
            }
            attached.append(target)
        }
        return veil_overlay_mount(attached.joined(separator: ":"), upper, work, "")
    }
}

/// A sandbox's /proc views as a FUSE mount (veil_procfs.h), served by a thread of `veil create`
/// while the init binds them (its lookups need an answer), then handed to the warden, which makes
/// meminfo afresh at every read. The mount goes with the sandbox's public directory.
final class ProcfsBridge: @unchecked Sendable {
    let mountPoint: String
    private var fd: Int32
    /// Set before the thread starts (`setTexts`), read only by it.
    private var texts: [[UInt8]] = []
    /// An eventfd that stops the serving thread at once (a poll timeout would cost every create).
    private var wake: Int32 = -1
    private var thread: pthread_t?

    private init(mountPoint: String, fd: Int32) {
        self.mountPoint = mountPoint
        self.fd = fd
    }

    deinit { if wake >= 0 { close(wake) } }

    /// nil where FUSE cannot be mounted (no /dev/fuse, a kernel or a container that forbids it).
    static func mount(_ mountPoint: String) -> ProcfsBridge? {
        let fd = veil_procfs_mount(mountPoint)
        guard fd >= 0 else { return nil }
        return ProcfsBridge(mountPoint: mountPoint, fd: fd)
    }

    /// What the views hold until the warden takes over; before `startServing`.
    func setTexts(_ views: [ProcView: String]) {
        guard thread == nil else { return }
        var texts = [[UInt8]](repeating: [], count: Int(VEIL_PROCFS_FILES))
        for (view, text) in views where Int(view.rawValue) < texts.count { texts[Int(view.rawValue)] = Array(text.utf8) }
        self.texts = texts
    }

    /// Starts answering (the kernel queues requests until then). Only once the init is cloned:
    /// a clone of a process with a second thread could inherit a lock that thread holds.
    func startServing() throws(SandboxError) {
        guard thread == nil, fd >= 0 else { return }
        let made = veil_procfs_wake_fd()
        guard made >= 0 else { throw .io("serving the sandbox's /proc views", LinuxError("eventfd", mountPoint, errno: -made)) }
        wake = made
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let bridge = Unmanaged<ProcfsBridge>.fromOpaque(raw).takeUnretainedValue()
            _ = veil_procfs_serve(bridge.fd, { context, file, buffer, capacity in
                guard let context, let buffer else { return 0 }
                let bridge = Unmanaged<ProcfsBridge>.fromOpaque(context).takeUnretainedValue()
                guard bridge.texts.indices.contains(Int(file)) else { return 0 }
                let bytes = bridge.texts[Int(file)]
                let count = min(bytes.count, capacity)
                bytes.withUnsafeBytes { source in if let base = source.baseAddress { memcpy(buffer, base, count) } }
                return count
            }, raw, bridge.wake)
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        guard created == 0 else {
            Unmanaged.passUnretained(self).release()
            throw .io("serving the sandbox's /proc views", LinuxError("pthread_create", mountPoint, errno: created))
        }
        self.thread = thread
    }

    /// Stops serving (the request in hand is answered first) and gives up the connection: the
    /// caller owns the returned fd (nil if it was handed over already).
    func handOver() -> Int32? {
        stopServing()
        guard fd >= 0 else { return nil }
        defer { fd = -1 }
        return fd
    }

    /// After a failed create: stop serving, close, unmount.
    func remove() {
        stopServing()
        if fd >= 0 { close(fd); fd = -1 }
        _ = umount2(mountPoint, Int32(MNT_DETACH))
    }

    private func stopServing() {
        guard let thread else { return }
        _ = veil_procfs_wake(wake)
        pthread_join(thread, nil)
        self.thread = nil
        Unmanaged.passUnretained(self).release()
    }

    /// Unmounts the views of a deleted sandbox (nothing if they were plain files).
    static func unmount(publicDirectory: String) {
        _ = umount2(publicDirectory + "/proc", Int32(MNT_DETACH))
    }
}

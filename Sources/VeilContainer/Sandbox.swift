import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec
import VeilWarden

/// The sandbox side of `create`: which sandbox the container belongs to (its own, or its pod's),
/// the spec rewritten for it, the id range, and the warden.
struct SandboxContext {
    /// Set when the container joins its pod's sandbox rather than owning one.
    var owner: SpecTransform.Owner?
    var ownerID: String
    var slot: UInt32?
    var program: SeccompProgram
    /// `/run/veil-sandbox/<id>-<random>`: what the sandbox's root must reach by path, where every
    /// host uid can (it cannot traverse a bundle or state path under a 0700 directory of the
    /// host's root): `rootfs`, the empty directory the init attaches the id-mapped rootfs on, and,
    /// for the sandbox's owner, `proc`, the generated /proc views.
    var publicDirectory: String
    var mountPoint: String { publicDirectory + "/rootfs" }
    /// config.json brought its own user namespace and mappings: veil keeps them, allocates no
    /// range and id-maps nothing (ownership is the config's business, as with runc).
    var userNamespaceGiven = false
    /// The owner's /proc views as a FUSE mount, served here until the warden takes over.
    var procfs: ProcfsBridge?

    static let publicParent = "/run/veil-sandbox"

    /// The directory of the sandbox's owner (where sandbox.json, the /proc views and warden.sock live).
    func ownerDirectory(_ store: StateStore) -> String { owner?.directory ?? store.directory(ownerID) }
}

/// The compiled sandbox policy, cached by the policy's own text: compiling it with libseccomp
/// costs milliseconds that every sandboxed create would otherwise pay.
enum SandboxProgram {
    static let cacheDirectory = "/run/veil-cache"

    static func load(cacheDirectory: String) throws(ContainerError) -> SeccompProgram {
        let profile = SandboxPolicy.profile
        let key = SHA256.hex(Array(SandboxPolicy.fingerprint.utf8))
        let path = cacheDirectory + "/sandbox-policy-\(key.prefix(16)).bpf"
        if let bytes = try? FS.readFile(path), !bytes.isEmpty, bytes.count % 8 == 0 {
            return SeccompProgram(filter: bytes, flags: profile.flags ?? [], usesNotify: true)
        }
        let program: SeccompProgram
        do { program = try SeccompProgram.compile(profile, field: "sandbox policy") } catch {
            throw .initFailed("compiling the sandbox policy: \(error)")
        }
        try? FS.mkdirAll(cacheDirectory, mode: 0o700)
        try? FS.writeAtomically(path, program.filter, mode: 0o644)
        return program
    }
}

extension Runtime {
    /// How a container the sandbox refuses can run: at the native level, which only the operator grants.
    static let nativeRemedy = "run it native, through the operator's veil-native runtime handler (veil --isolation native)"

    /// The pod sandbox a CRI container belongs to: the sandbox container named by
    /// io.kubernetes.cri.sandbox-id, when it runs here at sandbox level.
    func podOwner(of spec: Spec, id: String) -> (String, SpecTransform.Owner)? {
        guard let annotations = spec.annotations, annotations["io.kubernetes.cri.container-type"] == "container",
              let sandboxID = annotations["io.kubernetes.cri.sandbox-id"], sandboxID != id,
              let record = try? store.load(sandboxID), record.isolation == .sandbox,
              store.status(of: record) != .stopped else { return nil }
        return (sandboxID, SpecTransform.Owner(initPid: record.pid, directory: store.directory(sandboxID)))
    }

    /// Rewrites `spec` for the sandbox (before anything exists); the id range comes later.
    func prepareSandbox(id: String, spec: inout Spec) throws(ContainerError) -> SandboxContext {
        if let profile = spec.linux?.seccomp, (profile.syscalls ?? []).contains(where: { $0.action == "SCMP_ACT_NOTIFY" }) || profile.defaultAction == "SCMP_ACT_NOTIFY" {
            throw .invalidConfig(file: "config.json", field: "linux.seccomp", reason: "SCMP_ACT_NOTIFY cannot be combined with the sandbox level (its warden holds the listener): \(Self.nativeRemedy)")
        }
        let userNamespaceGiven = spec.linux?.namespaces?.contains { $0.type == .user } == true
        let pod = podOwner(of: spec, id: id)
        if !userNamespaceGiven { try refuseForeignNamespaces(spec, pod: pod?.1) }
        let publicDirectory = SandboxContext.publicParent + "/" + id + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        var viewDirectory = publicDirectory + "/proc"
        if let pod {
            guard let owner = try? SandboxRecord.load(directory: pod.1.directory), let views = owner.publicDirectory else {
                throw .initFailed("the pod's sandbox \(pod.0) has no sandbox record")
            }
            viewDirectory = views + "/proc"
        }
        let boottime = Int64(SandboxRecord.boottimeNow() / 1_000_000_000)
        spec = SpecTransform.apply(spec, hostID: 0, idCount: idPool.blockSize, owner: pod?.1, viewDirectory: viewDirectory,
                                   bootOffsetSeconds: -boottime)
        SpecTransform.hardenBindMounts(&spec)
        let dropped = SpecTransform.dropHostDevices(&spec, allowed: sandboxDevices)
        if !dropped.isEmpty { log.debug("sandbox: host devices not passed (allow with --sandbox-device): \(dropped.joined(separator: " "))") }
        let program = try SandboxProgram.load(cacheDirectory: SandboxProgram.cacheDirectory)
        var context = SandboxContext(owner: pod?.1, ownerID: pod?.0 ?? id, slot: nil, program: program, publicDirectory: publicDirectory)
        context.userNamespaceGiven = userNamespaceGiven
        return context
    }

    /// The host's pid and IPC namespaces are not shared with a sandbox (as gVisor, which offers
    /// neither): their processes and shared memory belong to the host, and the kernel would refuse
    /// the sandbox's /proc and mqueue mounts anyway (only the namespace's owning user namespace may
    /// mount them). For the same reason a pid or IPC namespace joined by path must belong to the
    /// sandbox's user namespace: the pod's. Refused before anything exists, naming the way out; the
    /// host's network namespace is fine (hostNetwork pods), and a config with its own user
    /// namespace is its own.
    func refuseForeignNamespaces(_ spec: Spec, pod: SpecTransform.Owner?) throws(ContainerError) {
        let namespaces = spec.linux?.namespaces ?? []
        let remedy = Self.nativeRemedy
        for (index, namespace) in namespaces.enumerated() where namespace.type == .pid || namespace.type == .ipc {
            guard let path = namespace.path else { continue }
            let field = "linux.namespaces[\(index)].path"
            let owner: Namespaces.Identity
            do { owner = try Namespaces.owner(of: path) } catch {
                throw .invalidConfig(file: "config.json", field: field, reason: "\(error)")
            }
            let podUsers = pod.flatMap { try? Namespaces.identity("/proc/\($0.initPid)/ns/user") }
            if owner != podUsers {
                throw .invalidConfig(file: "config.json", field: field,
                                     reason: "the \(namespace.type.rawValue) namespace \(path) belongs to another user namespace than the sandbox's, which could not mount its \(namespace.type == .pid ? "/proc" : "mqueue"): join only namespaces of the same pod, or \(remedy)")
            }
        }
        for (type, what) in [(LinuxNamespaceType.pid, "processes (hostPID)"), (.ipc, "IPC objects (hostIPC)")]
        where !namespaces.contains(where: { $0.type == type }) {
            throw .invalidConfig(file: "config.json", field: "linux.namespaces",
                                 reason: "no \(type.rawValue) namespace means sharing the host's \(what), which the sandbox level does not allow: add a \(type.rawValue) namespace, or \(remedy)")
        }
    }

    /// Once the state directory exists: the id range (own sandbox) and the /proc views.
    func allocateSandbox(_ context: inout SandboxContext, id: String, spec: inout Spec, cgroup: Cgroup, cleanup: inout Cleanup) throws(ContainerError) {
        let mountPoint = context.mountPoint
        try wrap("creating \(mountPoint)") {
            try FS.mkdirAll(SandboxContext.publicParent, mode: 0o755)
            try sys("mkdir", context.publicDirectory) { mkdir(context.publicDirectory, 0o755) }
            cleanup.publicDirectory = context.publicDirectory
            try sys("mkdir", mountPoint) { mkdir(mountPoint, 0o755) }
        }
        guard context.owner == nil else { return }
        let directory = store.directory(id)
        var hostID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID ?? 0
        if !context.userNamespaceGiven {
            let slot = try wrap("allocating a uid range") { try idPool.allocate(owner: directory) }
            context.slot = slot
            cleanup.idSlot = (idPool, slot)
            hostID = idPool.hostID(slot: slot)
            spec.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idPool.blockSize)]
            spec.linux?.gidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idPool.blockSize)]
        }

        var hostTotal: UInt64 = 0, hostFree: UInt64 = 0
        veil_host_memory(&hostTotal, &hostFree)
        let limit = spec.linux?.resources?.memory?.limit.flatMap { $0 > 0 ? UInt64($0) : nil }
        let cpu = spec.linux?.resources?.cpu
        let cpus = ProcViews.cpus(quota: cpu?.quota, period: cpu?.period)
        let identity = KernelIdentity.current()
        // The boot log's counts are the ones `veil sandbox policy` prints.
        let summary = SandboxPolicy.summary
        let counts = (direct: summary.direct, emulated: summary.emulated, refused: summary.refused)
        let record = SandboxRecord(
            id: id, slot: context.slot, hostID: hostID, idCount: idPool.blockSize, identity: identity,
            bootLog: identity.bootLog(sandboxID: id, policy: counts), bootedAt: SandboxRecord.boottimeNow(),
            memoryDirectory: cgroup.paths["memory"] ?? (cgroup.unifiedOnly ? cgroup.paths.values.first : nil),
            memoryUnified: cgroup.paths["memory"] == nil && cgroup.unifiedOnly, cpus: cpus,
            publicDirectory: context.publicDirectory)
        do { try record.save(directory: directory) } catch { throw .initFailed("\(error)") }
        var warden = WardenConfig(release: identity.release, version: identity.version, machine: identity.machine,
                                  bootedAt: record.bootedAt, memoryDirectory: record.memoryDirectory,
                                  memoryUnified: record.memoryUnified, bootLog: record.bootLog)
        try confineWarden(&warden, cgroup: cgroup, cpus: cpus, directory: directory)
        try wrap("writing the warden's configuration") { try warden.save(directory: directory) }
        let views = context.publicDirectory + "/proc"
        try wrap("creating \(views)") { try FS.mkdirAll(views, mode: 0o755) }
        let hostCPUs = (try? FS.readString("/proc/cpuinfo")) ?? ""
        let cpuinfo = cpus.map { ProcViews.cpuinfo(host: hostCPUs, count: $0) } ?? hostCPUs
        var texts: [ProcView: String] = [
            .version: identity.procVersion, .cpuinfo: cpuinfo, .cmdline: identity.commandLine,
            .osrelease: identity.release + "\n", .kernelVersion: identity.version + "\n",
            .meminfo: MemInfo.text(totalBytes: min(limit ?? hostTotal, hostTotal), usedBytes: 0),
        ]
        let sample = ProcStat.sample(warden)
        texts[.stat] = ProcStat.text(sample)
        texts[.loadavg] = ProcStat.loadavg(sample)
        try wrap("writing the /proc views for the warden") {
            for (view, text) in texts where !view.isLive {
                try FS.writeAtomically(directory + "/" + view.stateFileName, Array(text.utf8), mode: 0o644)
            }
        }
        // Live views (meminfo and stat made at every read) where FUSE works; plain files written now elsewhere.
        if let bridge = ProcfsBridge.mount(views, texts: texts) {
            context.procfs = bridge
            cleanup.procfs = bridge
            return
        }
        for (view, text) in texts {
            try wrap("writing \(views)/\(view.fileName)") { try FS.writeFile(views + "/" + view.fileName, Array(text.utf8), mode: 0o444) }
        }
    }

    /// The warden's cgroup (a child of the container's, so the sandbox pays for it), the cgroup
    /// its /proc/stat reads, and its own seccomp filter (`warden.bpf` in the state directory).
    func confineWarden(_ warden: inout WardenConfig, cgroup: Cgroup, cpus: Int?, directory: String) throws(ContainerError) {
        warden.cgroups = try wrap("creating the warden's cgroup") { try cgroup.makeSupervisorCgroups() }
        warden.cpuDirectory = cgroup.paths["cpuacct"] ?? cgroup.paths["unified"]
        warden.cpuUnified = cgroup.paths["cpuacct"] == nil
        warden.cpus = cpus
        let program: SeccompProgram
        do { program = try WardenPolicy.program(cacheDirectory: SandboxProgram.cacheDirectory) } catch {
            throw .initFailed("compiling the warden's seccomp filter: \(error)")
        }
        try wrap("writing the warden's seccomp filter") {
            try FS.writeAtomically(directory + "/" + WardenConfig.filterName, program.filter, mode: 0o600)
        }
    }

    /// Detached, id-mapped copies of the rootfs and of the bind mounts' sources, for the init to
    /// attach in its mount namespace: files owned by host root appear owned by the sandbox's root.
    /// Bind sources on filesystems that cannot be id-mapped (proc, sysfs, devtmpfs) stay plain binds.
    func idmappedMounts(initPid: Int32, rootfs: String, spec: Spec, bundle: String, sandboxDirectory: String) throws(ContainerError) -> (rootfs: FileDescriptor, mounts: [(Int, FileDescriptor)]) {
        let userns = try wrap("opening the sandbox's user namespace") { try FileDescriptor.open("/proc/\(initPid)/ns/user", O_RDONLY) }
        defer { userns.close() }
        let hostID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID
            ?? (try? SandboxRecord.load(directory: sandboxDirectory))?.hostID ?? 0
        let root = try IDMappedRootfs.make(rootfs: rootfs, userns: userns.raw, hostID: hostID)
        var mounts: [(Int, FileDescriptor)] = []
        for (index, mount) in (spec.mounts ?? []).enumerated() {
            let options = MountOptions.parse(mount.options ?? [])
            guard options.isBind || mount.type == "bind", var source = mount.source else { continue }
            if !source.hasPrefix("/") { source = bundle + "/" + source }
            if source.hasPrefix(SandboxContext.publicParent + "/") { continue }  // veil's /proc views: readable by everyone already
            let fd = veil_idmapped_tree(source, userns.raw, options.isRecursiveBind ? 1 : 0)
            if fd >= 0 { mounts.append((index, FileDescriptor(fd))) }
        }
        return (root, mounts)
    }

    /// The warden for a sandbox this container owns: `veil-warden <state dir>` with the listener
    /// at fd 3, the control socket at fd 4, the sandbox's UTS namespace at fd 5 and the /proc
    /// views' FUSE connection at fd 6 (this process stops serving it first).
    func startWarden(directory: String, listener: FileDescriptor, initPid: Int32, procfs: ProcfsBridge?) throws(ContainerError) -> (Int32, UInt64?) {
        let socketPath = directory + "/" + SandboxRecord.wardenSocketName
        let control = try wrap("listening on \(socketPath)") { try UnixSocket.listen(path: socketPath, mode: 0o600) }
        defer { control.close() }
        let uts = try wrap("opening the sandbox's UTS namespace") { try FileDescriptor.open("/proc/\(initPid)/ns/uts", O_RDONLY) }
        defer { uts.close() }
        let exe = try wardenBinary()
        let log = directory + "/warden.log"
        let pid = try wrap("starting the warden \(exe)") {
            let fuse = procfs?.handOver() ?? nil
            defer { if let fuse { close(fuse) } }
            return try Spawner.spawnDetached(exe, ["veil-warden", directory, String(initPid)],
                                             fds: [listener.raw, control.raw, uts.raw] + (fuse.map { [$0] } ?? []), stderrPath: log)
        }
        return (pid, ProcessInfo.startTime(pid))
    }

    /// veil-warden: beside this binary (a build or an install), else on PATH.
    func wardenBinary() throws(ContainerError) -> String {
        let exe = (try? readLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        var candidates = [String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/veil-warden"]
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        candidates += path.split(separator: ":").map { $0 + "/veil-warden" }
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw .initFailed("the sandbox level needs veil-warden beside \(exe) or on PATH (make install puts it there)")
        }
        return found
    }

    /// Hands a listener (from an exec'd process or a pod member) to the sandbox's running warden.
    /// `guarding`: the process the warden kills if it dies itself (a pod member's init).
    func sendToWarden(directory: String, listener: FileDescriptor, guarding pid: Int32? = nil) throws(ContainerError) {
        let path = directory + "/" + SandboxRecord.wardenSocketName
        try wrap("handing the seccomp listener to the warden at \(path)") {
            let socket = try UnixSocket.connect(path: path)
            defer { socket.close() }
            try UnixSocket.sendFD(socket: socket.raw, fd: listener.raw, message: pid.map { "pid:\($0)" } ?? "listener")
            var ack = [UInt8](repeating: 0, count: 2)
            guard read(socket.raw, &ack, 2) == 2 else { throw LinuxError("read", "warden acknowledgement", errno: EPIPE) }
        }
    }
}

/// The rootfs as the sandbox's root sees it. A plain directory is id-mapped directly; an overlay
/// (containerd's snapshots) cannot be, so it is rebuilt from id-mapped copies of its layers.
enum IDMappedRootfs {
    static func make(rootfs: String, userns: Int32, hostID: UInt32) throws(ContainerError) -> FileDescriptor {
        if veil_is_overlay(rootfs) == 1 {
            return try overlay(rootfs: rootfs, userns: userns, hostID: hostID)
        }
        let fd = veil_idmapped_tree(rootfs, userns, 0)
        guard fd >= 0 else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "the sandbox needs an id-mapped rootfs, and \(rootfs) cannot be id-mapped (\(String(cString: strerror(-fd)))): use a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs), or \(Runtime.nativeRemedy)")
        }
        return FileDescriptor(fd)
    }

    /// The overlay's layers go in id-mapped, its upper (containerd's snapshot) as the topmost of
    /// them; writes go to a fresh upper beside the snapshot's, owned by the sandbox's root. (An
    /// id-mapped upper would make the overlay create its work directory as host root, which the
    /// mapping cannot represent.) containerd removes it with the snapshot.
    static func overlay(rootfs: String, userns: Int32, hostID: UInt32) throws(ContainerError) -> FileDescriptor {
        guard let options = Mounts.superOptions(mountPoint: rootfs) else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "\(rootfs) is an overlay whose options cannot be read from /proc/self/mountinfo")
        }
        var kept: [FileDescriptor] = []
        func mapped(_ path: String) throws(ContainerError) -> String {
            let fd = veil_idmapped_tree(path, userns, 0)
            guard fd >= 0 else {
                throw .invalidConfig(file: "config.json", field: "root.path", reason: "overlay layer \(path) cannot be id-mapped: \(String(cString: strerror(-fd)))")
            }
            kept.append(FileDescriptor(fd))
            return "/proc/self/fd/\(fd)"
        }
        defer { kept.forEach { $0.close() } }
        guard let lower = options["lowerdir"] else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "overlay \(rootfs) has no lowerdir")
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
                throw .invalidConfig(file: "config.json", field: "root.path", reason: "preparing the sandbox's upper layer beside \(upperDir): \(error)")
            }
        }
        let lowers = try layers.map { (layer) throws(ContainerError) -> String in try mapped(layer) }.joined(separator: ":")
        let fd = veil_overlay_mount(lowers, upper, work, "")
        guard fd >= 0 else {
            throw .invalidConfig(file: "config.json", field: "root.path", reason: "rebuilding overlay \(rootfs) on id-mapped layers: \(String(cString: strerror(-fd)))")
        }
        return FileDescriptor(fd)
    }
}

/// A sandbox's /proc views as a FUSE mount (veil_procfs.h), served by a thread of `veil create`
/// while the init binds them (its lookups need an answer), then handed to the warden, which makes
/// meminfo afresh at every read. The mount goes with the sandbox's public directory.
final class ProcfsBridge: @unchecked Sendable {
    let mountPoint: String
    private var fd: Int32
    private let texts: [[UInt8]]
    /// An eventfd that stops the serving thread at once (a poll timeout would cost every create).
    private var wake: Int32 = -1
    private var thread: pthread_t?

    private init(mountPoint: String, fd: Int32, texts: [[UInt8]]) {
        self.mountPoint = mountPoint
        self.fd = fd
        self.texts = texts
    }

    deinit { if wake >= 0 { close(wake) } }

    /// nil where FUSE cannot be mounted (no /dev/fuse, a kernel or a container that forbids it).
    static func mount(_ mountPoint: String, texts views: [ProcView: String]) -> ProcfsBridge? {
        let fd = veil_procfs_mount(mountPoint)
        guard fd >= 0 else { return nil }
        var texts = [[UInt8]](repeating: [], count: Int(VEIL_PROCFS_FILES))
        for (view, text) in views where Int(view.rawValue) < texts.count { texts[Int(view.rawValue)] = Array(text.utf8) }
        return ProcfsBridge(mountPoint: mountPoint, fd: fd, texts: texts)
    }

    /// Starts answering (the kernel queues requests until then). Only once the init is cloned:
    /// a clone of a process with a second thread could inherit a lock that thread holds.
    func startServing() throws(ContainerError) {
        guard thread == nil, fd >= 0 else { return }
        let made = veil_procfs_wake_fd()
        guard made >= 0 else { throw .initFailed("serving the sandbox's /proc views: eventfd: \(String(cString: strerror(-made)))") }
        wake = made
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let bridge = Unmanaged<ProcfsBridge>.fromOpaque(raw).takeUnretainedValue()
            _ = veil_procfs_serve(bridge.fd, { context, file, buffer, capacity in
                guard let context, let buffer else { return 0 }
                let bridge = Unmanaged<ProcfsBridge>.fromOpaque(context).takeUnretainedValue()
                let bytes = bridge.texts[Int(file)]
                let count = min(bytes.count, capacity)
                bytes.withUnsafeBytes { source in if let base = source.baseAddress { memcpy(buffer, base, count) } }
                return count
            }, raw, bridge.wake)
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        guard created == 0 else {
            Unmanaged.passUnretained(self).release()
            throw .initFailed("serving the sandbox's /proc views at \(mountPoint): \(String(cString: strerror(created)))")
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

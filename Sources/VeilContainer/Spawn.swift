import CVeilLinux
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSpec

/// What `spawn` needs to start a container process: which namespaces to join (fds, user
/// namespace first) or create, which cgroup to enter, and which fds to hand over. `spawn` renders
/// it into veil_spawn_plan, the C form stage 1 reads; what the init does after execve is `InitPlan`.
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
    /// systemd cgroup driver: stage 1 waits until the runtime had systemd move it into the
    /// container's scope (which does not exist before: no CLONE_INTO_CGROUP).
    var awaitScope = false
    /// process.oomScoreAdj: stage 1 writes it as host root, before any user namespace.
    var oomScoreAdj: Int?

    /// How many times stage 1 waits for an answer (veil_spawn.c: the scope, then the id maps).
    var stage1Requests: Int { (awaitScope ? 1 : 0) + (unshareUser ? 1 : 0) }

    /// `create` allows the init to be cloned by us, without stage 1 (veil_spawn_plan.direct),
    /// which `spawn` does where stage 1 has nothing to do the clone cannot (`clonesInitDirectly`);
    /// `spawn` then returns the init's pid. `exec` always has a stage 1: it joins the container.
    var directInitAllowed = false

    /// No user namespace made or joined, no namespace joined at all (a pid namespace is entered by a
    /// child of the joiner), no time namespace (its offsets are written before a process enters it),
    /// no systemd scope to wait for, no network made before a user namespace.
    var clonesInitDirectly: Bool {
        directInitAllowed && joins.isEmpty && !unshareUser && !awaitScope && network == nil
            && unshareFlags & LinuxNamespaceType.time.cloneFlag == 0 && timeOffsets == nil
    }

    init(cgroup: Cgroup?, preserveFds: Int) {
        self.cgroup = cgroup
        self.preserveFds = preserveFds
    }
}

extension Runtime {
    /// Clones stage 1 and the init (see veil_spawn.c) and returns stage 1's pid with our end of
    /// the sync socket, or the init's pid when `request.clonesInitDirectly`. The init runs
    /// `veil init` with the sync socket at 3+preserveFds and the request's extra fds after it, and
    /// no other descriptor of ours.
    func spawn(_ request: SpawnRequest, peer: String = "container init") throws(ContainerError) -> (child: Int32, channel: InitChannel) {
        let (parentEnd, childEnd) = try wrap("sync socket") { try SyncSocket.pair() }
        // CVE-2019-5736: the init is exec'd from a detached read-only bind mount of our binary,
        // so /proc/<pid>/exe never opens for writing, and nothing is mounted where the container sees it.
        let exe = FS.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
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
        if let dir = v2Directory, !request.awaitScope {
            v2FD = try wrap("opening \(dir)") { try FileDescriptor.open(dir, O_PATH | O_DIRECTORY) }
        }
        let argv = CStringArray([exe, "init"])
        let envp = CStringArray(["\(InitFD.environmentKey)=\(3 + request.preserveFds)"])
        let offsetsC = request.timeOffsets.map { CStringArray([$0]) }
        let sysctlPairs = request.network?.cPairs ?? []

        var plan = veil_spawn_plan()
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
        withUnsafeMutableBytes(of: &plan.cgroup_tasks_fds) { raw in
            let fds = raw.bindMemory(to: Int32.self)
            for (i, fd) in cgroupFDs.enumerated() { fds[i] = fd.raw }
        }
        plan.cgroup_tasks_count = Int32(cgroupFDs.count)
        plan.cgroup_v2_fd = v2FD?.raw ?? -1
        plan.await_scope = request.awaitScope ? 1 : 0
        plan.direct = request.clonesInitDirectly ? 1 : 0
        if let adjust = request.oomScoreAdj {
            plan.set_oom_score_adj = 1
            plan.oom_score_adj = Int32(clamping: adjust)
        }
        if let network = request.network {
            plan.pre_user_unshare_flags = network.create ? LinuxNamespaceType.network.cloneFlag : 0
            plan.bring_up_loopback = network.create ? 1 : 0
        }

        let child = argv.pointers.withUnsafeBufferPointer { argvBuffer in
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
        if child < 0 { throw LinuxError("clone", "container init", errno: -child).context("starting container process") }
        return (child, InitChannel(parentEnd, peer: peer))
    }

}

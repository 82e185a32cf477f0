import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec

public struct ExecOptions {
    public var process: Process
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    /// An already connected console socket (a foreground exec with a terminal).
    public var consoleConnection: Int32?
    public var preserveFds = 0
    /// Allow a paused container (the process then waits until `resume`), as runc's --ignore-paused.
    public var ignorePaused = false
    /// `--cgroup [CONTROLLERS:]PATH`: run in these existing sub-cgroups of the container's.
    public var subCgroups: [String] = []
    public init(process: Process) { self.process = process }
}

extension Runtime {
    /// The process a plain `exec ID ARGS…` starts from: the container's own, as runc does.
    public func configuredProcess(id: String) throws(ContainerError) -> Process {
        guard let process = try store.loadConfig(id).process else {
            throw .corruptState(path: store.configPath(id), reason: "no process configuration recorded")
        }
        return process
    }

    /// `exec`: a new process in every namespace and the cgroup of a running container, with the
    /// container's capabilities bounded by the process's own, rlimits and seccomp filter.
    /// Returns the process's pid (our child).
    public func exec(id: String, options: ExecOptions) throws(ContainerError) -> (pid: Int32, terminal: Bool) {
        let record = try store.load(id)
        let status = store.status(of: record)
        guard status == .running || status == .created || (status == .paused && options.ignorePaused) else {
            throw .invalidState(id: id, status: status, action: "exec in")
        }
        var spec = try store.loadConfig(id)
        spec.process = options.process
        let terminal = options.process.terminal == true
        if terminal && options.consoleSocket == nil && options.consoleConnection == nil {
            throw .invalidConfig(file: "process", field: "terminal", reason: "a terminal needs --console-socket (or a foreground exec)")
        }
        let seccomp = try compileSeccomp(spec)
        guard let args = options.process.args, !args.isEmpty else {
            throw .invalidConfig(file: "process", field: "args", reason: "must not be empty")
        }
        var sandboxProgram: SeccompProgram?
        if record.isolation == .sandbox {
            do throws(SandboxError) { sandboxProgram = try SandboxProgram.load() } catch { throw .sandbox(error) }
        }

        var joins: [FileDescriptor] = []
        var cgroup = record.cgroup
        if !options.subCgroups.isEmpty, let base = cgroup {
            do { cgroup = try base.sub(options.subCgroups) } catch {
                throw .invalidConfig(file: "exec", field: "--cgroup", reason: "\(error)")
            }
        }
        var request = SpawnRequest(cgroup: cgroup, preserveFds: options.preserveFds)
        request.oomScoreAdj = options.process.oomScoreAdj
        let configured = Set((spec.linux?.namespaces ?? []).map(\.type))
        var mountNamespace: FileDescriptor?
        // The user namespace last, as in create.
        let order = LinuxNamespaceType.allCases.filter { $0 != .user } + [.user]
        for type in order where configured.contains(type) {
            let path = "/proc/\(record.pid)/ns/\(type.procFile)"
            let fd = try wrap("opening \(path)") { try FileDescriptor.open(path, O_RDONLY) }
            if type == .mount { mountNamespace = fd; continue }
            joins.append(fd)
            request.joins.append((fd.raw, type.cloneFlag))
        }
        // The init may have died while we opened its namespaces; its pid could be someone else's now.
        guard ProcessInfo.isAlive(record.pid, startTime: record.pidStartTime) else {
            throw .invalidState(id: id, status: .stopped, action: "exec in")
        }
        let consoleFD = terminal ? try connectConsole(socketPath: options.consoleSocket, connection: options.consoleConnection) : nil
        request.extraFDs = (consoleFD.map { [$0.raw] } ?? []) + (mountNamespace.map { [$0.raw] } ?? [])
        let mountNamespaceOffset = mountNamespace.map { _ in Int32(request.extraFDs.count) }
        var plan = InitPlan(
            mode: .exec, mountNamespaceOffset: mountNamespaceOffset, id: id, spec: spec.forInit, bundle: record.bundle, noPivot: false,
            preserveFds: options.preserveFds, hasConsoleSocket: consoleFD != nil,
            cgroupPaths: record.cgroup?.paths ?? [:], cgroupUnifiedOnly: record.cgroup?.unifiedOnly ?? false,
            newUserNamespace: false, newMountNamespace: false, seccomp: seccomp.map(SeccompPlan.init))
        plan.sandboxSeccomp = sandboxProgram.map(SeccompPlan.init)
        var late = InitPlan.Late(state: store.ociState(of: record), rootfs: record.rootfs)
        if record.isolation == .sandbox {
            late.cpus = (try? SandboxRecord.load(directory: store.directory(record.sandboxOwner ?? id)))?.cpus
        }
        let (stage1, channel) = try spawn(request, peer: "the exec'd process")  // never direct: it joins
        joins.forEach { $0.close() }
        consoleFD?.close()
        mountNamespace?.close()

        let pid: Int32
        do {
            defer { _ = try? Wait.waitpid(stage1) }
            pid = try channel.awaitInitPid(writeIDMaps: { () throws(ContainerError) in
                throw .initFailed("the exec'd process asked for id maps: it joins the container's user namespace")
            }, plan: InitChannel.PendingPlan(plan, requestsBefore: request.stage1Requests))
        }
        var killOnFailure = true
        defer {
            if killOnFailure {
                Glibc.kill(pid, SIGKILL)
                var raw: Int32 = 0
                _ = waitpid(pid, &raw, 0)
            }
        }
        // A send failure means the process died; its own report (if any) is the better error.
        try? channel.deliver(late)
        try channel.serveUntilReady { (request) throws(ContainerError) in
            switch request {
            case .seccompListener(let listener):
                try forwardSeccompListener(listener, spec: spec, state: store.ociState(of: record))
            case .sandboxListener(let listener):
                do throws(SandboxError) { try SandboxBuilder.sendToWarden(directory: store.directory(record.sandboxOwner ?? id), listener: listener) } catch {
                    throw .sandbox(error)
                }
            case .runHooks:
                throw .initFailed("the exec'd process asked for the create hooks")
            case .recordListener:
                throw .initFailed("the exec'd process asked for a recorder (record mode covers the container's own processes)")
            }
        }
        if let pidFile = options.pidFile {
            try wrap("writing pid file") { try FS.writeAtomically(FS.absolute(pidFile), Array("\(pid)".utf8)) }
        }
        killOnFailure = false
        return (pid, terminal)
    }

    /// Foreground exec: waits for the process, forwarding signals and the pty.
    public func waitExec(pid: Int32, terminal: Bool, console: FileDescriptor?) throws(ContainerError) -> Int32 {
        try supervise(pid: pid, terminal: terminal, console: console) { () throws(ContainerError) in }
    }
}

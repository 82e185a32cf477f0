import CVeilLinux
import FoundationEssentials
import Glibc
import VeilLinux
import VeilSeccomp
import VeilSpec

/// `veil init`: runs as the container's PID 1, a fresh single-threaded exec of the runtime
/// inside the new namespaces. It builds the root filesystem, drops privileges, reports ready,
/// waits on the exec fifo for `start`, and execs the user's program.
public enum ContainerInit {
    public static func main() -> Never {
        guard let baseText = getenv(InitFD.environmentKey), let base = Int32(String(cString: baseText)) else {
            writeStderr("veil init: not started by veil create\n")
            exit(2)
        }
        let sync = InitChannel(SyncSocket(fd: FileDescriptor(base + Int32(InitFD.sync))), peer: "the runtime")
        do {
            let (plan, late) = try sync.receivePlan()
            try run(plan: plan, late: late, sync: sync, base: base)
        } catch {
            try? sync.tell(.error, message: "\(error)")
            exit(1)
        }
    }

    private static func run(plan: InitPlan, late: InitPlan.Late, sync: InitChannel, base: Int32) throws(ContainerError) -> Never {
        unsetenv(InitFD.environmentKey)
        // `kill ID TERM` must end a created container, as it ends runc's init.
        try wrap("handling termination signals") { try Signals.exitOnTermination() }
        // CVE-2024-21626: everything above stdio and the preserved fds (our sync socket, fifo,
        // console, anything else) goes away at execve. Done first, before a seccomp filter could
        // refuse close_range.
        if veil_close_range(UInt32(3 + plan.preserveFds), ~0, 4 /* CLOSE_RANGE_CLOEXEC */) != 0 {
            throw ContainerError.initFailed("close_range: cannot mark descriptors close-on-exec")
        }
        let spec = plan.spec
        guard let process = spec.process else { throw ContainerError.invalidConfig(file: "config.json", field: "process", reason: "missing") }
        if plan.mode == .create {
            let mounts = try receiveMounts(late, sync: sync)
            try buildContainer(plan: plan, late: late, sync: sync, mounts: mounts)
        }
        if let offset = plan.mountNamespaceOffset {
            // setns(CLONE_NEWNS) also moves root and cwd to the container's root.
            let fd = base + offset
            _ = try wrap("joining the container's mount namespace") { try sysNeg("setns", "mnt") { veil_setns(fd, LinuxNamespaceType.mount.cloneFlag) } }
            close(fd)
        }
        if process.terminal == true, let console = InitFD.console(plan) {
            try setUpConsole(console: base + console, size: process.consoleSize, bindDevConsole: plan.mode == .create)
        } else {
            // As runc: the process leads a session and process group of its own, terminal or not
            // (conmon's exec timeout kills the exec'd process's group, which would otherwise be conmon's).
            _ = setsid()
        }
        fixStdioOwnership(uid: process.user.uid)
        try enterCwd(process.cwd)
        // process.oomScoreAdj: stage 1 wrote it as host root before any user namespace (a sandbox's
        // root may not lower it), for create and exec alike; this process inherited it.
        for (index, limit) in (process.rlimits ?? []).enumerated() {
            guard let resource = rlimitNumbers[limit.type] else {
                throw ContainerError.invalidConfig(file: "config.json", field: "process.rlimits[\(index)].type", reason: "unknown rlimit \"\(limit.type)\"")
            }
            do { try Credentials.setRlimit(resource, soft: limit.soft, hard: limit.hard) } catch {
                throw ContainerError.invalidConfig(file: "config.json", field: "process.rlimits[\(index)]", reason: "\(error)")
            }
        }
        let environment = process.env ?? []
        guard let program = process.args?.first else {
            throw ContainerError.invalidConfig(file: "config.json", field: "process.args", reason: "must not be empty")
        }
        let executable = try lookPath(program, environment: environment)
        let seccomp = try plan.seccomp.map { (plan) throws(ContainerError) -> SeccompProgram in
            guard let program = plan.program else { throw ContainerError.initFailed("corrupt seccomp filter in the plan") }
            return program
        }
        // As runc: without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in before the
        // capabilities are dropped; a notifying filter goes in early so the agent gets the
        // listener (forwarded by the runtime to linux.seccomp.listenerPath) before `ready`.
        let seccompEarly = seccomp.map { $0.usesNotify || process.noNewPrivileges != true } ?? false
        if let seccomp, seccompEarly {
            let listener = try wrap("installing the seccomp filter") { try SeccompLoader.install(seccomp) }
            if let listener {
                try sync.handOver(listener: listener, as: .seccompListener)
                close(listener)
            }
        }
        if let sandbox = plan.sandboxSeccomp {
            // Before privileges go, so the filter needs no no_new_privs; everything the init
            // does from here to execve is on the policy's allow-list.
            guard let program = sandbox.program else { throw ContainerError.initFailed("corrupt sandbox filter in the plan") }
            let listener = try wrap("installing the sandbox policy") { try SeccompLoader.install(program) }
            // In record mode the policy has no listener: its notified calls go to the recorder.
            if plan.recordSeccomp == nil {
                guard let listener else { throw ContainerError.initFailed("the sandbox policy gave no listener") }
                try sync.handOver(listener: listener, as: .sandboxListener)
                close(listener)
            }
        }
        if let record = plan.recordSeccomp {
            // Record mode: the newest filter, so that a call both it and the sandbox policy notify
            // reaches the recorder (which answers it as the warden would). Until the recorder runs,
            // the init makes only calls the filter lets through unseen (SeccompRecording.unrecordedCalls).
            guard let program = record.program else { throw ContainerError.initFailed("corrupt record filter in the plan") }
            let framed = sync.frame(.recordListener)
            let listener = try wrap("installing the record filter") { try SeccompLoader.install(program) }
            guard let listener else { throw ContainerError.initFailed("the record filter gave no listener") }
            try sync.handOver(recordListener: listener, framed: framed)
            close(listener)
        }
        if let cpus = late.cpus { _ = veil_confine_to_cpus(Int32(cpus)) }  // nproc then shows the quota
        try dropPrivileges(process)
        if let umask = process.user.umask { Glibc.umask(mode_t(umask)) } else { Glibc.umask(0o022) }

        try sync.tell(.ready)
        sync.socket.fd.close()

        if let fifoOffset = InitFD.fifo(plan) {
            // Blocks until `veil start` opens the other end. The write end stays open (close-on-exec)
            // until execve, so `start` sees EOF only once the program runs, after startContainer hooks.
            let fifoFD = base + fifoOffset
            let fifo = try wrap("opening the exec fifo") { try FileDescriptor.open("/proc/self/fd/\(fifoFD)", O_WRONLY) }
            close(fifoFD)
            try wrap("waiting for start on the exec fifo") { try fifo.write([0x30]) }
            do { try HookRunner.run(spec.hooks?.startContainer, phase: "startContainer", state: late.state) } catch {
                try? fifo.write([UInt8(ascii: "E")])
                writeStderr("veil: \(error)\n")
                exit(1)
            }
            _ = fifo.release()  // closed by execve
        }
        Signals.resetAll()
        if let seccomp, !seccompEarly {
            // Last, so nothing the runtime itself does is filtered.
            do { _ = try SeccompLoader.install(seccomp) } catch {
                writeStderr("veil: installing the seccomp filter: \(error)\n")
                exit(1)
            }
        }
        let argv = CStringArray(process.args ?? [])
        let envp = CStringArray(environment)
        // Marked: at the sandbox level this exec is not the warden's to see (SandboxPolicy.observations).
        errno = -veil_execve_marked(executable, argv.pointers, envp.pointers)
        let failure = LinuxError("exec", "\"\(program)\"")
        writeStderr("veil: \(failure)\n")
        exit(127)
    }

    /// Sandbox level: the id-mapped rootfs and bind sources, sent right after the plan.
    private static func receiveMounts(_ late: InitPlan.Late, sync: InitChannel) throws(ContainerError) -> IDMappedMountFDs {
        var fds = IDMappedMountFDs()
        if late.idmappedRootfs {
            fds.rootfs = try sync.receiveDelivered("the id-mapped rootfs")
        }
        for index in late.idmappedMounts {
            fds.mounts[index] = try sync.receiveDelivered("an id-mapped mount")
        }
        for index in late.openedSources {
            fds.sources[index] = try sync.receiveDelivered("a bind mount's source")
        }
        return fds
    }

    /// The new container's side of `create`: root filesystem, hooks, identity.
    private static func buildContainer(plan: InitPlan, late: InitPlan.Late, sync: InitChannel, mounts: IDMappedMountFDs) throws(ContainerError) {
        let spec = plan.spec
        // As runc: a network namespace made for this container gets its loopback up (a new one
        // starts with `lo` down, and daemons listening on 127.0.0.1 would be unreachable).
        if !plan.networkPrepared, spec.linux?.namespaces?.contains(where: { $0.type == .network && $0.path == nil }) == true {
            try wrap("bringing up the loopback interface") { try NetworkInterface.bringUp("lo") }
        }
        let builder = RootfsBuilder(plan: plan, late: late, idmapped: mounts)
        try builder.prepare()
        if spec.hooks?.prestart?.isEmpty == false || spec.hooks?.createRuntime?.isEmpty == false {
            try sync.askForHooks()
        }
        try HookRunner.run(spec.hooks?.createContainer, phase: "createContainer", state: late.state)
        try builder.enterRoot()
        try builder.finish()
        if let hostname = spec.hostname, !hostname.isEmpty {
            _ = try wrap("setting hostname") { try sys("sethostname", hostname) { sethostname(hostname, hostname.utf8.count) } }
        }
        if let domain = spec.domainname, !domain.isEmpty {
            _ = try wrap("setting domainname") { try sys("setdomainname", domain) { setdomainname(domain, domain.utf8.count) } }
        }
    }

    private static func setUpConsole(console: Int32, size: Box?, bindDevConsole: Bool) throws(ContainerError) {
        let (master, slavePath) = try wrap("opening a pty") { try Pty.open() }
        if let size { Pty.setWindowSize(master.raw, rows: UInt16(clamping: size.height), columns: UInt16(clamping: size.width)) }
        try wrap("sending the pty to the console socket") { try UnixSocket.sendFD(socket: console, fd: master.raw, message: slavePath) }
        master.close()
        close(console)
        let slave = try wrap("opening \(slavePath)") { try FileDescriptor.open(slavePath, O_RDWR | O_NOCTTY) }
        // /dev/console names the container's terminal, as in runc.
        if bindDevConsole && FS.exists("/dev") {
            let console = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            if console >= 0 { close(console) }
            _ = try? Mounts.mount(slavePath, "/dev/console", type: nil, flags: UInt(MS_BIND))
        }
        _ = try wrap("setsid") { try sys("setsid") { setsid() } }
        try wrap("making the pty the controlling terminal") { try Pty.makeControllingTerminal(slave.raw) }
        for fd: Int32 in 0...2 { dup2(slave.raw, fd) }
    }

    /// As runc: the process's stdio (its pty slave above all) belongs to process.user's uid, so
    /// that tty, mesg and programs that reopen their terminal work; the group stays (devpts gives
    /// the tty group). Not /dev/null, and not what this user namespace cannot chown (EPERM,
    /// EINVAL: an unmapped owner or group), which runc ignores too.
    private static func fixStdioOwnership(uid: UInt32) {
        var null = stat()
        let haveNull = stat("/dev/null", &null) == 0
        for fd: Int32 in 0...2 {
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_uid != uid else { continue }
            if haveNull && (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == null.st_rdev { continue }
            _ = fchown(fd, uid, st.st_gid)
        }
    }

    private static func enterCwd(_ cwd: String) throws(ContainerError) {
        guard cwd.hasPrefix("/") else {
            throw ContainerError.invalidConfig(file: "config.json", field: "process.cwd", reason: "must be an absolute path")
        }
        do { try sys("chdir", cwd) { chdir(cwd) } } catch {
            throw ContainerError.invalidConfig(file: "config.json", field: "process.cwd", reason: "\(error)")
        }
        // CVE-2024-21626: a cwd reached through a leaked fd would lie outside the root; getcwd says so.
        let here = FS.currentDirectory()
        if !here.hasPrefix("/") {
            throw ContainerError.invalidConfig(file: "config.json", field: "process.cwd", reason: "\(cwd) is outside the container root")
        }
    }

    private static func lookPath(_ program: String, environment: [String]) throws(ContainerError) -> String {
        if program.contains("/") {
            if access(program, X_OK) == 0 { return program }
            throw ContainerError.invalidConfig(file: "config.json", field: "process.args[0]", reason: "exec \"\(program)\": \(String(cString: strerror(errno)))")
        }
        let path = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + program
            var st = stat()
            if stat(candidate, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw ContainerError.invalidConfig(file: "config.json", field: "process.args[0]", reason: "exec \"\(program)\": executable file not found in $PATH")
    }

    private static func capabilitySet(_ names: [String]?) -> CapabilitySet {
        // Unknown names are skipped, as runc does, so a newer config runs on an older kernel.
        CapabilitySet((names ?? []).compactMap { CapabilityName.number($0) }.filter { $0 <= Credentials.lastCapability })
    }

    private static func dropPrivileges(_ process: Process) throws(ContainerError) {
        let caps = process.capabilities
        let bounding = capabilitySet(caps?.bounding)
        try wrap("keeping capabilities") { try Credentials.setKeepCaps(true) }
        try wrap("dropping the bounding set") { try Credentials.dropBounding(keeping: bounding) }
        do {
            try Credentials.setIDs(uid: process.user.uid, gid: process.user.gid, groups: process.user.additionalGids ?? [])
        } catch {
            throw ContainerError.invalidConfig(file: "config.json", field: "process.user", reason: "\(error)")
        }
        try wrap("keeping capabilities") { try Credentials.setKeepCaps(false) }
        let permitted = capabilitySet(caps?.permitted)
        let inheritable = capabilitySet(caps?.inheritable)
        try wrap("setting capabilities") {
            try Credentials.setCapabilities(effective: capabilitySet(caps?.effective), permitted: permitted, inheritable: inheritable)
        }
        Credentials.raiseAmbient(capabilitySet(caps?.ambient), permitted: permitted, inheritable: inheritable)
        if process.noNewPrivileges == true {
            try wrap("setting no_new_privs") { try Credentials.setNoNewPrivileges() }
        }
    }

    private static let rlimitNumbers: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]
}

func writeStderr(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}

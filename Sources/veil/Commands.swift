import ArgumentParser
import FoundationEssentials
import Glibc
import VeilContainer
import VeilExchange
import VeilInstall
import VeilLinux
import VeilSandbox
import VeilSpec

enum Context {
    nonisolated(unsafe) static var global = GlobalOptions()

    /// Made once the global options are read (main), so --debug's times count from one start.
    nonisolated(unsafe) static var logger = Logger(file: nil, format: .text, debug: false)

    static func runtime() throws -> Runtime {
        var runtime = Runtime(root: global.root, log: logger, isolation: global.isolation)
        runtime.sandboxDevices = global.sandboxDevices
        runtime.allowLowerIsolation = global.allowLowerIsolation
        runtime.systemdCgroup = global.systemdCgroup
        runtime.allowSystemdProperties = global.allowSystemdProperties
        runtime.allowSeccompRecord = global.allowSeccompRecord
        runtime.seccompArtifacts = global.seccompArtifactPolicy
        if let text = getenv("VEIL_ID_POOL").map({ String(cString: $0) }) {
            guard let pool = IDPool.parse(text) else { throw Failure(message: "VEIL_ID_POOL=\(text): expected START:SLOTS (ranges of 65536 host ids from START)") }
            runtime.idPool = pool
        }
        return runtime
    }

    /// Reports `error` the way runc does (stderr, plus the --log file) and exits non-zero
    /// (1; `exec` uses 255, as runc, so callers can tell its failure from the process's status).
    static func fail(_ error: Error, prefix: String = "", status: Int32 = 1) -> Never {
        logger.error(prefix + "\(error)")
        exit(status)
    }
}

struct Failure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

func writeError(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}

func writeOut(_ text: String) {
    _ = text.withCString { write(1, $0, strlen($0)) }
}

struct Veil: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veil",
        abstract: "A sandboxing OCI container runtime with runc's command line.",
        discussion: "Global options (before the command): --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, "
            + "--isolation native|sandbox (the operator's level, default sandbox; invoked as veil-native: native), "
            + "--allow-lower-isolation (let config.json's dev.veil.isolation annotation lower the level; it may always raise it), "
            + "--allow-systemd-properties (let config.json set any org.systemd.property.* at the sandbox level), "
            + "--allow-seccomp-record (let config.json's dev.veil.seccomp-record annotation record the container's system calls), "
            + "--seccomp-artifacts=false (ignore seccomp-profile.kubernetes.cri-o.io annotations), --seccomp-artifacts-from-images "
            + "(also read them from the image's manifest), --registries-conf FILE, --registry-auth-file FILE, --registry-cert-dir DIR.",
        version: RuncStyleHelp.versionText,
        subcommands: [Spec_.self, Create.self, Start.self, Run.self, Exec.self, State.self, Kill.self, Delete.self, List.self, Ps.self, Pause.self, Resume.self, Update.self, Events.self, Features.self, Checkpoint.self, Restore.self, Install.self, Uninstall.self, Doctor.self, SandboxCommand.self, SeccompCommand.self, Verify.self,])
}

struct Spec_: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spec", abstract: "Write a default config.json.")
    @Option(name: [.short, .long], help: "The bundle directory.") var bundle: String?
    @Flag(help: "A spec for a rootless container.") var rootless = false

    func run() throws {
        let directory = bundle ?? "."
        let path = directory + "/config.json"
        if access(path, F_OK) == 0 { Context.fail(Failure(message: "File \(path) exists. Remove it first")) }
        do {
            let bytes = try VeilSpec.Spec.runcDefault(rootless: rootless).encodedPretty()
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            guard fd >= 0 else { throw Failure(message: "open \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw Failure(message: "write \(path): \(String(cString: strerror(errno)))") }
        } catch { Context.fail(error) }
    }
}

struct CreateFlags: ParsableArguments {
    @Option(name: [.short, .long], help: "The bundle directory (default: the current directory).") var bundle: String = "."
    @Option(name: .long, help: "Write the init's pid to this file.") var pidFile: String?
    @Option(name: .long, help: "A unix socket that receives the pty master of a terminal container.") var consoleSocket: String?
    @Flag(name: .long, help: "Use a move mount and chroot instead of pivot_root.") var noPivot = false
    @Flag(name: .long, help: "Do not create a session keyring.") var noNewKeyring = false
    @Option(name: .long, help: "Pass N more fds (3..3+N-1) to the container.") var preserveFds: Int = 0

    var options: CreateOptions {
        var o = CreateOptions(bundle: bundle)
        o.pidFile = pidFile
        o.consoleSocket = consoleSocket
        o.noPivot = noPivot
        o.noNewKeyring = noNewKeyring
        o.preserveFds = max(0, preserveFds)
        return o
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container; its program waits for `start`.")
    @OptionGroup var flags: CreateFlags
    @Argument(help: "The container id.") var id: String

    func run() throws {
        do { _ = try Context.runtime().create(id: id, options: flags.options) } catch { Context.fail(error) }
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Run the program of a created container.")
    @Argument var id: String
    func run() throws {
        do { try Context.runtime().start(id: id) } catch { Context.fail(error) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create and start a container; wait for it unless detached.")
    @OptionGroup var flags: CreateFlags
    @Flag(name: [.short, .long], help: "Detach from the container's process.") var detach = false
    @Flag(name: .long, help: "Accepted for runc compatibility.") var noSubreaper = false
    @Flag(name: .long, help: "Keep the container's state after it exits.") var keep = false
    @Argument var id: String

    func run() throws {
        Self.execute(id: id, options: flags.options, detach: detach, keep: keep)
    }

    /// `run` itself, shared with the fast path: create and start, then (unless detached) wait
    /// for the container's exit, forwarding signals, and exit with its status.
    static func execute(id: String, options: CreateOptions, detach: Bool, keep: Bool) -> Never {
        do {
            let runtime = try Context.runtime()
            // As runc: a console socket only makes sense for a detached container with a terminal
            // (checked against the config once it is read, in create); in the foreground veil proxies the pty itself.
            if options.consoleSocket != nil && !detach {
                throw Failure(message: "cannot use console socket if veil will not detach or allocate tty")
            }
            if detach {
                let created = try runtime.create(id: id, options: options)
                try runtime.start(created.record)
                Glibc.exit(0)
            }
            // Signals are taken with sigwaitinfo and forwarded; block them before anything else starts.
            blockAllSignals()
            var options = options
            // A terminal with nobody to hand the pty to: receive it here and copy our stdio.
            var console: (VeilLinux.SyncSocket, VeilLinux.SyncSocket)?
            if options.consoleSocket == nil {
                console = try SyncSocket.pair()
                options.consoleConnection = console?.1.fd.raw
            }
            let created = try runtime.create(id: id, options: options)
            console?.1.fd.close()
            let status = try runtime.runForeground(id: id, created: created, console: console?.0.fd, keep: keep)
            Glibc.exit(status)
        } catch { Context.fail(error) }
    }
}

struct State: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print a container's state as JSON.")
    @Argument var id: String
    func run() throws {
        do { try Self.print(Context.runtime().state(id: id)) } catch { Context.fail(error) }
    }

    /// runc's layout: `json.MarshalIndent` with two spaces, keys in the OCI state's order
    /// (veil's `isolation` after runc's).
    static func print(_ state: OCIState) throws {
        writeOut(String(decoding: try OrderedJSONEncoder.encode(state, layout: .twoSpaces), as: UTF8.self))
    }
}

func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
    return try encoder.encode(value)
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container's init.")
    @Flag(name: [.short, .long], help: "Signal every process in the container.") var all = false
    @Argument var id: String
    @Argument var signal: String = "SIGTERM"

    func run() throws {
        do {
            guard let number = SignalName.parse(signal) else { throw Failure(message: "invalid signal \"\(signal)\"") }
            try Context.runtime().kill(id: id, signal: number, all: all)
        } catch { Context.fail(error) }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a container's resources.")
    @Flag(name: [.short, .long], help: "Kill a running container first.") var force = false
    @Argument var id: String
    func run() throws {
        do { try Context.runtime().delete(id: id, force: force) } catch { Context.fail(error) }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.", aliases: ["ls"])
    @Option(name: [.short, .long], help: "table or json") var format: String = "table"
    @Flag(name: [.short, .long], help: "Only the ids.") var quiet = false

    func run() throws {
        do {
            let states = try Context.runtime().list()
            if quiet {
                for s in states { writeOut(s.id + "\n") }
                return
            }
            switch format {
            case "json":
                // One line, keys in runc's order; runc names the owner here (and not in `state`).
                let named = states.map { state in
                    var state = state
                    state.owner = Self.ownerName(stateDirectory: Context.global.root + "/" + state.id)
                    return state
                }
                writeOut(String(decoding: try OrderedJSONEncoder.encode(named, layout: .compact), as: UTF8.self))
            case "table":
                var rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
                for s in states {
                    rows.append([s.id, String(s.pid), s.status.rawValue, s.bundle, s.created,
                                 Self.ownerName(stateDirectory: Context.global.root + "/" + s.id)])
                }
                let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
                for row in rows {
                    let cells = row.enumerated().map { i, cell in i == 5 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 3) }
                    writeOut(cells.joined() + "\n")
                }
            default:
                throw Failure(message: "invalid format \"\(format)\": must be table or json")
            }
        } catch { Context.fail(error) }
    }
}

extension List {
    /// The user owning the container's state directory, by name when the host knows it (as runc).
    static func ownerName(stateDirectory: String) -> String {
        var st = stat()
        guard stat(stateDirectory, &st) == 0 else { return "" }
        if let entry = getpwuid(st.st_uid), let name = entry.pointee.pw_name { return String(cString: name) }
        return "#\(st.st_uid)"
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a new process inside a running container.")
    @Option(name: .long, help: "A unix socket that receives the pty master.") var consoleSocket: String?
    @Option(name: .long, help: "Working directory inside the container.") var cwd: String?
    @Option(name: [.short, .long], help: "Set an environment variable (repeatable).") var env: [String] = []
    @Flag(name: [.short, .long], help: "Allocate a pseudo-terminal.") var tty = false
    @Option(name: [.short, .long], help: "uid[:gid] to run as.") var user: String?
    @Option(name: [.customShort("g"), .long], help: "Additional gid (repeatable).") var additionalGids: [UInt32] = []
    @Option(name: [.short, .long], help: "A JSON file with the OCI process to run.") var process: String?
    @Flag(name: [.short, .long], help: "Detach from the process.") var detach = false
    @Option(name: .long, help: "Write the process's pid to this file.") var pidFile: String?
    @Option(name: .long, help: "Accepted for runc compatibility (no SELinux support).") var processLabel: String?
    @Option(name: .long, help: "Accepted for runc compatibility (no AppArmor support).") var apparmor: String?
    @Flag(name: .long, help: "Set no_new_privs for the process.") var noNewPrivs = false
    @Option(name: [.customShort("c"), .long], help: "Add a capability (repeatable).") var cap: [String] = []
    @Option(name: .long, help: "Pass N more fds (3..3+N-1).") var preserveFds: Int = 0
    @Flag(name: .long, help: "Allow exec in a paused container.") var ignorePaused = false
    @Option(name: .long, help: "Run the process in an existing sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH (repeatable).") var cgroup: [String] = []
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run() throws {
        ExecRequest(id: id, command: command, process: process, detach: detach, pidFile: pidFile, consoleSocket: consoleSocket,
                    tty: tty, cwd: cwd, env: env, user: user, additionalGids: additionalGids, noNewPrivs: noNewPrivs, cap: cap,
                    preserveFds: preserveFds, ignorePaused: ignorePaused, cgroup: cgroup).run()
    }
}

/// `exec` itself, shared by the parsed command and the fast path (containerd's shim runs
/// `exec --process P --detach --pid-file F ID` for every exec).
struct ExecRequest {
    var id: String
    var command: [String] = []
    var process: String?
    var detach = false
    var pidFile: String?
    var consoleSocket: String?
    var tty = false
    var cwd: String?
    var env: [String] = []
    var user: String?
    var additionalGids: [UInt32] = []
    var noNewPrivs = false
    var cap: [String] = []
    var preserveFds = 0
    var ignorePaused = false
    var cgroup: [String] = []

    func run() -> Never {
        do {
            let runtime = try Context.runtime()
            var spec = try buildProcess(runtime: runtime)
            if tty { spec.terminal = true }
            if consoleSocket != nil && !(detach && spec.terminal == true) {
                throw Failure(message: "cannot use console socket if veil will not detach or allocate tty")
            }
            var options = ExecOptions(process: spec)
            options.detach = detach
            options.ignorePaused = ignorePaused
            options.subCgroups = cgroup
            options.pidFile = pidFile
            options.consoleSocket = consoleSocket
            options.preserveFds = max(0, preserveFds)
            if detach {
                _ = try runtime.exec(id: id, options: options)
                Glibc.exit(0)
            }
            blockAllSignals()
            var console: (SyncSocket, SyncSocket)?
            if consoleSocket == nil && spec.terminal == true {
                console = try SyncSocket.pair()
                options.consoleConnection = console?.1.fd.raw
            }
            let (pid, terminal) = try runtime.exec(id: id, options: options)
            console?.1.fd.close()
            Glibc.exit(try runtime.waitExec(pid: pid, terminal: terminal, console: console?.0.fd))
        } catch { Context.fail(error, prefix: "exec failed: ", status: 255) }
    }

    /// --process FILE as given, or the container's own process with the command and flags applied (as runc).
    private func buildProcess(runtime: Runtime) throws -> VeilSpec.Process {
        if let path = process {
            let bytes: [UInt8]
            do { bytes = try FS.readFile(path) } catch { throw Failure(message: "\(error)") }
            do { return try JSONDecoder().decode(VeilSpec.Process.self, from: Data(bytes)) } catch {
                throw Failure(message: "\(path): \(error)")
            }
        }
        guard !command.isEmpty else { throw Failure(message: "exec: the command is missing (or give --process FILE)") }
        var p = try runtime.configuredProcess(id: id)
        p.args = command
        p.terminal = tty
        p.consoleSize = nil
        p.env = (p.env ?? []) + env
        if let cwd { p.cwd = cwd }
        if let user {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw Failure(message: "--user \(user): expected uid[:gid] as numbers")
            }
            p.user.uid = uid
            p.user.gid = parts.count > 1 ? UInt32(parts[1]) ?? 0 : p.user.gid
        }
        if !additionalGids.isEmpty { p.user.additionalGids = additionalGids }
        if noNewPrivs { p.noNewPrivileges = true }
        if !cap.isEmpty {
            var caps = p.capabilities ?? LinuxCapabilities()
            for name in cap {
                guard CapabilityName.number(name) != nil else { throw Failure(message: "--cap \(name): unknown capability") }
                let full = name.uppercased().hasPrefix("CAP_") ? name.uppercased() : "CAP_" + name.uppercased()
                caps.bounding = (caps.bounding ?? []) + [full]
                caps.effective = (caps.effective ?? []) + [full]
                caps.permitted = (caps.permitted ?? []) + [full]
            }
            p.capabilities = caps
        }
        return p
    }
}

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the processes of a container.")
    @Option(name: [.short, .long], help: "table or json") var format: String = "table"
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "Arguments for ps(1) (default -ef).") var psArgs: [String] = []

    func run() throws {
        do {
            let runtime = try Context.runtime()
            let pids = try runtime.processes(id: id)
            switch format {
            case "json":
                writeOut(String(decoding: try OrderedJSONEncoder.encode(ProcessList(pids: pids), layout: .compact), as: UTF8.self))
            case "table":
                let state = try runtime.state(id: id)
                try printTable(pids: Set(pids), runAs: state.isolation == IsolationLevel.sandbox.rawValue ? Self.hostIDs(of: state.pid) : nil)
            default:
                throw Failure(message: "invalid format \"\(format)\": must be table or json")
            }
        } catch { Context.fail(error) }
    }

    /// The host uid and gid a process runs as (the real ids of /proc/PID/status).
    static func hostIDs(of pid: Int32) -> (uid: UInt32, gid: UInt32)? {
        guard pid > 0, let text = try? FS.readString("/proc/\(pid)/status") else { return nil }
        func first(_ key: String) -> UInt32? {
            text.split(separator: "\n").first { $0.hasPrefix(key) }.flatMap { $0.split(separator: "\t").dropFirst().first }.flatMap { UInt32($0) }
        }
        guard let uid = first("Uid:"), let gid = first("Gid:") else { return nil }
        return (uid, gid)
    }

    /// Runs ps(1) and keeps its header and the lines of the container's processes, as runc does.
    /// A sandbox's root is another host uid than ours, so ps runs as that uid there: options that
    /// select "your own processes" (BSD `x` without `a`, as in `ps -e -x`) then mean the
    /// container root's, which is what they mean under runc, where container root is host root.
    private func printTable(pids: Set<Int32>, runAs: (uid: UInt32, gid: UInt32)?) throws {
        let given = psArgs.first == "--" ? Array(psArgs.dropFirst()) : psArgs
        var args = given.isEmpty ? ["-ef"] : given
        // Without a selection ps(1) shows only processes with our euid and tty; a sandbox's run
        // as another host uid. Name them: the rows are the container's either way.
        let selections: Set<String> = ["-e", "-A", "-a", "-d", "-N", "-p", "-q", "-u", "-U", "-g", "-G", "-t", "-s", "ax", "aux", "axu",
                                       "--pid", "--ppid", "--user", "--group", "--sid", "--tty", "-ef", "-eF", "-ely", "-eLf"]
        if !args.contains(where: { selections.contains($0) }) && !pids.isEmpty {
            args += ["-p", pids.sorted().map(String.init).joined(separator: ",")]
        }
        let identity = runAs.map { ["setpriv", "--reuid=\($0.uid)", "--regid=\($0.gid)", "--clear-groups"] } ?? []
        let output = try capture(identity + ["ps"] + args)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.first else { return }
        guard let column = header.split(separator: " ").firstIndex(of: "PID") else {
            throw Failure(message: "ps output has no PID column")
        }
        writeOut(header + "\n")
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > column, let pid = Int32(fields[column]), pids.contains(pid) { writeOut(line + "\n") }
        }
    }
}

/// Blocks every signal in this thread (and the threads it starts): the foreground commands take
/// them from a signalfd and forward them to the container.
func blockAllSignals() {
    var all = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_BLOCK, &all, nil)
}

/// Runs a program found on PATH and returns its stdout; fails on a non-zero exit.
func capture(_ argv: [String]) throws -> String {
    guard let (status, output) = SystemHost().run(argv) else {
        throw Failure(message: "cannot run \(argv.first ?? "")")
    }
    guard status == 0 else { throw Failure(message: "\(argv.joined(separator: " ")) failed (status \(status))") }
    return output
}

/// `veil checkpoint [options] ID`, runc's command line; `veil checkpoint inspect|memparse|dump|coredump`
/// read a checkpoint in veil-checkpoint, which main.swift execs before the parser sees them.
struct Checkpoint: ParsableCommand {
    static let readers = ["inspect", "show", "memparse", "dump", "coredump"]
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint a running container through CRIU; `checkpoint inspect|memparse|dump|coredump ARCHIVE` read one (veil-checkpoint).")
    @Option(name: .customLong("image-path"), help: "Where CRIU writes the images (default ./checkpoint).") var imagePath: String?
    @Option(name: .customLong("work-path"), help: "Where CRIU writes its log and work files (default: the image path).") var workPath: String?
    @Option(name: .customLong("parent-path"), help: "A previous (pre-)dump, relative to the image path.") var parentPath: String?
    @Flag(name: .customLong("leave-running"), help: "Leave the container running after the checkpoint.") var leaveRunning = false
    @Flag(name: .customLong("pre-dump"), help: "Dump memory only, for a later checkpoint with --parent-path.") var preDump = false
    @OptionGroup var criu: CRIUFlagOptions
    @Option(name: .customLong("empty-ns")) var emptyNamespaces: [String] = []
    @Flag(name: .customLong("auto-dedup")) var autoDedup = false
    @Flag(name: .customLong("lazy-pages"), help: "Keep the memory with the frozen container and serve it (on --page-server's port) to a lazy restore.") var lazyPages = false
    @Option(name: .customLong("page-server"), help: "ADDRESS:PORT of a CRIU page server for the pages (with --lazy-pages: the port to serve them on).") var pageServer: String?
    @Option(name: .customLong("status-fd"), help: "With --lazy-pages: CRIU writes a byte to this descriptor once its page server listens.") var statusFD: Int32?
    @Option(name: .customLong("export"), help: "Also write the checkpoint archive (kubelet's layout; compressed by suffix).") var export: String?
    @Argument var id: String

    func run() throws {
        if export != nil && (lazyPages || pageServer != nil) {
            Context.fail(Failure(message: "--export archives the images, which --\(lazyPages ? "lazy-pages" : "page-server") sends elsewhere"))
        }
        if export != nil && preDump { Context.fail(Failure(message: "--export writes a whole checkpoint; a --pre-dump is only the first part of one")) }
        // --export without --image-path: CRIU writes into a temporary directory the archive is made of.
        var temporary: String?
        let images: String
        if let imagePath {
            images = FS.absolute(imagePath)
        } else if export != nil {
            do { temporary = try CheckpointArchiveFiles.temporaryDirectory("veil-checkpoint-images") } catch { Context.fail(error) }
            images = temporary ?? ""
        } else {
            images = FS.currentDirectory() + "/checkpoint"
        }
        var options = CheckpointOptions(imagePath: images)
        options.workPath = workPath.map(FS.absolute)
        options.parentPath = parentPath
        options.leaveRunning = leaveRunning
        options.preDump = preDump
        options.criu = criu.flags
        options.emptyNamespaces = emptyNamespaces
        options.autoDedup = autoDedup
        options.lazyPages = lazyPages
        options.pageServer = pageServer
        options.statusFD = statusFD
        do {
            let saved = try Context.runtime().checkpoint(id: id, options: options)
            if let export {
                let annotations = saved.record.annotations ?? [:]
                try CheckpointArchiveFiles.export(FS.absolute(export), images: images, id: saved.record.id, created: saved.record.created,
                                                  imageName: annotations["io.kubernetes.cri.image-name"] ?? annotations["org.opencontainers.image.ref.name"],
                                                  spec: saved.spec, specJSON: saved.configJSON, bundle: saved.record.bundle,
                                                  rootfsUpper: RootfsChanges.upperDirectory(of: saved.record.rootfs))
            }
        } catch {
            if let temporary { try? FS.removeAll(temporary) }  // fail() exits: no defer runs
            Context.fail(error)
        }
        if let temporary { try? FS.removeAll(temporary) }
    }
}

/// `veil restore [options] ID`, runc's command line, plus `--import ARCHIVE`.
struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore a container from a checkpoint through CRIU; wait for it unless detached.")
    @Option(name: .customLong("image-path")) var imagePath: String?
    @Option(name: .customLong("work-path")) var workPath: String?
    @Option(name: .shortAndLong) var bundle: String?
    @Flag(name: .shortAndLong) var detach = false
    @Option(name: .customLong("pid-file")) var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "A unix socket that receives the new pty master of a container checkpointed with a terminal.") var consoleSocket: String?
    @Flag(name: .customLong("no-subreaper"), help: "Accepted for runc's callers: veil never makes itself the restored tree's subreaper (restore is detached; the tree goes to the caller's subreaper).")
    var noSubreaper = false
    @OptionGroup var criu: CRIUFlagOptions
    @Option(name: .customLong("empty-ns"), help: "Leave the restored network namespace as CRIU makes it (lo down).") var emptyNamespaces: [String] = []
    @Flag(name: .customLong("auto-dedup"), help: "Punch the restored pages out of the images.") var autoDedup = false
    @Flag(name: .customLong("lazy-pages"), help: "Take the memory from a `criu lazy-pages` daemon running on the work directory.") var lazyPages = false
    @Option(name: .customLong("import"), help: "Restore from a checkpoint archive (kubelet's layout).") var importArchive: String?
    @Argument var id: String

    func run() throws {
        // As runc's, and as `run`: without --detach veil waits for the restored init (restored as
        // CRIU's sibling, so veil's child), forwarding signals, deletes the container and exits
        // with its status. A new terminal's master goes to a console socket, which only a
        // detached restore has.
        if !detach && consoleSocket != nil { Context.fail(Failure(message: "cannot use console socket if veil will not detach")) }
        if importArchive != nil && imagePath != nil { Context.fail(Failure(message: "--import and --image-path exclude each other")) }
        var unpacked: UnpackedArchive?
        let images: String
        if let importArchive {
            do { unpacked = try CheckpointArchiveFiles.unpack(FS.absolute(importArchive)) } catch { Context.fail(error) }
            guard let found = unpacked?.images else {
                unpacked?.remove()
                Context.fail(Failure(message: "\(importArchive): no \(ArchiveLayout.checkpointDirectory)/inventory.img: not a checkpoint archive"))
            }
            images = found
        } else {
            images = imagePath.map(FS.absolute) ?? FS.currentDirectory() + "/checkpoint"
        }
        var options = RestoreOptions(imagePath: images, bundle: bundle.map(FS.absolute) ?? FS.currentDirectory())
        options.workPath = workPath.map(FS.absolute)
        options.pidFile = pidFile
        options.criu = criu.flags
        options.emptyNamespaces = emptyNamespaces
        options.autoDedup = autoDedup
        options.rootfsChanges = unpacked?.directory
        options.lazyPages = lazyPages
        options.consoleSocket = consoleSocket.map(FS.absolute)
        options.foreground = !detach
        if !detach {
            // Signals are taken with signalfd and forwarded; blocked before the init exists.
            blockAllSignals()
        }
        let record: ContainerRecord
        do { record = try Context.runtime().restore(id: id, options: options) } catch {
            unpacked?.remove()  // fail() exits: no defer runs
            Context.fail(error)
        }
        unpacked?.remove()
        guard !detach else { return }
        do { Glibc.exit(try Context.runtime().waitRestored(record)) } catch { Context.fail(error) }
    }
}

/// The CRIU flags `checkpoint` and `restore` share, as runc spells them.
struct CRIUFlagOptions: ParsableArguments {
    @Flag(name: .customLong("tcp-established")) var tcpEstablished = false
    @Flag(name: .customLong("ext-unix-sk")) var externalUnixSockets = false
    @Flag(name: .customLong("shell-job")) var shellJob = false
    @Flag(name: .customLong("file-locks")) var fileLocks = false
    @Option(name: .customLong("manage-cgroups-mode")) var manageCgroupsMode: String?

    var flags: CRIUFlags {
        var flags = CRIUFlags()
        flags.tcpEstablished = tcpEstablished
        flags.externalUnixSockets = externalUnixSockets
        flags.shellJob = shellJob
        flags.fileLocks = fileLocks
        flags.manageCgroupsMode = manageCgroupsMode
        return flags
    }
}

import CVeilLinux
import Glibc
import VeilLinux
import VeilSeccomp
import VeilSpec
import VeilWarden

/// Record mode: a container whose system calls are written down as an OCI seccomp profile when
/// it exits. The init installs a record filter (default action SCMP_ACT_NOTIFY) as its newest
/// filter; its listener goes to a recorder process (`veil seccomp-recorder`, started by create,
/// outliving it) that notes each call, lets it continue, and writes the profile once no process
/// uses the filter any more. Not a security boundary: a continued call runs with the arguments the
/// caller has by then (the kernel's documented caveat for SECCOMP_USER_NOTIF_FLAG_CONTINUE).
public enum SeccompRecordMode {
    /// Asks for record mode from config.json (a container under the shim); the value is a file name.
    public static let annotation = "dev.veil.seccomp-record"
    /// Where the annotation's profiles are written.
    public static let recordingsDirectory = "/var/lib/veil/seccomp-recordings"
    /// The recorder's hidden command (argv[1]), dispatched before the command-line parser.
    public static let recorderCommand = "seccomp-recorder"
    /// The global flag that lets the annotation be honoured.
    public static let allowFlag = "--allow-seccomp-record"

    /// Where this container's profile goes, or nil when it is not recorded: `requested` (the
    /// command line's) first, else the annotation when the operator allows it.
    static func output(spec: Spec, requested: String?, allowed: Bool) throws(ContainerError) -> String? {
        let field = "annotations[\"\(annotation)\"]"
        if let requested { return FS.absolute(requested) }
        guard let value = spec.annotations?[annotation] else { return nil }
        guard allowed else {
            throw .invalidConfig(file: "config.json", field: field,
                                 reason: "record mode by annotation is off: the operator enables it with veil's \(allowFlag) flag")
        }
        guard isFileName(value) else {
            throw .invalidConfig(file: "config.json", field: field,
                                 reason: "\"\(value)\" is not a file name ([A-Za-z0-9._-], at most 128 characters, no leading dot)")
        }
        return recordingsDirectory + "/" + value
    }

    /// [A-Za-z0-9._-]{1,128}, not starting with a dot (so never "." or "..").
    public static func isFileName(_ value: String) -> Bool {
        guard !value.isEmpty, value.utf8.count <= 128, value.first != "." else { return false }
        return value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }

    /// When two filters notify the same call the kernel tells only the newest: an agent's
    /// listener (linux.seccomp with SCMP_ACT_NOTIFY) would lose its calls to the recorder.
    static func refuseNotifyingProfile(_ spec: Spec) throws(ContainerError) {
        guard let profile = spec.linux?.seccomp else { return }
        if profile.defaultAction == "SCMP_ACT_NOTIFY" || (profile.syscalls ?? []).contains(where: { $0.action == "SCMP_ACT_NOTIFY" }) {
            throw .invalidConfig(file: "config.json", field: "linux.seccomp",
                                 reason: "record mode cannot be combined with SCMP_ACT_NOTIFY: the recorder's filter would take the agent's notifications")
        }
    }

    static func filter() throws(ContainerError) -> SeccompProgram {
        do { return try SeccompRecording.filter() } catch { throw .failed(context: "compiling the record filter", cause: error) }
    }

    /// A started recorder: its pid, the write end of its commit pipe (`commit()` once the create
    /// succeeded; a recorder whose pipe closes unwritten writes no profile) and, at the sandbox
    /// level, the anchor listener for the warden.
    struct Recorder {
        let pid: Int32
        let commitPipe: FileDescriptor
        let anchor: FileDescriptor?
    }

    /// Starts the recorder with the listener (fd 3), the read end of its commit pipe (fd 4) and,
    /// at the sandbox level, the sandbox's UTS namespace (fd 5), its warden's input directory (for
    /// the configuration) and a socket (fd 6) on which it sends back its anchor listener
    /// (`SeccompRecording.anchorFilter`): the init's chain holds the record filter's listener, the
    /// only one the kernel allows it, so the warden (still needed for the /proc views, exec'd
    /// processes and the dead man's switch) is given this one. `log`: its stderr.
    static func startRecorder(listener: FileDescriptor, output: String, initPid: Int32, wardenDirectory: String?,
                              log: String) throws(ContainerError) -> Recorder {
        let exe = FS.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
        var argv = ["veil", recorderCommand, output]
        let commit = try wrap("the seccomp recorder's commit pipe") { try FileDescriptor.pipe() }
        defer { commit.reader.close() }
        guard let wardenDirectory else {
            let pid = try wrap("starting the seccomp recorder") {
                try Spawner.spawnDetached(exe, argv, fds: [listener.raw, commit.reader.raw], stderrPath: log)
            }
            return Recorder(pid: pid, commitPipe: commit.writer, anchor: nil)
        }
        argv.append(wardenDirectory)
        let uts = try wrap("opening the container's UTS namespace") { try FileDescriptor.open("/proc/\(initPid)/ns/uts", O_RDONLY) }
        defer { uts.close() }
        let (ours, theirs) = try wrap("a socket to the seccomp recorder") { try SyncSocket.pair() }
        defer { ours.fd.close() }
        let pid: Int32
        do {
            defer { theirs.fd.close() }
            pid = try wrap("starting the seccomp recorder") {
                try Spawner.spawnDetached(exe, argv, fds: [listener.raw, commit.reader.raw, uts.raw, theirs.fd.raw], stderrPath: log)
            }
        }
        do {
            let anchor = try wrap("receiving the recorder's anchor listener") { try UnixSocket.receiveFD(socket: ours.fd.raw).0 }
            return Recorder(pid: pid, commitPipe: commit.writer, anchor: anchor)
        } catch {
            kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
            throw error
        }
    }

    /// Tells the recorder the create succeeded: its profile is wanted.
    static func commit(_ pipe: FileDescriptor) {
        try? pipe.write([1])
        pipe.close()
    }

    /// `veil seccomp-recorder OUTPUT [WARDEN_DIRECTORY]`: serves the listener at fd 3 until the
    /// container is gone, then writes the profile to OUTPUT (atomically) if its create committed
    /// (a byte on fd 4): a create that failed, even after the init died, leaves no profile.
    public static func recorderMain() -> Never {
        let args = CommandLine.arguments
        guard args.count == 3 || args.count == 4 else {
            writeStderr("veil \(recorderCommand): started by veil create only\n")
            exit(2)
        }
        let output = args[2]
        var warden: WardenConfig?
        if args.count == 4 {
            do { warden = try WardenConfig.load(directory: args[3]) } catch {
                // Without the sandbox's identity its uname could not be answered as the warden's: stop
                // here, the kernel then fails the container's notified calls (ENOSYS), never runs them.
                writeStderr("veil \(recorderCommand): \(error)\n")
                exit(1)
            }
            let joined = veil_setns(5, 0x0400_0000 /* CLONE_NEWUTS */)
            if joined != 0 {
                writeStderr("veil \(recorderCommand): joining the container's UTS namespace: \(String(cString: strerror(-joined)))\n")
                exit(1)
            }
            close(5)
            do {
                guard let anchor = try SeccompLoader.install(SeccompRecording.anchorFilter) else {
                    throw LinuxError("seccomp", "the anchor filter gave no listener", errno: EINVAL)
                }
                try UnixSocket.sendFD(socket: 6, fd: anchor, message: "anchor")
                close(anchor)
            } catch {
                writeStderr("veil \(recorderCommand): the warden's anchor listener: \(error)\n")
                exit(1)
            }
            close(6)
        }
        let calls = CallRecorder.record(listener: 3, warden: warden)
        close(3)
        // The create is over by now or ends soon (the init it made is gone): one byte if it succeeded, EOF if not.
        var committed: UInt8 = 0
        var got: Int
        repeat { got = read(4, &committed, 1) } while got < 0 && errno == EINTR
        close(4)
        guard got == 1 else {
            writeStderr("veil \(recorderCommand): the container's create failed; no profile written\n")
            exit(0)
        }
        var names: [String: Set<String>] = [:]
        var unnamed: [String] = []
        for call in calls {
            if let (architecture, name) = SeccompRecording.name(arch: call.arch, nr: call.nr) {
                names[architecture, default: []].insert(name)
            } else {
                unnamed.append("arch 0x\(String(call.arch, radix: 16)) nr \(call.nr)")
            }
        }
        if !unnamed.isEmpty {
            writeStderr("veil \(recorderCommand): calls libseccomp cannot name, left out of the profile: \(unnamed.sorted().joined(separator: ", "))\n")
        }
        do {
            let bytes = try SeccompRecording.encode(SeccompRecording.profile(names: names))
            try FS.writeAtomically(output, bytes, mode: 0o644)
        } catch {
            writeStderr("veil \(recorderCommand): writing \(output): \(error)\n")
            exit(1)
        }
        exit(0)
    }
}

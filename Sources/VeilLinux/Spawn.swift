import CVeilLinux
import Glibc

/// posix_spawn for the runtime's helpers (hooks, the warden): a clean signal mask and default
/// dispositions (the runtime may block signals, as a foreground `run` does), argv and envp as given.
public enum Spawner {
    public struct Child {
        public let pid: pid_t
        /// The write end of the child's stdin, when asked for.
        public let stdinWriter: FileDescriptor?
    }

    /// A hook-style child: stdin from a pipe we keep the write end of (when `withStdinPipe`),
    /// stdout and stderr ours.
    public static func spawn(path: String, args: [String], env: [String], withStdinPipe: Bool) throws(LinuxError) -> Child {
        var writer: FileDescriptor?
        var reader: FileDescriptor?
        if withStdinPipe { (reader, writer) = try FileDescriptor.pipe() }
        defer { reader?.close() }
        let pid = try spawn(path, argv: args.isEmpty ? [path] : args, env: env, newSession: false) { actions in
            if let reader { posix_spawn_file_actions_adddup2(&actions, reader.raw, 0) }
        }
        return Child(pid: pid, stdinWriter: writer)
    }

    /// Runs a tool to its end (argv[0] searched on PATH), stdin /dev/null, stdout and stderr
    /// captured together: its exit status (128 + signal when killed; 127 when it could not run).
    public static func capture(_ argv: [String]) throws(LinuxError) -> (status: Int32, output: String) {
        guard let tool = argv.first else { throw LinuxError("posix_spawn", nil, errno: EINVAL) }
        let (reader, writer) = try FileDescriptor.pipe()
        var pid: pid_t = 0
        do {
            pid = try spawn(tool, argv: argv, env: nil, newSession: false, searchPath: true) { actions in
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_adddup2(&actions, writer.raw, 1)
                posix_spawn_file_actions_adddup2(&actions, writer.raw, 2)
            }
        } catch {
            writer.close()
            reader.close()
            if error.errno == ENOENT { return (127, "\(tool): not found") }
            throw error
        }
        writer.close()
        let output = (try? reader.readAll()) ?? []
        reader.close()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: output, as: UTF8.self))
    }

    /// A child with our environment and stdio: `argv[0]` is the path.
    public static func spawn(_ argv: [String]) throws(LinuxError) -> pid_t {
        guard let path = argv.first else { throw LinuxError("posix_spawn", nil, errno: EINVAL) }
        return try spawn(path, argv: argv, env: nil, newSession: false) { _ in }
    }

    /// A daemon: a new session, `fds` placed at 3, 4, … (and nothing else of ours), stdin and
    /// stdout on /dev/null and stderr appended to `stderrPath`.
    public static func spawnDetached(_ path: String, _ argv: [String], fds: [Int32], stderrPath: String) throws(LinuxError) -> pid_t {
        let lifted = try lift(fds, above: 3 + Int32(fds.count), path: path)
        defer { lifted.forEach { close($0) } }
        return try spawn(path, argv: argv, env: nil, newSession: true) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            for (index, fd) in lifted.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }
        }
    }

    /// A child with our environment (or `env`) and each of its fds in `placing` (child fd → our fd, stdio
    /// included) a copy of ours; ours that are not close-on-exec it inherits too. The shim's way
    /// to run veil with a process's fifos or pipes as stdio.
    public static func spawn(_ path: String, _ argv: [String], placing fds: [Int32: Int32], env: [String]? = nil, newSession: Bool = false) throws(LinuxError) -> pid_t {
        let placements = fds.sorted { $0.key < $1.key }
        let lifted = try lift(placements.map(\.value), above: (placements.last?.key ?? 2) + 1, path: path)
        defer { lifted.forEach { close($0) } }
        return try spawn(path, argv: argv, env: env, newSession: newSession) { actions in
            for (placement, fd) in zip(placements, lifted) { posix_spawn_file_actions_adddup2(&actions, fd, placement.key) }
        }
    }

    /// Close-on-exec copies of `fds` numbered from `minimum` + 16 up: above every slot they will
    /// be placed at, so placing one in the child cannot clobber another's source.
    private static func lift(_ fds: [Int32], above minimum: Int32, path: String) throws(LinuxError) -> [Int32] {
        var lifted: [Int32] = []
        for fd in fds {
            let high = veil_dup_cloexec_above(fd, minimum + 16)
            guard high >= 0 else {
                lifted.forEach { close($0) }
                throw LinuxError("fcntl(F_DUPFD_CLOEXEC)", path, errno: -high)
            }
            lifted.append(high)
        }
        return lifted
    }

    /// The one posix_spawn: `env` nil means ours.
    private static func spawn(_ path: String, argv: [String], env: [String]?, newSession: Bool, searchPath: Bool = false,
                              actions configure: (inout posix_spawn_file_actions_t) -> Void) throws(LinuxError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let setsid: Int32 = newSession ? 0x80 /* POSIX_SPAWN_SETSID (GNU) */ : 0
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        configure(&actions)
        let cArgv = CStringArray(argv)
        var pid: pid_t = 0
        let rc: Int32
        if let env {
            let cEnv = CStringArray(env)
            rc = posix_spawn(&pid, path, &actions, &attributes, cArgv.pointers, cEnv.pointers)
        } else if searchPath {
            rc = posix_spawnp(&pid, path, &actions, &attributes, cArgv.pointers, environ)
        } else {
            rc = posix_spawn(&pid, path, &actions, &attributes, cArgv.pointers, environ)
        }
        if rc != 0 { throw LinuxError("exec", path, errno: rc) }
        return pid
    }
}

/// A NULL-terminated char* array that lives as long as this value.
public final class CStringArray {
    public let pointers: [UnsafeMutablePointer<CChar>?]

    public init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    deinit { for p in pointers { free(p) } }
}

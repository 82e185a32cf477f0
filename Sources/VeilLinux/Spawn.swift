import Glibc

/// Starting long-lived helper processes (the warden) from the runtime.
public enum Spawner {
    /// posix_spawn of `path` in a new session with `fds` placed at 3, 4, … (and nothing else of
    /// ours), stdin and stdout on /dev/null and stderr appended to `stderrPath`.
    public static func spawnDetached(_ path: String, _ argv: [String], fds: [Int32], stderrPath: String) throws(LinuxError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(0x80 /* POSIX_SPAWN_SETSID (GNU) */ | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // Sources are first lifted above every target slot, so placing one cannot clobber another.
        var lifted: [Int32] = []
        defer { lifted.forEach { close($0) } }
        for fd in fds {
            let high = fcntl(fd, F_DUPFD_CLOEXEC, 3 + Int32(fds.count) + 16)
            guard high >= 0 else { throw LinuxError("fcntl(F_DUPFD_CLOEXEC)", path) }
            lifted.append(high)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        for (index, fd) in lifted.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, cArgs, environ)
        guard rc == 0 else { throw LinuxError("posix_spawn", path, errno: rc) }
        return pid
    }
}

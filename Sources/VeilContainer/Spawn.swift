import CVeilLinux
import Glibc
import VeilLinux

/// posix_spawn for helper programs (hooks): argv and envp as given, stdin from a pipe.
enum Spawn {
    struct Child {
        let pid: pid_t
        let stdinWriter: FileDescriptor?
    }

    static func spawn(path: String, args: [String], env: [String], withStdinPipe: Bool) throws(LinuxError) -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The runtime may block signals (foreground `run`); helpers start with a clean mask.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var writer: FileDescriptor?
        var reader: FileDescriptor?
        if withStdinPipe {
            var fds: [Int32] = [-1, -1]
            try sysNeg("pipe2") { veil_pipe_cloexec(&fds) }
            reader = FileDescriptor(fds[0])
            writer = FileDescriptor(fds[1])
            posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        }
        let argv = CStringArray(args.isEmpty ? [path] : args)
        let envp = CStringArray(env)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv.pointers, envp.pointers)
        reader?.close()
        if rc != 0 { throw LinuxError("exec", path, errno: rc) }
        return Child(pid: pid, stdinWriter: writer)
    }
}

/// A NULL-terminated char* array that lives as long as this value.
final class CStringArray {
    let pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    deinit { for p in pointers { free(p) } }
}

import Glibc

/// Runs the tools a checkpoint needs (tar, criu) with their output captured.
enum Subprocess {
    /// Runs `argv` (argv[0] searched on PATH), stdin /dev/null, stdout and stderr captured together.
    static func run(_ argv: [String]) throws(CheckpointError) -> (status: Int32, output: String) {
        guard let tool = argv.first else { throw .invalidRequest("no command to run") }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .io(tool, operation: "pipe for", errno: errno) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, tool, &actions, &attributes, &cArgs, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw .tool(tool, status: 127, output: "could not run \(tool): \(errnoDescription(spawned))")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { output.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: output, as: UTF8.self))
    }

    /// Runs `argv` and fails with its output unless it exits 0.
    @discardableResult
    static func check(_ argv: [String]) throws(CheckpointError) -> String {
        let (status, output) = try run(argv)
        guard status == 0 else { throw .tool(argv.joined(separator: " "), status: status, output: output) }
        return output
    }
}

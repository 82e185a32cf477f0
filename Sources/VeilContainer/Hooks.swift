import Glibc
import VeilLinux
import VeilSpec

/// Runs OCI hooks: each gets the container state on stdin and must exit 0 within its timeout.
enum HookRunner {
    static func run(_ hooks: [Hook]?, phase: String, state: OCIState) throws(ContainerError) {
        guard let hooks, !hooks.isEmpty else { return }
        let input = JSON.encode(state)
        for (index, hook) in hooks.enumerated() {
            try runOne(hook, index: index, phase: phase, input: input)
        }
    }

    /// Poststart and poststop failures are warnings only, as the spec says.
    static func runWarning(_ hooks: [Hook]?, phase: String, state: OCIState, log: Logger) {
        do { try run(hooks, phase: phase, state: state) } catch { log.warning("\(error)") }
    }

    private static func runOne(_ hook: Hook, index: Int, phase: String, input: [UInt8]) throws(ContainerError) {
        let child: Spawner.Child
        do {
            // Without `env` a hook inherits the runtime's environment, as with runc.
            child = try Spawner.spawn(path: hook.path, args: hook.args ?? [], env: hook.env ?? inheritedEnvironment(), withStdinPipe: true)
        } catch {
            throw .hookFailed(phase: phase, index: index, path: hook.path, reason: "\(error)")
        }
        // A hook that does not read its stdin must not block us: ignore EPIPE.
        signal(SIGPIPE, SIG_IGN)
        try? child.stdinWriter?.write(input)
        child.stdinWriter?.close()
        let deadline = hook.timeout.map { Clock.monotonicMs() + Int64($0) * 1000 }
        var status: Int32 = 0
        while true {
            let r = waitpid(child.pid, &status, deadline == nil ? 0 : WNOHANG)
            if r == child.pid { break }
            if r < 0 && errno != EINTR {
                throw .hookFailed(phase: phase, index: index, path: hook.path, reason: "wait: \(LinuxError("waitpid"))")
            }
            if let deadline, Clock.monotonicMs() > deadline {
                kill(child.pid, SIGKILL)
                _ = waitpid(child.pid, &status, 0)
                throw .hookFailed(phase: phase, index: index, path: hook.path, reason: "timed out after \(hook.timeout ?? 0)s")
            }
            usleep(2000)
        }
        let code = Wait.statusCode(status)
        if code != 0 {
            throw .hookFailed(phase: phase, index: index, path: hook.path, reason: "exit status \(code)")
        }
    }
}

func inheritedEnvironment() -> [String] {
    var result: [String] = []
    var entry = environ
    while let pointer = entry.pointee {
        result.append(String(cString: pointer))
        entry += 1
    }
    return result
}

import Foundation
import VeilShimProtocol

/// One process of a container: its init (execID "") or an exec.
final class ShimProcess: @unchecked Sendable {
    let containerID: String
    let execID: String
    let stdin: String
    let stdout: String
    let stderr: String
    let terminal: Bool
    var execSpec: Data?
    // Locked by TaskService's lock.
    var pid: Int32 = 0
    var state: Containerd_V1_Types_Status = .created
    var exitStatus: UInt32?
    var exitedAt: Date?
    var waiters: [CheckedContinuation<Void, Never>] = []
    var starting = false
    var pendingExit: Int32?
    var console: Console?
    /// Pipes and their copies, without a terminal.
    var pipeIO: PipeIO?

    init(containerID: String, execID: String, stdin: String, stdout: String, stderr: String, terminal: Bool) {
        self.containerID = containerID
        self.execID = execID
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
    }
}

final class ShimContainer: @unchecked Sendable {
    let id: String
    let bundle: String
    let rootfsMounted: Bool
    let initProcess: ShimProcess
    /// From the runtime options of its Create; every later veil call of this container uses them.
    let settings: RuntimeSettings
    var execs: [String: ShimProcess] = [:]
    var oomWatcher: OOMWatcher?
    /// CRIU's images of a Create with a checkpoint, until its Start restores them.
    var restoreImages: String?

    init(id: String, bundle: String, settings: RuntimeSettings, rootfsMounted: Bool, initProcess: ShimProcess) {
        self.id = id
        self.bundle = bundle
        self.settings = settings
        self.rootfsMounted = rootfsMounted
        self.initProcess = initProcess
    }
}

import FoundationEssentials
import VeilSeccomp
import VeilSpec

/// What `veil create` sends the container's init over the sync socket.
struct InitPlan: Codable {
    enum Mode: String, Codable {
        /// A new container: build the root, wait for `start`.
        case create
        /// A process joining a running container (`veil exec`): no rootfs work, no fifo.
        case exec
    }
    var mode: Mode = .create
    /// exec: the offset (after the sync socket's base) of the container's mount namespace fd,
    /// joined by the init itself: the runtime binary must be exec'd from the host's mount
    /// namespace, where its read-only detached mount lives.
    var mountNamespaceOffset: Int32?
    var id: String
    /// `Spec.forInit`: the parts of config.json the init acts on.
    var spec: Spec
    var bundle: String
    var noPivot: Bool
    var preserveFds: Int
    var hasConsoleSocket: Bool
    /// The container's cgroup directories, bound under a "cgroup" mount.
    var cgroupPaths: [String: String]
    var cgroupUnifiedOnly: Bool
    var newUserNamespace: Bool
    var newMountNamespace: Bool
    /// The compiled linux.seccomp filter, installed last (or before `ready` when it notifies).
    var seccomp: SeccompPlan?
    /// Sandbox level: the policy's filter, installed before privileges are dropped; its listener goes to the warden.
    var sandboxSeccomp: SeccompPlan?
    /// Record mode: the record filter, installed newest (after linux.seccomp when early and the
    /// sandbox policy) before privileges are dropped; its listener goes to the recorder.
    var recordSeccomp: SeccompPlan?
    /// Sandbox level: stage 1 brought up `lo` and wrote the `net.*` sysctls (HostOwnedNetwork):
    /// from inside the user namespace the init could do neither.
    var networkPrepared = false
    /// Sandbox level: /sys is veil's own small view, never the host's sysfs.
    var syntheticSys: Bool { sandboxSeccomp != nil }
    /// The sandbox level (its policy travels with the plan).
    var sandboxed: Bool { sandboxSeccomp != nil }

    /// What the runtime knows only once the init exists (its pid, the mounts made for it). The
    /// plan itself goes out while stage 1 still works, so the init decodes it as soon as it runs
    /// while the runtime does its part (InitChannel.awaitInitPid); this small rest follows.
    struct Late: Codable {
        /// State JSON for the hooks the init runs itself (createContainer, startContainer).
        var state: OCIState
        /// Absolute host path of the rootfs, symlinks resolved (or where its id-mapped mount goes).
        var rootfs: String
        /// Sandbox level: the rootfs arrives after this as a detached id-mapped mount (SCM_RIGHTS),
        /// followed by one for each of these indices of spec.mounts.
        var idmappedRootfs = false
        var idmappedMounts: [Int] = []
        /// In a user namespace: bind sources opened by host root in the init's mount namespace,
        /// sent (after any id-mapped mounts) for these indices of spec.mounts.
        var openedSources: [Int] = []
        /// Sandbox level: device nodes host root made for the container (`SandboxDevices`), by container path.
        var sandboxDeviceNodes: [String: String] = [:]
        /// Sandbox level: CPUs the processes are confined to (the quota, rounded up), as nproc shows.
        var cpus: Int?
    }
}

extension Spec {
    /// The config without what the init never reads, which it would otherwise decode on the
    /// path every start waits on: annotations (many kilobytes in a Kubernetes pod), linux.seccomp
    /// (compiled into the plan's filter; hundreds of syscall names in containerd's default),
    /// linux.resources and the cgroup path (the runtime's, applied before the init runs), the id
    /// maps and time offsets (written by the runtime and stage 1).
    var forInit: Spec {
        var spec = self
        spec.annotations = nil
        spec.linux?.seccomp = nil
        spec.linux?.resources = nil
        spec.linux?.cgroupsPath = nil
        spec.linux?.uidMappings = nil
        spec.linux?.gidMappings = nil
        spec.linux?.timeOffsets = nil
        return spec
    }
}

/// A compiled filter for the init: the BPF as base64 (a JSON number array would cost the init
/// milliseconds to decode).
struct SeccompPlan: Codable {
    var filter: String
    var flags: [String]
    var usesNotify: Bool

    init(_ program: SeccompProgram) {
        filter = Data(program.filter).base64EncodedString()
        flags = program.flags
        usesNotify = program.usesNotify
    }

    var program: SeccompProgram? {
        guard let bytes = Data(base64Encoded: filter) else { return nil }
        return SeccompProgram(filter: Array(bytes), flags: flags, usesNotify: usesNotify)
    }
}

/// Messages from the init to `veil create`. On the wire (`payload`): the kind's name, then a
/// newline and the message when there is one. Not JSON: the init's first JSONEncoder would
/// instantiate the encoder's generic types, ~0.3 ms of a fresh process, just before `ready`.
struct InitMessage: Equatable {
    /// `seccompListener` is followed on the socket by the listener fd (SCM_RIGHTS).
    /// `sandboxListener` is followed by the sandbox policy's listener fd, for the warden.
    /// `recordListener` is followed by the record filter's listener fd, for the recorder.
    enum Kind: String { case runHooks, ready, error, seccompListener, sandboxListener, recordListener }
    var kind: Kind
    var message: String?

    init(kind: Kind, message: String? = nil) {
        self.kind = kind
        self.message = message
    }

    init?(payload: [UInt8]) {
        let newline = payload.firstIndex(of: UInt8(ascii: "\n"))
        guard let kind = Kind(rawValue: String(decoding: payload[..<(newline ?? payload.endIndex)], as: UTF8.self)) else { return nil }
        self.kind = kind
        message = newline.map { String(decoding: payload[payload.index(after: $0)...], as: UTF8.self) }
    }

    var payload: [UInt8] { Array(kind.rawValue.utf8) + (message.map { [UInt8(ascii: "\n")] + Array($0.utf8) } ?? []) }
}

/// The init's fds, in order after the preserved ones (3 + preserveFds + index): the sync
/// socket, then for `create` the exec fifo, then the console socket when there is a terminal.
enum InitFD {
    static let sync = 0
    static let environmentKey = "_VEIL_INIT_FD_BASE"

    static func fifo(_ plan: InitPlan) -> Int32? { plan.mode == .create ? 1 : nil }
    static func console(_ plan: InitPlan) -> Int32? {
        guard plan.hasConsoleSocket else { return nil }
        return plan.mode == .create ? 2 : 1
    }
}

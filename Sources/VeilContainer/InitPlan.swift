import VeilSpec

/// What `veil create` sends the container's init over the sync socket.
struct InitPlan: Codable {
    var id: String
    var spec: Spec
    var bundle: String
    /// Absolute host path of the rootfs, symlinks resolved.
    var rootfs: String
    var noPivot: Bool
    var preserveFds: Int
    var hasConsoleSocket: Bool
    /// The container's cgroup directories, bound under a "cgroup" mount.
    var cgroupPaths: [String: String]
    var cgroupUnifiedOnly: Bool
    var newUserNamespace: Bool
    var newMountNamespace: Bool
    /// State JSON for the hooks the init runs itself (createContainer, startContainer).
    var state: OCIState
}

/// Messages from the init to `veil create`.
struct InitMessage: Codable {
    enum Kind: String, Codable { case runHooks, ready, error }
    var kind: Kind
    var message: String?
}

/// The init's fds, in order after the preserved ones (3 + preserveFds + index).
enum InitFD {
    static let sync = 0
    static let fifo = 1
    static let console = 2
    static let environmentKey = "_VEIL_INIT_FD_BASE"
}

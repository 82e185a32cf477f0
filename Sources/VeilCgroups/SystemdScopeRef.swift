/// The systemd unit that owns a container's cgroup under the systemd cgroup driver: what later
/// commands (`update`, `delete`) need to talk to systemd about it, kept in the state file.
public struct SystemdScopeRef: Sendable, Codable, Equatable {
    /// "veil-<id>.scope", "cri-containerd-<id>.scope".
    public var unit: String
    /// The short slice name the unit was started in ("kubepods-besteffort-pod<uid>.slice").
    public var slice: String

    public init(unit: String, slice: String) {
        self.unit = unit
        self.slice = slice
    }
}

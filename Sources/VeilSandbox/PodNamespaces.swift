import VeilLinux
import VeilSpec

/// A namespace CRI-O pinned for a pod (its `pinns` helper, as host root) that the pod's sandbox
/// replaced by one of its own: recorded so the pod's other containers, which CRI-O points at the
/// pin, are pointed at the sandbox's instead.
public struct AdoptedNamespace: Codable, Sendable, Equatable {
    /// "ipc" or "uts".
    public var type: String
    /// The pin's path and nsfs identity.
    public var path: String
    public var device: UInt64
    public var inode: UInt64
}

/// CRI-O pods at the sandbox level. CRI-O makes a pod's IPC and UTS namespaces itself, owned by
/// the host's user namespace, and names them by path in every container of the pod. The sandbox
/// cannot use them: only the namespace's owning user namespace may mount its mqueue or set its
/// hostname, and entering host-owned namespaces is what the sandbox level never does. So the
/// pod's sandbox container *adopts* them: it gets fresh namespaces inside its own user namespace
/// (as a containerd pod's pause container makes them) and records the pins it stands for; a member
/// naming a recorded pin joins the sandbox's namespace instead. A pin of another pod, or the host's
/// own namespace, is refused. Nothing host-owned is ever entered.
public enum PodNamespaces {
    static let adoptable: [LinuxNamespaceType: String] = [.ipc: "ipc", .uts: "uts"]

    /// The sandbox container: drops the paths of host-owned, pod-private IPC/UTS pins and returns
    /// them (their sysctls and hostname are then set in the new namespaces by the init).
    public static func adopt(_ spec: inout Spec) throws(SandboxError) -> [AdoptedNamespace] {
        guard var namespaces = spec.linux?.namespaces else { return [] }
        let hostUsers = try? Namespaces.identity("/proc/self/ns/user")
        var adopted: [AdoptedNamespace] = []
        for index in namespaces.indices {
            let namespace = namespaces[index]
            guard let name = adoptable[namespace.type], let path = namespace.path else { continue }
            let field = "linux.namespaces[\(index)].path"
            let identity: Namespaces.Identity
            let owner: Namespaces.Identity
            do {
                identity = try Namespaces.identity(path)
                owner = try Namespaces.owner(of: path)
            } catch { throw .refused(field: field, reason: "\(error)") }
            // The host's own (CRI-O pins the host's for a hostIPC pod): refused; UTS is left to the existing rules.
            if Namespaces.isOwn(path, procFile: name) {
                guard namespace.type == .ipc else { continue }
                let hostPID = !namespaces.contains { $0.type == .pid }
                throw .refused(field: field, reason: "\(path) is the host's IPC namespace: the pod shares the host's IPC objects (hostIPC)"
                                   + (hostPID ? " and processes (hostPID)" : "") + ", which the sandbox level does not allow: \(SandboxError.nativeRemedy)")
            }
            // Owned by another user namespace: a config's own; the existing rules decide.
            guard owner == hostUsers else { continue }
            adopted.append(AdoptedNamespace(type: name, path: path, device: identity.device, inode: identity.inode))
            namespaces[index].path = nil
        }
        spec.linux?.namespaces = namespaces
        return adopted
    }

    /// A member of a pod whose sandbox adopted pins: each IPC/UTS path naming one of them is
    /// pointed at the sandbox's namespace of that type. A host-owned pin the sandbox did not
    /// adopt belongs to another pod (or the host): refused.
    public static func mapMember(_ spec: inout Spec, adopted: [AdoptedNamespace], ownerInitPid: Int32) throws(SandboxError) {
        guard var namespaces = spec.linux?.namespaces else { return }
        let hostUsers = try? Namespaces.identity("/proc/self/ns/user")
        for index in namespaces.indices {
            let namespace = namespaces[index]
            guard let name = adoptable[namespace.type], let path = namespace.path else { continue }
            let field = "linux.namespaces[\(index)].path"
            guard let identity = try? Namespaces.identity(path) else { continue }  // the open later names the error
            if adopted.contains(where: { $0.type == name && $0.device == identity.device && $0.inode == identity.inode }) {
                namespaces[index].path = "/proc/\(ownerInitPid)/ns/\(name)"
                continue
            }
            if (try? Namespaces.owner(of: path)) == hostUsers {
                throw .refused(field: field, reason: "\(path) is a host-owned \(name) namespace that this container's pod sandbox does not stand for (another pod's, or the host's): \(SandboxError.nativeRemedy)")
            }
        }
        spec.linux?.namespaces = namespaces
    }
}

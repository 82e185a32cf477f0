/// Pod membership as the two CRI implementations write it into config.json: containerd's
/// `io.kubernetes.cri.*` keys and CRI-O's `io.kubernetes.cri-o.*` keys. The one place that reads them.
public struct PodAnnotations: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The pod's sandbox (pause / infra) container.
        case sandbox
        /// A workload container of a pod.
        case container
    }

    /// Which container manager wrote the keys.
    public enum Manager: String, Sendable {
        case containerd, crio
    }

    public var kind: Kind
    public var manager: Manager
    /// The pod's sandbox container id (the sandbox's own id on the sandbox container).
    public var sandboxID: String?

    /// nil when config.json names no pod role (a plain `veil run`, `ctr run`). CRI-O's keys win:
    /// CRI-O copies a pod's own annotations into config.json and then writes its keys over them,
    /// so a tenant can forge containerd's keys there (and claim another pod's sandbox) but never
    /// CRI-O's; containerd passes a pod's annotations only as the operator lists them.
    public init?(_ annotations: [String: String]?) {
        guard let annotations else { return nil }
        if let crio = annotations["io.kubernetes.cri-o.ContainerType"] {
            guard let kind = Kind(rawValue: crio) else { return nil }
            self.kind = kind
            manager = .crio
            sandboxID = annotations["io.kubernetes.cri-o.SandboxID"]
        } else if let kind = annotations["io.kubernetes.cri.container-type"].flatMap(Kind.init(rawValue:)) {
            self.kind = kind
            manager = .containerd
            sandboxID = annotations["io.kubernetes.cri.sandbox-id"]
        } else {
            return nil
        }
    }
}

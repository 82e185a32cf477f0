import VeilLinux
import VeilSpec

/// Sandbox level: the container's network namespace belongs to the host's user namespace, as a
/// Kubernetes pod's already does, so container root never holds CAP_NET_ADMIN or CAP_NET_RAW over
/// a namespace the kernel would let it configure (the tc, nf_tables and x_tables exploit classes).
/// Stage 1 makes it (or joins it) as host root before the user namespace exists, brings up `lo`
/// and writes its sysctls, which the sandbox's root could not write from inside.
public struct HostOwnedNetwork {
    /// A new namespace, made by stage 1; otherwise stage 1 has joined the configured one.
    public var create: Bool
    /// Written in order in that namespace: veil's defaults, then config.json's `net.*` keys.
    public var sysctls: [(key: String, path: String, value: String)]

    /// `sysctls` as the C side writes them: "path\0value\0" pairs.
    public var cPairs: [CChar] { sysctls.flatMap { Array($0.path.utf8CString) + Array($0.value.utf8CString) } }

    /// Without CAP_NET_BIND_SERVICE or CAP_NET_RAW over the namespace, servers could not bind ports
    /// below 1024 and ping could not open its socket: Docker sets the same two in every container.
    static let defaults: [(String, String)] = [
        ("net.ipv4.ip_unprivileged_port_start", "0"),
        ("net.ipv4.ping_group_range", "0 2147483647"),
    ]

    /// A pod's other containers join the namespace its sandbox container set up (veil's defaults,
    /// then the pod's own sysctls, which containerd and CRI-O give that container only): writing
    /// the defaults again would undo a pod's own values (e.g. ip_unprivileged_port_start=1024).
    static func joinsPodNetwork(_ spec: Spec) -> Bool {
        PodAnnotations(spec.annotations)?.kind == .container
    }

    /// nil when the container shares the host's network namespace: nothing of the host's is changed.
    public static func plan(for spec: Spec) -> HostOwnedNetwork? {
        guard let namespace = spec.linux?.namespaces?.first(where: { $0.type == .network }) else { return nil }
        if let path = namespace.path, Namespaces.isOwn(path, procFile: "net") { return nil }
        let given = spec.linux?.sysctl ?? [:]
        let configured = given.filter { $0.key.hasPrefix("net.") }.sorted { $0.key < $1.key }
        let defaults = namespace.path != nil && joinsPodNetwork(spec) ? [] : Self.defaults.filter { key, _ in given[key] == nil }
        let pairs = defaults + configured.map { ($0.key, $0.value) }
        return HostOwnedNetwork(create: namespace.path == nil, sysctls: pairs.map { key, value in
            (key: key, path: "/proc/sys/" + key.split(separator: ".").joined(separator: "/"), value: value)
        })
    }
}

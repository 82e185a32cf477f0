// A pod network for the CRI rigs, as a Kubernetes node has one: containerd's CRI plugin runs
// Debian's containernetworking-plugins (ptp with host-local IPAM; containerd adds the loopback
// network itself) from /usr/lib/cni, so a pod that is not on the host's network gets its own network
// namespace, made and owned by containerd, with an address on a private /24 chosen per rig.
//
//   ContainerdRig(cri: CRISetup(editConfig: ..., podNetwork: CNIPodNetwork()))
//   CNIPodNetwork.unavailable              // nil, or why the rig cannot have one (for .enabled(if:))
//
// The conflist and host-local's address records live in the rig's directory; ptp turns on the
// host's net.ipv4.ip_forward, which the rig puts back when it stops.

import Foundation

struct CNIPodNetwork {
    /// Where Debian's containernetworking-plugins installs the plugin binaries.
    static let binDirectory = "/usr/lib/cni"
    /// The plugins the conflist names, and the loopback plugin containerd runs for every pod.
    static let plugins = ["ptp", "host-local", "loopback"]
    static let forwardingSysctl = "/proc/sys/net/ipv4/ip_forward"

    /// nil when the plugins are installed; otherwise the reason, naming the package.
    static var unavailable: String? {
        let missing = plugins.filter { !FileManager.default.isExecutableFile(atPath: binDirectory + "/" + $0) }
        guard !missing.isEmpty else { return nil }
        return "no CNI plugins \(missing.joined(separator: ", ")) in \(binDirectory): install Debian's containernetworking-plugins (`make deps` does)"
    }

    /// The pods' subnet: 10.200-250.X.0/24, random per rig so that rigs never share routes.
    let subnet: String
    /// The network's name in the conflist (containerd names the pod's interface eth0).
    let name = "veil-test"

    init() {
        subnet = "10.\(Int.random(in: 200...250)).\(Int.random(in: 0...255)).0/24"
    }

    /// containerd's CRI settings for this network, besides conf_dir (in [plugins."io.containerd.grpc.v1.cri".cni]).
    var criSettings: String {
        "bin_dir = \"\(Self.binDirectory)\"\nmax_conf_num = 1"
    }

    /// Writes the conflist into `confDirectory`; host-local keeps its leases in `ipamDirectory`.
    func write(confDirectory: String, ipamDirectory: String) throws {
        let conflist: [String: Any] = [
            "cniVersion": "0.4.0",
            "name": name,
            "plugins": [[
                "type": "ptp",
                "ipMasq": false,
                "ipam": [
                    "type": "host-local",
                    "ranges": [[["subnet": subnet]]],
                    "dataDir": ipamDirectory,
                ] as [String: Any],
            ] as [String: Any]],
        ]
        try FileManager.default.createDirectory(atPath: confDirectory, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: conflist, options: [.prettyPrinted, .sortedKeys])
        let path = confDirectory + "/10-\(name).conflist"
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw SupportError("cannot write the CNI conflist \(path)")
        }
    }
}

import Glibc
import VeilLinux
import VeilSpec

/// Which `linux.sysctl` keys a container may set: only those of a namespace it has (runc's rule).
/// A key of no namespace, or of one the container shares with the host, would be written to the
/// host's kernel; such configs are refused before anything exists, naming the key.
enum SysctlRules {
    /// IPC namespace keys (fs.mqueue.* too).
    static let ipcKeys: Set<String> = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                       "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]
    static let utsKeys: Set<String> = ["kernel.hostname", "kernel.domainname"]

    /// The namespace a key belongs to, or nil when it is the host's whatever the config says.
    static func namespace(of key: String) -> LinuxNamespaceType? {
        if ipcKeys.contains(key) || key.hasPrefix("fs.mqueue.") { return .ipc }
        if utsKeys.contains(key) { return .uts }
        if key.hasPrefix("net.") { return .network }
        return nil
    }

    static func check(_ spec: Spec) throws(ContainerError) {
        let namespaces = spec.linux?.namespaces ?? []
        for key in (spec.linux?.sysctl ?? [:]).keys.sorted() {
            let field = "linux.sysctl[\"\(key)\"]"
            guard let type = namespace(of: key) else {
                throw .invalidConfig(file: "config.json", field: field, reason: "not in a namespace of its own: it would set the host's value")
            }
            guard let namespace = namespaces.first(where: { $0.type == type }) else {
                throw .invalidConfig(file: "config.json", field: field, reason: "needs a \(type.rawValue) namespace: without one it would set the host's value")
            }
            if type == .network, let path = namespace.path, Namespaces.isOwn(path, procFile: "net") {
                throw .invalidConfig(file: "config.json", field: field, reason: "the network namespace \(path) is the host's")
            }
        }
    }
}

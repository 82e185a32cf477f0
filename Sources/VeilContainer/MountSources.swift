import CVeilLinux
import Glibc
import VeilLinux
import VeilSpec

extension Mount {
    /// A bind mount (type "bind", or a bind/rbind option, as runc reads it).
    var isBind: Bool { type == "bind" || MountOptions.parse(options ?? []).isBind }
    /// The host path a bind mount's source names (relative to the bundle when not absolute).
    func hostSource(bundle: String) -> String? {
        source.map { $0.hasPrefix("/") ? $0 : bundle + "/" + $0 }
    }
}

extension Runtime {
    /// Bind sources for an init in a user namespace that gets no id-mapped mounts (native level,
    /// or a config with its own user namespace): container root may be unable to reach a source
    /// by path (a 0700 directory of the host's root on the way, or the source itself mode 000),
    /// so host root opens each one (O_PATH) in the init's mount namespace, as runc does before
    /// its init enters the user namespace; the init binds /proc/self/fd/N. A source that cannot
    /// be opened is left to the init, which reports it by path as before.
    func openBindSources(initPid: Int32, spec: Spec, bundle: String) throws(ContainerError) -> [(Int, FileDescriptor)] {
        var indices: [Int] = []
        var paths: [String] = []
        for (index, mount) in (spec.mounts ?? []).enumerated() {
            guard mount.isBind, let source = mount.hostSource(bundle: bundle) else { continue }
            indices.append(index)
            paths.append(source)
        }
        guard !paths.isEmpty else { return [] }
        let namespace = try wrap("opening the container's mount namespace") { try FileDescriptor.open("/proc/\(initPid)/ns/mnt", O_RDONLY) }
        defer { namespace.close() }
        let cPaths = CStringArray(paths)
        var fds = [Int32](repeating: -1, count: paths.count)
        let joined = cPaths.pointers.withUnsafeBufferPointer { pointers in
            fds.withUnsafeMutableBufferPointer { out in
                veil_open_in_mount_namespace(namespace.raw, UnsafePointer(OpaquePointer(pointers.baseAddress)), Int32(paths.count), out.baseAddress)
            }
        }
        guard joined == 0 else {
            throw .system(context: "opening bind mount sources in the container's mount namespace", LinuxError("setns", "mnt", errno: -joined))
        }
        return zip(indices, fds).compactMap { index, fd in fd >= 0 ? (index, FileDescriptor(fd)) : nil }
    }
}

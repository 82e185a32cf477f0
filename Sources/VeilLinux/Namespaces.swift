import CVeilLinux
import Glibc

/// Namespace files (/proc/PID/ns/*, `ip netns` bind mounts) compared by identity.
public enum Namespaces {
    /// A namespace's identity: the device and inode of its nsfs file.
    public struct Identity: Equatable, Sendable {
        public let device: UInt64
        public let inode: UInt64
    }

    public static func identity(_ path: String) throws(LinuxError) -> Identity {
        var st = stat()
        _ = try sys("stat", path) { stat(path, &st) }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// True when `path` is the namespace this process is in (`procFile`: its name under /proc/self/ns).
    public static func isOwn(_ path: String, procFile: String) -> Bool {
        guard let given = try? identity(path), let own = try? identity("/proc/self/ns/" + procFile) else { return false }
        return given == own
    }

    /// The user namespace that owns the namespace at `path` (NS_GET_USERNS).
    public static func owner(of path: String) throws(LinuxError) -> Identity {
        let namespace = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC)
        let owner = FileDescriptor(try sysNeg("ioctl(NS_GET_USERNS)", path) { veil_namespace_owner(namespace.raw) })
        var st = stat()
        _ = try sys("fstat", path) { fstat(owner.raw, &st) }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

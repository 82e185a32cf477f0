import Glibc
import CVeilLinux

/// Interfaces of the calling thread's network namespace.
public enum NetworkInterface {
    /// Sets IFF_UP on `name` (a no-op when it is up already). A network namespace starts with its
    /// loopback down; runc brings it up for a namespace it creates, and programs expect 127.0.0.1.
    public static func bringUp(_ name: String) throws(LinuxError) {
        let socket = try FileDescriptor(sys("socket", "for interface flags") {
            Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        var request = try Self.request(name)
        try sysNeg("ioctl SIOCGIFFLAGS", name) { veil_ioctl_ptr(socket.raw, UInt(SIOCGIFFLAGS), &request) }
        let up = Int16(IFF_UP)
        if request.ifr_ifru.ifru_flags & up != 0 { return }
        request.ifr_ifru.ifru_flags |= up
        try sysNeg("ioctl SIOCSIFFLAGS", name) { veil_ioctl_ptr(socket.raw, UInt(SIOCSIFFLAGS), &request) }
    }

    /// `bringUp` in the network namespace at `namespacePath` (e.g. /proc/PID/ns/net): the socket
    /// is made there (this thread enters the namespace and returns), the ioctls then act on it.
    public static func bringUp(_ name: String, inNamespace namespacePath: String) throws(LinuxError) {
        let target = try FileDescriptor.open(namespacePath, O_RDONLY | O_CLOEXEC)
        let own = try FileDescriptor.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let newNetwork: Int32 = 0x4000_0000  // CLONE_NEWNET
        try sysNeg("setns", namespacePath) { veil_setns(target.raw, newNetwork) }
        let made = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let madeErrno = errno
        // Back at once; failing that, this thread's later sockets would be the container's.
        try sysNeg("setns", "this thread's own network namespace") { veil_setns(own.raw, newNetwork) }
        guard made >= 0 else { throw LinuxError("socket", namespacePath, errno: madeErrno) }
        let socket = FileDescriptor(made)
        var request = try Self.request(name)
        try sysNeg("ioctl SIOCGIFFLAGS", name) { veil_ioctl_ptr(socket.raw, UInt(SIOCGIFFLAGS), &request) }
        request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
        try sysNeg("ioctl SIOCSIFFLAGS", name) { veil_ioctl_ptr(socket.raw, UInt(SIOCSIFFLAGS), &request) }
    }

    /// Whether `name` has IFF_UP set.
    public static func isUp(_ name: String) throws(LinuxError) -> Bool {
        let socket = try FileDescriptor(sys("socket", "for interface flags") {
            Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        var request = try Self.request(name)
        try sysNeg("ioctl SIOCGIFFLAGS", name) { veil_ioctl_ptr(socket.raw, UInt(SIOCGIFFLAGS), &request) }
        return request.ifr_ifru.ifru_flags & Int16(IFF_UP) != 0
    }

    /// An ifreq naming `name` (at most IFNAMSIZ - 1 bytes).
    private static func request(_ name: String) throws(LinuxError) -> ifreq {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < Int(IFNAMSIZ) else { throw LinuxError("ioctl", name, errno: EINVAL) }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return request
    }
}

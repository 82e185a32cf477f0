import Glibc
import VeilLinux
import VeilSpec

/// Sandbox level: the container's device nodes. Its root may not mknod (user namespace), and a
/// bind of the host's node shows host root's ownership, which the sandbox sees as 65534. So
/// host root makes the nodes, before the init exists, in `<public directory>/dev` on the public
/// directory's tmpfs (mode 0700, the sandbox's root's: no other host user reaches them), owned
/// by the sandbox's ids as config.json gives them (uid 0 → the sandbox's root), and the init
/// binds each one in, as it binds the /proc views. They go with the public directory's tmpfs.
enum SandboxDevices {
    /// The default set (runc's), made whenever the container mounts /dev.
    static let defaults: [LinuxDevice] = ([
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ] as [(String, Int64, Int64)]).map { LinuxDevice(path: $0.0, type: "c", major: $0.1, minor: $0.2, fileMode: 0o666, uid: 0, gid: 0) }

    static func directory(_ publicDirectory: String) -> String { publicDirectory + "/dev" }

    /// Makes the nodes for the default set and for `devices` (config.json's, already narrowed to
    /// the default numbers and the operator's `--sandbox-device` paths); returns container path →
    /// host path of its node. A device allowed by path must have the host's numbers at that path:
    /// the path alone must not smuggle in another device.
    static func make(publicDirectory: String, devices: [LinuxDevice], allowedPaths: Set<String>,
                     hostID: UInt32, idCount: UInt32) throws(SandboxError) -> [String: String] {
        let base = directory(publicDirectory)
        try attempt("making the sandbox's device directory \(base)") {
            try sys("mkdir", base) { mkdir(base, 0o700) }
            try sys("chown", base) { chown(base, hostID, hostID) }
        }
        var nodes: [String: String] = [:]
        let configured = devices.enumerated().map { (index, device) in (device, "linux.devices[\(index)]") }
        let all = defaults.filter { device in !devices.contains { $0.path == device.path } }.map { ($0, "default device \($0.path)") } + configured
        for (number, (device, field)) in all.enumerated() {
            let kind: mode_t
            switch device.type {
            case "c", "u": kind = S_IFCHR
            case "b": kind = S_IFBLK
            default: continue  // a fifo needs no privilege: the init makes it
            }
            let rdev = FS.deviceNumber(major: UInt64(device.major ?? 0), minor: UInt64(device.minor ?? 0))
            let isDefault = kind == S_IFCHR && SpecTransform.defaultDevices.contains([device.major ?? -1, device.minor ?? -1])
            if !isDefault {
                var host = stat()
                guard allowedPaths.contains(device.path), stat(device.path, &host) == 0,
                      (host.st_mode & S_IFMT) == kind, host.st_rdev == rdev else {
                    throw .refused(field: field,
                                   reason: "\(device.path) (\(device.type) \(device.major ?? 0):\(device.minor ?? 0)) is not the host's \(device.path) that --sandbox-device lets through")
                }
            }
            let uid = device.uid ?? 0, gid = device.gid ?? 0
            guard uid < idCount, gid < idCount else {
                throw .refused(field: field, reason: "owner \(uid):\(gid) is outside the sandbox's \(idCount) ids")
            }
            let node = base + "/\(number)"
            let mode = mode_t(device.fileMode ?? 0o666) & 0o7777
            do {
                try sys("mknod", node) { mknod(node, kind | mode, rdev) }
                try sys("chown", node) { chown(node, hostID + uid, hostID + gid) }
                try sys("chmod", node) { chmod(node, mode) }
            } catch {
                throw .refused(field: field, reason: "making \(device.path) for the sandbox: \(error)")
            }
            nodes[device.path] = node
        }
        return nodes
    }

    /// The device directory of an older veil was a tmpfs of its own: it goes, so its directory can.
    static func unmount(publicDirectory: String) {
        _ = umount2(directory(publicDirectory), Int32(MNT_DETACH))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Spec {
    /// The config `runc spec` writes (optionally `--rootless`), with hostname "veil" and
    /// ociVersion "1.1.0". The rootless variant maps the caller's effective uid/gid to root,
    /// as runc does.
    public static func runcDefault(rootless: Bool) -> Spec {
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        let process = Process(
            terminal: true,
            user: User(uid: 0, gid: 0),
            args: ["sh"],
            env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd: "/",
            capabilities: LinuxCapabilities(bounding: caps, effective: caps, permitted: caps, ambient: caps),
            rlimits: [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)],
            noNewPrivileges: true)

        // A rootless container cannot mount a fresh sysfs without its own network namespace
        // owned by the user namespace, nor set gid=5 on devpts; runc bind-mounts /sys instead.
        let devptsOptions = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + (rootless ? [] : ["gid=5"])
        let sysMount =
            rootless
            ? Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            : Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"])
        let mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc"),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts", options: devptsOptions),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            sysMount,
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]

        var linux = Linux(
            maskedPaths: [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        if rootless {
            linux.uidMappings = [LinuxIDMapping(containerID: 0, hostID: UInt32(geteuid()), size: 1)]
            linux.gidMappings = [LinuxIDMapping(containerID: 0, hostID: UInt32(getegid()), size: 1)]
            linux.namespaces = [.init(type: .pid), .init(type: .ipc), .init(type: .uts), .init(type: .mount), .init(type: .user)]
        } else {
            // Deny all devices by default; runc's device list re-allows the standard nodes.
            linux.resources = LinuxResources(devices: [LinuxDeviceCgroup(allow: false, access: "rwm")])
            linux.namespaces = [.init(type: .pid), .init(type: .network), .init(type: .ipc), .init(type: .uts), .init(type: .mount)]
        }

        return Spec(
            ociVersion: "1.1.0", process: process, root: Root(path: "rootfs", readonly: true),
            hostname: "veil", mounts: mounts, linux: linux)
    }
}

import Glibc
import VeilLinux
import VeilSpec
import VeilWarden

/// How a container's config.json becomes a sandbox: the same container, plus a user namespace
/// (its own range, or the pod's), a time namespace whose clock starts at the sandbox's boot,
/// /proc files that show the sandbox rather than the host, and host-revealing paths masked.
public enum SpecTransform {
    /// Paths that would show the host kernel: empty in the sandbox.
    public static let maskedPaths = ["/proc/kallsyms", "/proc/modules", "/proc/kmsg", "/proc/kcore", "/proc/keys",
                                     "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/scsi",
                                     "/sys/firmware", "/sys/kernel", "/sys/module"] + hostFacts
    /// /proc files that describe the host's hardware and its activity (devices, interrupts, the
    /// scheduler's and the allocator's per-cpu and per-zone state): nothing the sandbox owns.
    public static let hostFacts = ["/proc/acpi", "/proc/interrupts", "/proc/softirqs", "/proc/diskstats",
                                   "/proc/partitions", "/proc/schedstat", "/proc/zoneinfo", "/proc/buddyinfo"]
    /// Read-only in the sandbox whatever the config says. /proc/sys too: config.json's sysctls are
    /// written before read-only paths are applied (Rootfs.finish), nothing after.
    public static let readonlyPaths = ["/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/asound", "/proc/sys"]

    /// Where the pod's sandbox lives when this container joins one instead of owning it.
    public struct Owner: Sendable {
        public var initPid: Int32
        public var directory: String
        public init(initPid: Int32, directory: String) {
            self.initPid = initPid
            self.directory = directory
        }
    }

    /// The sandboxed spec. `hostID` is the range's first host id (own sandbox); `owner` names the
    /// pod's sandbox to join instead; `viewDirectory` holds the generated /proc files made at every
    /// read (`ProcView.isLive`, a FUSE mount where it works), `fixedViewDirectory` the others, plain
    /// files, which the init binds without a round trip to a FUSE server.
    public static func apply(_ input: Spec, hostID: UInt32?, idCount: UInt32, owner: Owner?, viewDirectory: String,
                             fixedViewDirectory: String, bootOffsetSeconds: Int64) -> Spec {
        var spec = input
        var linux = spec.linux ?? Linux()
        var namespaces = linux.namespaces ?? []
        if !namespaces.contains(where: { $0.type == .user }) {
            if let owner {
                namespaces.insert(LinuxNamespace(type: .user, path: "/proc/\(owner.initPid)/ns/user"), at: 0)
            } else if let hostID {
                namespaces.insert(LinuxNamespace(type: .user, path: nil), at: 0)
                linux.uidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idCount)]
                linux.gidMappings = [LinuxIDMapping(containerID: 0, hostID: hostID, size: idCount)]
            }
        }
        if !namespaces.contains(where: { $0.type == .time }) {
            if let owner {
                namespaces.append(LinuxNamespace(type: .time, path: "/proc/\(owner.initPid)/ns/time"))
            } else {
                namespaces.append(LinuxNamespace(type: .time, path: nil))
                var offsets = linux.timeOffsets ?? [:]
                offsets["boottime"] = LinuxTimeOffset(secs: bootOffsetSeconds, nanosecs: 0)
                linux.timeOffsets = offsets
            }
        }
        linux.namespaces = namespaces
        linux.maskedPaths = union(linux.maskedPaths, maskedPaths)
        linux.readonlyPaths = union(linux.readonlyPaths, readonlyPaths)
        spec.linux = linux
        if (spec.mounts ?? []).contains(where: { $0.destination == "/proc" }) {
            var mounts = spec.mounts ?? []
            for view in ProcView.allCases {
                let source = (view.isLive ? viewDirectory : fixedViewDirectory) + "/" + view.fileName
                mounts.append(Mount(destination: view.destination, type: "bind", source: source,
                                    options: ["bind", "ro", "nosuid", "nodev", "noexec"]))
            }
            spec.mounts = mounts
        }
        return spec
    }

    /// The character devices every container gets (runc's default set: null, zero, full, random,
    /// urandom, tty, console, ptmx), by number: a sandbox gets no others, under whatever name.
    public static let defaultDevices: Set<[Int64]> = [[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2]]

    /// A privileged pod's config lists every host device (containerd and CRI-O add them), a
    /// device plugin's allocation adds its own: at the sandbox level only the default set stays,
    /// plus the paths the operator allows (`--sandbox-device`). Returns the paths dropped.
    public static func dropHostDevices(_ spec: inout Spec, allowed: Set<String>) -> [String] {
        guard let devices = spec.linux?.devices else { return [] }
        let kept = devices.filter { device in
            allowed.contains(device.path)
                || (["c", "u"].contains(device.type) && defaultDevices.contains([device.major ?? -1, device.minor ?? -1]))
        }
        spec.linux?.devices = kept
        return devices.map(\.path).filter { path in !kept.contains { $0.path == path } }
    }

    /// Every bind mount of a sandbox (hostPath and emptyDir volumes, the files a runtime manager
    /// binds in) is nosuid and nodev, with its submounts: a set-uid file or a device node reached through one never
    /// gains the sandbox anything, whoever made it.
    public static func hardenBindMounts(_ spec: inout Spec) {
        spec.mounts = spec.mounts?.map { mount in
            var options = mount.options ?? []
            guard mount.type == "bind" || options.contains("bind") || options.contains("rbind") else { return mount }
            var mount = mount
            for flag in ["nosuid", "nodev"] where !options.contains(flag) {
                options.removeAll { $0 == "suid" || $0 == "dev" }
                options.append(flag)
            }
            // The submounts an rbind brings along too (mount_setattr AT_RECURSIVE).
            for flag in ["rnosuid", "rnodev"] where options.contains("rbind") && !options.contains(flag) {
                options.removeAll { $0 == "rsuid" || $0 == "rdev" }
                options.append(flag)
            }
            mount.options = options
            return mount
        }
    }

    private static func union(_ existing: [String]?, _ more: [String]) -> [String] {
        var result = existing ?? []
        for path in more where !result.contains(path) { result.append(path) }
        return result
    }
}

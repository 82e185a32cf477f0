import FoundationEssentials
import Glibc
import VeilLinux

/// One mounted cgroup hierarchy.
public struct CgroupHierarchy: Sendable, Codable, Equatable {
    /// v1 controllers mounted together ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
    public var controllers: [String]
    public var mountpoint: String
    /// Path inside the hierarchy that is mounted at `mountpoint` (not "/" inside some containers).
    public var root: String
    public var isUnified: Bool

    public init(controllers: [String], mountpoint: String, root: String = "/", isUnified: Bool) {
        self.controllers = controllers
        self.mountpoint = mountpoint
        self.root = root
        self.isUnified = isUnified
    }

    /// Human name used in errors and as the `/proc/self/cgroup` lookup key.
    var name: String { isUnified ? "unified" : controllers.joined(separator: ",") }
}

/// How cgroups are mounted on this machine.
public enum CgroupLayout: Sendable, Equatable {
    /// Only v1 hierarchies.
    case legacy([CgroupHierarchy])
    /// v1 hierarchies carry the controllers; a controller-less cgroup2 is mounted too
    /// (usually /sys/fs/cgroup/unified), which we only join.
    case hybrid([CgroupHierarchy], unified: CgroupHierarchy)
    /// Only cgroup2: all controllers live in one tree.
    case unified(CgroupHierarchy)

    /// v1 controllers veil manages, plus systemd's named hierarchy (as runc does); other
    /// named v1 hierarchies belong to someone else.
    static let knownV1Controllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
        "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc", "name=systemd",
    ]

    public var hierarchies: [CgroupHierarchy] {
        switch self {
        case .legacy(let v1): return v1
        case .hybrid(let v1, let unified): return v1 + [unified]
        case .unified(let h): return [h]
        }
    }

    public var isUnifiedOnly: Bool {
        if case .unified = self { return true }
        return false
    }

    public static func detect() throws(CgroupError) -> CgroupLayout {
        let text = try SysFS.read("/proc/self/mountinfo")
        guard let layout = parse(mountinfo: text) else { throw CgroupError.noCgroupMounts }
        return layout
    }

    /// Parses /proc/self/mountinfo text; nil when there is no cgroup mount at all.
    public static func parse(mountinfo: String) -> CgroupLayout? {
        var v1: [CgroupHierarchy] = []
        var seenControllers: Set<String> = []
        var unified: CgroupHierarchy?
        for line in mountinfo.split(separator: "\n") {
            // Fields: id parent maj:min root mountpoint options [optional...] - fstype source superoptions
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 4 else { continue }
            let fstype = fields[dash + 1]
            let root = Mounts.unescapeOctal(fields[3])
            let mountpoint = Mounts.unescapeOctal(fields[4])
            if fstype == "cgroup2" {
                // The same hierarchy may be bind-mounted elsewhere; the first mount wins.
                if unified == nil {
                    unified = CgroupHierarchy(controllers: [], mountpoint: mountpoint, root: root, isUnified: true)
                }
            } else if fstype == "cgroup" {
                let controllers = fields[dash + 3].split(separator: ",").map(String.init)
                    .filter { knownV1Controllers.contains($0) }
                guard !controllers.isEmpty, seenControllers.isDisjoint(with: controllers) else { continue }
                seenControllers.formUnion(controllers)
                v1.append(CgroupHierarchy(controllers: controllers, mountpoint: mountpoint, root: root, isUnified: false))
            }
        }
        if !v1.isEmpty {
            if let unified { return .hybrid(v1, unified: unified) }
            return .legacy(v1)
        }
        if let unified { return .unified(unified) }
        return nil
    }

}

/// The calling process's cgroup in each hierarchy, from /proc/self/cgroup.
public struct OwnCgroups: Sendable, Equatable {
    /// v1 controller name -> path inside that hierarchy.
    public var v1: [String: String]
    /// The "0::" line (cgroup2).
    public var unified: String?

    public init(v1: [String: String] = [:], unified: String? = nil) {
        self.v1 = v1
        self.unified = unified
    }

    public static func current() throws(CgroupError) -> OwnCgroups {
        parse(try SysFS.read("/proc/self/cgroup"))
    }

    public static func parse(_ text: String) -> OwnCgroups {
        var own = OwnCgroups()
        for line in text.split(separator: "\n") {
            // "id:controllers:path"; the path itself may contain ':'.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                own.unified = path
            } else {
                for controller in parts[1].split(separator: ",") { own.v1[String(controller)] = path }
            }
        }
        return own
    }

    /// This process's cgroup in `h`, relative to the hierarchy's mount root.
    func path(in h: CgroupHierarchy) throws(CgroupError) -> String {
        let found: String?
        if h.isUnified {
            found = unified
        } else {
            found = h.controllers.lazy.compactMap { self.v1[$0] }.first
        }
        guard let found else { throw CgroupError.ownCgroupUnknown(hierarchy: h.name) }
        // Inside a container the mount may expose only a subtree; strip it so the path is
        // relative to what is visible at the mountpoint.
        if h.root != "/", found == h.root || found.hasPrefix(h.root + "/") {
            return String(found.dropFirst(h.root.count))
        }
        return found
    }
}

import FoundationEssentials
import Glibc
import VeilLinux

/// A container's cgroup across every mounted hierarchy (cgroupfs driver).
///
/// Codable because `create` runs in one `veil` invocation and `kill`/`delete` in later ones:
/// they reload this value from the state file instead of re-resolving paths, which could
/// differ if the caller's own cgroup changed in between.
public struct Cgroup: Sendable, Codable, Equatable {
    /// Controller name ("memory", "cpu", "cpuacct", "name=systemd", "unified") -> absolute directory.
    /// Co-mounted v1 controllers map to the same directory.
    public let paths: [String: String]
    /// Directories `create` made, each parent before its children; `destroy` removes exactly these.
    public let created: [String]
    /// True when controllers live in cgroup2 (unified-only host); false for v1 / hybrid.
    public let unifiedOnly: Bool
    /// The systemd scope unit that owns the cgroup (`--systemd-cgroup`); nil for the cgroupfs driver.
    /// State files written before the driver existed decode with nil.
    public var systemd: SystemdScopeRef?

    public init(paths: [String: String], created: [String], unifiedOnly: Bool, systemd: SystemdScopeRef? = nil) {
        self.paths = paths
        self.created = created
        self.unifiedOnly = unifiedOnly
        self.systemd = systemd
    }

    /// runc's `exec --cgroup [CONTROLLER[,CONTROLLER]:]PATH` (repeatable): this cgroup with the
    /// named controllers' directories (all of them without a prefix) replaced by an existing
    /// sub-cgroup PATH. A PATH that leaves the container's cgroup is refused, as runc does.
    public func sub(_ requests: [String]) throws(CgroupError) -> Cgroup {
        var result = paths
        for request in requests {
            let parts = request.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let (controllers, path) = parts.count == 2 ? (parts[0].split(separator: ",").map(String.init), parts[1]) : ([], parts[0])
            let components = path.split(separator: "/").filter { $0 != "." }
            guard !path.isEmpty, !components.contains(".."), !path.hasPrefix("/") || !components.isEmpty else {
                throw CgroupError.invalidPath(path: path, reason: "\(path) is not a sub cgroup path")
            }
            let keys = controllers.isEmpty ? Array(paths.keys) : controllers
            for key in keys {
                guard let base = paths[key] else {
                    throw CgroupError.invalidPath(path: request, reason: "the container has no \(key) cgroup")
                }
                let dir = base + "/" + components.joined(separator: "/")
                guard SysFS.isDirectory(dir) else {
                    throw CgroupError.invalidPath(path: dir, reason: "sub-cgroup \(path) does not exist")
                }
                result[key] = dir
            }
        }
        return Cgroup(paths: result, created: [], unifiedOnly: unifiedOnly)
    }

    /// Every distinct cgroup directory, in a stable order.
    var directories: [String] { Set(paths.values).sorted() }

    /// Resolves `cgroupsPath` like runc's cgroupfs driver and creates the directories:
    /// absolute -> under each hierarchy's mountpoint; relative -> under the caller's own cgroup
    /// (from /proc/self/cgroup; on cgroup v2 alone beside it, as runc's fs2 driver); nil/empty ->
    /// relative, named after the container id.
    public static func create(cgroupsPath: String?, containerID: String) throws(CgroupError) -> Cgroup {
        try create(cgroupsPath: cgroupsPath, containerID: containerID,
                   layout: CgroupLayout.detect(), own: OwnCgroups.current())
    }

    /// Same as `create(cgroupsPath:containerID:)` with the layout and the caller's cgroups given
    /// explicitly (tests, and callers that already detected them).
    public static func create(
        cgroupsPath: String?, containerID: String, layout: CgroupLayout, own: OwnCgroups
    ) throws(CgroupError) -> Cgroup {
        let targets = try resolve(cgroupsPath: cgroupsPath, containerID: containerID, layout: layout, own: own)
        var created: [String] = []
        var paths: [String: String] = [:]
        do {
            for (hierarchy, components) in targets {
                var dir = hierarchy.mountpoint
                for component in components {
                    if layout.isUnifiedOnly {
                        // Children can only use controllers the parent delegates.
                        enableSubtreeControllers(in: dir)
                    }
                    dir = joinPath(dir, [component])
                    if try SysFS.mkdirIfMissing(dir) { created.append(dir) }
                    if hierarchy.controllers.contains("cpuset") {
                        // A v1 cpuset starts with empty cpus/mems and refuses tasks until filled.
                        try inheritCpuset(dir)
                    }
                }
                let keys = hierarchy.isUnified ? ["unified"] : hierarchy.controllers
                for key in keys { paths[key] = dir }
            }
        } catch {
            // Do not leave half a cgroup behind; the original error is the one worth reporting.
            for dir in created.reversed() { _ = rmdir(dir) }
            throw error
        }
        return Cgroup(paths: paths, created: created, unifiedOnly: layout.isUnifiedOnly)
    }

    /// The cgroup of a systemd scope (`--systemd-cgroup`): `components` below each hierarchy's root
    /// (the expanded slice, then the unit). systemd creates the directories of the hierarchies it
    /// manages when it starts the unit (all of cgroup2; `name=systemd` and the controllers it
    /// accounts on v1), so nothing is made on a unified-only host; on v1 veil makes the rest as
    /// the cgroupfs driver does, and stage 1 joins them after systemd placed it.
    public static func systemdScope(components: [String], unit: SystemdScopeRef, layout: CgroupLayout) throws(CgroupError) -> Cgroup {
        var paths: [String: String] = [:]
        var created: [String] = []
        for hierarchy in layout.hierarchies {
            let systemdOwn = hierarchy.isUnified || hierarchy.controllers.contains("name=systemd")
            // On v1 and hybrid hosts systemd's own trees (name=systemd, the controller-less cgroup2)
            // are its business: it places the container there, veil neither makes nor joins them.
            if systemdOwn && !layout.isUnifiedOnly { continue }
            let dir = joinPath(hierarchy.mountpoint, components)
            let keys = hierarchy.isUnified ? ["unified"] : hierarchy.controllers
            for key in keys { paths[key] = dir }
            if systemdOwn { continue }
            // A v1 hierarchy: make the directories (systemd may make some of them too; both tolerate the other).
            var current = hierarchy.mountpoint
            do {
                for component in components {
                    current = joinPath(current, [component])
                    if try SysFS.mkdirIfMissing(current) { created.append(current) }
                    if hierarchy.controllers.contains("cpuset") { try inheritCpuset(current) }
                }
            } catch {
                for dir in created.reversed() { _ = rmdir(dir) }
                throw error
            }
        }
        // The scope's own directory goes with the container even where systemd made it: it stops
        // the unit first, and a directory systemd already removed is simply not there.
        if layout.isUnifiedOnly, let dir = paths["unified"] { created.append(dir) }
        return Cgroup(paths: paths, created: created, unifiedOnly: layout.isUnifiedOnly, systemd: unit)
    }

    /// After systemd placed the container in its scope (cgroup2): the controllers veil writes
    /// enabled down the scope's ancestors, as the cgroupfs driver does for its own directories
    /// (systemd enables only those its accounting properties name).
    public func enableControllersForScope(mountpoint: String) {
        guard unifiedOnly, let dir = paths["unified"], dir.hasPrefix(mountpoint) else { return }
        var current = mountpoint
        let components = dir.dropFirst(mountpoint.count).split(separator: "/").map(String.init)
        for component in components.dropLast() {
            Cgroup.enableSubtreeControllers(in: current)
            current = joinPath(current, [component])
        }
        Cgroup.enableSubtreeControllers(in: current)
    }

    /// Per hierarchy, the directory components below its mountpoint.
    static func resolve(
        cgroupsPath: String?, containerID: String, layout: CgroupLayout, own: OwnCgroups
    ) throws(CgroupError) -> [(CgroupHierarchy, [String])] {
        let raw = cgroupsPath ?? ""
        if raw.contains(":") { throw CgroupError.systemdPathUnsupported(path: raw) }
        let isAbsolute = raw.hasPrefix("/")
        var relative = cleanComponents(raw)
        if raw.isEmpty {
            relative = cleanComponents(containerID)
            guard !relative.isEmpty else {
                throw CgroupError.invalidPath(path: containerID, reason: "no cgroups path and no usable container id to name the cgroup")
            }
        }
        guard !relative.isEmpty else {
            // Would make the hierarchy root (or the caller's own cgroup) the container's cgroup,
            // and destroy/limits would then hit cgroups shared with everything else.
            throw CgroupError.invalidPath(path: raw, reason: "resolves to an existing shared cgroup, not a new one")
        }
        return try layout.hierarchies.map { (h) throws(CgroupError) -> (CgroupHierarchy, [String]) in
            if isAbsolute { return (h, relative) }
            var base = cleanComponents(try own.path(in: h))
            // On cgroup v2 alone, runc's fs2 driver puts a relative path beside the caller's cgroup,
            // not in it: the caller's (a service's, a user scope's) holds processes, and the kernel
            // lets no child of a cgroup with processes enable controllers (clone into it fails).
            if layout.isUnifiedOnly { base = Array(base.dropLast()) }
            return (h, base + relative)
        }
    }

    /// Best effort: a controller that cannot be delegated shows up later as a clear
    /// `controllerUnavailable` from `apply`, naming the missing file.
    static func enableSubtreeControllers(in dir: String) {
        let wanted: Set<String> = ["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma", "misc"]
        guard let available = try? SysFS.readTrimmed(dir + "/cgroup.controllers") else { return }
        let enabled = Set(((try? SysFS.readTrimmed(dir + "/cgroup.subtree_control")) ?? "").split(separator: " ").map(String.init))
        for controller in available.split(separator: " ").map(String.init)
        where wanted.contains(controller) && !enabled.contains(controller) {
            // One write per controller so one refusal (e.g. cpu with RT tasks) does not block the rest.
            try? SysFS.write(dir + "/cgroup.subtree_control", "+" + controller)
        }
    }

    static func inheritCpuset(_ dir: String) throws(CgroupError) {
        let parent = parentDirectory(dir)
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = try SysFS.readTrimmed(dir + "/" + file)
            guard current.isEmpty else { continue }
            let inherited = try SysFS.readTrimmed(parent + "/" + file)
            try SysFS.write(dir + "/" + file, inherited)
        }
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    /// Where a new process joins without migrating anyone: the v1 hierarchies' `tasks` files
    /// (a single-threaded process writing "0" there skips the kernel's global threadgroup lock,
    /// and with it an RCU grace period of ~10 ms), and the v2 directory, which `clone3`'s
    /// CLONE_INTO_CGROUP enters at fork time.
    public var joinTargets: (v1TasksFiles: [String], v2Directory: String?) {
        var tasks: [String] = []
        var v2: String?
        for (key, dir) in paths.sorted(by: { $0.key < $1.key }) {
            if key == "unified" || unifiedOnly {
                v2 = dir
            } else if !tasks.contains(dir + "/tasks") {
                tasks.append(dir + "/tasks")
            }
        }
        return (tasks, v2)
    }

    public func addProcess(_ pid: Int32) throws(CgroupError) {
        for dir in directories {
            try SysFS.write(dir + "/cgroup.procs", String(pid))
        }
    }

    /// Every pid in the cgroup and its child cgroups, sorted; not the sandbox supervisor's.
    public func processes() throws(CgroupError) -> [Int32] {
        let dir = paths["pids"] ?? paths["freezer"] ?? paths["memory"] ?? paths["unified"] ?? directories.first
        guard let dir else { return [] }
        // systemd removes a scope's cgroup once it empties: gone means no process left.
        if systemd != nil && !SysFS.isDirectory(dir) { return [] }
        var pids: Set<Int32> = []
        try Cgroup.collectProcesses(dir, into: &pids, isTop: true)
        return pids.sorted()
    }

    static func collectProcesses(_ dir: String, into pids: inout Set<Int32>, isTop: Bool) throws(CgroupError) {
        let text: String
        let children: [String]
        do {
            text = try SysFS.read(dir + "/cgroup.procs")
            children = try SysFS.subdirectories(dir)
        } catch CgroupError.io(_, _, let err) where err == ENOENT && !isTop {
            return  // a child cgroup removed while we walked is simply empty now
        }
        for line in text.split(separator: "\n") {
            if let pid = Int32(trimmed(line)) { pids.insert(pid) }
        }
        for child in children where !(isTop && child == supervisorChild) {
            try collectProcesses(dir + "/" + child, into: &pids, isTop: false)
        }
    }

    /// True if the cgroup directory exists in any hierarchy.
    public func exists() -> Bool {
        paths.values.contains { SysFS.isDirectory($0) }
    }

    /// Removes the directories `create` made, deepest first. Child cgroups inside the
    /// container's own cgroup (made by the container) go too; a pre-existing parent never
    /// does, and an intermediate directory that now holds someone else's cgroups is left.
    /// rmdir is retried for about a second because killed tasks leave the cgroup asynchronously.
    public func destroy() throws(CgroupError) {
        let deadline = monotonicSeconds() + 1.0
        let targets = Set(paths.values)
        var firstError: CgroupError?
        // A container cgroup that existed before create stays, but veil's supervisor child goes.
        for dir in targets where !created.contains(dir) {
            do throws(CgroupError) { try Cgroup.removeTree(dir + "/" + Cgroup.supervisorChild, deadline: deadline) } catch {
                if firstError == nil { firstError = error }
            }
        }
        for dir in created.reversed() {
            do throws(CgroupError) {
                if targets.contains(dir) {
                    try Cgroup.removeTree(dir, deadline: deadline)
                } else if SysFS.isDirectory(dir) {
                    if try !SysFS.subdirectories(dir).isEmpty { continue }
                    try Cgroup.removeDirectory(dir, deadline: deadline)
                }
            } catch {
                // Keep going so the other hierarchies are cleaned; report the first failure.
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    static func removeTree(_ dir: String, deadline: Double) throws(CgroupError) {
        // Most cgroups are leaves: one rmdir, no listing of the directory (a v1 cgroup lists
        // dozens of control files, generated at every read).
        if rmdir(dir) == 0 || errno == ENOENT { return }
        guard SysFS.isDirectory(dir) else { return }
        for child in try SysFS.subdirectories(dir) {
            try removeTree(dir + "/" + child, deadline: deadline)
        }
        try removeDirectory(dir, deadline: deadline)
    }

    static func removeDirectory(_ dir: String, deadline: Double) throws(CgroupError) {
        var delayMicros: UInt32 = 200
        while true {
            if rmdir(dir) == 0 { return }
            let err = errno
            if err == ENOENT { return }
            guard err == EBUSY || err == EAGAIN || err == ENOTEMPTY || err == EINTR else {
                throw CgroupError.io(operation: "rmdir", path: dir, errno: err)
            }
            if monotonicSeconds() >= deadline {
                var pids: Set<Int32> = []
                try? collectProcesses(dir, into: &pids, isTop: true)
                throw CgroupError.removeBusy(path: dir, pids: pids.sorted(), errno: err)
            }
            // Busy: wait for the processes it still lists to exit (a sandbox's warden and its
            // sentinel leave a moment after the container's end), each through its pidfd; a
            // blind pause only when it lists none (the last ones are on their way out).
            if !awaitMembersExit(dir, deadline: deadline) {
                usleep(delayMicros)
                delayMicros = min(delayMicros * 2, 100_000)
            }
        }
    }

    /// Waits until the processes `dir` lists (`collectProcesses`) have exited or `deadline`
    /// passed; false when it lists none.
    static func awaitMembersExit(_ dir: String, deadline: Double) -> Bool {
        var pids: Set<Int32> = []
        try? collectProcesses(dir, into: &pids, isTop: true)
        guard !pids.isEmpty else { return false }
        for pid in pids {
            guard let member = try? PidFD(pid: pid) else { continue }  // gone already
            _ = member.waitExit(timeoutMs: Int32(max(1, (deadline - monotonicSeconds()) * 1000)))
        }
        return true
    }
}

func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

import VeilCgroups

/// The cgroup layout and the controllers veil's resource limits need.
public enum DoctorCgroups {
    /// Without these, common limits (memory, cpu shares/quota, pids) and pause fail.
    static let requiredV2: [String] = ["cpu", "memory", "pids"]
    static let optionalV2: [String] = ["cpuset", "io", "hugetlb"]
    static let requiredV1: [String] = ["cpu", "memory", "pids", "devices", "freezer"]
    static let optionalV1: [String] = ["cpuacct", "cpuset", "blkio", "hugetlb"]

    static func checks() -> [DoctorCheck] {
        let layout: CgroupLayout?
        var problem: String?
        do { layout = try CgroupLayout.detect() } catch {
            layout = nil
            problem = "\(error)"
        }
        var available: String?, subtree: String?
        if case .unified(let h) = layout {
            available = DoctorFiles.readTrimmed(h.mountpoint + "/cgroup.controllers")
            subtree = DoctorFiles.readTrimmed(h.mountpoint + "/cgroup.subtree_control")
        }
        return [self.layout(layout, problem: problem), controllers(layout, available: available, subtreeControl: subtree)]
    }

    public static func layout(_ layout: CgroupLayout?, problem: String? = nil) -> DoctorCheck {
        let name = "cgroup.layout"
        switch layout {
        case nil:
            return DoctorCheck(name, .fail, "no cgroup file system is mounted" + (problem.map { " (\($0))" } ?? ""),
                               fix: "mount -t cgroup2 none /sys/fs/cgroup")
        case .unified(let h)?:
            return DoctorCheck(name, .pass, "cgroup v2 (unified) at \(h.mountpoint)")
        case .hybrid(let v1, let unified)?:
            return DoctorCheck(name, .warn,
                               "hybrid: \(v1.count) cgroup v1 hierarchies carry the controllers, cgroup2 at \(unified.mountpoint) has none; veil works, but Kubernetes keeps cgroup v1 in maintenance mode and newer kubelets refuse it (failCgroupV1)",
                               fix: "boot with systemd.unified_cgroup_hierarchy=1 (kernel command line) for cgroup v2")
        case .legacy(let v1)?:
            return DoctorCheck(name, .warn,
                               "cgroup v1 only (\(v1.count) hierarchies); veil works, but Kubernetes keeps cgroup v1 in maintenance mode and newer kubelets refuse it (failCgroupV1)",
                               fix: "boot with systemd.unified_cgroup_hierarchy=1 (kernel command line) for cgroup v2")
        }
    }

    /// v2: `available` is the root's cgroup.controllers, `subtreeControl` its cgroup.subtree_control.
    public static func controllers(_ layout: CgroupLayout?, available: String?, subtreeControl: String?) -> DoctorCheck {
        let name = "cgroup.controllers"
        func words(_ s: String?) -> Set<String> { Set((s ?? "").split(separator: " ").map(String.init)) }
        switch layout {
        case nil:
            return DoctorCheck(name, .fail, "no cgroups", fix: "mount -t cgroup2 none /sys/fs/cgroup")
        case .unified(let h)?:
            guard let available else {
                return DoctorCheck(name, .fail, "cannot read \(h.mountpoint)/cgroup.controllers", fix: "check the cgroup2 mount at \(h.mountpoint)")
            }
            let have = words(available), enabled = words(subtreeControl)
            let missingRequired = requiredV2.filter { !have.contains($0) }
            let missingOptional = optionalV2.filter { !have.contains($0) }
            if !missingRequired.isEmpty {
                return DoctorCheck(name, .fail,
                                   "cgroup v2 root offers \(available.isEmpty ? "no controllers" : available); missing \(missingRequired.joined(separator: ", ")) (still bound to a cgroup v1 hierarchy, or disabled with cgroup_disable=)",
                                   fix: "unmount the v1 hierarchies of \(missingRequired.joined(separator: ", ")) or drop cgroup_disable= from the kernel command line")
            }
            let wanted = (requiredV2 + optionalV2).filter { have.contains($0) }
            let notEnabled = wanted.filter { !enabled.contains($0) }
            var detail = "cgroup v2 root offers \(available)"
            if !missingOptional.isEmpty { detail += "; without \(missingOptional.joined(separator: ", ")) those limits are refused" }
            if !notEnabled.isEmpty {
                return DoctorCheck(name, .warn,
                                   detail + "; not enabled in \(h.mountpoint)/cgroup.subtree_control: \(notEnabled.joined(separator: ", ")) (veil enables them itself when it may)",
                                   fix: "echo '\(notEnabled.map { "+" + $0 }.joined(separator: " "))' > \(h.mountpoint)/cgroup.subtree_control")
            }
            return DoctorCheck(name, missingOptional.isEmpty ? .pass : .warn, detail + "; enabled for children: \(wanted.joined(separator: " "))",
                               fix: "free \(missingOptional.joined(separator: ", ")) from cgroup v1 or cgroup_disable=")
        case .legacy(let v1)?, .hybrid(let v1, _)?:
            let have = Set(v1.flatMap(\.controllers))
            let missingRequired = requiredV1.filter { !have.contains($0) }
            let missingOptional = optionalV1.filter { !have.contains($0) }
            let mounted = (requiredV1 + optionalV1).filter { have.contains($0) }.joined(separator: " ")
            if !missingRequired.isEmpty {
                return DoctorCheck(name, .fail, "cgroup v1 hierarchies lack \(missingRequired.joined(separator: ", ")) (mounted: \(mounted))",
                                   fix: "mount them, e.g. mkdir -p /sys/fs/cgroup/\(missingRequired[0]) && mount -t cgroup -o \(missingRequired[0]) cgroup /sys/fs/cgroup/\(missingRequired[0])")
            }
            if !missingOptional.isEmpty {
                return DoctorCheck(name, .warn, "cgroup v1 controllers \(mounted); without \(missingOptional.joined(separator: ", ")) those limits are refused",
                                   fix: "mount -t cgroup -o \(missingOptional[0]) cgroup /sys/fs/cgroup/\(missingOptional[0])")
            }
            return DoctorCheck(name, .pass, "cgroup v1 controllers \(mounted)")
        }
    }
}

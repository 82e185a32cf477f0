import Glibc

/// A sandbox's supervisor (the warden) lives in a child cgroup of its container's, so what it uses
/// is charged to the sandbox (and the pod), while the container's process list (`ps`, the shim's
/// Pids) leaves it out: it is veil's, not the workload's.
extension Cgroup {
    /// The child cgroup's name in each hierarchy.
    public static let supervisorChild = "veil-warden"

    /// The v1 controllers the supervisor is charged under: memory and CPU. Not pids (its threads
    /// must not spend the workload's budget, nor be refused by a fork bomb), not freezer (pausing a
    /// pod's first container must not stop the warden serving the others), not devices (it opens
    /// no device), not cpuset (its cpus and mems would have to be filled in first).
    public static let supervisorControllers: Set<String> = ["memory", "cpu", "cpuacct", "blkio", "unified"]

    /// Makes `<container cgroup>/veil-warden` in each hierarchy of `supervisorControllers` (the v2
    /// one only where it is the only one) and
    /// returns the directories (each once; co-mounted controllers share one). `destroy` removes
    /// them with the container's cgroup.
    public func makeSupervisorCgroups() throws(CgroupError) -> [String] {
        var result: [String] = []
        for (controller, dir) in paths.sorted(by: { $0.key < $1.key }) where Cgroup.supervisorControllers.contains(controller) {
            // Beside v1 controllers the v2 hierarchy holds none: membership there would charge
            // nothing and cost the warden's self-move through cgroup.procs (v2 has no per-thread
            // file across domains) the kernel's threadgroup lock, an RCU grace period (5-15 ms)
            // during which every fork and exit on the machine waits, the container's included.
            if controller == "unified" && !unifiedOnly { continue }
            let child = dir + "/" + Cgroup.supervisorChild
            guard !result.contains(child) else { continue }
            // A systemd scope's directory exists once systemd started the unit: the child is made then.
            if systemd != nil && !SysFS.isDirectory(dir) { result.append(child); continue }
            _ = try SysFS.mkdirIfMissing(child)
            result.append(child)
        }
        return result
    }
}

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

    /// Makes `<container cgroup>/veil-warden` in each hierarchy of `supervisorControllers` and
    /// returns the directories (each once; co-mounted controllers share one). `destroy` removes
    /// them with the container's cgroup.
    public func makeSupervisorCgroups() throws(CgroupError) -> [String] {
        var result: [String] = []
        for (controller, dir) in paths.sorted(by: { $0.key < $1.key }) where Cgroup.supervisorControllers.contains(controller) {
            let child = dir + "/" + Cgroup.supervisorChild
            guard !result.contains(child) else { continue }
            _ = try SysFS.mkdirIfMissing(child)
            result.append(child)
        }
        return result
    }
}

import FoundationEssentials
import Glibc
import VeilCgroups
import VeilExchange
import VeilLinux
import VeilSpec

extension Runtime {
    private func runningCgroup(_ id: String, action: String, allowed: Set<ContainerStatus>) throws(ContainerError) -> (ContainerRecord, Cgroup) {
        let record = try store.load(id)
        let status = store.status(of: record)
        guard allowed.contains(status) else { throw .invalidState(id: id, status: status, action: action) }
        guard let cgroup = record.cgroup else { throw .unsupported("container \"\(id)\" has no cgroup") }
        return (record, cgroup)
    }

    /// `pause`: freezes every process of the container (v1 freezer, v2 cgroup.freeze).
    public func pause(id: String) throws(ContainerError) {
        let (_, cgroup) = try runningCgroup(id, action: "pause", allowed: [.running, .created])
        do { try cgroup.freeze() } catch { throw .cgroup(context: "pausing \"\(id)\"", error) }
    }

    public func resume(id: String) throws(ContainerError) {
        let (_, cgroup) = try runningCgroup(id, action: "resume", allowed: [.paused])
        do { try cgroup.thaw() } catch { throw .cgroup(context: "resuming \"\(id)\"", error) }
    }

    /// `update`: applies the given resources to the live cgroup and records them in the state.
    public func update(id: String, resources: LinuxResources) throws(ContainerError) {
        let (_, cgroup) = try runningCgroup(id, action: "update", allowed: [.created, .running, .paused])
        let requested = CgroupResources(oci: resources)
        do { try cgroup.update(requested) } catch {
            throw .resources(error, file: "resources", field: "", context: "updating the cgroup of \"\(id)\"")
        }
        try updateScope(cgroup, id: id, resources: requested)
        if var spec = try? store.loadConfig(id) {
            var linux = spec.linux ?? Linux()
            linux.resources = merged(linux.resources ?? LinuxResources(), with: resources)
            spec.linux = linux
            try store.saveConfig(spec, id: id)
        }
    }

    /// Current resource usage, in runc's `events --stats` shape.
    public func stats(id: String) throws(ContainerError) -> CgroupStats {
        let (_, cgroup) = try runningCgroup(id, action: "read stats of", allowed: [.created, .running, .paused])
        do { return try cgroup.stats() } catch { throw error.context("reading the stats of \"\(id)\"") }
    }

    /// OOM kills so far (nil when the kernel does not say).
    public func oomKills(id: String) throws(ContainerError) -> UInt64? {
        let record = try store.load(id)
        return record.cgroup?.oomKillCount()
    }

    private func merged(_ base: LinuxResources, with change: LinuxResources) -> LinuxResources {
        var out = base
        if let memory = change.memory {
            var m = out.memory ?? LinuxMemory()
            if let v = memory.limit { m.limit = v }
            if let v = memory.reservation { m.reservation = v }
            if let v = memory.swap { m.swap = v }
            out.memory = m
        }
        if let cpu = change.cpu {
            var c = out.cpu ?? LinuxCPU()
            if let v = cpu.shares { c.shares = v }
            if let v = cpu.quota { c.quota = v }
            if let v = cpu.period { c.period = v }
            if let v = cpu.cpus { c.cpus = v }
            if let v = cpu.mems { c.mems = v }
            out.cpu = c
        }
        if let pids = change.pids { out.pids = pids }
        if let devices = change.devices, !devices.isEmpty { out.devices = devices }
        return out
    }
}

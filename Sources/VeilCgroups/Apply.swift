import FoundationEssentials
import Glibc

extension Cgroup {
    /// Writes the resource limits. Fields left nil are not touched, so the same call serves
    /// `create` and `update`.
    public func apply(_ r: CgroupResources) throws {
        if unifiedOnly {
            try applyV2(r)
        } else {
            try applyV1(r)
        }
    }

    /// Directory of a v1 controller, or an error when the caller asked for a limit the host cannot enforce.
    private func v1Dir(_ controller: String) throws -> String {
        guard let dir = paths[controller] else {
            throw CgroupError.controllerUnavailable(file: "/sys/fs/cgroup/\(controller) (controller \(controller) is not mounted)")
        }
        return dir
    }

    // MARK: cgroup v1

    private func applyV1(_ r: CgroupResources) throws {
        if r.memoryLimit != nil || r.memorySwap != nil || r.memoryReservation != nil {
            try setMemoryV1(r, dir: try v1Dir("memory"))
        }
        if r.cpuShares != nil || r.cpuQuota != nil || r.cpuPeriod != nil {
            try setCpuV1(r, dir: try v1Dir("cpu"))
        }
        if r.cpusetCpus != nil || r.cpusetMems != nil {
            let dir = try v1Dir("cpuset")
            if let cpus = r.cpusetCpus { try SysFS.write(dir + "/cpuset.cpus", cpus) }
            if let mems = r.cpusetMems { try SysFS.write(dir + "/cpuset.mems", mems) }
        }
        if let pids = r.pidsLimit {
            try SysFS.write(try v1Dir("pids") + "/pids.max", pids <= 0 ? "max" : String(pids))
        }
        if !r.devices.isEmpty {
            let dir = try v1Dir("devices")
            // Validate every rule before denying everything, so a typo cannot leave the
            // container with no devices at all.
            let lines = try r.devices.map { ($0.allow, try $0.cgroupV1Line()) }
            try SysFS.write(dir + "/devices.deny", "a")
            for (allow, line) in lines {
                try SysFS.write(dir + (allow ? "/devices.allow" : "/devices.deny"), line)
            }
        }
    }

    private func setMemoryV1(_ r: CgroupResources, dir: String) throws {
        let limitFile = dir + "/memory.limit_in_bytes"
        let swapFile = dir + "/memory.memsw.limit_in_bytes"
        let limit = try r.memoryLimit.map { try memoryValue($0, field: "memory.limit") }
        var swap = try r.memorySwap.map { try memoryValue($0, field: "memory.swap") }
        // Unlimited memory with swap unspecified means unlimited swap too (as runc), otherwise
        // the old memsw limit would keep capping the container.
        if r.memoryLimit == -1 && r.memorySwap == nil { swap = -1 }
        // Swap accounting may be disabled (no memsw files): then there is nothing to limit.
        if !SysFS.exists(swapFile) { swap = nil }

        if let limit, let swap {
            // The kernel requires memsw >= limit at every moment, so the order of the two
            // writes depends on whether the limit grows past the current memsw.
            let current = try readUInt(limitFile)
            if swap == -1 || current < UInt64(swap) {
                try SysFS.write(swapFile, String(swap))
                try SysFS.write(limitFile, String(limit))
            } else {
                try SysFS.write(limitFile, String(limit))
                try SysFS.write(swapFile, String(swap))
            }
        } else {
            if let limit { try SysFS.write(limitFile, String(limit)) }
            if let swap { try SysFS.write(swapFile, String(swap)) }
        }
        if let reservation = r.memoryReservation {
            try SysFS.write(dir + "/memory.soft_limit_in_bytes",
                            String(try memoryValue(reservation, field: "memory.reservation")))
        }
    }

    private func setCpuV1(_ r: CgroupResources, dir: String) throws {
        if let shares = r.cpuShares {
            try SysFS.write(dir + "/cpu.shares", String(shares))
        }
        var periodPending = false
        if let period = r.cpuPeriod {
            do {
                try SysFS.write(dir + "/cpu.cfs_period_us", String(period))
            } catch CgroupError.writeFailed(_, _, let err) where err == EINVAL && r.cpuQuota != nil {
                // A smaller period can be refused while the old quota/period ratio would exceed
                // the parent's; it fits once the new quota is in, so retry after it (as runc).
                periodPending = true
            }
        }
        if let quota = r.cpuQuota {
            try SysFS.write(dir + "/cpu.cfs_quota_us", quota <= 0 ? "-1" : String(quota))
        }
        if periodPending, let period = r.cpuPeriod {
            try SysFS.write(dir + "/cpu.cfs_period_us", String(period))
        }
    }

    // MARK: cgroup v2

    private func applyV2(_ r: CgroupResources) throws {
        guard let dir = paths["unified"] else {
            throw CgroupError.controllerUnavailable(file: "cgroup2 hierarchy (no unified path recorded)")
        }
        // Memory: swap first, as runc, so a lower memory.max is not briefly paired with the old swap.
        if let swap = try Cgroup.convertSwapToV2(memorySwap: r.memorySwap, memory: r.memoryLimit) {
            let file = dir + "/memory.swap.max"
            if SysFS.exists(file) {
                try SysFS.write(file, swap == -1 ? "max" : String(swap))
            } else if swap != -1 {
                throw CgroupError.controllerUnavailable(file: file)
            }
        }
        if let limit = r.memoryLimit {
            let v = try memoryValue(limit, field: "memory.limit")
            try SysFS.write(dir + "/memory.max", v == -1 ? "max" : String(v))
        }
        if let reservation = r.memoryReservation {
            let v = try memoryValue(reservation, field: "memory.reservation")
            try SysFS.write(dir + "/memory.low", v == -1 ? "max" : String(v))
        }
        if let shares = r.cpuShares, shares != 0 {
            try SysFS.write(dir + "/cpu.weight", String(Cgroup.convertSharesToWeight(shares)))
        }
        if r.cpuQuota != nil || r.cpuPeriod != nil {
            var value = "max"
            if let quota = r.cpuQuota, quota > 0 { value = String(quota) }
            // Without a period the kernel keeps the current one.
            if let period = r.cpuPeriod, period != 0 { value += " \(period)" }
            try SysFS.write(dir + "/cpu.max", value)
        }
        if let cpus = r.cpusetCpus { try SysFS.write(dir + "/cpuset.cpus", cpus) }
        if let mems = r.cpusetMems { try SysFS.write(dir + "/cpuset.mems", mems) }
        if let pids = r.pidsLimit {
            try SysFS.write(dir + "/pids.max", pids <= 0 ? "max" : String(pids))
        }
        // Devices on v2 need an eBPF program (not written yet); the rules are skipped.
    }

    /// runc's cgroup v1 shares (2...262144) to v2 weight (1...10000) mapping.
    public static func convertSharesToWeight(_ shares: UInt64) -> UInt64 {
        if shares == 0 { return 0 }
        let clamped = min(max(shares, 2), 262_144)
        return 1 + ((clamped - 2) * 9999) / 262_142
    }

    /// OCI memory.swap is memory+swap (v1 semantics); v2's memory.swap.max is swap alone.
    /// Returns nil when nothing should be written, -1 for "max".
    public static func convertSwapToV2(memorySwap: Int64?, memory: Int64?) throws -> Int64? {
        let mem = memory ?? 0
        let swap = memorySwap ?? 0
        // Unlimited memory with swap unspecified: lift swap too, like v1.
        if mem == -1 && swap == 0 { return -1 }
        if swap == 0 { return nil }
        if swap == -1 { return -1 }
        guard mem != 0 && mem != -1 else {
            throw CgroupError.invalidResource(field: "memory.swap", value: String(swap), reason: "a swap limit needs a memory limit")
        }
        guard mem > 0 else {
            throw CgroupError.invalidResource(field: "memory.limit", value: String(mem), reason: "must be >= 0 or -1 for unlimited")
        }
        guard swap >= mem else {
            throw CgroupError.invalidResource(field: "memory.swap", value: String(swap), reason: "memory+swap limit must be >= memory limit \(mem)")
        }
        return swap - mem
    }
}

private func memoryValue(_ v: Int64, field: String) throws -> Int64 {
    guard v >= -1 else {
        throw CgroupError.invalidResource(field: field, value: String(v), reason: "must be >= 0 or -1 for unlimited")
    }
    return v
}

private func readUInt(_ path: String) throws -> UInt64 {
    let text = try SysFS.readTrimmed(path)
    guard let value = UInt64(text) else {
        throw CgroupError.invalidResource(field: path, value: text, reason: "kernel file does not hold an unsigned integer")
    }
    return value
}

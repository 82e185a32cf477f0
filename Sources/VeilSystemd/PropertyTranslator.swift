import VeilCgroups

/// linux.resources as systemd unit properties, the way runc's systemd driver translates them, so a
/// `systemctl show` of the scope tells the same limits as the cgroup files veil writes afterwards
/// (systemd rewrites the files it manages on every daemon-reload: what it does not know is lost).
public struct PropertyTranslator: Sendable {
    /// True on a unified-only (cgroup v2) host; v1 names differ (MemoryLimit, CPUShares).
    public var unified: Bool

    public init(unified: Bool) { self.unified = unified }

    /// The properties for `r`, and `r` with what systemd rounds (the CPU quota) rounded the same
    /// way, for the file writes that follow.
    public func translate(_ r: CgroupResources) throws(SystemdError) -> (properties: [UnitProperty], files: CgroupResources) {
        var files = r
        var properties: [UnitProperty] = []
        try memory(r, into: &properties)
        cpu(r, files: &files, into: &properties)
        try cpuset(r, into: &properties)
        if let pids = r.pidsLimit {
            // systemd refuses TasksMax=0; runc asks for 1 (the kernel's pids.max 0 has the same effect on forks).
            properties.append(UnitProperty("TasksMax", .uint64(pids < 0 ? .max : (pids == 0 ? 1 : UInt64(pids)))))
        }
        if let weight = r.blockIOWeight, weight != 0 {
            // v2 also gets IOWeight: with IOAccounting on, systemd rewrites io.weight at every reload.
            properties.append(unified ? UnitProperty("IOWeight", .uint64(Cgroup.convertBlkIOToIOWeight(weight)))
                                      : UnitProperty("BlockIOWeight", .uint64(UInt64(weight))))
        }
        if !r.devices.isEmpty { properties += DeviceAllowList.properties(for: r.devices) }
        if unified { try unifiedKeys(r.unified, files: &files, into: &properties) }
        return (properties, files)
    }

    private func memory(_ r: CgroupResources, into properties: inout [UnitProperty]) throws(SystemdError) {
        func bytes(_ value: Int64) -> BusValue { .uint64(value < 0 ? .max : UInt64(value)) }
        if let limit = r.memoryLimit, limit != 0 {
            properties.append(UnitProperty(unified ? "MemoryMax" : "MemoryLimit", bytes(limit)))
        }
        guard unified else { return }
        if let reservation = r.memoryReservation, reservation != 0 {
            properties.append(UnitProperty("MemoryLow", bytes(reservation)))
        }
        let swap: Int64?
        do { swap = try Cgroup.convertSwapToV2(memorySwap: r.memorySwap, memory: r.memoryLimit == 0 ? nil : r.memoryLimit) } catch {
            throw .invalidResource(field: "memory.swap", value: r.memorySwap.map(String.init) ?? "", reason: "\(error)")
        }
        if let swap { properties.append(UnitProperty("MemorySwapMax", bytes(swap))) }
    }

    private func cpu(_ r: CgroupResources, files: inout CgroupResources, into properties: inout [UnitProperty]) {
        if let shares = r.cpuShares, shares != 0 {
            properties.append(unified ? UnitProperty("CPUWeight", .uint64(Cgroup.convertSharesToWeight(shares)))
                                      : UnitProperty("CPUShares", .uint64(shares)))
        }
        let quota = r.cpuQuota ?? 0
        let period = r.cpuPeriod ?? 0
        if period != 0 { properties.append(UnitProperty("CPUQuotaPeriodUSec", .uint64(period))) }
        guard quota != 0 || period != 0 else { return }
        var perSecond = UInt64.max
        if quota > 0 {
            let effectivePeriod = period == 0 ? 100_000 : period
            perSecond = UInt64(quota) * 1_000_000 / effectivePeriod
            // systemd keeps whole percents (10 ms per second): round up, and make the file write agree.
            if perSecond % 10_000 != 0 {
                perSecond = (perSecond / 10_000 + 1) * 10_000
                files.cpuQuota = Int64(perSecond * effectivePeriod / 1_000_000)
            }
        }
        properties.append(UnitProperty("CPUQuotaPerSecUSec", .uint64(perSecond)))
    }

    private func cpuset(_ r: CgroupResources, into properties: inout [UnitProperty]) throws(SystemdError) {
        if let cpus = r.cpusetCpus, !cpus.isEmpty {
            properties.append(UnitProperty("AllowedCPUs", .bytes(try CPUSetBits.mask(cpus, field: "cpu.cpus"))))
        }
        if let mems = r.cpusetMems, !mems.isEmpty {
            properties.append(UnitProperty("AllowedMemoryNodes", .bytes(try CPUSetBits.mask(mems, field: "cpu.mems"))))
        }
    }

    /// The cgroup v2 keys systemd has a property for; the others stay file writes only.
    private func unifiedKeys(_ unified: [String: String], files: inout CgroupResources, into properties: inout [UnitProperty]) throws(SystemdError) {
        func number(_ key: String, _ text: String) throws(SystemdError) -> UInt64 {
            if text == "max" { return .max }
            guard let value = UInt64(text) else { throw .invalidResource(field: "unified[\"\(key)\"]", value: text, reason: "not a number or max") }
            return value
        }
        for key in unified.keys.sorted() {
            let value = (unified[key] ?? "").split(separator: "\n").first.map { String($0).trimmingSpaces } ?? ""
            switch key {
            case "memory.high", "memory.low", "memory.min", "memory.max":
                let name = "Memory" + key.dropFirst("memory.".count).capitalizedFirst
                properties.append(UnitProperty(name, .uint64(try number(key, value))))
            case "memory.swap.max":
                properties.append(UnitProperty("MemorySwapMax", .uint64(try number(key, value))))
            case "pids.max":
                let n = try number(key, value)
                properties.append(UnitProperty("TasksMax", .uint64(n == 0 ? 1 : n)))
            case "cpu.weight":
                properties.append(UnitProperty("CPUWeight", .uint64(try number(key, value))))
            case "cpu.max":
                let parts = value.split(separator: " ").map(String.init)
                guard let first = parts.first else { continue }
                let period = parts.count > 1 ? try number(key, parts[1]) : 100_000
                guard period != 0, period != .max else { throw .invalidResource(field: "unified[\"cpu.max\"]", value: value, reason: "bad period") }
                if parts.count > 1 { properties.append(UnitProperty("CPUQuotaPeriodUSec", .uint64(period))) }
                let quota = try number(key, first)
                properties.append(UnitProperty("CPUQuotaPerSecUSec", .uint64(quota == .max ? .max : quota * 1_000_000 / period)))
            case "cpuset.cpus":
                properties.append(UnitProperty("AllowedCPUs", .bytes(try CPUSetBits.mask(value, field: "unified[\"cpuset.cpus\"]"))))
            case "cpuset.mems":
                properties.append(UnitProperty("AllowedMemoryNodes", .bytes(try CPUSetBits.mask(value, field: "unified[\"cpuset.mems\"]"))))
            default:
                continue  // written to the file only (systemd leaves it alone)
            }
        }
    }
}

/// systemd's cpuset properties are bitmasks: byte 0 holds CPUs 0-7, lowest bit first.
public enum CPUSetBits {
    public static func mask(_ list: String, field: String) throws(SystemdError) -> [UInt8] {
        var bytes: [UInt8] = []
        var any = false
        for element in list.split(separator: ",") {
            let item = String(element).trimmingSpaces
            if item.isEmpty { continue }
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map { Int(String($0).trimmingSpaces) }
            guard (bounds.count == 1 || bounds.count == 2), let low = bounds.first ?? nil, let high = bounds.last ?? nil,
                  low >= 0, high >= low, high < 8192 else {
                throw .invalidResource(field: field, value: list, reason: "\(item) is not a CPU or node number or range")
            }
            for n in low...high {
                while bytes.count <= n / 8 { bytes.append(0) }
                bytes[n / 8] |= UInt8(1) << UInt8(n % 8)
                any = true
            }
        }
        guard any else { throw .invalidResource(field: field, value: list, reason: "names no CPU or node") }
        return bytes
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

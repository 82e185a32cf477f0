import VeilCgroups
import VeilSpec

extension CgroupResources {
    /// Everything linux.resources asks for at create time, with runc's default device rules:
    /// deny all, the config's rules, then the devices every container gets (null, zero, full,
    /// random, urandom, tty, console, ptmx, pts, tun, mknod of anything) and the config's devices.
    init(spec: Spec) {
        self.init(oci: spec.linux?.resources ?? LinuxResources())
        var rules = [DeviceRule(allow: false, type: "a", access: "rwm")]
        rules += devices
        let defaults: [(String, Int64, Int64)] = [("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9),
                                                  ("c", 5, 0), ("c", 5, 1), ("c", 5, 2), ("c", 136, -1), ("c", 10, 200)]
        for (type, major, minor) in defaults {
            rules.append(DeviceRule(allow: true, type: type, major: major, minor: minor, access: "rwm"))
        }
        rules.append(DeviceRule(allow: true, type: "c", major: -1, minor: -1, access: "m"))
        rules.append(DeviceRule(allow: true, type: "b", major: -1, minor: -1, access: "m"))
        for device in spec.linux?.devices ?? [] where ["c", "b", "u"].contains(device.type) {
            rules.append(DeviceRule(allow: true, type: device.type == "u" ? "c" : device.type, major: device.major, minor: device.minor, access: "rwm"))
        }
        devices = rules
    }

    /// A config's device rule as runc applies it: the letters r, w, m of its access count and
    /// any other letter is ignored (runc accepts "rwa"); a rule left with no access changes
    /// nothing. An empty access stays empty, for validation to refuse as runc does.
    static func deviceRule(_ rule: LinuxDeviceCgroup) -> DeviceRule? {
        let given = rule.access ?? "rwm"
        let access = given.isEmpty ? "" : String("rwm".filter { given.contains($0) })
        if !given.isEmpty && access.isEmpty { return nil }
        return DeviceRule(allow: rule.allow, type: rule.type ?? "a", major: rule.major, minor: rule.minor, access: access)
    }

    /// Exactly the fields `r` sets (an `update`): nil stays "leave unchanged".
    init(oci r: LinuxResources) {
        self.init(memoryLimit: r.memory?.limit, memoryReservation: r.memory?.reservation, memorySwap: r.memory?.swap,
                  cpuShares: r.cpu?.shares, cpuQuota: r.cpu?.quota, cpuPeriod: r.cpu?.period,
                  cpusetCpus: r.cpu?.cpus, cpusetMems: r.cpu?.mems, pidsLimit: r.pids?.limit,
                  devices: (r.devices ?? []).compactMap(Self.deviceRule))
        memoryKernel = r.memory?.kernel
        memoryKernelTCP = r.memory?.kernelTCP
        memorySwappiness = r.memory?.swappiness
        memoryDisableOOMKiller = r.memory?.disableOOMKiller
        memoryCheckBeforeUpdate = r.memory?.checkBeforeUpdate
        cpuBurst = r.cpu?.burst
        cpuRealtimeRuntime = r.cpu?.realtimeRuntime
        cpuRealtimePeriod = r.cpu?.realtimePeriod
        cpuIdle = r.cpu?.idle
        blockIOWeight = r.blockIO?.weight
        blockIOLeafWeight = r.blockIO?.leafWeight
        blockIOWeightDevices = (r.blockIO?.weightDevice ?? []).map { WeightDevice(major: $0.major, minor: $0.minor, weight: $0.weight, leafWeight: $0.leafWeight) }
        func throttle(_ list: [LinuxThrottleDevice]?) -> [ThrottleDevice] {
            (list ?? []).map { ThrottleDevice(major: $0.major, minor: $0.minor, rate: $0.rate) }
        }
        blockIOThrottleReadBpsDevices = throttle(r.blockIO?.throttleReadBpsDevice)
        blockIOThrottleWriteBpsDevices = throttle(r.blockIO?.throttleWriteBpsDevice)
        blockIOThrottleReadIOPSDevices = throttle(r.blockIO?.throttleReadIOPSDevice)
        blockIOThrottleWriteIOPSDevices = throttle(r.blockIO?.throttleWriteIOPSDevice)
        hugepageLimits = (r.hugepageLimits ?? []).map { HugepageLimit(pageSize: $0.pageSize, limit: $0.limit) }
        networkClassID = r.network?.classID
        networkPriorities = (r.network?.priorities ?? []).map { InterfacePriority(name: $0.name, priority: $0.priority) }
        rdma = (r.rdma ?? [:]).mapValues { RdmaLimit(hcaHandles: $0.hcaHandles, hcaObjects: $0.hcaObjects) }
        unified = r.unified ?? [:]
    }
}

import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups
import VeilExchange

/// The cgroup v2 driver against a scratch directory holding the files a v2 cgroup has: this
/// host is hybrid, so the real v2 controllers are only available in the qemu guest.
@Suite("cgroup v2 driver on a fake tree")
struct CgroupV2FakeTreeTests {
    static let baseFiles: [String: String] = [
        "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma\n",
        "cgroup.freeze": "0\n",
        "cgroup.events": "populated 1\nfrozen 0\n",
        "memory.max": "max\n", "memory.low": "0\n", "memory.swap.max": "max\n",
        "memory.current": "1048576\n", "memory.swap.current": "4096\n", "memory.peak": "2097152\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n",
        "memory.stat": "anon 524288\nfile 262144\nkernel 8192\n",
        "cpu.weight": "100\n", "cpu.max": "max 100000\n", "cpu.max.burst": "0\n", "cpu.idle": "0\n",
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
        "cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.cpus.effective": "0-1\n", "cpuset.mems.effective": "0\n",
        "pids.max": "0\n", "pids.current": "3\n",
        "io.weight": "default 100\n", "io.max": "\n",
        "io.stat": "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        "hugetlb.2MB.max": "max\n", "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 4\n",
        "rdma.max": "\n", "memory.high": "max\n",
    ]

    func withTree(_ extra: [String: String] = [:], removing: [String] = [], _ body: (Cgroup, String) throws -> Void) throws {
        var files = Self.baseFiles.merging(extra) { $1 }
        for name in removing { files[name] = nil }
        let dir = try makeFakeCgroupDir(files)
        defer { removeFakeDir(dir) }
        try body(Cgroup(paths: ["unified": dir], created: [], unifiedOnly: true), dir)
    }

    func writes(_ cg: Cgroup, _ r: CgroupResources, _ dir: String) throws -> [String] {
        try cg.plan(r).writes.map { "\($0.0.dropFirst(dir.count + 1)) \($0.1)" }
    }

    @Test("every v2 file and value, in runc's order")
    func fullResources() throws {
        try withTree { (cg: Cgroup, dir: String) throws in
            let r = CgroupResources(
                memoryLimit: 64 << 20, memoryReservation: 32 << 20, memorySwap: 96 << 20,
                cpuShares: 1024, cpuQuota: 50_000, cpuPeriod: 100_000,
                cpusetCpus: "0-1", cpusetMems: "0", pidsLimit: 42,
                memoryKernel: 1 << 20, memoryKernelTCP: 1 << 20, memorySwappiness: 10, memoryDisableOOMKiller: true,
                cpuBurst: 1000, cpuIdle: 0,
                blockIOWeight: 500,
                blockIOThrottleReadBpsDevices: [ThrottleDevice(major: 8, minor: 0, rate: 1_048_576)],
                blockIOThrottleWriteBpsDevices: [ThrottleDevice(major: 8, minor: 0, rate: 2_097_152)],
                blockIOThrottleReadIOPSDevices: [ThrottleDevice(major: 8, minor: 16, rate: 100)],
                blockIOThrottleWriteIOPSDevices: [ThrottleDevice(major: 8, minor: 0, rate: 0)],
                hugepageLimits: [HugepageLimit(pageSize: "2MB", limit: 4 << 21)],
                rdma: ["mlx5_1": RdmaLimit(hcaHandles: 3, hcaObjects: 1000), "mlx4_0": RdmaLimit(hcaObjects: 10)],
                unified: ["memory.high": "50331648"])
            #expect(try writes(cg, r, dir) == [
                "pids.max 42",
                "memory.swap.max 33554432",      // swap alone: 96 MiB - 64 MiB
                "memory.max 67108864",
                "memory.low 33554432",
                "io.weight 4950",                // no io.bfq.weight: runc's 10...1000 -> 1...10000
                "io.max 8:0 rbps=1048576 wbps=2097152 wiops=max",
                "io.max 8:16 riops=100",
                "cpu.weight 39",
                // cpu.max and cpu.max.burst go through an action (burst may need a retry).
                "cpu.idle 0",
                "cpuset.cpus 0-1",
                "cpuset.mems 0",
                "hugetlb.2MB.max 8388608",
                "rdma.max mlx4_0 hca_object=10",
                "rdma.max mlx5_1 hca_handle=3 hca_object=1000",
                "memory.high 50331648",
            ])
            try cg.apply(r)
            #expect(try readFile(dir + "/cpu.max") == "50000 100000")
            #expect(try readFile(dir + "/cpu.max.burst") == "1000")
            #expect(try readFile(dir + "/memory.max") == "67108864")
            #expect(try readFile(dir + "/memory.swap.max") == "33554432")
            #expect(try readFile(dir + "/pids.max") == "42")
            #expect(try readFile(dir + "/memory.high") == "50331648")
        }
    }

    @Test("BFQ takes the weight unconverted and per-device weights")
    func bfqWeights() throws {
        try withTree(["io.bfq.weight": "default 100\n"]) { (cg: Cgroup, dir: String) throws in
            let r = CgroupResources(blockIOWeight: 300, blockIOWeightDevices: [WeightDevice(major: 8, minor: 0, weight: 200)])
            #expect(try writes(cg, r, dir) == ["io.bfq.weight 300", "io.bfq.weight 8:0 200"])
        }
        try withTree { (cg: Cgroup, _: String) throws in
            // Without BFQ a per-device weight cannot be honoured.
            #expect(throws: CgroupError.self) {
                try cg.apply(CgroupResources(blockIOWeightDevices: [WeightDevice(major: 8, minor: 0, weight: 200)]))
            }
        }
    }

    @Test("unset and unlimited values")
    func unsetAndUnlimited() throws {
        try withTree { (cg: Cgroup, dir: String) throws in
            // 0 means "not set" for memory, as in runc; -1 is "max".
            #expect(try writes(cg, CgroupResources(memoryLimit: 0, memoryReservation: 0), dir) == [])
            #expect(try writes(cg, CgroupResources(memoryLimit: -1, cpuQuota: -1, pidsLimit: 0), dir) == [
                "pids.max max", "memory.swap.max max", "memory.max max",
            ])
            // memory == swap disables swap.
            #expect(try writes(cg, CgroupResources(memoryLimit: 100, memorySwap: 100), dir) == [
                "memory.swap.max 0", "memory.max 100",
            ])
            #expect(try writes(cg, CgroupResources(), dir) == [])
        }
    }

    @Test("unified keys: verbatim, one write per line, checked before writing")
    func unified() throws {
        try withTree(["io.max": "\n"]) { (cg: Cgroup, dir: String) throws in
            #expect(try writes(cg, CgroupResources(unified: ["io.max": "8:0 rbps=1\n8:16 wbps=2\n"]), dir) == [
                "io.max 8:0 rbps=1", "io.max 8:16 wbps=2",
            ])
            #expect(throws: CgroupError.invalidResource(field: "unified", value: "../memory.max",
                                                        reason: "must be a file name in the cgroup directory (no slashes)")) {
                try cg.apply(CgroupResources(unified: ["../memory.max": "1"]))
            }
            #expect(throws: CgroupError.unsupported(field: "unified[misc.max]",
                                                    reason: "controller \"misc\" is not available in \(dir)")) {
                try cg.apply(CgroupResources(unified: ["misc.max": "1"]))
            }
            #expect(throws: CgroupError.controllerUnavailable(file: dir + "/memory.nonexistent")) {
                try cg.apply(CgroupResources(unified: ["memory.nonexistent": "1"]))
            }
            #expect(throws: CgroupError.self) { try cg.apply(CgroupResources(unified: ["nodot": "1"])) }
        }
    }

    @Test("what v2 cannot do is refused by name")
    func unsupportedOnV2() throws {
        try withTree { (cg: Cgroup, _: String) throws in
            for r in [CgroupResources(cpuRealtimeRuntime: 1000), CgroupResources(cpuRealtimePeriod: 1000),
                      CgroupResources(networkClassID: 7), CgroupResources(networkPriorities: [InterfacePriority(name: "eth0", priority: 1)]),
                      CgroupResources(blockIOLeafWeight: 100)] {
                do throws(CgroupError) {
                    try cg.apply(r)
                    Issue.record("\(r) should be refused on v2")
                } catch let e {
                    guard case .unsupported = e else { Issue.record("unexpected \(e)"); continue }
                    #expect(e.description.contains("cgroup v2"))
                }
            }
        }
    }

    @Test("invalid values and missing files: nothing is written")
    func validateFirst() throws {
        try withTree(removing: ["hugetlb.2MB.max"]) { (cg: Cgroup, dir: String) throws in
            let bad: [(CgroupResources, String)] = [
                (CgroupResources(memoryLimit: 1 << 20, memorySwappiness: 101), "memory.swappiness"),
                (CgroupResources(memoryLimit: -5), "memory.limit"),
                (CgroupResources(memoryLimit: 1 << 20, memorySwap: 1 << 19), "memory.swap"),
                (CgroupResources(memoryLimit: 1 << 20, cpuIdle: 2), "cpu.idle"),
                (CgroupResources(memoryLimit: 1 << 20, blockIOWeight: 5), "blockIO.weight"),
                (CgroupResources(memoryLimit: 1 << 20, blockIOThrottleReadBpsDevices: [ThrottleDevice(major: -1, minor: 0, rate: 1)]), "major"),
                (CgroupResources(memoryLimit: 1 << 20, hugepageLimits: [HugepageLimit(pageSize: "2M", limit: 1)]), "pageSize"),
                (CgroupResources(memoryLimit: 1 << 20, hugepageLimits: [HugepageLimit(pageSize: "2MB", limit: 1)]), "hugetlb.2MB.max"),
                (CgroupResources(memoryLimit: 1 << 20, devices: [DeviceRule(allow: true, type: "q")]), "devices.type"),
            ]
            for (r, mention) in bad {
                do throws(CgroupError) {
                    try cg.apply(r)
                    Issue.record("\(mention) should be refused")
                } catch let e {
                    #expect(e.description.contains(mention), "\(e)")
                }
                #expect(try readFile(dir + "/memory.max") == "max", "memory.max written before \(mention) was refused")
            }
        }
    }

    @Test("checkBeforeUpdate refuses a limit below usage")
    func checkBeforeUpdate() throws {
        try withTree { (cg: Cgroup, dir: String) throws in
            // memory.current is 1 MiB.
            #expect(throws: CgroupError.self) {
                try cg.update(CgroupResources(memoryLimit: 512 << 10, memoryCheckBeforeUpdate: true))
            }
            #expect(try readFile(dir + "/memory.max") == "max")
            // memory+swap usage is 1 MiB + 4 KiB.
            #expect(throws: CgroupError.self) {
                try cg.update(CgroupResources(memoryLimit: 2 << 20, memorySwap: (1 << 20) + 2048, memoryCheckBeforeUpdate: true))
            }
            try cg.update(CgroupResources(memoryLimit: 2 << 20, memoryCheckBeforeUpdate: true))
            #expect(try readFile(dir + "/memory.max") == "2097152")
            // Without the flag the kernel decides (it would reclaim).
            try cg.update(CgroupResources(memoryLimit: 512 << 10))
        }
    }

    @Test("freeze, thaw, isFrozen through cgroup.freeze and cgroup.events")
    func freezer() throws {
        try withTree(["cgroup.events": "populated 1\nfrozen 1\n"]) { (cg: Cgroup, dir: String) throws in
            #expect(!cg.isFrozen())
            try cg.freeze()
            #expect(try readFile(dir + "/cgroup.freeze") == "1")
            #expect(cg.isFrozen())
            try cg.thaw()
            #expect(try readFile(dir + "/cgroup.freeze") == "0")
            #expect(!cg.isFrozen())
        }
    }

    @Test("stats and OOM count from v2 files")
    func stats() throws {
        try withTree { (cg: Cgroup, _: String) throws in
            let s = try cg.stats()
            #expect(s.cpu.usage.total == 1_500_000)
            #expect(s.cpu.usage.user == 1_000_000)
            #expect(s.cpu.usage.kernel == 500_000)
            #expect(s.cpu.throttling.periods == 7)
            #expect(s.cpu.throttling.throttledPeriods == 2)
            #expect(s.cpu.throttling.throttledTime == 30_000)
            #expect(s.memory.usage.usage == 1_048_576)
            #expect(s.memory.usage.limit == UInt64.max)
            #expect(s.memory.usage.max == 2_097_152)
            #expect(s.memory.swap.usage == 1_048_576 + 4096)
            #expect(s.memory.swap.limit == UInt64.max)
            #expect(s.memory.cache == 262_144)
            #expect(s.memory.raw["anon"] == 524_288)
            #expect(s.pids.current == 3)
            #expect(s.pids.limit == 0)
            #expect(s.cpuset.cpus == [0, 1])
            #expect(s.blkio.ioServiceBytesRecursive == [
                BlkioEntry(major: 254, minor: 0, op: "Read", value: 4096), BlkioEntry(major: 254, minor: 0, op: "Write", value: 8192)])
            #expect(s.blkio.ioServicedRecursive == [
                BlkioEntry(major: 254, minor: 0, op: "Read", value: 1), BlkioEntry(major: 254, minor: 0, op: "Write", value: 2)])
            #expect(s.hugetlb["2MB"]?.failcnt == 4)
            #expect(s.hugetlb["2MB"]?.max == UInt64.max)
            #expect(cg.oomKillCount() == 2)
            #expect(try cg.makeOOMEventFD() == nil)
        }
        try withTree(["memory.max": "4194304\n", "memory.swap.max": "0\n", "pids.max": "12\n", "cpu.stat": "usage_usec x\n"]) { (cg: Cgroup, dir: String) throws in
            // A malformed kernel file is reported with its path.
            do throws(CgroupError) {
                _ = try cg.stats()
                Issue.record("cpu.stat with a non-number should fail")
            } catch let e {
                #expect(e.description.contains(dir + "/cpu.stat"))
            }
        }
        try withTree(["memory.max": "4194304\n", "memory.swap.max": "0\n", "pids.max": "12\n"]) { (cg: Cgroup, _: String) throws in
            let s = try cg.stats()
            #expect(s.memory.usage.limit == 4_194_304)
            #expect(s.memory.swap.limit == 4_194_304)
            #expect(s.pids.limit == 12)
        }
    }
}

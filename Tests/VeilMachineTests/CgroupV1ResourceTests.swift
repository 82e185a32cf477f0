import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

/// A whole disk's (major, minor) from /sys/block (throttling refuses partitions), or nil.
func diskDevice() -> (Int64, Int64)? {
    guard let dir = opendir("/sys/block") else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let e = readdir(dir) {
        let name = withUnsafePointer(to: e.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if !name.hasPrefix("."), !name.hasPrefix("loop"), !name.hasPrefix("ram"), !name.hasPrefix("zram") { names.append(name) }
    }
    for name in names.sorted() {
        guard let dev = try? readFile("/sys/block/\(name)/dev") else { continue }
        let parts = dev.split(separator: ":")
        if parts.count == 2, let a = Int64(parts[0]), let b = Int64(parts[1]) { return (a, b) }
    }
    return nil
}

@Suite("cgroup v1 resources on the real host", .enabled(if: isV1Host, "needs root and cgroup v1 controllers"), .serialized)
struct CgroupV1ResourceTests {
    func withCgroup(_ body: (Cgroup) throws -> Void) throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/c", containerID: "x")
        defer { try? cg.destroy() }
        try body(cg)
    }

    @Test("memory: swappiness, OOM killer, reservation, swap; kernel memory ignored")
    func memory() throws {
        try withCgroup { (cg: Cgroup) throws in
            let dir = try #require(cg.paths["memory"])
            try cg.apply(CgroupResources(
                memoryLimit: 64 << 20, memoryReservation: 32 << 20, memorySwap: 128 << 20,
                memoryKernel: 1 << 20, memoryKernelTCP: 1 << 20, memorySwappiness: 30, memoryDisableOOMKiller: true))
            #expect(try readFile(dir + "/memory.limit_in_bytes") == "67108864")
            #expect(try readFile(dir + "/memory.soft_limit_in_bytes") == "33554432")
            #expect(try readFile(dir + "/memory.swappiness") == "30")
            #expect(try readFile(dir + "/memory.oom_control").contains("oom_kill_disable 1"))
            if SysFS.exists(dir + "/memory.memsw.limit_in_bytes") {
                #expect(try readFile(dir + "/memory.memsw.limit_in_bytes") == "134217728")
            }
            // Shrinking memory+swap below the old memory limit needs the writes in the other order.
            try cg.apply(CgroupResources(memoryLimit: 16 << 20, memorySwap: 16 << 20))
            #expect(try readFile(dir + "/memory.limit_in_bytes") == "16777216")
            // Go's -1 for swappiness means "leave it".
            try cg.apply(CgroupResources(memorySwappiness: UInt64.max))
            #expect(try readFile(dir + "/memory.swappiness") == "30")
        }
    }

    @Test("a bad value is refused before anything is written")
    func validateFirst() throws {
        try withCgroup { (cg: Cgroup) throws in
            let dir = try #require(cg.paths["memory"])
            let before = try readFile(dir + "/memory.limit_in_bytes")
            #expect(throws: CgroupError.invalidResource(field: "memory.swappiness", value: "101", reason: "valid range is 0-100")) {
                try cg.apply(CgroupResources(memoryLimit: 8 << 20, memorySwappiness: 101))
            }
            #expect(try readFile(dir + "/memory.limit_in_bytes") == before)
            // unified needs v2.
            do throws(CgroupError) {
                try cg.apply(CgroupResources(memoryLimit: 8 << 20, unified: ["memory.high": "1"]))
                Issue.record("unified on v1 must fail")
            } catch let e {
                #expect(e.description.contains("unified resources need cgroup v2"))
            }
            #expect(try readFile(dir + "/memory.limit_in_bytes") == before)
        }
    }

    @Test("checkBeforeUpdate refuses a limit below the current usage")
    func checkBeforeUpdate() throws {
        try withCgroup { (cg: Cgroup) throws in
            var child: pid_t = 0
            defer { killAndReap(child) }
            let dir = try #require(cg.paths["memory"])
            // A child that touches some memory and stays.
            child = try spawnShell("x=$(head -c 2000000 /dev/zero | tr '\\0' a); exec sleep 60", joining: procsFiles(cg))
            var usage: UInt64 = 0
            for _ in 0..<200 {
                usage = try UInt64(readFile(dir + "/memory.usage_in_bytes")) ?? 0
                if usage > 300_000 { break }
                usleep(10_000)
            }
            #expect(usage > 0)
            do throws(CgroupError) {
                try cg.update(CgroupResources(memoryLimit: 4096, memoryCheckBeforeUpdate: true))
                Issue.record("a 4 KiB limit is below usage \(usage)")
            } catch let e {
                #expect(e.description.contains("rejecting memory limit"))
                #expect(e.description.contains("memory.usage_in_bytes"))
            }
            #expect(try readFile(dir + "/memory.limit_in_bytes") != "4096")
            try cg.update(CgroupResources(memoryLimit: 512 << 20, memoryCheckBeforeUpdate: true))
            #expect(try readFile(dir + "/memory.limit_in_bytes") == "536870912")
        }
    }

    @Test("cpu: burst, idle, realtime period; shares clamping and realtime runtime errors name the file")
    func cpu() throws {
        try withCgroup { (cg: Cgroup) throws in
            let dir = try #require(cg.paths["cpu"])
            try cg.apply(CgroupResources(cpuShares: 256, cpuQuota: 50_000, cpuPeriod: 100_000, cpuBurst: 20_000, cpuRealtimePeriod: 500_000))
            #expect(try readFile(dir + "/cpu.shares") == "256")
            #expect(try readFile(dir + "/cpu.cfs_burst_us") == "20000")
            #expect(try readFile(dir + "/cpu.rt_period_us") == "500000")
            try cg.apply(CgroupResources(cpuIdle: 1))
            #expect(try readFile(dir + "/cpu.idle") == "1")
            try cg.apply(CgroupResources(cpuIdle: 0))
            #expect(throws: CgroupError.self) { try cg.apply(CgroupResources(cpuShares: 1_000_000)) }
            // The new test cgroup's parent has no realtime budget: the kernel refuses, and says where.
            do throws(CgroupError) {
                try cg.apply(CgroupResources(cpuRealtimeRuntime: 10_000))
                Issue.record("rt runtime without a parent budget should fail")
            } catch let e {
                guard case .writeFailed(let path, let value, _) = e else { Issue.record("unexpected \(e)"); return }
                #expect(path == dir + "/cpu.rt_runtime_us")
                #expect(value == "10000")
            }
        }
    }

    @Test("blkio: weight via bfq or cfq file, throttles; leaf weight needs CFQ")
    func blkio() throws {
        try withCgroup { (cg: Cgroup) throws in
            let dir = try #require(cg.paths["blkio"])
            let weightFile = SysFS.exists(dir + "/blkio.weight") ? "/blkio.weight" : "/blkio.bfq.weight"
            if SysFS.exists(dir + weightFile) {
                try cg.apply(CgroupResources(blockIOWeight: 500))
                #expect(try readFile(dir + weightFile).contains("500"))
            } else {
                #expect(throws: CgroupError.controllerUnavailable(file: dir + weightFile)) {
                    try cg.apply(CgroupResources(blockIOWeight: 500))
                }
            }
            if !SysFS.exists(dir + "/blkio.leaf_weight") {
                #expect(throws: CgroupError.controllerUnavailable(file: dir + "/blkio.leaf_weight")) {
                    try cg.apply(CgroupResources(blockIOLeafWeight: 500))
                }
            }
            guard let (major, minor) = diskDevice() else { try Test.cancel("no whole disk in /sys/block to throttle") }
            try cg.apply(CgroupResources(
                blockIOThrottleReadBpsDevices: [ThrottleDevice(major: major, minor: minor, rate: 1_048_576)],
                blockIOThrottleWriteBpsDevices: [ThrottleDevice(major: major, minor: minor, rate: 2_097_152)],
                blockIOThrottleReadIOPSDevices: [ThrottleDevice(major: major, minor: minor, rate: 100)],
                blockIOThrottleWriteIOPSDevices: [ThrottleDevice(major: major, minor: minor, rate: 200)]))
            #expect(try readFile(dir + "/blkio.throttle.read_bps_device") == "\(major):\(minor) 1048576")
            #expect(try readFile(dir + "/blkio.throttle.write_bps_device") == "\(major):\(minor) 2097152")
            #expect(try readFile(dir + "/blkio.throttle.read_iops_device") == "\(major):\(minor) 100")
            #expect(try readFile(dir + "/blkio.throttle.write_iops_device") == "\(major):\(minor) 200")
            // Rate 0 removes the limit.
            try cg.apply(CgroupResources(blockIOThrottleReadBpsDevices: [ThrottleDevice(major: major, minor: minor, rate: 0)]))
            #expect(try readFile(dir + "/blkio.throttle.read_bps_device") == "")
        }
    }

    @Test("controllers this host lacks are errors only when their field is set")
    func missingControllers() throws {
        try withCgroup { (cg: Cgroup) throws in
            let cases: [(CgroupResources, String)] = [
                (CgroupResources(hugepageLimits: [HugepageLimit(pageSize: "2MB", limit: 2 << 20)]), "hugetlb"),
                (CgroupResources(networkClassID: 0x10001), "net_cls"),
                (CgroupResources(networkPriorities: [InterfacePriority(name: "lo", priority: 5)]), "net_prio"),
                (CgroupResources(rdma: ["mlx5_0": RdmaLimit(hcaHandles: 1)]), "rdma"),
            ]
            for (r, controller) in cases {
                if let dir = cg.paths[controller] {
                    try cg.apply(r)
                    switch controller {
                    case "hugetlb": #expect(try readFile(dir + "/hugetlb.2MB.limit_in_bytes") == "4194304")
                    case "net_cls": #expect(try readFile(dir + "/net_cls.classid") == "65537")
                    case "net_prio": #expect(try readFile(dir + "/net_prio.ifpriomap").contains("lo 5"))
                    default: break
                    }
                } else {
                    do throws(CgroupError) {
                        try cg.apply(r)
                        Issue.record("\(controller) is not mounted; apply should fail")
                    } catch let e {
                        #expect(e.description.contains("controller \(controller) is not mounted"), "\(e)")
                    }
                }
            }
            // Unset fields of missing controllers are fine.
            try cg.apply(CgroupResources(hugepageLimits: [], networkClassID: 0, rdma: [:]))
        }
    }

    @Test("freeze stops every task of the cgroup, thaw resumes them")
    func freezeThaw() throws {
        try withCgroup { (cg: Cgroup) throws in
            var child: pid_t = 0
            let counter = "/tmp/veil-freeze-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer {
                try? cg.thaw()
                killAndReap(child)
                unlink(counter)
            }
            // /proc's state letter cannot tell a frozen task from a sleeping one (this kernel shows
            // "S" for both), so the test watches progress: a shell that counts into a file.
            child = try spawnShell("i=0; while :; do i=$((i+1)); echo $i > \(counter); sleep 0.01; done", joining: procsFiles(cg))
            func count() -> Int { Int((try? readFile(counter)) ?? "") ?? 0 }
            #expect(eventually { count() >= 3 }, "the counting shell never ran")
            #expect(!cg.isFrozen())
            try cg.freeze()
            #expect(cg.isFrozen())
            let dir = try #require(cg.paths["freezer"])
            #expect(try readFile(dir + "/freezer.state") == "FROZEN")
            let frozenAt = count()
            // An absence can only be watched for a while: 300 ms is about 30 turns of the loop.
            usleep(300_000)
            #expect(count() == frozenAt, "the count moved from \(frozenAt) to \(count()) while frozen")
            try cg.thaw()
            #expect(!cg.isFrozen())
            #expect(try readFile(dir + "/freezer.state") == "THAWED")
            #expect(eventually { count() > frozenAt + 2 }, "the shell did not resume after thaw (count \(count()))")
        }
    }

    @Test("stats of a cgroup with a busy child, in runc's JSON shape")
    func stats() throws {
        try withCgroup { (cg: Cgroup) throws in
            var child: pid_t = 0
            defer { killAndReap(child) }
            try cg.apply(CgroupResources(memoryLimit: 256 << 20, cpuQuota: 2_000, cpuPeriod: 10_000, pidsLimit: 50))
            child = try spawnShell("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; head -c 1000000 /dev/zero > /dev/null",
                                   joining: procsFiles(cg))
            let status = try #require(waitExit(child))
            child = 0
            #expect(exitCode(status) == 0)
            let s = try cg.stats()
            #expect(s.cpu.usage.total > 10_000_000, "at least 10 ms of CPU")
            #expect(s.cpu.usage.user + s.cpu.usage.kernel > 0)
            #expect(s.cpu.usage.percpu.count == Int(sysconf(Int32(_SC_NPROCESSORS_CONF))))
            #expect(s.cpu.usage.percpu.reduce(0, +) > 0)
            #expect(s.cpu.throttling.periods > 0)
            #expect(s.cpu.throttling.throttledPeriods > 0)
            #expect(s.memory.usage.limit == 256 << 20)
            #expect(s.memory.usage.max > 0)
            #expect(!s.memory.raw.isEmpty)
            #expect(s.memory.raw["total_rss"] != nil || s.memory.raw["rss"] != nil)
            #expect(s.pids.limit == 50)
            #expect(s.pids.current == 0)
            #expect(!s.cpuset.cpus.isEmpty)

            let json = try JSONDecoder().decode(JSON.self, from: JSONEncoder().encode(s))
            #expect(Set(json.keys) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"])
            #expect(Set(json["cpu"]["usage"].keys).isSuperset(of: ["total", "percpu", "kernel", "user"]))
            #expect(json["cpu"]["throttling"]["throttledPeriods"] != .null)
            #expect(Set(json["memory"].keys).isSuperset(of: ["usage", "swap", "kernel", "kernelTCP", "raw"]))
            #expect(json["memory"]["usage"]["failcnt"] != .null)
            #expect(json["pids"]["limit"] == .number(50))
        }
    }

    @Test("the OOM killer in an 8 MiB cgroup: the child dies, oom_kill counts it, the eventfd fires")
    func oom() throws {
        try withCgroup { (cg: Cgroup) throws in
            var child: pid_t = 0
            defer { killAndReap(child) }
            let limit: Int64 = 8 << 20
            try cg.apply(CgroupResources(memoryLimit: limit, memorySwap: limit))
            #expect(cg.oomKillCount() == 0)
            let efd = try #require(try cg.makeOOMEventFD())
            defer { close(efd) }
            child = try spawnShell("x=$(head -c 50000000 /dev/zero | tr '\\0' a); exit 0", joining: procsFiles(cg))
            let status = try #require(waitExit(child, timeout: 60))
            child = 0
            #expect(termSignal(status) == SIGKILL, "status \(status)")
            #expect((cg.oomKillCount() ?? 0) >= 1)
            var pfd = pollfd(fd: efd, events: Int16(POLLIN), revents: 0)
            #expect(poll(&pfd, 1, 5_000) == 1)
            var count: UInt64 = 0
            #expect(read(efd, &count, 8) == 8)
            #expect(count >= 1)
        }
    }
}

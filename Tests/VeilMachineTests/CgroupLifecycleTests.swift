import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

@Suite("Cgroup on the real host", .enabled(if: canUseCgroups, "needs root and mounted cgroups"))
struct CgroupLifecycleTests {
    @Test("create, join, limit, list, destroy")
    func lifecycle() throws {
        let root = uniqueTestRoot()
        var child: pid_t = 0
        defer {
            killAndReap(child)
            forceRemove(root: root)
        }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "ignored")
        #expect(cg.exists())
        // Both the intermediate and the leaf were created, in every hierarchy.
        for dir in Set(cg.paths.values) {
            #expect(dir.hasSuffix(root + "/c1"))
            #expect(cg.created.contains(dir))
            #expect(cg.created.contains(parentDirectory(dir)))
        }

        child = try spawnSleep()
        try cg.addProcess(child)
        #expect(try cg.processes().contains(child))
        let procCgroup = try readFile("/proc/\(child)/cgroup")
        if cg.unifiedOnly {
            #expect(procCgroup.contains("0::\(root)/c1"))
        } else {
            #expect(procCgroup.contains("memory:\(root)/c1"))
            #expect(procCgroup.contains("pids:\(root)/c1"))
        }

        let mib64: Int64 = 64 * 1024 * 1024
        try cg.apply(CgroupResources(
            memoryLimit: mib64, cpuShares: 512, cpuQuota: 50_000, cpuPeriod: 100_000, pidsLimit: 10))
        if cg.unifiedOnly {
            let dir = try #require(cg.paths["unified"])
            #expect(try readFile(dir + "/memory.max") == "67108864")
            #expect(try readFile(dir + "/cpu.max") == "50000 100000")
            #expect(try readFile(dir + "/pids.max") == "10")
        } else {
            let mem = try #require(cg.paths["memory"])
            let cpu = try #require(cg.paths["cpu"])
            let pids = try #require(cg.paths["pids"])
            #expect(try readFile(mem + "/memory.limit_in_bytes") == "67108864")
            #expect(try readFile(cpu + "/cpu.cfs_quota_us") == "50000")
            #expect(try readFile(cpu + "/cpu.cfs_period_us") == "100000")
            #expect(try readFile(cpu + "/cpu.shares") == "512")
            #expect(try readFile(pids + "/pids.max") == "10")
        }
        // Unlimited values use each version's spelling.
        try cg.apply(CgroupResources(memoryLimit: -1, cpuQuota: -1, pidsLimit: 0))
        if cg.unifiedOnly {
            let dir = try #require(cg.paths["unified"])
            #expect(try readFile(dir + "/memory.max") == "max")
            #expect(try readFile(dir + "/pids.max") == "max")
        } else {
            #expect(try readFile(try #require(cg.paths["pids"]) + "/pids.max") == "max")
            #expect(try readFile(try #require(cg.paths["cpu"]) + "/cpu.cfs_quota_us") == "-1")
            #expect(try UInt64(readFile(try #require(cg.paths["memory"]) + "/memory.limit_in_bytes")) ?? 0 > UInt64(mib64))
        }

        killAndReap(child)
        child = 0
        try cg.destroy()
        #expect(!cg.exists())
        for dir in cg.created {
            #expect(!SysFS.exists(dir), "\(dir) should be gone")
        }
        // Destroy is idempotent: a second delete after a crash must not fail.
        try cg.destroy()
    }

    /// A sandbox's warden and sentinel end a moment after the container: delete's destroy must
    /// wait for processes on their way out (each through its pidfd), not fail with EBUSY.
    @Test("destroy waits for a member that is exiting, then removes the cgroup")
    func destroyWaitsForExitingMember() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "x")
        let child = try spawnSleep(seconds: "0.3")
        defer { killAndReap(child) }  // reaps the zombie it leaves
        try cg.addProcess(child)
        #expect(try cg.processes() == [child])
        // The member still runs when destroy starts; it exits on its own within the deadline.
        try cg.destroy()
        #expect(!cg.exists())
        for dir in cg.created { #expect(!SysFS.exists(dir), "\(dir) should be gone") }
    }

    @Test("the state file round trip keeps what destroy needs")
    func codable() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "x")
        let data = try JSONEncoder().encode(cg)
        let back = try JSONDecoder().decode(Cgroup.self, from: data)
        #expect(back == cg)
        try back.destroy()
        #expect(!cg.exists())
        for dir in cg.created { #expect(!SysFS.exists(dir)) }
    }

    @Test("cpuset of a new v1 cgroup is inherited so tasks can join")
    func cpusetInherited() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/a/b", containerID: "x")
        defer { try? cg.destroy() }
        guard !cg.unifiedOnly, let dir = cg.paths["cpuset"] else { try Test.cancel("no cgroup v1 cpuset hierarchy on this host") }
        let top = try readFile("/sys/fs/cgroup/cpuset/cpuset.cpus")
        #expect(try readFile(dir + "/cpuset.cpus") == top)
        #expect(try !readFile(dir + "/cpuset.mems").isEmpty)
        try cg.apply(CgroupResources(cpusetCpus: "0", cpusetMems: "0"))
        #expect(try readFile(dir + "/cpuset.cpus") == "0")
    }

    @Test("a refused write names the file and the value")
    func refusedWrite() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "x")
        defer { try? cg.destroy() }
        do throws(CgroupError) {
            try cg.apply(CgroupResources(cpusetCpus: "4096"))
            Issue.record("writing cpu 4096 should fail")
        } catch let error {
            guard case .writeFailed(let path, let value, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path.hasSuffix(root + "/c1/cpuset.cpus"))
            #expect(value == "4096")
            #expect(error.description.contains("\"4096\""))
            #expect(error.description.contains("cpuset.cpus"))
        }
    }

    @Test("v1 device rules: deny all, then allow the listed ones")
    func devicesV1() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "x")
        defer { try? cg.destroy() }
        guard !cg.unifiedOnly, let dir = cg.paths["devices"] else { try Test.cancel("no cgroup v1 devices hierarchy on this host") }
        try cg.apply(CgroupResources(devices: [
            DeviceRule(allow: false, access: "rwm"),
            DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
            DeviceRule(allow: true, type: "c", major: 136, minor: -1, access: "rw"),
        ]))
        let list = try readFile(dir + "/devices.list").split(separator: "\n").map(String.init).sorted()
        #expect(list == ["c 136:* rw", "c 1:3 rwm"])
        // A bad rule is rejected before anything is written.
        #expect(throws: CgroupError.self) {
            try cg.apply(CgroupResources(devices: [DeviceRule(allow: true, type: "x")]))
        }
        #expect(try readFile(dir + "/devices.list").split(separator: "\n").count == 2)
    }

    @Test("relative paths live under the caller's cgroup; nil uses the container id")
    func relativePaths() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        // Pretend the caller sits in <root> in every hierarchy: this process's real memory
        // cgroup belongs to the machine's tooling and must not get children.
        let base = try Cgroup.create(cgroupsPath: root, containerID: "x")
        let layout = try CgroupLayout.detect()
        var own = OwnCgroups(unified: root)
        for h in layout.hierarchies where !h.isUnified {
            for c in h.controllers { own.v1[c] = root }
        }

        let rel = try Cgroup.create(cgroupsPath: "foo/./bar", containerID: "x", layout: layout, own: own)
        let named = try Cgroup.create(cgroupsPath: nil, containerID: "ctr1", layout: layout, own: own)
        let escaping = try Cgroup.create(cgroupsPath: "../../esc", containerID: "x", layout: layout, own: own)
        for h in layout.hierarchies {
            let key = h.isUnified ? "unified" : h.controllers[0]
            #expect(rel.paths[key] == h.mountpoint + root + "/foo/bar")
            #expect(named.paths[key] == h.mountpoint + root + "/ctr1")
            // ".." cannot climb out of the caller's cgroup.
            #expect(escaping.paths[key] == h.mountpoint + root + "/esc")
            #expect(rel.created.contains(h.mountpoint + root + "/foo"))
            #expect(!rel.created.contains(h.mountpoint + root))
        }
        try rel.destroy()
        try named.destroy()
        try escaping.destroy()
        // The caller's pre-existing cgroup survives its children's destroy.
        #expect(base.exists())
        try base.destroy()
        #expect(!base.exists())
    }

    @Test("an intermediate directory shared with another container is left in place")
    func sharedIntermediate() throws {
        let root = uniqueTestRoot()
        defer { forceRemove(root: root) }
        let a = try Cgroup.create(cgroupsPath: root + "/a", containerID: "a")
        let b = try Cgroup.create(cgroupsPath: root + "/b", containerID: "b")
        try a.destroy()
        #expect(!a.exists())
        #expect(b.exists())
        try b.destroy()
        #expect(!b.exists())
    }

    @Test("destroy with a live process fails clearly after retrying")
    func destroyBusy() throws {
        let root = uniqueTestRoot()
        var child: pid_t = 0
        defer {
            killAndReap(child)
            forceRemove(root: root)
        }
        let cg = try Cgroup.create(cgroupsPath: root + "/c1", containerID: "x")
        child = try spawnSleep()
        try cg.addProcess(child)
        let start = monotonicSeconds()
        do throws(CgroupError) {
            try cg.destroy()
            Issue.record("destroy should fail while \(child) is inside")
        } catch let error {
            guard case .removeBusy(let path, let pids, let err) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path.hasSuffix(root + "/c1"))
            #expect(pids.contains(child))
            #expect(err == EBUSY)
            #expect(error.description.contains(path))
        }
        #expect(monotonicSeconds() - start >= 0.9)
        #expect(cg.exists())
        killAndReap(child)
        child = 0
        try cg.destroy()
        #expect(!cg.exists())
        for dir in cg.created { #expect(!SysFS.exists(dir)) }
    }
}

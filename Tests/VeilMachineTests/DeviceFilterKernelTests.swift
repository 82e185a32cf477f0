import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

/// The device filter in the real kernel: loaded through the verifier and attached to a cgroup2
/// directory (the program's shape is unit-tested in VeilCgroupsTests).
@Suite("cgroup v2 device filter in the kernel")
struct DeviceFilterKernelTests {
    typealias I = BPFInstruction

    @Test("the kernel verifier accepts the program", .enabled(if: getuid() == 0 || veilRequired, "needs root (BPF_PROG_LOAD)"))
    func loads() throws {
        // Deny all, then runc's default allow list: what veil's create passes.
        let defaults = [DeviceRule(allow: false, type: "a", access: "rwm"), DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
                        DeviceRule(allow: true, type: "c", major: 136, minor: -1, access: "rwm"), DeviceRule(allow: true, type: "c", major: -1, minor: -1, access: "m"),
                        DeviceRule(allow: true, type: "b", major: -1, minor: -1, access: "m")]
        let fd = try DeviceFilter.load(try DeviceFilter.build(defaults))
        #expect(fd >= 0)
        close(fd)
        let fd2 = try DeviceFilter.load(try DeviceFilter.build([DeviceRule(allow: true, type: "a"),
                                                                 DeviceRule(allow: false, type: "b", major: 8, access: "rw")]))
        close(fd2)
        // A program the verifier rejects (no exit) comes back with its log.
        do throws(CgroupError) {
            _ = try DeviceFilter.load([I(code: 0xb7, dst: 0, imm: 0)])
            Issue.record("a program without exit must be refused")
        } catch let e {
            guard case .bpf(let op, _, _, let log) = e else { Issue.record("unexpected \(e)"); return }
            #expect(op == "BPF_PROG_LOAD")
            #expect(!log.isEmpty)
        }
    }

    @Test("attached to a cgroup2 directory it denies a write to /dev/null, and is replaced on update",
          .enabled(if: canUseCgroups, "needs root and mounted cgroups"))
    func attachAndEnforce() throws {
        let root = uniqueTestRoot()
        var child: pid_t = 0
        defer {
            killAndReap(child)
            forceRemove(root: root)
        }
        let cg = try Cgroup.create(cgroupsPath: root + "/dev", containerID: "x")
        defer { try? cg.destroy() }
        // A legacy (v1-only) layout has no cgroup2 directory to attach to: another layout, not a missing feature.
        guard let dir = cg.paths["unified"] else { try Test.cancel("no cgroup2 hierarchy on this host (v1-only layout)") }
        // Apply through the v2 driver, as on a unified host.
        let v2 = Cgroup(paths: ["unified": dir], created: [], unifiedOnly: true)
        try v2.apply(CgroupResources(devices: [
            DeviceRule(allow: false, type: "a"),
            DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "r"),
        ]))
        #expect(try DeviceFilter.attachedPrograms(cgroup: dir).count == 1)

        let script = "cat /dev/null || exit 3; if echo x > /dev/null; then exit 4; fi; exit 0"
        child = try spawnShell(script, joining: [dir + "/cgroup.procs"])
        let status = try #require(waitExit(child))
        child = 0
        #expect(exitCode(status) == 0, "status \(status): 3 = read denied, 4 = write allowed")

        // Update: the old program goes, the new one allows the write.
        try v2.apply(CgroupResources(devices: [DeviceRule(allow: true, type: "a")]))
        #expect(try DeviceFilter.attachedPrograms(cgroup: dir).count == 1)
        child = try spawnShell("echo x > /dev/null || exit 5; exit 0", joining: [dir + "/cgroup.procs"])
        let status2 = try #require(waitExit(child))
        child = 0
        #expect(exitCode(status2) == 0)
        try DeviceFilter.detachAll(cgroup: dir)
        #expect(try DeviceFilter.attachedPrograms(cgroup: dir).isEmpty)
    }
}

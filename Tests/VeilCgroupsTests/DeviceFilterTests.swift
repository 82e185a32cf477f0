import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

@Suite("cgroup v2 device filter (eBPF)")
struct DeviceFilterTests {
    typealias I = BPFInstruction

    /// The rules veil's create passes: deny all, then runc's default allow list.
    static let defaultRules: [DeviceRule] = [
        DeviceRule(allow: false, type: "a", access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 136, minor: -1, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: -1, minor: -1, access: "m"),
        DeviceRule(allow: true, type: "b", major: -1, minor: -1, access: "m"),
    ]

    @Test("instruction shape for a known rule set")
    func shape() throws {
        let p = try DeviceFilter.build(Self.defaultRules)
        // 6 prologue + (b *:* m: type, mov, and, jne, mov r0, exit = 6) + (c *:* m: 6)
        // + (c 136:* rwm: type, major, mov, exit = 4) + (c 1:3 rwm: type, major, minor, mov, exit = 5) + 2.
        #expect(p.count == 6 + 6 + 6 + 4 + 5 + 2)
        #expect(Array(p.prefix(6)) == [
            I(code: 0x61, dst: 2, src: 1, off: 0), I(code: 0x54, dst: 2, imm: 0xFFFF),
            I(code: 0x61, dst: 3, src: 1, off: 0), I(code: 0x74, dst: 3, imm: 16),
            I(code: 0x61, dst: 4, src: 1, off: 4), I(code: 0x61, dst: 5, src: 1, off: 8),
        ])
        // The last rule comes first: b *:* m.
        #expect(Array(p[6..<12]) == [
            I(code: 0x55, dst: 2, off: 5, imm: 1),          // not a block device: skip the block
            I(code: 0xbc, dst: 1, src: 3), I(code: 0x54, dst: 1, imm: 1),
            I(code: 0x5d, dst: 1, src: 3, off: 2),          // asks for more than mknod: skip
            I(code: 0xb7, dst: 0, imm: 1), I(code: 0x95),
        ])
        // c 1:3 rwm, just before the default.
        #expect(Array(p[22..<27]) == [
            I(code: 0x55, dst: 2, off: 4, imm: 2), I(code: 0x55, dst: 4, off: 3, imm: 1),
            I(code: 0x55, dst: 5, off: 2, imm: 3), I(code: 0xb7, dst: 0, imm: 1), I(code: 0x95),
        ])
        // Default deny (the "a" rule).
        #expect(Array(p.suffix(2)) == [I(code: 0xb7, dst: 0, imm: 0), I(code: 0x95)])
    }

    @Test("type a resets; a deny rule matches any denied access")
    func resetAndDeny() throws {
        let p = try DeviceFilter.build([
            DeviceRule(allow: true, type: "c", major: 1, minor: 3),   // dropped by the reset below
            DeviceRule(allow: true, type: "a"),
            DeviceRule(allow: false, type: "c", major: 1, minor: 5, access: "w"),
        ])
        #expect(p.count == 6 + 8 + 2)
        #expect(p[8] == I(code: 0x54, dst: 1, imm: 4))
        #expect(p[9] == I(code: 0x15, dst: 1, off: 4, imm: 0))   // no write requested: next
        #expect(p[12] == I(code: 0xb7, dst: 0, imm: 0))
        #expect(Array(p.suffix(2)) == [I(code: 0xb7, dst: 0, imm: 1), I(code: 0x95)])   // default allow
        // No rules at all: deny everything (runc's default).
        #expect(try DeviceFilter.build([]).count == 8)
        #expect(throws: CgroupError.self) { try DeviceFilter.build([DeviceRule(allow: true, type: "c", major: 1 << 40)]) }
        #expect(throws: CgroupError.self) { try DeviceFilter.build([DeviceRule(allow: true, type: "c", access: "x")]) }
    }

    @Test("the kernel verifier accepts the program", .enabled(if: getuid() == 0))
    func loads() throws {
        let fd = try DeviceFilter.load(try DeviceFilter.build(Self.defaultRules))
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
          .enabled(if: canUseCgroups && SysFS.exists("/sys/fs/cgroup/unified/cgroup.procs")
                   || canUseCgroups && (try? CgroupLayout.detect())?.isUnifiedOnly == true))
    func attachAndEnforce() throws {
        let root = uniqueTestRoot()
        var child: pid_t = 0
        defer {
            killAndReap(child)
            forceRemove(root: root)
        }
        let cg = try Cgroup.create(cgroupsPath: root + "/dev", containerID: "x")
        defer { try? cg.destroy() }
        let dir = try #require(cg.paths["unified"])
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

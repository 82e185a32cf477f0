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
}

import CVeilLinux
import FoundationEssentials
import Glibc

/// One eBPF instruction (the kernel's struct bpf_insn).
public struct BPFInstruction: Sendable, Equatable, CustomStringConvertible {
    public var code: UInt8
    public var dst: UInt8
    public var src: UInt8
    public var off: Int16
    public var imm: Int32

    public init(code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) {
        self.code = code
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm
    }

    public var description: String {
        "{code: 0x\(String(code, radix: 16)), dst: r\(dst), src: r\(src), off: \(off), imm: \(imm)}"
    }

    // Opcodes used by the device filter (linux/bpf_common.h + linux/bpf.h).
    static let ldxW: UInt8 = 0x61       // BPF_LDX | BPF_W | BPF_MEM: dst = *(u32 *)(src + off)
    static let and32K: UInt8 = 0x54     // BPF_ALU | BPF_AND | BPF_K
    static let rsh32K: UInt8 = 0x74     // BPF_ALU | BPF_RSH | BPF_K
    static let mov32X: UInt8 = 0xbc     // BPF_ALU | BPF_MOV | BPF_X
    static let mov64K: UInt8 = 0xb7     // BPF_ALU64 | BPF_MOV | BPF_K
    static let jneK: UInt8 = 0x55       // BPF_JMP | BPF_JNE | BPF_K
    static let jneX: UInt8 = 0x5d       // BPF_JMP | BPF_JNE | BPF_X
    static let jeqK: UInt8 = 0x15       // BPF_JMP | BPF_JEQ | BPF_K
    static let exit: UInt8 = 0x95       // BPF_JMP | BPF_EXIT
}

/// cgroup v2 device control: the OCI device rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
/// program and attached to the container's cgroup directory (the v2 replacement for
/// devices.allow/devices.deny).
///
/// Semantics match the v1 controller veil drives: a rule of type "a" resets everything (deny
/// "a" = deny by default, allow "a" = allow by default) and drops the rules before it; among the
/// rules after the last reset the last matching one decides. Without any type "a" rule the
/// default is deny (as runc). An allow rule matches when every requested access is in its
/// access set; a deny rule matches when any requested access is in its set.
public enum DeviceFilter {
    /// bpf_cgroup_dev_ctx: u32 access_type (device type in the low 16 bits, access in the
    /// high 16), u32 major, u32 minor.
    static let devBlock: Int32 = 1   // BPF_DEVCG_DEV_BLOCK
    static let devChar: Int32 = 2    // BPF_DEVCG_DEV_CHAR
    static let accMknod: Int32 = 1   // BPF_DEVCG_ACC_MKNOD
    static let accRead: Int32 = 2    // BPF_DEVCG_ACC_READ
    static let accWrite: Int32 = 4   // BPF_DEVCG_ACC_WRITE

    public static let license = "Apache"

    /// Compiles `rules` (OCI order) to eBPF. Throws on an invalid rule before anything is loaded.
    public static func build(_ rules: [DeviceRule]) throws(CgroupError) -> [BPFInstruction] {
        for rule in rules { _ = try rule.cgroupV1Line() }  // type, access and numbers validated once
        var defaultAllow = false
        var effective = rules
        if let reset = rules.lastIndex(where: { $0.type == "a" }) {
            defaultAllow = rules[reset].allow
            effective = Array(rules[(reset + 1)...])
        }
        typealias I = BPFInstruction
        var prog: [BPFInstruction] = [
            I(code: I.ldxW, dst: 2, src: 1, off: 0),           // r2 = ctx->access_type
            I(code: I.and32K, dst: 2, imm: 0xFFFF),            // r2 = device type
            I(code: I.ldxW, dst: 3, src: 1, off: 0),           // r3 = ctx->access_type
            I(code: I.rsh32K, dst: 3, imm: 16),                // r3 = requested access
            I(code: I.ldxW, dst: 4, src: 1, off: 4),           // r4 = major
            I(code: I.ldxW, dst: 5, src: 1, off: 8),           // r5 = minor
        ]
        // First match wins in the program, so the last rule goes first.
        for rule in effective.reversed() {
            prog += try block(for: rule)
        }
        prog.append(I(code: I.mov64K, dst: 0, imm: defaultAllow ? 1 : 0))
        prog.append(I(code: I.exit))
        return prog
    }

    /// The instructions testing one rule; every failed test jumps past the block.
    static func block(for rule: DeviceRule) throws(CgroupError) -> [BPFInstruction] {
        typealias I = BPFInstruction
        // Jumps are emitted with a placeholder offset and patched once the block length is known.
        var body: [BPFInstruction] = []
        var jumps: [Int] = []
        func jump(_ insn: BPFInstruction) {
            jumps.append(body.count)
            body.append(insn)
        }
        jump(I(code: I.jneK, dst: 2, imm: rule.type == "b" ? devBlock : devChar))
        var bits: Int32 = 0
        for c in rule.access {
            switch c {
            case "r": bits |= accRead
            case "w": bits |= accWrite
            default: bits |= accMknod
            }
        }
        if bits != accRead | accWrite | accMknod {
            body.append(I(code: I.mov32X, dst: 1, src: 3))           // r1 = requested
            body.append(I(code: I.and32K, dst: 1, imm: bits))        // r1 &= rule's access
            if rule.allow {
                jump(I(code: I.jneX, dst: 1, src: 3))                // requested not a subset: next
            } else {
                jump(I(code: I.jeqK, dst: 1, imm: 0))                // nothing requested is denied: next
            }
        }
        if let major = try number(rule.major, "devices.major") {
            jump(I(code: I.jneK, dst: 4, imm: major))
        }
        if let minor = try number(rule.minor, "devices.minor") {
            jump(I(code: I.jneK, dst: 5, imm: minor))
        }
        body.append(I(code: I.mov64K, dst: 0, imm: rule.allow ? 1 : 0))
        body.append(I(code: I.exit))
        for j in jumps {
            body[j].off = Int16(body.count - (j + 1))
        }
        return body
    }

    /// nil for a wildcard; the kernel compares 64-bit registers with a sign-extended 32-bit
    /// immediate, so numbers above Int32.max cannot be matched (no Linux device has one).
    private static func number(_ n: Int64?, _ field: String) throws(CgroupError) -> Int32? {
        guard let n, n != -1 else { return nil }
        guard n >= 0, n <= Int64(Int32.max) else {
            throw CgroupError.invalidResource(field: field, value: String(n), reason: "must be -1 (any) or 0...\(Int32.max)")
        }
        return Int32(n)
    }

    /// BPF_PROG_LOAD; returns the program fd (close-on-exec). A verifier refusal is reported
    /// with the verifier's log.
    public static func load(_ program: [BPFInstruction], subject: String = "device filter") throws(CgroupError) -> Int32 {
        let insns = program.map {
            veil_bpf_insn(code: $0.code, regs: ($0.dst & 0x0f) | ($0.src << 4), off: $0.off, imm: $0.imm)
        }
        let fd = insns.withUnsafeBufferPointer { buf in
            veil_bpf_load_device_program(buf.baseAddress, UInt32(buf.count), license, nil, 0)
        }
        if fd >= 0 { return fd }
        // Load again with the log on to say why.
        var log = [CChar](repeating: 0, count: 64 * 1024)
        let again = insns.withUnsafeBufferPointer { buf in
            log.withUnsafeMutableBufferPointer { l in
                veil_bpf_load_device_program(buf.baseAddress, UInt32(buf.count), license, l.baseAddress, UInt32(l.count))
            }
        }
        if again >= 0 { return again }
        let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CgroupError.bpf(operation: "BPF_PROG_LOAD", path: subject, errno: -fd, log: trimmed(text))
    }

    /// Ids of the BPF_CGROUP_DEVICE programs attached directly to the cgroup directory.
    public static func attachedPrograms(cgroup dir: String) throws(CgroupError) -> [UInt32] {
        let fd = try openDirectory(dir)
        defer { close(fd) }
        return try query(fd, dir)
    }

    private static func query(_ fd: Int32, _ dir: String) throws(CgroupError) -> [UInt32] {
        var capacity: UInt32 = 16
        while true {
            var ids = [UInt32](repeating: 0, count: Int(capacity))
            var count = capacity
            let rc = ids.withUnsafeMutableBufferPointer { veil_bpf_query_device_programs(fd, $0.baseAddress, &count) }
            if rc == -ENOSPC && count > capacity {
                capacity = count
                continue
            }
            if rc < 0 { throw CgroupError.bpf(operation: "BPF_PROG_QUERY", path: dir, errno: -rc, log: "") }
            return Array(ids.prefix(Int(min(count, capacity))))
        }
    }

    /// Loads `program` and makes it the only device program of `dir`: the new one is attached
    /// (BPF_F_ALLOW_MULTI) before the old ones are detached, so there is no moment without a
    /// filter.
    public static func attach(_ program: [BPFInstruction], toCgroup dir: String) throws(CgroupError) {
        let cgroupFD = try openDirectory(dir)
        defer { close(cgroupFD) }
        let old = try query(cgroupFD, dir)
        let progFD = try load(program, subject: dir)
        defer { close(progFD) }
        let rc = veil_bpf_attach_device_program(cgroupFD, progFD, veil_bpf_flag_allow_multi())
        if rc < 0 { throw CgroupError.bpf(operation: "BPF_PROG_ATTACH", path: dir, errno: -rc, log: "") }
        for id in old {
            let oldFD = veil_bpf_prog_fd_by_id(id)
            if oldFD == -ENOENT { continue }  // already gone
            if oldFD < 0 { throw CgroupError.bpf(operation: "BPF_PROG_GET_FD_BY_ID \(id)", path: dir, errno: -oldFD, log: "") }
            let d = veil_bpf_detach_device_program(cgroupFD, oldFD)
            close(oldFD)
            if d < 0 && d != -ENOENT {
                throw CgroupError.bpf(operation: "BPF_PROG_DETACH \(id)", path: dir, errno: -d, log: "")
            }
        }
    }

    /// Detaches every device program of `dir` (tests; a removed cgroup drops them by itself).
    public static func detachAll(cgroup dir: String) throws(CgroupError) {
        let cgroupFD = try openDirectory(dir)
        defer { close(cgroupFD) }
        for id in try query(cgroupFD, dir) {
            let fd = veil_bpf_prog_fd_by_id(id)
            guard fd >= 0 else { continue }
            let d = veil_bpf_detach_device_program(cgroupFD, fd)
            close(fd)
            if d < 0 && d != -ENOENT {
                throw CgroupError.bpf(operation: "BPF_PROG_DETACH \(id)", path: dir, errno: -d, log: "")
            }
        }
    }

    private static func openDirectory(_ dir: String) throws(CgroupError) -> Int32 {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CgroupError.io(operation: "open", path: dir, errno: errno) }
        return fd
    }
}

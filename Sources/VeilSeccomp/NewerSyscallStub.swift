import CSeccomp
import Glibc
import VeilSpec

/// A few BPF instructions put in front of libseccomp's filter: a system call whose number is above
/// every one the profile names for that architecture fails with ENOSYS instead of the default
/// action. A profile (Docker's, containerd's) written before a system call existed would otherwise
/// answer it with EPERM, which libc takes as a real refusal rather than as "this kernel is older,
/// fall back" (glibc's clone3, faccessat2, fchmodat2). runc does the same. The stub decides on the
/// architecture and number only, so the kernel's per-syscall verdict cache still applies.
enum NewerSyscallStub {
    struct Limit: Equatable {
        /// AUDIT_ARCH_* as the kernel reports it in seccomp_data.arch.
        var audit: UInt32
        /// The largest number named for that ABI (x32's include the x32 bit).
        var newest: UInt32
        var isX32: Bool
    }

    static let x32Bit: UInt32 = 0x4000_0000
    /// AUDIT_ARCH_X86_64, which is also libseccomp's token for it; x32's token is libseccomp's own
    /// (EM_X86_64 | __AUDIT_ARCH_LE): the kernel reports x32 calls as x86-64 ones with the x32 bit.
    static let auditX86_64: UInt32 = 0xC000_003E
    static let tokenX32: UInt32 = 0x4000_003E

    /// The newest system call the profile names, per architecture of the filter (libseccomp tokens);
    /// an architecture the profile names nothing for is left out (its calls all go to the filter).
    static func newest(of profile: LinuxSeccomp, arches: [UInt32]) -> [Limit] {
        var limits: [Limit] = []
        for token in arches {
            let isX32 = token == tokenX32
            let audit = isX32 ? auditX86_64 : token
            if limits.contains(where: { $0.audit == audit && $0.isX32 == isX32 }) { continue }
            var newest: Int32 = -1
            for call in profile.syscalls ?? [] {
                for name in call.names {
                    let number = seccomp_syscall_resolve_name_arch(token, name)
                    if number > newest { newest = number }  // negative: unknown, or multiplexed (socketcall)
                }
            }
            if newest >= 0 { limits.append(Limit(audit: audit, newest: UInt32(newest), isX32: isX32)) }
        }
        return limits
    }

    /// The stub's instructions in the host's byte order; it falls through to the program after it.
    static func instructions(newest limits: [Limit]) -> [UInt8] {
        guard !limits.isEmpty else { return [] }
        // Labels: each architecture's block, ENOSYS, and the filter that follows the stub.
        enum Target { case next, skip(Int), block(UInt32), enosys, filter }
        struct Op { var code: UInt16; var k: UInt32; var whenTrue: Target; var whenFalse: Target }
        let loadArch = Op(code: 0x20 /* ld w abs */, k: 4, whenTrue: .next, whenFalse: .next)
        let loadNumber = Op(code: 0x20, k: 0, whenTrue: .next, whenFalse: .next)
        func jumpIfAbove(_ k: UInt32) -> Op { Op(code: 0x25 /* jgt k */, k: k, whenTrue: .enosys, whenFalse: .filter) }

        let audits = limits.reduce(into: [UInt32]()) { if !$0.contains($1.audit) { $0.append($1.audit) } }
        var ops: [Op] = [loadArch]
        for audit in audits { ops.append(Op(code: 0x15 /* jeq k */, k: audit, whenTrue: .block(audit), whenFalse: .next)) }
        ops.append(Op(code: 0x05 /* ja */, k: 0, whenTrue: .filter, whenFalse: .filter))
        var blockStart: [UInt32: Int] = [:]
        for audit in audits {
            blockStart[audit] = ops.count
            ops.append(loadNumber)
            let native = limits.first { $0.audit == audit && !$0.isX32 }
            let x32 = limits.first { $0.audit == audit && $0.isX32 }
            if audit == auditX86_64 {
                // x32 calls carry the x32 bit under the x86-64 audit arch.
                if let x32 {
                    ops.append(Op(code: 0x45 /* jset k */, k: x32Bit, whenTrue: .next, whenFalse: .skip(1)))
                    ops.append(jumpIfAbove(x32.newest))
                } else {
                    ops.append(Op(code: 0x45, k: x32Bit, whenTrue: .filter, whenFalse: .next))
                }
                if let native { ops.append(jumpIfAbove(native.newest)) } else { ops.append(Op(code: 0x05, k: 0, whenTrue: .filter, whenFalse: .filter)) }
            } else if let native {
                ops.append(jumpIfAbove(native.newest))
            }
        }
        let enosys = ops.count
        ops.append(Op(code: 0x06 /* ret k */, k: 0x0005_0000 | UInt32(ENOSYS), whenTrue: .next, whenFalse: .next))
        let filter = ops.count

        var bytes: [UInt8] = []
        for (index, op) in ops.enumerated() {
            func offset(_ target: Target) -> Int {
                switch target {
                case .next: return 0
                case .skip(let count): return count
                case .block(let audit): return (blockStart[audit] ?? index + 1) - index - 1
                case .enosys: return enosys - index - 1
                case .filter: return filter - index - 1
                }
            }
            var k = op.k
            var jt: UInt8 = 0, jf: UInt8 = 0
            if op.code == 0x05 {
                k = UInt32(offset(.filter))
            } else if op.code & 0x07 == 0x05 {  // conditional jumps: 8-bit offsets (the stub is short)
                jt = UInt8(offset(op.whenTrue))
                jf = UInt8(offset(op.whenFalse))
            }
            withUnsafeBytes(of: op.code.littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(jt)
            bytes.append(jf)
            withUnsafeBytes(of: k.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}

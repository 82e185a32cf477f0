import CVeilLinux
import Glibc
import Testing
import VeilSandbox
import VeilSeccomp
import VeilSpec

/// The argument filters of socket(2), setsockopt(2) and ioctl(2) (issue #11, point 4): the
/// compiled policy installed in a forked child, each case a raw system call whose errno is checked.
@Suite(.serialized) struct ArgumentFilterTests {
    /// What a case must return under the policy.
    enum Expect: CustomStringConvertible {
        /// The filter let it through: success, or one of these errnos from the kernel itself.
        case reachesKernel(Set<Int32>)
        /// The filter refused it with this errno.
        case refused(Int32)
        var description: String {
            switch self {
            case .reachesKernel(let codes): return codes.isEmpty ? "success" : "success or \(codes.sorted())"
            case .refused(let code): return "errno \(code)"
            }
        }
        func holds(_ result: Int) -> Bool {
            switch self {
            case .reachesKernel(let codes): return result >= 0 || codes.contains(Int32(-result))
            case .refused(let code): return result == -Int(code)
            }
        }
    }

    /// One raw call; `fdOf` names an earlier case whose result (a descriptor) becomes argument 0.
    struct Case {
        let what: String
        let number: Int
        let args: (Int, Int, Int, Int, Int, Int)
        let fdOf: Int?
        let expect: Expect
    }

    /// Raw system call results (value or -errno) of `cases` in a child under the sandbox policy.
    /// The child only makes raw calls on memory prepared before fork (the test process has threads).
    static func run(_ cases: [Case], profile: LinuxSeccomp = SandboxPolicy.profile) throws -> [Int] {
        let program = try SeccompProgram.compile(profile, field: "sandbox policy")
        let calls = UnsafeMutableBufferPointer<(Int, Int, Int, Int, Int, Int, Int, Int)>.allocate(capacity: cases.count)
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: cases.count)
        defer { calls.deallocate(); results.deallocate() }
        for (i, c) in cases.enumerated() {
            calls[i] = (c.number, c.args.0, c.args.1, c.args.2, c.args.3, c.args.4, c.args.5, c.fdOf ?? -1)
            results[i] = -Int(ENODATA)
        }
        var channel: [Int32] = [0, 0]
        guard pipe(&channel) == 0 else { throw TestFailure("pipe: errno \(errno)") }
        let count = UInt16(program.instructionCount), flags = program.filterFlags
        let pid = program.filter.withUnsafeBytes { filter -> pid_t in
            let pid = fork()
            guard pid == 0, let base = filter.baseAddress else { return pid }
            close(channel[0])
            // prctl(PR_SET_NO_NEW_PRIVS, 1) (x86-64 raw call): without CAP_SYS_ADMIN the kernel
            // installs a filter only under no_new_privs; with it the test runs as any user.
            if veil_raw_syscall(157, 38, 1, 0, 0, 0, 0) != 0 { _exit(202) }
            if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { _exit(200) }
            for i in 0..<calls.count {
                let c = calls[i]
                let first = c.7 >= 0 ? results[c.7] : c.1
                results[i] = veil_raw_syscall(c.0, first, c.2, c.3, c.4, c.5, c.6)
            }
            let bytes = results.count * MemoryLayout<Int>.size
            _exit(write(channel[1], results.baseAddress, bytes) == bytes ? 0 : 201)
        }
        close(channel[1])
        defer { close(channel[0]) }
        guard pid > 0 else { throw TestFailure("fork: errno \(errno)") }
        var status: Int32 = 0
        let bytes = results.count * MemoryLayout<Int>.size
        var got = 0
        while got < bytes {
            let n = read(channel[0], UnsafeMutableRawPointer(results.baseAddress!) + got, bytes - got)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard got == bytes, status == 0 else { throw TestFailure("the child failed (status \(status), \(got) of \(bytes) bytes)") }
        return Array(results)
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ text: String) { description = text }
    }

    static func check(_ cases: [Case]) throws {
        let results = try run(cases)
        for (c, result) in zip(cases, results) {
            #expect(c.expect.holds(result), "\(c.what): got \(result < 0 ? "errno \(-result)" : "\(result)"), expected \(c.expect)")
        }
    }

    // x86-64 numbers (the policy is x86-64 only).
    static let socketCall = 41, setsockoptCall = 54, ioctlCall = 16
    static let highBits = 1 << 32

    static func socket(_ what: String, _ family: Int, _ type: Int, _ proto: Int, _ expect: Expect) -> Case {
        Case(what: what, number: socketCall, args: (family, type, proto, 0, 0, 0), fdOf: nil, expect: expect)
    }

    @Test func socketFamiliesTypesAndProtocols() throws {
        let inet = Int(AF_INET), inet6 = Int(AF_INET6)
        let stream = Int(SOCK_STREAM.rawValue), dgram = Int(SOCK_DGRAM.rawValue)
        let flags = Int(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let pingErrors: Set<Int32> = [EACCES]   // ping_group_range may exclude root's group
        try Self.check([
            Self.socket("AF_INET stream 0 with NONBLOCK|CLOEXEC", inet, stream | flags, 0, .reachesKernel([])),
            Self.socket("AF_INET stream TCP", inet, stream, 6, .reachesKernel([])),
            Self.socket("AF_INET6 stream TCP", inet6, stream, 6, .reachesKernel([])),
            Self.socket("AF_INET dgram UDP", inet, dgram, 17, .reachesKernel([])),
            Self.socket("AF_INET6 dgram 0", inet6, dgram | flags, 0, .reachesKernel([])),
            Self.socket("AF_INET ping", inet, dgram, 1, .reachesKernel(pingErrors)),
            Self.socket("AF_INET6 ping", inet6, dgram, 58, .reachesKernel(pingErrors)),
            Self.socket("AF_UNIX stream", Int(AF_UNIX), stream, 0, .reachesKernel([])),
            Self.socket("AF_NETLINK route", Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 0, .reachesKernel([])),
            Self.socket("MPTCP", inet, stream, 262, .refused(EPROTONOSUPPORT)),
            Self.socket("SCTP stream", inet6, stream, 132, .refused(EPROTONOSUPPORT)),
            Self.socket("L2TP", inet, dgram, 115, .refused(EPROTONOSUPPORT)),
            Self.socket("UDP-Lite (UDP's own code; CPython's test_socket needs it)", inet6, dgram, 136, .reachesKernel([])),
            Self.socket("UDP-Lite over a stream", inet, stream, 136, .refused(EPROTONOSUPPORT)),
            Self.socket("SMC over AF_INET", inet, stream, 256, .refused(EPROTONOSUPPORT)),
            Self.socket("ICMPv6 over AF_INET", inet, dgram, 58, .refused(EPROTONOSUPPORT)),
            Self.socket("UDP over a stream", inet, stream, 17, .refused(EPROTONOSUPPORT)),
            Self.socket("TCP with high bits the kernel drops", inet, stream, 6 | Self.highBits, .refused(EPROTONOSUPPORT)),
            Self.socket("SOCK_SEQPACKET over IP", inet, Int(SOCK_SEQPACKET.rawValue), 0, .refused(ESOCKTNOSUPPORT)),
            Self.socket("DCCP", inet, 6, 33, .refused(ESOCKTNOSUPPORT)),
            Self.socket("SOCK_RAW", inet, Int(SOCK_RAW.rawValue) | flags, 1, .refused(EPERM)),
            Self.socket("AF_PACKET", Int(AF_PACKET), Int(SOCK_RAW.rawValue), 0x0300, .refused(EPERM)),
            Self.socket("AF_NETLINK netfilter", Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 12, .refused(EPROTONOSUPPORT)),
            Self.socket("AF_NETLINK xfrm", Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 6, .refused(EPROTONOSUPPORT)),
            Self.socket("AF_KEY", 15, Int(SOCK_RAW.rawValue), 2, .refused(EAFNOSUPPORT)),
            Self.socket("AF_RDS", 21, Int(SOCK_SEQPACKET.rawValue), 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_TIPC", 30, Int(SOCK_RDM.rawValue), 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_ALG", 38, Int(SOCK_SEQPACKET.rawValue), 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_VSOCK", 40, stream, 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_SMC", 43, stream, 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_XDP", 44, Int(SOCK_RAW.rawValue), 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_UNSPEC", 0, stream, 0, .refused(EAFNOSUPPORT)),
            Self.socket("AF_INET with high bits the kernel drops", inet | Self.highBits, stream, 0, .refused(EAFNOSUPPORT)),
        ])
    }

    @Test func setsockoptRefusesTheExploitOptions() throws {
        let one = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { one.deallocate() }
        one.initialize(repeating: 0, count: 64)
        one.pointee = 1
        let pointer = Int(bitPattern: one)
        let tcp = Self.socket("TCP socket", Int(AF_INET), Int(SOCK_STREAM.rawValue), 0, .reachesKernel([]))
        let udp = Self.socket("UDP socket", Int(AF_INET), Int(SOCK_DGRAM.rawValue), 0, .reachesKernel([]))
        let tcp6 = Self.socket("TCP6 socket", Int(AF_INET6), Int(SOCK_STREAM.rawValue), 0, .reachesKernel([]))
        func option(_ what: String, on socket: Int, _ level: Int, _ name: Int, size: Int = 4, _ expect: Expect) -> Case {
            Case(what: what, number: Self.setsockoptCall, args: (0, level, name, pointer, size, 0), fdOf: socket, expect: expect)
        }
        try Self.check([
            tcp, udp, tcp6,
            option("SO_REUSEADDR", on: 0, 1, 2, .reachesKernel([])),
            option("IP_TOS", on: 0, 0, 1, .reachesKernel([])),
            option("TCP_NODELAY", on: 0, 6, 1, .reachesKernel([])),
            option("TCP_KEEPIDLE", on: 0, 6, 4, .reachesKernel([])),
            option("TCP_ULP", on: 0, 6, 31, .refused(ENOPROTOOPT)),
            option("TCP_ULP with high bits the kernel drops", on: 0, 6, 31 | Self.highBits, .refused(ENOPROTOOPT)),
            option("TCP_ULP as a negative int sign-extended", on: 0, 6, Int(bitPattern: 0xffff_ffff_0000_001f), .refused(ENOPROTOOPT)),
            option("IPT_SO_SET_REPLACE", on: 0, 0, 64, size: 256, .refused(EPERM)),
            option("ARPT_SO_SET_REPLACE", on: 0, 0, 96, size: 256, .refused(EPERM)),
            option("EBT_SO_SET_ENTRIES", on: 0, 0, 128, size: 256, .refused(EPERM)),
            option("IP_VS_SO_SET_ADD", on: 0, 0, 1088 + 2, size: 256, .refused(EPERM)),
            option("IP_XFRM_POLICY", on: 0, 0, 17, size: 256, .refused(EPERM)),
            option("UDP_ENCAP", on: 1, 17, 100, .refused(ENOPROTOOPT)),
            option("UDP_SEGMENT", on: 1, 17, 103, .reachesKernel([])),
            option("UDP_ENCAP at SOL_UDPLITE", on: 1, 136, 100, .refused(ENOPROTOOPT)),
            option("IPV6_V6ONLY", on: 2, 41, 26, .reachesKernel([])),
            option("IP6T_SO_SET_REPLACE", on: 2, 41, 64, size: 256, .refused(EPERM)),
            option("IP6T_SO_SET_ADD_COUNTERS", on: 2, 41, 65, size: 256, .refused(EPERM)),
        ])
    }

    /// Why the policy keeps the rules of one call disjoint: libseccomp 2.5 silently drops an
    /// ERRNO rule added after an ALLOW rule that covers it, so the refusal would be lost.
    @Test func libseccompDropsANarrowerRefusalAfterABroaderAllow() throws {
        let overlapping = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: UInt(ENOSYS), architectures: ["SCMP_ARCH_X86_64"], syscalls: [
            LinuxSyscall(names: ["exit_group", "exit", "write", "socket"], action: "SCMP_ACT_ALLOW"),
            LinuxSyscall(names: ["setsockopt"], action: "SCMP_ACT_ALLOW", args: [LinuxSeccompArg(index: 1, value: 6, op: "SCMP_CMP_EQ")]),
            LinuxSyscall(names: ["setsockopt"], action: "SCMP_ACT_ERRNO", errnoRet: UInt(EPERM), args: [
                LinuxSeccompArg(index: 1, value: 6, op: "SCMP_CMP_EQ"), LinuxSeccompArg(index: 2, value: 31, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let results = try Self.run([
            Self.socket("TCP socket", Int(AF_INET), Int(SOCK_STREAM.rawValue), 0, .reachesKernel([])),
            Case(what: "TCP_ULP with no value", number: Self.setsockoptCall, args: (0, 6, 31, 0, 0, 0), fdOf: 0, expect: .refused(EPERM)),
        ], profile: overlapping)
        // The kernel saw the call (EFAULT/EINVAL for the missing value): the EPERM rule is gone.
        #expect(results[1] != -Int(EPERM) && results[1] < 0, "libseccomp kept the overlapping refusal: \(results)")
    }

    @Test func ioctlIsAnAllowList() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        defer { if master >= 0 { close(master) } }
        let buffer = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0, count: 64)
        let pointer = Int(bitPattern: buffer)
        func ioctl(_ what: String, _ fd: Int32, _ request: UInt64, _ expect: Expect) -> Case {
            Case(what: what, number: Self.ioctlCall, args: (Int(fd), Int(bitPattern: UInt(request)), pointer, 0, 0, 0), fdOf: nil, expect: expect)
        }
        let notATerminal: Set<Int32> = [ENOTTY, EINVAL]
        var cases = [
            ioctl("FIONREAD on a pipe", ends[0], 0x541b, .reachesKernel([])),
            ioctl("FIOCLEX", ends[0], 0x5451, .reachesKernel([])),
            ioctl("FIONBIO sign-extended", ends[0], 0xffff_ffff_0000_5421, .reachesKernel([])),
            ioctl("TCGETS on a pipe", ends[0], 0x5401, .reachesKernel(notATerminal)),
            ioctl("TIOCGWINSZ on a pipe", ends[0], 0x5413, .reachesKernel(notATerminal)),
            ioctl("TCGETS2 sign-extended", ends[0], 0xffff_ffff_802c_542a, .reachesKernel(notATerminal)),
            ioctl("SIOCGIFCONF on a pipe", ends[0], 0x8912, .reachesKernel(notATerminal)),
            ioctl("TIOCSTI", ends[0], 0x5412, .refused(EPERM)),
            ioctl("TIOCLINUX", ends[0], 0x541c, .refused(EPERM)),
            ioctl("TIOCSETD", ends[0], 0x5423, .refused(EPERM)),
            ioctl("TIOCSETD with high bits the kernel drops", ends[0], 0x0000_0001_0000_5423, .refused(EPERM)),
            ioctl("KDGKBTYPE (not on the list)", ends[0], 0x4b33, .refused(SandboxPolicy.defaultErrno)),
            ioctl("TUNSETIFF (not on the list)", ends[0], 0x4004_54ca, .refused(SandboxPolicy.defaultErrno)),
            ioctl("FS_IOC_SETFLAGS (not on the list)", ends[0], 0x4008_6602, .refused(SandboxPolicy.defaultErrno)),
        ]
        if master >= 0 {
            cases += [
                ioctl("TIOCGPTN on /dev/ptmx", master, 0x8004_5430, .reachesKernel([])),
                ioctl("TCGETS on /dev/ptmx", master, 0x5401, .reachesKernel([])),
                ioctl("TIOCSETD on /dev/ptmx", master, 0x5423, .refused(EPERM)),
            ]
        }
        try Self.check(cases)
    }
}

/// libseccomp gives overlapping rules of one call no defined precedence (see
/// PolicyArgumentFilters.swift), so no two entries with different treatments may both match.
@Suite struct PolicyDisjointnessTests {
    /// Whether `value` satisfies one comparison, as the kernel's BPF (64-bit) would decide it.
    static func holds(_ comparison: LinuxSeccompArg, _ value: UInt64) -> Bool {
        switch comparison.op {
        case "SCMP_CMP_EQ": return value == comparison.value
        case "SCMP_CMP_NE": return value != comparison.value
        case "SCMP_CMP_LT": return value < comparison.value
        case "SCMP_CMP_LE": return value <= comparison.value
        case "SCMP_CMP_GT": return value > comparison.value
        case "SCMP_CMP_GE": return value >= comparison.value
        case "SCMP_CMP_MASKED_EQ": return value & comparison.value == (comparison.valueTwo ?? 0)
        default: return false
        }
    }

    /// Values where two comparisons on one argument can meet, if they meet at all: each
    /// one's edges plus the value that satisfies both masks at once.
    static func witnesses(_ a: LinuxSeccompArg, _ b: LinuxSeccompArg) -> [UInt64] {
        func edges(_ c: LinuxSeccompArg) -> [UInt64] {
            if c.op == "SCMP_CMP_MASKED_EQ" { return [c.valueTwo ?? 0, (c.valueTwo ?? 0) | ~c.value] }
            return [c.value, c.value &+ 1, c.value &- 1, 0, .max]
        }
        var found = edges(a) + edges(b)
        if a.op == "SCMP_CMP_MASKED_EQ" {
            let fixedA = (a.valueTwo ?? 0) & a.value
            let other = b.op == "SCMP_CMP_MASKED_EQ" ? (b.valueTwo ?? 0) & b.value & ~a.value : b.value & ~a.value
            found += [fixedA | other, fixedA | (~a.value & (b.op == "SCMP_CMP_MASKED_EQ" ? ~b.value : 0)) | other]
        }
        if b.op == "SCMP_CMP_MASKED_EQ" {
            let fixedB = (b.valueTwo ?? 0) & b.value
            let other = a.op == "SCMP_CMP_MASKED_EQ" ? (a.valueTwo ?? 0) & a.value & ~b.value : a.value & ~b.value
            found += [fixedB | other, fixedB | (~b.value & (a.op == "SCMP_CMP_MASKED_EQ" ? ~a.value : 0)) | other]
        }
        return found
    }

    /// Two rules overlap when, on every argument, some value satisfies both (arguments are independent).
    static func overlap(_ first: PolicyEntry, _ second: PolicyEntry) -> Bool {
        for index in UInt(0)..<6 {
            let a = first.args.filter { $0.index == index }, b = second.args.filter { $0.index == index }
            guard let x = a.first, let y = b.first else { continue }   // one side does not constrain it
            if !witnesses(x, y).contains(where: { holds(x, $0) && holds(y, $0) }) { return false }
        }
        return true
    }

    @Test func rulesOfOneCallNeverOverlapWithDifferentTreatments() {
        let entries = SandboxPolicy.entries
        for entry in entries {
            #expect(Set(entry.args.map(\.index)).count == entry.args.count, "\(entry.name) \(entry.note): one comparison per argument")
        }
        var pairs = 0
        for (i, first) in entries.enumerated() {
            for second in entries[(i + 1)...] where second.name == first.name && second.treatment != first.treatment {
                pairs += 1
                #expect(!Self.overlap(first, second), "\(first.name): \(first.note) [\(first.treatment)] overlaps \(second.note) [\(second.treatment)]")
            }
        }
        #expect(pairs > 1000)
    }

    @Test func theCheckerSeesAnOverlap() {
        let allowLow = PolicyEntry("setsockopt", .direct, args: [LinuxSeccompArg(index: 2, value: 0xffff_ffff_ffff_ff00, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")])
        let refuse31 = PolicyEntry("setsockopt", .refused(errno: EPERM), args: [LinuxSeccompArg(index: 2, value: 31, op: "SCMP_CMP_EQ")])
        let refuseAbove = PolicyEntry("setsockopt", .refused(errno: EPERM), args: [LinuxSeccompArg(index: 2, value: 255, op: "SCMP_CMP_GT")])
        let low32 = PolicyEntry("ioctl", .direct, args: [LinuxSeccompArg(index: 1, value: 0xffff_ffff, valueTwo: 0x5423, op: "SCMP_CMP_MASKED_EQ")])
        let exact = PolicyEntry("ioctl", .refused(errno: EPERM), args: [LinuxSeccompArg(index: 1, value: 0x1_0000_5423, op: "SCMP_CMP_EQ")])
        #expect(Self.overlap(allowLow, refuse31))
        #expect(!Self.overlap(allowLow, refuseAbove))
        #expect(Self.overlap(low32, exact))
    }

    @Test func summaryCountsEveryCallOnce() {
        let summary = SandboxPolicy.summary
        let names = Set(SandboxPolicy.entries.map(\.name))
        #expect(summary.direct + summary.emulated + summary.refused == names.count)
        #expect(summary.filtered >= 8 && summary.filtered < summary.direct)
        #expect(summary.emulated == 3)
        for call in ["socket", "setsockopt", "ioctl", "clone", "prctl"] {
            #expect(!SandboxPolicy.entries.contains { $0.name == call && $0.treatment == .direct && $0.args.isEmpty }, "\(call) must be filtered")
        }
        // Every argument rule says why it is there.
        for entry in SandboxPolicy.entries where !entry.args.isEmpty {
            #expect(!entry.note.isEmpty, "\(entry.name) rule without a note")
        }
    }
}

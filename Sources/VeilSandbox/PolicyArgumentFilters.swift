import Glibc
import VeilSpec

/// The argument filters of socket(2), setsockopt(2) and ioctl(2): the calls where the public
/// kernel privilege-escalation exploits of recent years enter (issue #11, point 4).
///
/// Two rules hold throughout, because libseccomp gives overlapping rules of one call no defined
/// precedence (an ALLOW rule added first silently swallows a narrower ERRNO rule added after it;
/// in the other order it refuses the second rule with EEXIST):
/// * the rules of one call never overlap: every argument tuple matches at most one rule
///   (`PolicyTests` checks this on every boundary value);
/// * an allow rule compares all 64 bits of an `int` argument, so a value the kernel truncates to
///   a refused one (high bits set by a raw syscall) never matches it; the refusals cover those
///   values instead. ioctl's request is the exception: the kernel reads it as `unsigned int`, so
///   its rules compare the low 32 bits only and a sign-extended request (what some language
///   runtimes pass) is judged by the same low word the kernel acts on.
extension SandboxPolicy {
    /// `arg == value` on all 64 bits.
    static func exactly(_ index: UInt, _ value: UInt64) -> LinuxSeccompArg { arg(index, "SCMP_CMP_EQ", value) }

    /// The low 32 bits equal `value` (ioctl's `unsigned int cmd`).
    static func lowWord(_ index: UInt, _ value: UInt32) -> LinuxSeccompArg {
        arg(index, "SCMP_CMP_MASKED_EQ", 0xffff_ffff, UInt64(value))
    }

    /// Splits an inclusive range into aligned power-of-two blocks, each one masked comparison on
    /// all 64 bits (`arg & ~(size-1) == start`): a range needs a single comparison per block,
    /// because a rule naming one argument twice is compiled as OR (runc's semantics).
    static func blocks(_ index: UInt, _ range: ClosedRange<UInt64>) -> [LinuxSeccompArg] {
        var found: [LinuxSeccompArg] = []
        var low = range.lowerBound
        while true {
            var size: UInt64 = 1
            while size < (1 << 62), low & (size * 2 - 1) == 0, range.upperBound - low >= size * 2 - 1 { size *= 2 }
            found.append(size == 1 ? exactly(index, low) : arg(index, "SCMP_CMP_MASKED_EQ", ~(size - 1), low))
            let last = low + (size - 1)
            if last >= range.upperBound { break }
            low = last + 1
        }
        return found
    }

    // MARK: socket(2)

    /// Address families refused, with what lives behind each (the exploit class where one is public).
    static let refusedFamilies: [(UInt64, String)] = [
        (0, "AF_UNSPEC"), (3, "AF_AX25"), (4, "AF_IPX"), (5, "AF_APPLETALK"), (6, "AF_NETROM"), (7, "AF_BRIDGE"),
        (8, "AF_ATMPVC"), (9, "AF_X25"), (11, "AF_ROSE"), (12, "AF_DECnet"), (13, "AF_NETBEUI"), (14, "AF_SECURITY"),
        (15, "AF_KEY: PF_KEYv2 into xfrm (CVE-2022-1353)"),
    ]

    static var socketRules: [PolicyEntry] {
        var entries: [PolicyEntry] = []
        let (unix, inet, inet6, netlink, packet): (UInt64, UInt64, UInt64, UInt64, UInt64) = (1, 2, 10, 16, 17)
        entries.append(PolicyEntry("socket", .direct, args: [exactly(0, unix)], note: "AF_UNIX"))
        entries.append(PolicyEntry("socketpair", .direct, args: [exactly(0, unix)], note: "AF_UNIX"))
        for family in [inet, inet6] {
            let name = family == inet ? "AF_INET" : "AF_INET6"
            let icmp: UInt64 = family == inet ? 1 : 58
            let icmpName = family == inet ? "ICMP" : "ICMPv6"
            // The type carries SOCK_NONBLOCK|SOCK_CLOEXEC above its low nibble.
            func type(_ value: UInt64) -> LinuxSeccompArg { arg(1, "SCMP_CMP_MASKED_EQ", 0xf, value) }
            let allowed: [(UInt64, String, [(UInt64, String)])] = [
                (1, "SOCK_STREAM", [(0, "default (TCP)"), (6, "TCP")]),
                // UDP-Lite runs UDP's own code (udplite.c wraps udp.c); CPython's test_socket needs it.
                (2, "SOCK_DGRAM", [(0, "default (UDP)"), (17, "UDP"), (136, "UDP-Lite"), (icmp, "\(icmpName) (ping socket)")]),
            ]
            for (typeValue, typeName, protocols) in allowed {
                let numbers = protocols.map(\.0).sorted()
                for (number, protocolName) in protocols {
                    entries.append(PolicyEntry("socket", .direct, args: [exactly(0, family), type(typeValue), exactly(2, number)],
                                               note: "\(name) \(typeName) \(protocolName)"))
                }
                // Every other protocol number: the gaps between the allowed ones, and above them.
                var gaps: [ClosedRange<UInt64>] = []
                var next: UInt64 = 0
                for number in numbers {
                    if number > next { gaps.append(next...(number - 1)) }
                    next = number + 1
                }
                for gap in gaps {
                    for block in blocks(2, gap) {
                        entries.append(PolicyEntry("socket", .refused(errno: EPROTONOSUPPORT), args: [exactly(0, family), type(typeValue), block],
                                                   note: "\(name) \(typeName): other IP protocols"))
                    }
                }
                entries.append(PolicyEntry("socket", .refused(errno: EPROTONOSUPPORT),
                                           args: [exactly(0, family), type(typeValue), arg(2, "SCMP_CMP_GT", next - 1)],
                                           note: "\(name) \(typeName): SCTP 132 (CVE-2021-23133), DCCP 33 (CVE-2017-6074), L2TP 115 (CVE-2016-10200), MPTCP 262, SMC 256 and any other protocol module"))
            }
            entries.append(PolicyEntry("socket", .refused(errno: EPERM), args: [exactly(0, family), type(3)],
                                       note: "\(name) SOCK_RAW: packet crafting, needs CAP_NET_RAW over the host's network"))
            // Types other than stream, datagram and raw (SOCK_SEQPACKET and SOCK_RDM over IP: SCTP, RDS).
            for (mask, value, what) in [(UInt64(0xf), UInt64(0), "type 0"), (0xc, 4, "SOCK_RDM, SOCK_SEQPACKET (SCTP), SOCK_DCCP, 7"), (0x8, 8, "types 8-15 (SOCK_PACKET)")] {
                entries.append(PolicyEntry("socket", .refused(errno: ESOCKTNOSUPPORT), args: [exactly(0, family), arg(1, "SCMP_CMP_MASKED_EQ", mask, value)],
                                           note: "\(name) \(what)"))
            }
        }
        entries.append(PolicyEntry("socket", .direct, args: [exactly(0, netlink), exactly(2, 0)], note: "AF_NETLINK NETLINK_ROUTE (ip(8); tc and routes need CAP_NET_ADMIN over a network namespace the sandbox does not own)"))
        entries.append(PolicyEntry("socket", .refused(errno: EPROTONOSUPPORT), args: [exactly(0, netlink), arg(2, "SCMP_CMP_NE", 0)],
                                   note: "AF_NETLINK other than NETLINK_ROUTE: nf_tables (CVE-2022-32250, CVE-2023-32233, CVE-2024-1086), xfrm (CVE-2017-7184), audit, uevents"))
        entries.append(PolicyEntry("socket", .refused(errno: EPERM), args: [exactly(0, packet)], note: "AF_PACKET (CVE-2017-7308, CVE-2020-14386)"))
        for (family, name) in refusedFamilies {
            entries.append(PolicyEntry("socket", .refused(errno: EAFNOSUPPORT), args: [exactly(0, family)], note: name))
        }
        entries.append(PolicyEntry("socket", .refused(errno: EAFNOSUPPORT), args: [arg(0, "SCMP_CMP_GT", packet)],
                                   note: "families above AF_PACKET: AF_RDS 21 (CVE-2010-3904), AF_CAN 29 (CVE-2021-3609), AF_TIPC 30 (CVE-2021-43267), AF_BLUETOOTH 31, AF_ALG 38 (CVE-2019-8912), AF_NFC 39, AF_VSOCK 40 (CVE-2021-26708), AF_SMC 43, AF_XDP 44, ..."))
        return entries
    }

    // MARK: setsockopt(2)

    /// setsockopt levels programs use, with the option ranges allowed at each and the refused rest.
    /// A level absent here falls to the policy's default (no allowed socket has one).
    static var setsockoptRules: [PolicyEntry] {
        var entries: [PolicyEntry] = []
        func allow(_ level: UInt64, _ name: String, _ ranges: [ClosedRange<UInt64>]) {
            if ranges.isEmpty {
                entries.append(PolicyEntry("setsockopt", .direct, args: [exactly(1, level)], note: name))
                return
            }
            for range in ranges {
                for block in blocks(2, range) {
                    entries.append(PolicyEntry("setsockopt", .direct, args: [exactly(1, level), block], note: "\(name) options \(range.lowerBound)-\(range.upperBound)"))
                }
            }
        }
        func refuse(_ level: UInt64, _ options: ClosedRange<UInt64>, _ code: Int32, _ note: String) {
            for block in blocks(2, options) {
                entries.append(PolicyEntry("setsockopt", .refused(errno: code), args: [exactly(1, level), block], note: note))
            }
        }
        func refuseAbove(_ level: UInt64, _ option: UInt64, _ code: Int32, _ note: String) {
            entries.append(PolicyEntry("setsockopt", .refused(errno: code), args: [exactly(1, level), arg(2, "SCMP_CMP_GT", option)], note: note))
        }
        let (ip, socket, tcp, udp, ipv6, icmpv6, udplite, netlink): (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 1, 6, 17, 41, 58, 136, 270)
        let unknown = "unknown options (and int values with high bits set, which the kernel would truncate)"
        allow(socket, "SOL_SOCKET", [])
        allow(ip, "SOL_IP", [0...15, 18...63])
        refuse(ip, 16...17, EPERM, "IP_IPSEC_POLICY, IP_XFRM_POLICY: per-socket xfrm policies (the xfrm class)")
        refuseAbove(ip, 63, EPERM, "iptables/arptables/ebtables/IPVS/multicast routing (IPT_SO_SET_REPLACE: CVE-2021-22555)")
        allow(tcp, "SOL_TCP", [0...30, 32...255])
        refuse(tcp, 31...31, ENOPROTOOPT, "TCP_ULP: kTLS/espintcp upper layers (CVE-2023-0461)")
        refuseAbove(tcp, 255, ENOPROTOOPT, "SOL_TCP " + unknown)
        allow(udp, "SOL_UDP", [0...99, 101...255])
        refuse(udp, 100...100, ENOPROTOOPT, "UDP_ENCAP: ESP-in-UDP/L2TP/GTP encapsulation hooks")
        refuseAbove(udp, 255, ENOPROTOOPT, "SOL_UDP " + unknown)
        // UDP-Lite sockets take the UDP options at their own level too, UDP_ENCAP included.
        allow(udplite, "SOL_UDPLITE", [0...99, 101...255])
        refuse(udplite, 100...100, ENOPROTOOPT, "UDP_ENCAP at SOL_UDPLITE: as at SOL_UDP")
        refuseAbove(udplite, 255, ENOPROTOOPT, "SOL_UDPLITE " + unknown)
        allow(ipv6, "SOL_IPV6", [0...33, 36...63, 66...255])
        refuse(ipv6, 34...35, EPERM, "IPV6_IPSEC_POLICY, IPV6_XFRM_POLICY: per-socket xfrm policies (the xfrm class)")
        refuse(ipv6, 64...65, EPERM, "ip6tables IP6T_SO_SET_REPLACE/ADD_COUNTERS (the x_tables class, CVE-2021-22555)")
        refuseAbove(ipv6, 255, ENOPROTOOPT, "SOL_IPV6 " + unknown)
        allow(icmpv6, "SOL_ICMPV6", [])
        allow(netlink, "SOL_NETLINK", [])
        return entries
    }

    // MARK: ioctl(2)

    /// The ioctl requests allowed (x86-64 numbers), compared on the low 32 bits.
    static let allowedIoctls: [(UInt32, String)] = [
        // Terminal settings, window size, job control.
        (0x5401, "TCGETS"), (0x5402, "TCSETS"), (0x5403, "TCSETSW"), (0x5404, "TCSETSF"),
        (0x5405, "TCGETA"), (0x5406, "TCSETA"), (0x5407, "TCSETAW"), (0x5408, "TCSETAF"),
        (0x5409, "TCSBRK"), (0x540a, "TCXONC"), (0x540b, "TCFLSH"), (0x540c, "TIOCEXCL"), (0x540d, "TIOCNXCL"),
        (0x540e, "TIOCSCTTY"), (0x540f, "TIOCGPGRP"), (0x5410, "TIOCSPGRP"), (0x5411, "TIOCOUTQ"),
        (0x5413, "TIOCGWINSZ"), (0x5414, "TIOCSWINSZ"), (0x5415, "TIOCMGET"), (0x541b, "FIONREAD"),
        (0x5420, "TIOCPKT"), (0x5422, "TIOCNOTTY"), (0x5424, "TIOCGETD"), (0x5425, "TCSBRKP"),
        (0x5427, "TIOCSBRK"), (0x5428, "TIOCCBRK"), (0x5429, "TIOCGSID"),
        (0x802c_542a, "TCGETS2"), (0x402c_542b, "TCSETS2"), (0x402c_542c, "TCSETSW2"), (0x402c_542d, "TCSETSF2"),
        (0x4004_5436, "TIOCSIG"), (0x8004_5438, "TIOCGPKT"), (0x8004_5440, "TIOCGEXCL"),
        // ptys.
        (0x8004_5430, "TIOCGPTN"), (0x4004_5431, "TIOCSPTLCK"), (0x8004_5432, "TIOCGDEV"), (0x8004_5439, "TIOCGPTLCK"),
        (0x5441, "TIOCGPTPEER"),
        // Any file descriptor.
        (0x5421, "FIONBIO"), (0x5450, "FIONCLEX"), (0x5451, "FIOCLEX"), (0x5452, "FIOASYNC"), (0x5460, "FIOQSIZE"),
        // Interface queries (if_nametoindex, ifconfig) and socket state.
        (0x8905, "SIOCATMARK"), (0x8906, "SIOCGSTAMP"), (0x8907, "SIOCGSTAMPNS"), (0x8910, "SIOCGIFNAME"),
        (0x8912, "SIOCGIFCONF"), (0x8913, "SIOCGIFFLAGS"), (0x8915, "SIOCGIFADDR"), (0x8917, "SIOCGIFDSTADDR"),
        (0x8919, "SIOCGIFBRDADDR"), (0x891b, "SIOCGIFNETMASK"), (0x891d, "SIOCGIFMETRIC"), (0x8921, "SIOCGIFMTU"),
        (0x8927, "SIOCGIFHWADDR"), (0x8933, "SIOCGIFINDEX"), (0x8942, "SIOCGIFTXQLEN"), (0x894b, "SIOCOUTQNSD"),
        // File systems: reflinks, dedupe, extent maps, flags and block size queries.
        (0x4004_9409, "FICLONE"), (0x4020_940d, "FICLONERANGE"), (0xc018_9436, "FIDEDUPERANGE"),
        (0x8008_6601, "FS_IOC_GETFLAGS"), (0x8004_6601, "FS_IOC32_GETFLAGS"), (0x801c_581f, "FS_IOC_FSGETXATTR"),
        (0xc020_660b, "FS_IOC_FIEMAP"), (0x0000_0002, "FIGETBSZ"), (0x8008_7601, "FS_IOC_GETVERSION"),
    ]

    /// Refused explicitly with EPERM (an unlisted request gets the policy's default).
    static let refusedIoctls: [(UInt32, String)] = [
        (0x5412, "TIOCSTI: typing into another process's terminal (CVE-2017-5226)"),
        (0x541c, "TIOCLINUX: console selection and paste"),
        (0x5423, "TIOCSETD: line disciplines n_hdlc (CVE-2017-2636) and n_gsm (CVE-2023-6546)"),
        (0x541d, "TIOCCONS: redirecting the console"),
    ]

    static var ioctlRules: [PolicyEntry] {
        allowedIoctls.map { PolicyEntry("ioctl", .direct, args: [lowWord(1, $0.0)], note: $0.1) }
            + refusedIoctls.map { PolicyEntry("ioctl", .refused(errno: EPERM), args: [lowWord(1, $0.0)], note: $0.1) }
    }
}

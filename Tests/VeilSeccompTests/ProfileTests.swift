import FoundationEssentials
import Glibc
import Testing
import VeilSeccomp
import VeilSpec

/// containers-common's profile format (a superset of the OCI one: archMap, includes/excludes),
/// turned into the `linux.seccomp` podman would write for an x86_64 container with `caps`.
private struct ContainersProfile: Decodable {
    struct ArchMap: Decodable { var architecture: String; var subArchitectures: [String]? }
    struct Filter: Decodable { var caps: [String]?; var arches: [String]? }
    struct Entry: Decodable {
        var names: [String]?
        var name: String?
        var action: String
        var errnoRet: UInt?
        var args: [LinuxSeccompArg]?
        var includes: Filter?
        var excludes: Filter?
    }
    var defaultAction: String
    var defaultErrnoRet: UInt?
    var archMap: [ArchMap]?
    var syscalls: [Entry]

    func oci(caps: Set<String>) -> LinuxSeccomp {
        let native = "amd64"
        let arches = archMap?.first { $0.architecture == "SCMP_ARCH_X86_64" }.map { [$0.architecture] + ($0.subArchitectures ?? []) }
        var calls: [LinuxSyscall] = []
        for entry in syscalls {
            if let inc = entry.includes {
                if let a = inc.arches, !a.isEmpty, !a.contains(native) { continue }
                if let c = inc.caps, !c.isEmpty, !c.allSatisfy(caps.contains) { continue }
            }
            if let exc = entry.excludes {
                if let a = exc.arches, a.contains(native) { continue }
                if let c = exc.caps, c.contains(where: caps.contains) { continue }
            }
            let names = entry.names ?? entry.name.map { [$0] } ?? []
            calls.append(LinuxSyscall(names: names, action: entry.action, errnoRet: entry.errnoRet, args: entry.args))
        }
        return LinuxSeccomp(defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet, architectures: arches, syscalls: calls)
    }
}

private let podmanProfile = "/usr/share/containers/seccomp.json"

private func readAll(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

@Suite struct PodmanProfileTests {
    @Test(.enabled(if: access(podmanProfile, R_OK) == 0 || veilRequired, "apt-get install golang-github-containers-common"),
          arguments: [
              Set<String>(),
              ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
               "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"],
              ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYSLOG", "CAP_SYS_TIME", "CAP_SYS_BOOT",
               "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_TTY_CONFIG", "CAP_SYS_RESOURCE",
               "CAP_DAC_READ_SEARCH", "CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"],
          ])
    func compiles(caps: Set<String>) throws {
        let bytes = try #require(readAll(podmanProfile))
        let profile = try JSONDecoder().decode(ContainersProfile.self, from: Data(bytes)).oci(caps: caps)
        #expect((profile.syscalls ?? []).count > 20)
        let program = try SeccompProgram.compile(profile)
        #expect(program.filter.count % 8 == 0)
        #expect(program.instructionCount > 100)
        #expect(program.instructionCount <= SeccompProgram.maxInstructions)
        #expect(!program.usesNotify)
    }
}

@Suite(.serialized) struct PodmanProfileEnforcementTests {
    @Test(.enabled(if: access(podmanProfile, R_OK) == 0 || veilRequired, "apt-get install golang-github-containers-common"))
    func enforcedInAChild() throws {
        let bytes = try #require(readAll(podmanProfile))
        let profile = try JSONDecoder().decode(ContainersProfile.self, from: Data(bytes)).oci(caps: [])
        let program = try SeccompProgram.compile(profile)
        let count = UInt16(program.instructionCount)
        let flags = program.filterFlags
        let parentBefore = seccompLines()
        let status = program.filter.withUnsafeBytes { filter -> Int32? in
            guard let base = filter.baseAddress else { return nil }
            return inChild {
                if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { return installFailed }
                // socket: AND of two args -> ERRNO(EINVAL) for the audit netlink socket, else allowed.
                if socket(16 /* AF_NETLINK */, Int32(SOCK_RAW.rawValue), 9 /* NETLINK_AUDIT */) >= 0 || errno != EINVAL { return 1 }
                if socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0) < 0 { return 2 }
                if chroot("/") == 0 || errno != EPERM { return 3 }            // no CAP_SYS_CHROOT: explicit EPERM
                if getpid() <= 0 { return 4 }
                return 0
            }
        }
        #expect(status == 0)
        // The filter stayed in the child: this process's seccomp mode and filter count did not change.
        #expect(seccompLines() == parentBefore)
        #expect(parentBefore.count == 2, "no Seccomp and Seccomp_filters lines in /proc/self/status: \(parentBefore)")
    }

    /// The Seccomp and Seccomp_filters lines of /proc/self/status.
    private func seccompLines() -> [String] {
        let text = String(decoding: readAll("/proc/self/status") ?? [], as: UTF8.self)
        return text.split(separator: "\n").filter { $0.hasPrefix("Seccomp") }.map(String.init)
    }
}

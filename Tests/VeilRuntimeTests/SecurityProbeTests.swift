// The escape-surface probe (tests/security/probe.c) end to end: at the native level veil must
// give a container exactly what runc gives it (same result on every probe line), and the probe
// itself must be harmless even when every call succeeds as host root (the privileged profile).
// The sandbox level's expectations are listed below for when it lands (not a test yet).

import Foundation
import Testing

/// One probe line: `name<TAB>result<TAB>detail`.
struct ProbeLine: Equatable, CustomStringConvertible {
    let result: String
    let detail: String
    var description: String { "\(result) (\(detail))" }
}

/// The configs the probe runs under, as tests/security/run-probes defines them.
enum ProbeProfile: String, CaseIterable, CustomStringConvertible, Sendable {
    /// `runc spec` unchanged: 3 capabilities, noNewPrivileges, read-only rootfs.
    case runcSpec = "runc-spec"
    /// What containerd's CRI plugin gives a pod by default: 14 capabilities, writable rootfs.
    case cri
    /// Every capability this host has, no masked or read-only paths, every device.
    case privileged

    var description: String { rawValue }

    static let criCapabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                                  "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                                  "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

    /// Capability names in kernel number order (bit n of CapBnd is element n).
    static let capabilityNames = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    ].map { "CAP_" + $0 }

    /// What the host's bounding set holds: a runtime cannot grant more (no CAP_SYS_RESOURCE here).
    static func hostCapabilities() throws -> [String] {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
              let mask = UInt64(line.dropFirst("CapBnd:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { throw SupportError("no CapBnd in /proc/self/status") }
        return capabilityNames.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }

    func apply(to config: inout [String: Any]) throws {
        var process = config["process"] as? [String: Any] ?? [:]
        var root = config["root"] as? [String: Any] ?? [:]
        var linux = config["linux"] as? [String: Any] ?? [:]
        linux["seccomp"] = nil
        config["hostname"] = "veil-probe"
        switch self {
        case .runcSpec:
            break
        case .cri, .privileged:
            let caps = self == .cri ? Self.criCapabilities : try Self.hostCapabilities()
            var sets: [String: Any] = ["bounding": caps, "effective": caps, "permitted": caps]
            if self == .privileged {
                sets["inheritable"] = caps
                linux["maskedPaths"] = nil
                linux["readonlyPaths"] = nil
                var resources = linux["resources"] as? [String: Any] ?? [:]
                resources["devices"] = [["allow": true, "access": "rwm"]]
                linux["resources"] = resources
                config["mounts"] = (config["mounts"] as? [[String: Any]] ?? []).map { mount in
                    guard mount["destination"] as? String == "/sys" else { return mount }
                    var changed = mount
                    changed["options"] = (mount["options"] as? [String] ?? []).filter { $0 != "ro" } + ["rw"]
                    return changed
                }
            }
            process["capabilities"] = sets
            process["noNewPrivileges"] = false
            root["readonly"] = false
        }
        config["process"] = process
        config["root"] = root
        config["linux"] = linux
    }
}

/// Builds probe.c once per test (gcc -static) and runs it as a container's process.
struct ProbeRunner {
    let probe: String

    static func build(into dir: TempDir) throws -> ProbeRunner {
        let out = dir.file("probe")
        let built = try runCommand(packageRoot + "/scripts/build-static-c.sh",
                                   [packageRoot + "/tests/security/probe.c", out], timeout: 120)
        guard built.succeeded else { throw SupportError("building probe.c failed: \(built)") }
        return ProbeRunner(probe: out)
    }

    /// Runs the probe under `binary` (`globalFlags` before `--root`, e.g. `--isolation native`)
    /// and returns its lines by probe name, in order.
    func run(_ binary: String, globalFlags: [String] = [], profile: ProbeProfile) throws -> (lines: [String: ProbeLine], order: [String], result: CommandResult) {
        let bundle = try TestBundle(["/probe"], prefix: "probe")
        defer { bundle.remove() }
        try FileManager.default.copyItem(atPath: probe, toPath: bundle.rootfs + "/probe")
        try bundle.edit { try profile.apply(to: &$0) }
        let result = try runCommand(binary, globalFlags + ["--root", bundle.stateRoot, "run", "--bundle", bundle.path, bundle.id],
                                    timeout: 120, workingDirectory: bundle.path)
        _ = try? runCommand(binary, ["--root", bundle.stateRoot, "delete", "--force", bundle.id])
        #expect(bundle.leftovers().isEmpty, "left behind: \(bundle.leftovers())")
        var lines: [String: ProbeLine] = [:]
        var order: [String] = []
        for raw in result.stdout.split(separator: "\n") {
            let parts = raw.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { continue }
            lines[parts[0]] = ProbeLine(result: parts[1], detail: parts[2])
            order.append(parts[0])
        }
        return (lines, order, result)
    }
}

/// Host state the probe must never change, read before and after it runs.
struct HostState: Equatable {
    static let files = ["/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname", "/proc/swaps",
                        "/proc/sys/kernel/ctrl-alt-del", "/proc/sys/kernel/printk_ratelimit",
                        "/sys/kernel/mm/transparent_hugepage/enabled"]
    let contents: [String: String]
    let hostname: String
    /// Wall clock minus monotonic clock: a step of the host's clock changes it.
    let clockOffset: Double

    static func read() -> HostState {
        var contents: [String: String] = [:]
        for file in files { contents[file] = (try? String(contentsOfFile: file, encoding: .utf8)) ?? "unreadable" }
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        var mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        let wall = Date().timeIntervalSince1970
        let offset = wall - (Double(mono.tv_sec) + Double(mono.tv_nsec) / 1e9)
        return HostState(contents: contents, hostname: String(cString: name), clockOffset: offset)
    }

    /// What differs, in words (empty: nothing).
    func changes(to after: HostState) -> [String] {
        var found = Self.files.filter { contents[$0] != after.contents[$0] }
            .map { "\($0): \(contents[$0] ?? "") -> \(after.contents[$0] ?? "")" }
        if hostname != after.hostname { found.append("hostname \(hostname) -> \(after.hostname)") }
        let step = after.clockOffset - clockOffset
        if abs(step) > 0.5 { found.append("wall clock stepped by \(step) s") }
        return found
    }
}

@Suite("security probe", .serialized)
struct SecurityProbeTests {
    /// Probes whose detail must match too (the same config gives the same facts).
    static let sameDetail: Set<String> = ["capeff", "uid_map", "cve_2024_21626_fds", "cve_2024_21626_cwd"]

    @Test("veil --isolation native matches runc on every probe", arguments: [ProbeProfile.runcSpec, .cri])
    func nativeParity(profile: ProbeProfile) throws {
        let veil = try requireVeil()
        let dir = try TempDir(prefix: "veil-probe-build")
        defer { dir.remove() }
        let runner = try ProbeRunner.build(into: dir)
        let runc = try runner.run(try RuntimeUnderTest.runc.binary(), profile: profile)
        let native = try runner.run(veil, globalFlags: ["--isolation", "native"], profile: profile)
        #expect(runc.result.succeeded, "\(runc.result)")
        #expect(native.result.succeeded, "\(native.result)")
        // The probe's last line: the run went to its end (an early crash would shorten both).
        #expect(runc.lines["uid_map"] != nil && native.lines["uid_map"] != nil)
        #expect(runc.lines.count >= 60, "runc printed \(runc.lines.count) probe lines")
        #expect(native.order == runc.order, "probe lines differ: veil \(native.order) runc \(runc.order)")
        for name in runc.order {
            guard let expected = runc.lines[name], let got = native.lines[name] else { continue }
            #expect(got.result == expected.result, "\(profile) \(name): veil native \(got), runc \(expected)")
            if Self.sameDetail.contains(name) {
                #expect(got.detail == expected.detail, "\(profile) \(name): veil native \(got), runc \(expected)")
            }
        }
        // What these configs deny must really be denied (so parity is not parity of nothing).
        for name in ["mount", "pivot_root", "unshare_newns", "bpf_prog_load", "reboot", "settimeofday", "open_by_handle_at"] {
            #expect(runc.lines[name]?.result == "EPERM", "\(profile) \(name) under runc: \(String(describing: runc.lines[name]))")
        }
    }

    @Test("the probe is harmless when every call succeeds as host root")
    func harmlessAsHostRoot() throws {
        let veil = try requireVeil()
        let dir = try TempDir(prefix: "veil-probe-build")
        defer { dir.remove() }
        let runner = try ProbeRunner.build(into: dir)
        let before = HostState.read()
        let runc = try runner.run(try RuntimeUnderTest.runc.binary(), profile: .privileged)
        let native = try runner.run(veil, globalFlags: ["--isolation", "native"], profile: .privileged)
        let after = HostState.read()
        #expect(runc.result.succeeded, "\(runc.result)")
        #expect(native.result.succeeded, "\(native.result)")
        #expect(before.changes(to: after).isEmpty, "host state changed: \(before.changes(to: after))")
        // The success paths really ran: these got past the kernel's permission checks.
        for name in ["mount", "umount2", "pivot_root", "unshare_newns", "setns_pid1_net", "bpf_map_create",
                     "bpf_prog_load", "reboot", "swapon", "swapoff", "settimeofday", "adjtimex", "acct",
                     "proc_sys_hostname", "sys_kernel_write", "open_by_handle_at", "fcap_exec"] {
            for (runtime, run) in [("runc", runc), ("veil native", native)] {
                let result = run.lines[name]?.result
                #expect(result == "allowed" || result == "gained", "\(name) under \(runtime): \(String(describing: run.lines[name]))")
            }
        }
        // Native parity holds for a privileged container too.
        for name in runc.order where native.lines[name]?.result != runc.lines[name]?.result {
            Issue.record("privileged \(name): veil native \(String(describing: native.lines[name])), runc \(String(describing: runc.lines[name]))")
        }
    }
}

// MARK: - Sandbox level

extension SecurityProbeTests {
    @Test("veil --isolation sandbox refuses every escape the probe tries", arguments: [ProbeProfile.cri, .runcSpec, .privileged])
    func sandboxRefusesEscapes(profile: ProbeProfile) throws {
        let veil = try requireVeil()
        let dir = try TempDir(prefix: "veil-probe-build")
        defer { dir.remove() }
        let runner = try ProbeRunner.build(into: dir)
        let before = HostState.read()
        let host = try runner.run(try RuntimeUnderTest.runc.binary(), profile: .cri)
        let sandbox = try runner.run(veil, globalFlags: ["--isolation", "sandbox"], profile: profile)
        #expect(sandbox.result.succeeded, "\(sandbox.result)")
        #expect(sandbox.lines["uid_map"] != nil, "the probe did not reach its end: \(sandbox.result)")
        let violations = sandboxViolations(sandbox.lines, host: host.lines)
        #expect(violations.isEmpty, "\(profile): \(violations.joined(separator: "; "))")
        #expect(sandbox.lines["uname"]?.detail.contains("-veil") == true, "\(String(describing: sandbox.lines["uname"]))")
        #expect(sandbox.lines["syslog"]?.detail.contains("Starting veil") == true, "\(String(describing: sandbox.lines["syslog"]))")
        #expect(before.changes(to: HostState.read()).isEmpty)
    }
}

/// Probes the sandbox level must refuse (result an errno, never `allowed`), given a container
/// with containerd's default capabilities (profile `.cri`).
let sandboxMustRefuse: [String] = [
    "mount", "umount2", "pivot_root",
    "unshare_newns", "unshare_newuser", "unshare_newnet", "unshare_newpid", "unshare_newuts",
    "unshare_newipc", "unshare_newcgroup", "unshare_newtime", "setns_pid1_net",
    "keyctl", "add_key", "request_key", "bpf_map_create", "bpf_prog_load", "perf_event_open",
    "userfaultfd", "io_uring_setup", "ptrace_attach", "ptrace_seize", "ptrace_traceme",
    "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_by_handle_at", "af_packet_raw", "af_inet_raw_icmp",
    "netlink_audit", "setxattr_fcap", "reboot", "swapon", "swapoff", "clock_settime",
    "settimeofday", "adjtimex", "acct", "quotactl", "lookup_dcookie", "mknod_blk_8_0",
    "mknod_rootdev", "proc_sys_kernel", "sysrq_trigger", "sys_kernel_write",
    "cve_2019_5736_self_exe",
]

/// What the sandbox level must show, beyond `sandboxMustRefuse`: violations in words (empty: all
/// good). `host` is the probe's output on the host side of comparison (e.g. runc's run), for the
/// identity answers the warden must give instead of the host kernel's.
func sandboxViolations(_ sandbox: [String: ProbeLine], host: [String: ProbeLine]) -> [String] {
    var found: [String] = []
    for name in sandboxMustRefuse {
        guard let line = sandbox[name] else { found.append("\(name): no line"); continue }
        if !line.result.hasPrefix("E") { found.append("\(name) must be refused: \(line)") }
    }
    func expect(_ name: String, in allowed: Set<String>) {
        let result = sandbox[name]?.result ?? "missing"
        if !allowed.contains(result) { found.append("\(name): \(result), expected one of \(allowed.sorted())") }
    }
    expect("netlink_route", in: ["allowed"])               // ip(8) must keep working
    expect("fcap_exec", in: ["not-gained"])                // setcap tricks fail
    expect("open_blk_8_0", in: ["EPERM", "EACCES", "not-probed"])
    expect("open_rootdev", in: ["EPERM", "EACCES", "not-probed"])
    expect("kallsyms", in: ["zeroed", "empty", "ENOENT", "EACCES", "EPERM"])
    expect("setns_host", in: ["unreachable"])
    expect("cve_2019_5736_runtime_exe", in: ["unreachable", "EACCES", "EPERM", "EROFS", "ETXTBSY"])
    expect("cve_2024_21626_fds", in: ["none"])
    expect("cve_2024_21626_cwd", in: ["inside"])
    // Container root is an unprivileged host uid: the map is not the identity.
    if let map = sandbox["uid_map"]?.detail, map.hasPrefix("0 0 ") { found.append("uid_map is the host's identity map: \(map)") }
    // The warden answers the kernel-identity calls itself: not the host kernel's log or boot time.
    if let log = sandbox["syslog"], log.result == "allowed", log.detail == host["syslog"]?.detail {
        found.append("syslog shows the host's kernel log: \(log.detail)")
    }
    func uptime(_ line: ProbeLine?) -> Int? {
        line?.detail.split(separator: " ").first { $0.hasPrefix("uptime=") }
            .flatMap { Int($0.dropFirst("uptime=".count).dropLast()) }
    }
    if let mine = uptime(sandbox["sysinfo"]), let theirs = uptime(host["sysinfo"]), abs(mine - theirs) < 60 {
        found.append("sysinfo uptime is the host's: \(mine) s")
    }
    return found
}

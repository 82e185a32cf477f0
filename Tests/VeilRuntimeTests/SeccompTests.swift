// linux.seccomp end to end: real profiles load, actions take effect in the container and in
// exec'd processes, a notify profile hands its listener to an agent, bad profiles are refused.

import Foundation
import Testing

/// A unix socket agent for SCMP_ACT_NOTIFY: accepts one connection, takes the listener fd
/// (SCM_RIGHTS) and the container process state, then closes the fd (so the notifying
/// syscalls fail with ENOSYS instead of waiting forever).
private final class NotifyAgent: @unchecked Sendable {
    let path: String
    private let listening: Int32
    private let done = DispatchSemaphore(value: 0)
    private(set) var message = ""
    private(set) var receivedFD = false

    init(path: String) throws {
        self.path = path
        listening = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listening, 1) == 0 else { throw SupportError("agent socket \(path): \(String(cString: strerror(errno)))") }
        DispatchQueue.global().async { self.serve() }
    }

    private func serve() {
        defer { done.signal() }
        let connection = accept(listening, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var control = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { ctl -> Int in
                var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &iov) { iovPointer in
                    var header = msghdr()
                    header.msg_iov = iovPointer
                    header.msg_iovlen = 1
                    header.msg_control = ctl.baseAddress
                    header.msg_controllen = ctl.count
                    let n = recvmsg(connection, &header, 0)
                    // cmsghdr: len (8 bytes), level (4), type (4), then the fd.
                    if n >= 0, header.msg_controllen >= 20 {
                        let level = ctl.load(fromByteOffset: 8, as: Int32.self)
                        let type = ctl.load(fromByteOffset: 12, as: Int32.self)
                        if level == SOL_SOCKET && type == 1 /* SCM_RIGHTS */ {
                            let fd = ctl.load(fromByteOffset: 16, as: Int32.self)
                            receivedFD = fd >= 0
                            close(fd)
                        }
                    }
                    return n
                }
            }
        }
        if count > 0 { message = String(decoding: buffer[0..<count], as: UTF8.self) }
    }

    func wait(seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }

    deinit { close(listening) }
}

@Suite("seccomp")
struct SeccompTests {
    private func setProfile(_ bundle: TestBundle, _ profile: [String: Any]) throws {
        try bundle.edit { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["seccomp"] = profile
            config["linux"] = linux
        }
    }

    @Test("podman's default profile loads and the workload runs", arguments: RuntimeUnderTest.all)
    func podmanProfile(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let data = try Data(contentsOf: URL(fileURLWithPath: "/usr/share/containers/seccomp.json"))
        let profile = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let bundle = try TestBundle(["sh", "-c", "echo profile-ok; grep Seccomp: /proc/self/status"])
        defer { bundle.remove() }
        try setProfile(bundle, profile)
        let run = try bundle.runtime(bin, ["run", bundle.id])
        #expect(run.succeeded && run.stdout.contains("profile-ok"), "\(run)")
        #expect(run.stdout.contains("Seccomp:\t2"), "the filter must be active: \(run.stdout)")
    }

    @Test("a call newer than every one the profile names gets ENOSYS (libc falls back), an older unnamed one the default errno",
          arguments: RuntimeUnderTest.all)
    func newerSyscallsGetENOSYS(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let dir = try TempDir()
        defer { dir.remove() }
        let program = dir.file("raw-syscall")
        let built = try runCommand(packageRoot + "/scripts/build-static-c.sh", [packageRoot + "/tests/seccomp/raw-syscall.c", program], timeout: 120)
        try #require(built.succeeded, "\(built)")
        // A profile allowing what podman's allows, except every call newer than openat2 (437) and
        // uselib (134): process_madvise (440) and an unused number are newer than all it names,
        // uselib is older and unnamed. Its default refuses with EPERM.
        let data = try Data(contentsOf: URL(fileURLWithPath: "/usr/share/containers/seccomp.json"))
        let podman = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let newer: Set<String> = ["pidfd_getfd", "faccessat2", "process_madvise", "epoll_pwait2", "mount_setattr", "quotactl_fd",
                                  "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_secret",
                                  "process_mrelease", "futex_waitv", "set_mempolicy_home_node", "cachestat", "fchmodat2",
                                  "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "statmount", "listmount",
                                  "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal", "uselib"]
        let allowed = Set(((podman["syscalls"] as? [[String: Any]]) ?? []).filter { $0["action"] as? String == "SCMP_ACT_ALLOW" }
            .flatMap { $0["names"] as? [String] ?? [] }).subtracting(newer).sorted()
        let bundle = try TestBundle(["/raw-syscall", "440", "1000", "134"])
        defer { bundle.remove() }
        try FileManager.default.copyItem(atPath: program, toPath: bundle.rootfs + "/raw-syscall")
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                                "syscalls": [["names": allowed, "action": "SCMP_ACT_ALLOW"]]])
        let run = try bundle.runtime(bin, ["run", bundle.id])
        #expect(run.succeeded && run.stdout == "440=ENOSYS\n1000=ENOSYS\n134=EPERM\n", "\(run)")
    }

    @Test("an errno rule fails the call with that errno, in the container and in exec", arguments: RuntimeUnderTest.all)
    func errnoRule(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "mkdir /tmp/x; echo status=$?; exec sleep 100"])
        defer { bundle.remove() }
        try bundle.edit { config in config["root"] = ["path": "rootfs", "readonly": false] }
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38]]])
        #expect(try bundle.runtime(bin, ["run", "-d", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(bin, ["delete", "--force", bundle.id]) }
        let exec = try bundle.runtime(bin, ["exec", bundle.id, "mkdir", "/tmp/y"])
        #expect(!exec.succeeded)
        #expect(exec.stderr.contains("Function not implemented"), "\(exec)")
    }

    @Test("SCMP_ACT_NOTIFY hands the listener and the state to the agent", arguments: RuntimeUnderTest.all)
    func notifyAgent(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "mkdir /tmp/x; echo status=$?"])
        defer { bundle.remove() }
        try bundle.edit { config in config["root"] = ["path": "rootfs", "readonly": false] }
        let socketDir = try TempDir(prefix: "veil-agent")
        defer { socketDir.remove() }
        let agent = try NotifyAgent(path: socketDir.file("agent.sock"))
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path, "listenerMetadata": "veil-test-meta",
                                "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"]]])
        if runtime.name == "veil" {
            // The sandbox's warden holds the one listener a process may have: the default level
            // refuses a notifying profile, naming the way out: the operator's native level.
            let refused = try bundle.runtime(bin, ["run", bundle.id], timeout: 20)
            #expect(!refused.succeeded && refused.stderr.contains("linux.seccomp") && refused.stderr.contains("veil-native"), "\(refused)")
            #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
        }
        // At the operator's native level (--isolation native, what the veil-native handler gives) it runs.
        let run = try bundle.runtime(bin, (runtime.name == "veil" ? ["--isolation", "native"] : []) + ["run", bundle.id], timeout: 20)
        #expect(agent.wait(seconds: 5), "the agent got no connection")
        #expect(agent.receivedFD, "no listener fd arrived")
        #expect(agent.message.contains("seccompFd") && agent.message.contains("veil-test-meta") && agent.message.contains(bundle.id), "\(agent.message)")
        // The agent closed the listener: the notified mkdir fails with ENOSYS instead of hanging.
        #expect(run.stdout.contains("status=1") && run.stderr.contains("Function not implemented"), "\(run)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test func unknownActionIsRefusedNamingTheField() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [["names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"]]])
        let create = try bundle.runtime(bin, ["create", bundle.id])
        #expect(!create.succeeded)
        #expect(create.stderr.contains("linux.seccomp.syscalls[0].action") && create.stderr.contains("SCMP_ACT_EXPLODE"), "\(create)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test func unknownOperatorIsRefusedNamingTheField() throws {
        let bin = try requireVeil()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [["names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                              "args": [["index": 0, "value": 8, "op": "SCMP_CMP_SOMETIMES"]]]]])
        let create = try bundle.runtime(bin, ["create", bundle.id])
        #expect(!create.succeeded)
        #expect(create.stderr.contains("linux.seccomp.syscalls[0].args[0].op"), "\(create)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("unknown syscall names are skipped, as runc does", arguments: RuntimeUnderTest.all)
    func unknownSyscallSkipped(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "echo skipped-ok"])
        defer { bundle.remove() }
        try setProfile(bundle, ["defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [["names": ["no_such_syscall_2099", "mkdir"], "action": "SCMP_ACT_ERRNO"]]])
        let run = try bundle.runtime(bin, ["run", bundle.id])
        #expect(run.succeeded && run.stdout.contains("skipped-ok"), "\(run)")
    }
}

import Foundation
import Testing

/// Issue #11's host-facing promises of the sandbox level: a network namespace owned by the host
/// (no CAP_NET_ADMIN or CAP_NET_RAW over anything the kernel would let container root
/// configure), veil's own /sys, no host devices for privileged configs, nosuid/nodev binds.
@Suite(.serialized) struct SandboxNetworkTests {
    /// Every capability a privileged pod asks for (the sandbox keeps them inside its user namespace).
    static let everyCapability = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// `everyCapability` (in capability-number order) less those outside this host's bounding set
    /// (no CAP_SYS_RESOURCE on the dev machines), as containerd gives a privileged pod.
    static var hostCapabilities: [String] {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("CapBnd:") }
        let mask = line.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? ~0
        return everyCapability.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }

    static func makePrivileged(_ bundle: TestBundle) throws {
        let capabilities = hostCapabilities
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["capabilities"] = ["bounding": capabilities, "effective": capabilities, "permitted": capabilities]
            process["noNewPrivileges"] = false
            config["process"] = process
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["maskedPaths"] = []
            linux["readonlyPaths"] = []
            config["linux"] = linux
        }
    }

    /// The user namespace owning `pid`'s network namespace is the host's (NS_GET_USERNS, read by python3 on the host).
    static func networkNamespaceIsHostOwned(pid: Int32) throws -> Bool {
        let script = """
            import fcntl, os, sys
            fd = os.open("/proc/\(pid)/ns/net", os.O_RDONLY)
            owner = fcntl.ioctl(fd, 0xb701)
            print(os.stat(f"/proc/self/fd/{owner}").st_ino == os.stat("/proc/self/ns/user").st_ino)
            """
        let result = try runCommand("/usr/bin/python3", ["-c", script])
        guard result.succeeded else { throw SupportError("NS_GET_USERNS: \(result)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "True"
    }

    static let networkScript = """
        ip link add veil0 type dummy >/dev/null 2>&1; echo add=$?
        ip link set lo down >/dev/null 2>&1; echo down=$?
        ip link show lo | grep -q ',UP' && echo lo=up || echo lo=down
        echo start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
        echo 1024 > /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null; echo sysctl-write=$?
        httpd -p 127.0.0.1:80 -h /; echo httpd=$?
        """

    static func lines(_ text: String) -> [String: String] {
        Dictionary(text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }, uniquingKeysWith: { _, last in last })
    }

    @Test("a sandbox's network namespace is the host's to configure: lo is up and ports below 1024 bind, but nothing can be configured, privileged or not",
          arguments: [false, true])
    func hostOwnedNetwork(privileged: Bool) throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        if privileged { try Self.makePrivileged(bundle) }
        try #require(try bundle.runtime(veil, ["run", "-d", bundle.id]).succeeded)
        defer { _ = try? bundle.runtime(veil, ["delete", "--force", bundle.id]) }
        let pid = try #require(try bundle.state(veil)?["pid"] as? Int)
        #expect(try Self.networkNamespaceIsHostOwned(pid: Int32(pid)), "the sandbox's network namespace must belong to the host's user namespace")
        let again = try bundle.runtime(veil, ["exec", bundle.id, "sh", "-c", Self.networkScript])
        let output = Self.lines(again.stdout)
        #expect(output["add"] != "0", "container root created a link: \(again)")
        #expect(output["down"] != "0", "container root set lo down: \(again)")
        #expect(output["lo"] == "up", "\(again)")
        #expect(output["start"] == "0", "\(again)")
        #expect(output["sysctl-write"] != "0", "container root wrote a sysctl of the host-owned namespace: \(again)")
        #expect(output["httpd"] == "0", "\(again)")
        #expect(try bundle.runtime(veil, ["delete", "--force", bundle.id]).succeeded)
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("a joined network namespace made on the host (as a pod's) lets sandboxed servers bind port 80; the host's own namespace is never changed")
    func joinedAndHostNetwork() throws {
        let veil = try requireVeil()
        let name = "veil-test-" + randomName(8)
        let added = try runCommand("/usr/bin/ip", ["netns", "add", name])
        try #require(added.succeeded, "\(added)")
        defer { _ = try? runCommand("/usr/bin/ip", ["netns", "delete", name]) }
        let joined = try TestBundle(["sh", "-c", "httpd -p 127.0.0.1:80 -h /; echo httpd=$?; ip link add veil0 type dummy 2>/dev/null; echo add=$?"])
        defer { joined.remove() }
        try joined.editLinux { linux in
            var namespaces = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "network" }
            namespaces.append(["type": "network", "path": "/var/run/netns/" + name])
            linux["namespaces"] = namespaces
        }
        try Self.makePrivileged(joined)
        let run = try joined.runtime(veil, ["run", joined.id])
        let out = Self.lines(run.stdout)
        #expect(run.succeeded && out["httpd"] == "0" && out["add"] != "0", "\(run)")
        #expect(joined.leftovers().isEmpty, "\(joined.leftovers())")

        let hostStart = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8)
        let shared = try TestBundle(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
        defer { shared.remove() }
        try shared.editLinux { linux in
            linux["namespaces"] = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "network" }
        }
        let sharedRun = try shared.runtime(veil, ["run", shared.id])
        #expect(sharedRun.succeeded && sharedRun.stdout == hostStart, "the host's namespace keeps its value \(hostStart): \(sharedRun)")
        #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8) == hostStart)
    }

    @Test("a server on port 80 in the sandbox, as under runc: the oracle runs the same script")
    func lowPortsAsUnderRunc() throws {
        for runtime in RuntimeUnderTest.all {
            let bundle = try TestBundle(["sh", "-c", "httpd -p 127.0.0.1:80 -h /; echo httpd=$?"])
            defer { bundle.remove() }
            let run = try bundle.runtime(try runtime.binary(), ["run", bundle.id])
            #expect(run.succeeded && run.stdout.contains("httpd=0"), "\(runtime): \(run)")
            #expect(bundle.leftovers().isEmpty, "\(runtime): \(bundle.leftovers())")
        }
    }

    /// An ICMP echo to 127.0.0.1 the way iputils' ping sends it: a raw socket where the process
    /// has CAP_NET_RAW over the namespace (runc), else a ping socket (the sandbox).
    static let pingScript = """
        import socket
        def echo(kind):
            s = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
            s.settimeout(3)
            s.sendto(bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0]), ("127.0.0.1", 0))
            while True:
                data = s.recv(256)
                if kind == socket.SOCK_RAW:
                    data = data[(data[0] & 0xf) * 4:]
                if data[0] == 0:
                    return True
        for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
            try:
                if echo(kind):
                    print("ping=ok")
                    break
            except OSError as error:
                print("refused", kind, error)
        """

    @Test("ping works in a sandbox as under runc (a ping socket where runc's root opens a raw one)",
          .enabled(if: debianRootfsAvailable), arguments: IsolatedRuntime.all)
    func ping(runtime: IsolatedRuntime) throws {
        let bundle = try DebianBundle(["python3", "-c", Self.pingScript], rootfs: try requireDebianRootfs())
        defer { bundle.forceDelete(runtime); bundle.remove() }
        let run = try bundle.run(runtime)
        #expect(run.succeeded && run.stdout.contains("ping=ok"), "\(runtime): \(run)")
        #expect(bundle.leftovers().isEmpty, "\(runtime): \(bundle.leftovers())")
    }

    @Test("the sandbox's /sys is its own: the CPUs it may use, the cgroup mount point, nothing of the host's devices, read-only")
    func syntheticSys() throws {
        let veil = try requireVeil()
        let bundle = try TestBundle(["sh", "-c", """
            echo entries=$(ls /sys | tr '\\n' ' '); echo online=$(cat /sys/devices/system/cpu/online); \
            echo cpudirs=$(ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'); echo nproc=$(nproc); \
            echo class=$(ls /sys/class 2>/dev/null | wc -l); touch /sys/x 2>/dev/null; echo touch=$?; \
            echo cgroup=$(ls /sys/fs/cgroup | wc -l)
            """])
        defer { bundle.remove() }
        try bundle.editLinux { linux in
            linux["resources"] = ["cpu": ["quota": 100_000, "period": 100_000]]
        }
        let run = try bundle.runtime(veil, ["run", bundle.id])
        #expect(run.succeeded, "\(run)")
        let out = Self.lines(run.stdout)
        #expect(out["entries"]?.split(separator: " ").sorted() == ["devices", "fs"], "\(run)")
        #expect(out["cpudirs"] == "1" && out["nproc"] == "1", "\(run)")
        #expect(out["online"].flatMap { Int($0) } != nil, "one CPU, as a cpu list: \(run)")
        #expect(out["class"] == "0", "\(run)")
        #expect(out["touch"] != "0", "\(run)")
        #expect(out["cgroup"].flatMap { Int($0) }.map { $0 > 0 } == true, "the container's cgroups under /sys/fs/cgroup: \(run)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")

        // Native is runc's: the kernel's sysfs.
        let native = try TestBundle(["sh", "-c", "ls /sys/class | wc -l"])
        defer { native.remove() }
        let nativeRun = try native.runtime(veil, ["--isolation", "native", "run", native.id])
        #expect(nativeRun.succeeded && (Int(nativeRun.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0, "\(nativeRun)")
    }

    @Test("privileged configs get no host devices at the sandbox level unless the operator lets one through; native keeps them")
    func noHostDevices() throws {
        let veil = try requireVeil()
        let candidates: [(String, Int, Int)] = [("/dev/kvm", 10, 232), ("/dev/loop-control", 10, 237), ("/dev/fuse", 10, 229), ("/dev/net/tun", 10, 200)]
        let present = candidates.filter { FileManager.default.fileExists(atPath: $0.0) }
        let devices = try #require(present.count >= 2 ? present : nil, "needs two of \(candidates.map(\.0)) on the host")
        func bundle() throws -> TestBundle {
            let made = try TestBundle(["sh", "-c", devices.map { "test -c \($0.0) && echo has=\($0.0)" }.joined(separator: "; ") + "; true"])
            try Self.makePrivileged(made)
            try made.editLinux { linux in
                linux["devices"] = devices.map { ["path": $0.0, "type": "c", "major": $0.1, "minor": $0.2, "fileMode": 0o666, "uid": 0, "gid": 0] }
                var resources = linux["resources"] as? [String: Any] ?? [:]
                resources["devices"] = [["allow": true, "access": "rwm"]]
                linux["resources"] = resources
            }
            return made
        }
        func found(_ result: CommandResult) -> Set<String> {
            Set(result.stdout.split(separator: "\n").compactMap { $0.hasPrefix("has=") ? String($0.dropFirst(4)) : nil })
        }
        let sandboxed = try bundle()
        defer { sandboxed.remove() }
        let run = try sandboxed.runtime(veil, ["run", sandboxed.id])
        #expect(run.succeeded && found(run).isEmpty, "host devices reached the sandbox: \(run)")

        let allowed = try bundle()
        defer { allowed.remove() }
        let allowedRun = try allowed.runtime(veil, ["--sandbox-device", devices[0].0, "run", allowed.id])
        #expect(allowedRun.succeeded && found(allowedRun) == [devices[0].0], "\(allowedRun)")

        let native = try bundle()
        defer { native.remove() }
        let nativeRun = try native.runtime(veil, ["--isolation", "native", "run", native.id])
        #expect(nativeRun.succeeded && found(nativeRun) == Set(devices.map(\.0)), "\(nativeRun)")
        for made in [sandboxed, allowed, native] { #expect(made.leftovers().isEmpty, "\(made.leftovers())") }
    }

    @Test("bind mounts of a sandbox are nosuid and nodev")
    func bindMountsNosuidNodev() throws {
        let veil = try requireVeil()
        let host = try TempDir(prefix: "veil-bind")
        let bundle = try TestBundle(["sh", "-c", "grep ' /mnt/host ' /proc/self/mountinfo"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/mnt/host", "type": "bind", "source": host.path, "options": ["rbind", "rw"]])
            config["mounts"] = mounts
        }
        let run = try bundle.runtime(veil, ["run", bundle.id])
        #expect(run.succeeded && run.stdout.contains("nosuid") && run.stdout.contains("nodev"), "\(run)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }
}

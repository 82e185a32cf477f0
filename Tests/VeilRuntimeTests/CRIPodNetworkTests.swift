// Kubernetes pods as a node runs them (issue #12): containerd's CRI plugin with a CNI pod network
// (ptp + host-local, SupportCNI.swift), so each pod gets its own network namespace, made and owned
// by containerd in the host's user namespace. Per handler, in the same test: `runc` (the oracle),
// `veil` (the sandbox level, the default) and `veil-native` (the operator's native level):
// - a busybox httpd on port 80 serves the pod's other container on 127.0.0.1:80 and the host on the
//   pod's address; exec works through ExecSync (`crictl exec -s`) and through the streaming server
//   (Exec's URL, what `crictl exec` and `kubectl exec` use); the same with shareProcessNamespace;
// - port-forward through the streaming server (PortForward's URL, the WebSocket form of
//   `kubectl port-forward`) to port 80 returns the page;
// - a pod's own net.* sysctl (ip_unprivileged_port_start) holds in its containers;
// - hostPath volumes with Bidirectional (rshared) and HostToContainer (rslave) propagation start,
//   and receive a mount the host makes after the start;
// - the sandbox level's deliberate differences (NET_ADMIN in the pod's namespace, `mount` in a
//   privileged container, `Seccomp:` under Unconfined), each refused or visible at the sandbox level
//   and as runc's under veil-native.
// CRI calls go through veil-cri-driver (CRICalls, CRITests.swift); WebSocket streams through
// ChannelWebSocket (SupportWebSocket.swift).

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let canRunCRIPodNetworkTests = veilRequired || getuid() == 0
    && (ProcessInfo.processInfo.environment["VEIL_BINARY"] != nil || FileManager.default.isExecutableFile(atPath: veilBinary))

@Suite("CRI: pods on their own network (CNI), per handler", .serialized,
       .enabled(if: canRunCRIPodNetworkTests, "needs root and the release build of veil and its shim (VEIL_BINARY)"),
       .enabled(if: CNIPodNetwork.unavailable == nil || veilRequired,
                "needs Debian's containernetworking-plugins (ptp, host-local, loopback in /usr/lib/cni; `make deps` installs it)"))
struct CRIPodNetworkTests {
    /// The page the pods' httpd serves.
    static let page = "served-from-the-pod"

    // MARK: serving on port 80

    @Test("httpd on port 80 in a pod with its own network namespace: the pod's other container, the host, exec and port-forward reach it",
          arguments: CRIHandler.all)
    func servingPod(_ handler: CRIHandler) throws {
        let pods = try PodRig(handler)
        defer { pods.stop() }

        // The Kubernetes default: each container its own pid namespace.
        try pods.checkServing(name: "web", pid: "CONTAINER")
        // shareProcessNamespace: true.
        try pods.checkServing(name: "shared-pid", pid: "POD")
        pods.expectClean()
    }

    // MARK: the pod's sysctls

    @Test("a pod's own net.* sysctls hold in its containers: veil's defaults for the pod's namespace do not override them",
          arguments: CRIHandler.all)
    func podSysctls(_ handler: CRIHandler) throws {
        let pods = try PodRig(handler)
        defer { pods.stop() }
        // A Kubernetes safe sysctl, set to another value than veil's default (0). (ping_group_range is
        // not compared: a sandbox reads its group ids through its user namespace, unmapped ones as 65534.)
        let sysctls = ["net.ipv4.ip_unprivileged_port_start": "1024"]
        let pod = try pods.runPod(name: "sysctls", sysctls: sysctls).get()
        let container = try pods.startContainer(pod: pod, pods.containerConfig(name: "reader", ["sleep", "1000"])).get()
        for (key, value) in sysctls.sorted(by: { $0.key < $1.key }) {
            let read = try pods.calls.exec(container, ["cat", "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")])
            #expect(read.stdout == value + "\n", "\(handler): \(key) set by the pod: \(read)")
        }
        pods.removePod(pod)
        pods.expectClean()
    }

    // MARK: mount propagation

    @Test("hostPath volumes with Bidirectional and HostToContainer propagation start, and receive the host's later mounts",
          arguments: CRIHandler.all)
    func mountPropagation(_ handler: CRIHandler) throws {
        let pods = try PodRig(handler)
        defer { pods.stop() }
        let calls = pods.calls
        // The host side, as a node prepares a CSI plugin's directory: a shared mount (containerd
        // refuses Bidirectional from a private one, and HostToContainer from one neither shared nor slave).
        let bidirectional = pods.rig.directory + "/propagation/bidirectional"
        let hostToContainer = pods.rig.directory + "/propagation/host-to-container"
        for directory in [bidirectional, hostToContainer] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            guard mount(directory, directory, nil, UInt(MS_BIND), nil) == 0, mount(nil, directory, nil, UInt(MS_SHARED), nil) == 0 else {
                throw SupportError("making \(directory) a shared mount: errno \(errno)")
            }
        }
        let volumes: [[String: Any]] = [
            ["containerPath": "/bidirectional", "hostPath": bidirectional, "propagation": "PROPAGATION_BIDIRECTIONAL"],
            ["containerPath": "/host-to-container", "hostPath": hostToContainer, "propagation": "PROPAGATION_HOST_TO_CONTAINER"],
        ]
        // Privileged, as a CSI node plugin's pod is (containerd refuses a privileged container in an unprivileged pod).
        let pod = try pods.runPod(name: "volumes", privileged: true).get()
        var config = pods.containerConfig(name: "reader", ["sleep", "1000"])
        config["mounts"] = volumes
        let started = try pods.startContainer(pod: pod, config)
        guard case .success(let reader) = started else {
            Issue.record("\(handler): a container with Bidirectional and HostToContainer volumes did not start: \(started)")
            return
        }

        // The propagation each mount shows inside: a peer group for rshared, a master for rslave.
        let mountinfo = try calls.exec(reader, ["cat", "/proc/self/mountinfo"])
        func optionalFields(_ point: String) -> String {
            let line = mountinfo.stdout.split(separator: "\n").first { $0.split(separator: " ").dropFirst(4).first.map(String.init) == point }
            return line.map { $0.split(separator: " ").dropFirst(6).prefix { $0 != "-" }.joined(separator: " ") } ?? "(not mounted)"
        }
        #expect(optionalFields("/bidirectional").contains("shared:"), "\(handler): /bidirectional is not rshared: \(optionalFields("/bidirectional"))")
        #expect(optionalFields("/host-to-container").contains("master:"), "\(handler): /host-to-container is not rslave: \(optionalFields("/host-to-container"))")

        // Mounts the host makes after the start reach the container through both.
        for directory in [bidirectional, hostToContainer] {
            let late = directory + "/late"
            try FileManager.default.createDirectory(atPath: late, withIntermediateDirectories: true)
            guard mount("tmpfs", late, "tmpfs", 0, nil) == 0 else { throw SupportError("mounting a tmpfs on \(late): errno \(errno)") }
            try "mounted-after-start\n".write(toFile: late + "/marker", atomically: false, encoding: .utf8)
        }
        for point in ["/bidirectional", "/host-to-container"] {
            var seen = (status: 0, stdout: "", stderr: "")
            let received = try waitUntil(timeout: 5) {
                seen = try calls.exec(reader, ["cat", point + "/late/marker"])
                return seen.stdout == "mounted-after-start\n"
            }
            #expect(received, "\(handler): \(point) did not receive the host's mount made after the start: \(seen)")
        }

        // A privileged container's own mount under the Bidirectional volume reaches the host: runc and
        // veil-native; the sandbox refuses `mount` itself (a deliberate difference, see below).
        var privileged = pods.containerConfig(name: "publisher", ["sleep", "1000"], security: ["privileged": true])
        privileged["mounts"] = [volumes[0]]
        let publisher = try pods.startContainer(pod: pod, privileged).get()
        let published = try calls.exec(publisher, ["sh", "-c", "mkdir -p /bidirectional/from-container && mount -t tmpfs none /bidirectional/from-container && echo hi > /bidirectional/from-container/file && echo mounted"])
        var onHost = ""
        let reachedHost = waitUntil(timeout: 5) {
            onHost = (try? String(contentsOfFile: bidirectional + "/from-container/file", encoding: .utf8)) ?? ""
            return onHost == "hi\n"
        }
        if handler.isSandbox {
            #expect(published.status != 0 && !reachedHost, "\(handler): mount in a privileged sandbox: \(published)")
        } else {
            #expect(published.stdout == "mounted\n" && reachedHost, "\(handler): a container's mount under a Bidirectional volume: \(published), host sees \(onHost.debugDescription)")
        }
        pods.removePod(pod)
        unmountAll(under: pods.rig.directory + "/propagation")
        pods.expectClean()
    }

    // MARK: the sandbox level's deliberate differences

    @Test("the sandbox level's deliberate differences: NET_ADMIN cannot make a bridge in the pod's namespace, mount is refused when privileged, Seccomp: is never 0; veil-native behaves as runc",
          arguments: CRIHandler.all)
    func deliberateDifferences(_ handler: CRIHandler) throws {
        let pods = try PodRig(handler)
        defer { pods.stop() }
        let calls = pods.calls

        let pod = try pods.runPod(name: "netadmin").get()
        let admin = try pods.startContainer(pod: pod, pods.containerConfig(name: "admin", ["sleep", "1000"],
                                                                           security: ["capabilities": ["addCapabilities": ["NET_ADMIN"]]])).get()
        let bridge = try calls.exec(admin, ["ip", "link", "add", "veiltest0", "type", "bridge"])
        let unconfined = try pods.startContainer(pod: pod, pods.containerConfig(name: "unconfined", ["sleep", "1000"],
                                                                                security: ["seccomp": ["profileType": "Unconfined"]])).get()
        let seccomp = try calls.exec(unconfined, ["grep", "^Seccomp:", "/proc/self/status"])
        pods.removePod(pod)

        let privilegedPod = try pods.runPod(name: "privileged", privileged: true).get()
        let privileged = try pods.startContainer(pod: privilegedPod, pods.containerConfig(name: "privileged", ["sleep", "1000"],
                                                                                          security: ["privileged": true])).get()
        let mounted = try calls.exec(privileged, ["sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted"])
        let privilegedSeccomp = try calls.exec(privileged, ["grep", "^Seccomp:", "/proc/self/status"])
        pods.removePod(privilegedPod)

        if handler.isSandbox {
            // The pod's namespace belongs to the host's user namespace: no capability over it.
            #expect(bridge.status != 0 && bridge.stderr.contains("Operation not permitted"), "\(handler): a bridge in the pod's namespace: \(bridge)")
            #expect(mounted.status != 0 && mounted.stdout.isEmpty, "\(handler): mount in a privileged container: \(mounted)")
            // The sandbox's own filter stays under any profile.
            #expect(seccomp.stdout == "Seccomp:\t2\n", "\(handler): Unconfined: \(seccomp)")
            #expect(privilegedSeccomp.stdout == "Seccomp:\t2\n", "\(handler): privileged: \(privilegedSeccomp)")
        } else {
            #expect(bridge.status == 0, "\(handler): a bridge in the pod's namespace with NET_ADMIN: \(bridge)")
            #expect(mounted.stdout == "mounted\n", "\(handler): mount in a privileged container: \(mounted)")
            #expect(seccomp.stdout == "Seccomp:\t0\n", "\(handler): Unconfined: \(seccomp)")
            #expect(privilegedSeccomp.stdout == "Seccomp:\t0\n", "\(handler): privileged: \(privilegedSeccomp)")
        }
        pods.expectClean()
    }
}

/// One CRI rig with a pod network, for one handler, and what the tests do with it.
private struct PodRig {
    let handler: CRIHandler
    let rig: ContainerdRig
    let calls: CRICalls
    let parent: String

    init(_ handler: CRIHandler) throws {
        self.handler = handler
        rig = try CRITests.makeRig(podNetwork: CNIPodNetwork())
        calls = CRICalls(socket: rig.address)
        parent = "/veil-test/cri-net-" + randomName(8)
    }

    /// Removes every pod (their network namespaces and veth pairs go with them), then the rig.
    func stop() {
        if case .success(let listed) = try? calls.attempt("ListPodSandbox", [:], timeout: 30) {
            for item in listed["items"] as? [[String: Any]] ?? [] {
                if let id = item["id"] as? String { removePod(CRIPod(id: id, config: [:])) }
            }
        }
        rig.stop()
        removeCgroups(parent)
    }

    func expectClean() {
        let containers = (try? rig.ctr(["containers", "ls", "-q"]))?.stdout ?? "?"
        let clean = waitUntil(timeout: 5) { rig.shimProcesses().isEmpty && cgroupChildren(parent).isEmpty }
        #expect(containers.isEmpty && clean, "\(handler): left behind: containers \(containers), shims \(rig.shimProcesses()), cgroups \(cgroupChildren(parent))")
    }

    // MARK: configs

    func podConfig(name: String, pid: String = "CONTAINER", privileged: Bool = false, sysctls: [String: String] = [:]) -> [String: Any] {
        [
            "metadata": ["name": name, "uid": randomName(12), "namespace": "veil-test", "attempt": 0],
            "hostname": name,
            "logDirectory": rig.directory + "/logs/" + name,
            "annotations": handler.annotations,
            "linux": [
                "cgroupParent": parent,
                "sysctls": sysctls,
                // The pod's own network namespace, from CNI.
                "securityContext": ["namespaceOptions": ["network": "POD", "pid": pid, "ipc": "POD"], "privileged": privileged] as [String: Any],
            ] as [String: Any],
        ]
    }

    func runPod(name: String, pid: String = "CONTAINER", privileged: Bool = false, sysctls: [String: String] = [:]) throws -> Result<CRIPod, SupportError> {
        let config = podConfig(name: name, pid: pid, privileged: privileged, sysctls: sysctls)
        return try calls.attempt("RunPodSandbox", ["config": config, "runtimeHandler": handler.handler]).map { answer in
            CRIPod(id: answer["podSandboxId"] as? String ?? "", config: config)
        }
    }

    func removePod(_ pod: CRIPod) {
        _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": pod.id])
        _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": pod.id])
    }

    func containerConfig(name: String, _ command: [String], security: [String: Any] = [:]) -> [String: Any] {
        [
            "metadata": ["name": name, "attempt": 0],
            "image": ["image": rig.image],
            "command": command,
            "logPath": name + ".log",
            "annotations": handler.annotations,
            "linux": ["securityContext": security],
        ]
    }

    /// Creates and starts the container: its id, or the runtime's error.
    func startContainer(pod: CRIPod, _ config: [String: Any]) throws -> Result<String, SupportError> {
        let answer: [String: Any]
        switch try calls.attempt("CreateContainer", ["podSandboxId": pod.id, "config": config, "sandboxConfig": pod.config]) {
        case .failure(let error): return .failure(error)
        case .success(let created): answer = created
        }
        guard let id = answer["containerId"] as? String else { return .failure(SupportError("CreateContainer: no id in \(answer)")) }
        return try calls.attempt("StartContainer", ["containerId": id]).map { _ in id }
    }

    func state(_ container: String) throws -> String {
        let status = try calls.call("ContainerStatus", ["containerId": container])
        return (status["status"] as? [String: Any])?["state"] as? String ?? "?"
    }

    // MARK: the serving pod

    /// A pod (own network namespace; `pid` CONTAINER or POD) with httpd on port 80 and a client
    /// container; checks everything a user reaches it by.
    func checkServing(name: String, pid: String) throws {
        let label = "\(handler), \(name) pod (pid \(pid))"
        let pod = try runPod(name: name, pid: pid).get()
        defer { removePod(pod) }
        let serve = "mkdir -p /tmp/www && echo \(CRIPodNetworkTests.page) > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"
        let web = try startContainer(pod: pod, containerConfig(name: "httpd", ["sh", "-c", serve])).get()
        let client = try startContainer(pod: pod, containerConfig(name: "client", ["sleep", "1000"])).get()

        // The pod's other container reaches the server on the pod's loopback.
        var fetched = (status: 0, stdout: "", stderr: "")
        let served = try waitUntil(timeout: 20) {
            fetched = try calls.exec(client, ["wget", "-q", "-O", "-", "http://127.0.0.1:80/"])
            return fetched.stdout == CRIPodNetworkTests.page + "\n"
        }
        let webState = try state(web)
        let log = (try? String(contentsOfFile: rig.directory + "/logs/" + name + "/httpd.log", encoding: .utf8)) ?? ""
        #expect(served && webState == "CONTAINER_RUNNING", "\(label): 127.0.0.1:80 from the pod's other container: \(fetched); httpd is \(webState), its log:\n\(log)")

        // Both containers are in the pod's namespace, not the host's.
        let hostNamespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? "?"
        let namespaces = try [web, client].map { try calls.exec($0, ["readlink", "/proc/self/ns/net"]).stdout }
        #expect(namespaces[0] == namespaces[1] && !namespaces[0].isEmpty && namespaces[0] != hostNamespace + "\n",
                "\(label): network namespaces \(namespaces), the host's \(hostNamespace)")

        // The host reaches the pod on its address (as a Service's traffic does).
        let address = try calls.exec(client, ["ip", "-4", "-o", "addr", "show", "eth0"])
        let words = address.stdout.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let podIP = words.firstIndex(of: "inet").flatMap { words.indices.contains($0 + 1) ? words[$0 + 1].split(separator: "/").first : nil }
        if let podIP {
            let fromHost = httpGet(address: String(podIP), port: 80)
            #expect(fromHost.hasPrefix("HTTP/1.") && fromHost.hasSuffix("\r\n\r\n" + CRIPodNetworkTests.page + "\n"),
                    "\(label): the pod's address \(podIP) from the host: \(fromHost.debugDescription)")
        } else {
            Issue.record("\(label): no IPv4 address on eth0: \(address)")
        }

        // With shareProcessNamespace, the client sees the server and the pause process as pid 1.
        if pid == "POD" {
            let processes = try calls.exec(client, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/[0-9]*/comm"])
            #expect(processes.stdout.hasPrefix("/pause") && processes.stdout.contains("httpd"), "\(label): the pod's processes from the client: \(processes)")
        }

        // Exec: ExecSync (`crictl exec -s`), then the streaming server (`crictl exec`, `kubectl exec`).
        let execSync = try calls.exec(web, ["sh", "-c", "echo exec-ok; id -u"])
        #expect(execSync.status == 0 && execSync.stdout == "exec-ok\n0\n", "\(label): ExecSync: \(execSync)")
        try checkStreamingExec(web, label: label)

        // kubectl port-forward: the streaming server dials port 80 inside the pod's namespace.
        try checkPortForward(pod, label: label)

        // The server survived all of it.
        #expect(try state(web) == "CONTAINER_RUNNING", "\(label): httpd after the checks")
    }

    /// Exec through the URL the Exec call returns: stdout, stderr and the exit status on their channels.
    func checkStreamingExec(_ container: String, label: String) throws {
        let answer = try calls.call("Exec", ["containerId": container, "cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                             "stdout": true, "stderr": true])
        guard let url = answer["url"] as? String else {
            Issue.record("\(label): Exec gave no URL: \(answer)")
            return
        }
        let socket = try ChannelWebSocket(url: url)
        let channels = try socket.receive(timeout: 20)
        let stdout = String(decoding: channels[1] ?? [], as: UTF8.self)
        let stderr = String(decoding: channels[2] ?? [], as: UTF8.self)
        let status = String(decoding: channels[3] ?? [], as: UTF8.self)
        // The status channel's JSON names the exit code of a failed command: {"status":"Failure",
        // "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}.
        #expect(stdout == "out\n" && stderr == "err\n" && status.contains("NonZeroExitCode") && status.contains(#""message":"3""#),
                "\(label): streaming exec: stdout \(stdout.debugDescription), stderr \(stderr.debugDescription), status \(status), closed \(socket.closed)")
    }

    /// Port-forward through the URL the PortForward call returns, to port 80: the page.
    func checkPortForward(_ pod: CRIPod, label: String) throws {
        let answer = try calls.call("PortForward", ["podSandboxId": pod.id, "port": [80]])
        guard let url = answer["url"] as? String else {
            Issue.record("\(label): PortForward gave no URL: \(answer)")
            return
        }
        let socket = try ChannelWebSocket(url: url, query: "port=80")
        try socket.send(channel: 0, Array("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8))
        let channels = try socket.receive(timeout: 20) { channels in
            String(decoding: channels[0] ?? [], as: UTF8.self).contains(CRIPodNetworkTests.page)
        }
        // Each channel opens with the port number, two bytes little-endian.
        let data = channels[0] ?? []
        let errors = channels[1] ?? []
        let response = String(decoding: data.dropFirst(2), as: UTF8.self)
        #expect(Array(data.prefix(2)) == [80, 0], "\(label): port-forward's data channel did not open with port 80: \(data.prefix(2))")
        #expect(response.hasPrefix("HTTP/1.") && response.contains(" 200 ") && response.contains(CRIPodNetworkTests.page),
                "\(label): port-forward to port 80: \(response.debugDescription), errors \(String(decoding: errors.dropFirst(2), as: UTF8.self))")
    }
}

/// GET / over HTTP/1.0 from the host (busybox-static's wget crashes on the host): the whole
/// response, or what went wrong.
private func httpGet(address: String, port: UInt16, timeout: TimeInterval = 5) -> String {
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = in_port_t(port.bigEndian)
    guard inet_pton(AF_INET, address, &target.sin_addr) == 1 else { return "(not an IPv4 address: \(address))" }
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return "(socket: errno \(errno))" }
    defer { close(descriptor) }
    var wait = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return "(connect to \(address):\(port): errno \(errno))" }
    let request = Array("GET / HTTP/1.0\r\nHost: \(address)\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        return "(send: errno \(errno))"
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 { response += buffer[0..<count] } else { break }
    }
    return String(decoding: response, as: UTF8.self)
}

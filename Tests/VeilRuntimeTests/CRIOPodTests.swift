// CRI-O driving veil end to end (issue #15): a pod of two containers through CRI-O v1.26.4 with
// veil's handlers as `veil install --crio` writes them, beside runc. CRI-O pins each pod's IPC, UTS
// and network namespaces itself and names them in every container; the pod must run at both
// levels, its containers sharing IPC and hostname, and at the sandbox level one sandbox (one user
// namespace, one warden) whose IPC and UTS namespaces are its own, not the host-owned pins.

import Foundation
import Testing

@Suite("CRI-O: pods through a real CRI-O", .serialized,
       .enabled(if: canRunCRITests, "needs root and the release build of veil (VEIL_BINARY)"))
struct CRIOPodTests {
    static let handlers = ["runc", "veil", "veil-native"]

    func podConfig(_ rig: CRIORig, name: String) -> [String: Any] {
        [
            "metadata": ["name": name, "uid": randomName(12), "namespace": "veil-test", "attempt": 0],
            "hostname": "crio-" + name,
            "logDirectory": rig.directory + "/logs/" + name,
            "linux": ["cgroupParent": rig.cgroupParent, "securityContext": ["namespaceOptions": ["pid": "CONTAINER"]]] as [String: Any],
        ]
    }

    func containerConfig(_ rig: CRIORig, name: String, _ command: [String]) -> [String: Any] {
        ["metadata": ["name": name, "attempt": 0], "image": ["image": rig.image], "command": command, "logPath": name + ".log"]
    }

    func hostPid(_ calls: CRICalls, _ container: String) throws -> Int32 {
        let status = try calls.call("ContainerStatus", ["containerId": container, "verbose": true])
        guard let info = (status["info"] as? [String: String])?["info"],
              let object = try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any],
              let pid = object["pid"] as? Int else { throw SupportError("no pid in ContainerStatus: \(status)") }
        return Int32(pid)
    }

    static func inode(_ path: String) -> String? {
        guard let result = try? runCommand("/usr/bin/stat", ["-L", "-c", "%i", path]), result.succeeded else { return nil }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a pod of two containers, per handler", arguments: handlers)
    func podOfTwo(_ handler: String) throws {
        guard let rig = try CRIORig.start() else {
            print("skipping CRIOTests: no CRI-O built here (scripts/build-crio.sh needs the fetched cri-o source once)")
            return
        }
        defer { rig.stop() }
        let calls = CRICalls(socket: rig.socket)
        let config = podConfig(rig, name: "pod")
        let ran = try calls.attempt("RunPodSandbox", ["config": config, "runtimeHandler": handler])
        let podID = try #require(try ran.get()["podSandboxId"] as? String, "\(ran)\n\(rig.log.suffix(3000))")
        defer {
            _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": podID])
            _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": podID])
        }
        var containers: [String] = []
        for name in ["first", "second"] {
            let created = try calls.call("CreateContainer", ["podSandboxId": podID, "config": containerConfig(rig, name: name, ["sleep", "300"]),
                                                             "sandboxConfig": config])
            let id = try #require(created["containerId"] as? String)
            try calls.call("StartContainer", ["containerId": id])
            containers.append(id)
        }
        let probe = ["sh", "-c", "hostname; stat -L -c %i /proc/self/ns/ipc /proc/self/ns/uts; cat /proc/self/uid_map"]
        let first = try calls.exec(containers[0], probe), second = try calls.exec(containers[1], probe)
        #expect(first.status == 0 && second.status == 0, "\(first) \(second)")
        let lines = first.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "crio-pod", "the pod's hostname: \(first)")
        #expect(first.stdout == second.stdout, "one IPC and UTS namespace, one uid map for the pod: \(first.stdout) vs \(second.stdout)")
        let uidMap = lines.dropFirst(3).joined().split(separator: " ").map(String.init)
        let pid = try hostPid(calls, containers[0])
        let pins = (try? FileManager.default.contentsOfDirectory(atPath: rig.directory + "/run/ns/ipcns")) ?? []
        let pinInodes = Set(pins.compactMap { Self.inode(rig.directory + "/run/ns/ipcns/" + $0) })
        let ipc = Self.inode("/proc/\(pid)/ns/ipc") ?? "?"
        #expect(!pinInodes.isEmpty, "CRI-O pinned the pod's IPC namespace")
        if handler == "veil" {
            #expect(uidMap.count == 3 && uidMap[1] != "0", "the sandbox's root is not the host's: \(uidMap)")
            #expect(!pinInodes.contains(ipc), "the sandbox level adopts the pod's pins: its IPC namespace is its own")
            let wardens = try runCommand("/usr/bin/pgrep", ["-f", "veil-warden " + rig.veilRoot])
            #expect(wardens.stdout.split(separator: "\n").count == 2, "one warden (and its sentinel) for the pod: \(wardens)")
        } else {
            #expect(uidMap == ["0", "0", "4294967295"], "\(uidMap)")
            #expect(pinInodes.contains(ipc), "runc's semantics: the pod's containers join CRI-O's pins")
        }
        // Logs reach CRI-O's log files; a container stops and is removed as under runc.
        let stopped = try calls.attempt("StopContainer", ["containerId": containers[1], "timeout": 5])
        #expect((try? stopped.get()) != nil, "\(stopped)")
        try calls.call("RemoveContainer", ["containerId": containers[1]])
        #expect(try calls.exec(containers[0], ["true"]).status == 0, "the pod's first container outlives the second")
    }

    /// A pod on the bridge CNI (a veth on the rig's bridge, an address) serving port 80 to its neighbour and to
    /// the host; CRI-O's annotations reach veil's state; `veil verify` passes through CRI-O.
    @Test("a served pod on the CNI network, CRI-O's annotations in veil's state, veil verify", arguments: ["veil", "veil-native"])
    func networkAnnotationsVerify(_ handler: String) throws {
        guard let rig = try CRIORig.start(cni: "bridge") else {
            print("skipping CRIOPodTests: no CRI-O built here (scripts/build-crio.sh needs the fetched cri-o source once)")
            return
        }
        defer { rig.stop() }
        let calls = CRICalls(socket: rig.socket)
        var config = podConfig(rig, name: "web")
        config["linux"] = ["cgroupParent": rig.cgroupParent] as [String: Any]
        let podID = try #require(try calls.call("RunPodSandbox", ["config": config, "runtimeHandler": handler])["podSandboxId"] as? String)
        defer {
            _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": podID])
            _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": podID])
        }
        var ids: [String] = []
        for (name, command) in [("server", ["httpd", "-f", "-p", "80", "-h", "/etc"]), ("client", ["sleep", "300"])] {
            let created = try calls.call("CreateContainer", ["podSandboxId": podID, "config": containerConfig(rig, name: name, command), "sandboxConfig": config])
            let id = try #require(created["containerId"] as? String)
            try calls.call("StartContainer", ["containerId": id])
            ids.append(id)
        }
        // The neighbour, over the pod's loopback; then the host, over the pod's address.
        var fetched = (status: -1, stdout: "", stderr: "")
        _ = waitUntil(timeout: 10) {
            fetched = (try? calls.exec(ids[1], ["wget", "-qO-", "http://127.0.0.1:80/hostname"])) ?? fetched
            return fetched.status == 0
        }
        #expect(fetched.stdout == "crio-web\n", "\(handler): port 80 from the pod's other container: \(fetched)")
        // The pod's address, as its containers see it (CRI-O 1.26 leaves it out of PodSandboxStatus here).
        let address = try calls.exec(ids[1], ["sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9.]*' | cut -d' ' -f2"])
        let ip = address.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(ip.split(separator: ".").count == 4, "\(handler): the pod's eth0 address: \(address)")
        let fromHost = try runCommand("/usr/bin/python3", ["-c", "import urllib.request;print(urllib.request.urlopen('http://\(ip):80/hostname', timeout=5).read().decode(), end='')"])
        #expect(fromHost.stdout == "crio-web\n", "\(handler): port 80 from the host at \(ip): \(fromHost)")

        // What CRI-O writes into config.json reaches veil as it wrote it.
        let veil = try requireVeil()
        let state = try runCommand(veil, ["--root", rig.veilRoot, "state", ids[0]])
        let annotations = (try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any])?["annotations"] as? [String: String] ?? [:]
        #expect(annotations["io.kubernetes.cri-o.ContainerType"] == "container" && annotations["io.kubernetes.cri-o.SandboxID"] == podID
                && annotations["io.kubernetes.cri-o.ContainerID"] == ids[0], "\(handler): \(state)")

        let verify = try runCommand(veil, ["verify", "--cri-endpoint", "unix://" + rig.socket, "--image", rig.image, "--cgroup-parent", rig.cgroupParent,
                                           "--isolation", handler == "veil" ? "sandbox" : "native"], timeout: 120)
        #expect(verify.succeeded, "\(handler): veil verify through CRI-O:\n\(verify)")
    }
}

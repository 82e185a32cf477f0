// What Kubernetes' CRI validation (critest) checks of a runtime, through containerd 1.6's CRI plugin
// on a private socket, for the handler `runc` (containerd's runc shim and runc: the reference),
// `veil` (containerd-shim-veil-v1, the sandbox level) and `veil-native` (the same shim, the native
// level from its ConfigPath TOML), both as `veil install --containerd` registers them. Each handler gets one rig and runs every scenario: a pod whose
// containers run as another user with supplemental groups and a read-only rootfs, write the CRI
// log format, share the pod's pid namespace and sysctls, answer ExecSync (also past its timeout),
// report stats and take a resources update; a pod on the host's pid and IPC namespaces; a
// privileged pod. CRI calls go through veil-cri-driver (Tests/CRIDriver), a process per call.

import Foundation
import Testing
import VeilCRI
#if canImport(Glibc)
import Glibc
#endif

/// A CRI handler as a test runs it.
struct CRIHandler: Sendable, CustomStringConvertible {
    let name: String
    /// RuntimeClass handler in containerd's config.
    let handler: String
    /// Annotations on the pod and its containers (a tenant's: they do not pick the level).
    let annotations: [String: String]

    static let runc = CRIHandler(name: "runc", handler: "runc", annotations: [:])
    static let veil = CRIHandler(name: "veil", handler: "veil", annotations: [:])
    /// The native level is the operator's: its own handler, which a cluster admin grants with a RuntimeClass.
    static let veilNative = CRIHandler(name: "veil-native", handler: "veil-native", annotations: [:])
    static let all = [runc, veil, veilNative]

    var isSandbox: Bool { name == "veil" }
    var description: String { name }
}

/// veil-cri-driver, built beside the test binary by `swift build --build-tests`.
var criDriverBinary: String {
    if let path = ProcessInfo.processInfo.environment["VEIL_CRI_DRIVER"], !path.isEmpty { return path }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent + "/veil-cri-driver"
}

/// The shim built next to veil (`swift build -c release` builds both).
var shimBinary: String { (veilBinary as NSString).deletingLastPathComponent + "/containerd-shim-veil-v1" }

let canRunCRITests = veilRequired || getuid() == 0
    && (ProcessInfo.processInfo.environment["VEIL_BINARY"] != nil || FileManager.default.isExecutableFile(atPath: veilBinary))

/// One CRI call per process; requests and responses are protobuf JSON as dictionaries.
struct CRICalls {
    let socket: String

    /// The call's result: the response, or the runtime's error message.
    func attempt(_ method: String, _ request: [String: Any], timeout: TimeInterval = 120) throws -> Result<[String: Any], SupportError> {
        let body = try JSONSerialization.data(withJSONObject: request)
        let result = try runCommand(criDriverBinary, ["unix://" + socket, method, String(decoding: body, as: UTF8.self)], timeout: timeout)
        guard result.succeeded else {
            // The driver's own message, or, when it has none (it was killed, or timed out), how it ended.
            let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return .failure(SupportError("\(method): \(message.isEmpty ? "no message; \(result)" : message)"))
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw SupportError("\(method): not a JSON object:\n\(result)")
        }
        return .success(object)
    }

    @discardableResult
    func call(_ method: String, _ request: [String: Any], timeout: TimeInterval = 120) throws -> [String: Any] {
        try attempt(method, request, timeout: timeout).get()
    }

    /// ExecSync: exit code, stdout, stderr.
    func exec(_ container: String, _ command: [String], timeout: Int = 10) throws -> (status: Int, stdout: String, stderr: String) {
        let answer = try call("ExecSync", ["containerId": container, "cmd": command, "timeout": timeout], timeout: TimeInterval(timeout + 30))
        func text(_ key: String) -> String {
            guard let base64 = answer[key] as? String, let data = Data(base64Encoded: base64) else { return "" }
            return String(decoding: data, as: UTF8.self)
        }
        return ((answer["exitCode"] as? Int) ?? 0, text("stdout"), text("stderr"))
    }
}

/// A pod and what its containers need: the configs are kept to pass again with each container.
struct CRIPod {
    let id: String
    let config: [String: Any]
}

@Suite("CRI: critest's runtime checks through containerd, per handler", .serialized,
       .enabled(if: canRunCRITests, "needs root and the release build of veil and its shim (VEIL_BINARY)"))
struct CRITests {
    /// A CRI rig whose `veil` handler comes from `veil install --containerd` (containerd's default `runc` stays);
    /// with `podNetwork`, pods off the host's network get their own network namespace from CNI.
    static func makeRig(podNetwork: CNIPodNetwork? = nil) throws -> ContainerdRig {
        let veil = try requireVeil()
        guard FileManager.default.isExecutableFile(atPath: shimBinary) else {
            throw SupportError("shim not found at \(shimBinary) (build with `swift build -c release`)")
        }
        guard FileManager.default.isExecutableFile(atPath: criDriverBinary) else {
            throw SupportError("veil-cri-driver not found at \(criDriverBinary) (swift build --build-tests builds it; or set VEIL_CRI_DRIVER)")
        }
        var setup = CRISetup { configPath in
            let state = (configPath as NSString).deletingLastPathComponent + "/install.json"
            let installed = try runCommand(veil, ["install", "--containerd", "--config", configPath, "--no-binaries", "--no-restart"],
                                           environment: ["VEIL_INSTALL_STATE": state], timeout: 30)
            guard installed.succeeded else { throw SupportError("veil install --containerd failed:\n\(installed)") }
        }
        setup.podNetwork = podNetwork
        let rig = try ContainerdRig(extraPath: (shimBinary as NSString).deletingLastPathComponent, cri: setup)
        // The CRI plugin answers a little after containerd's own services.
        let calls = CRICalls(socket: rig.address)
        var last = ""
        let ready = try waitUntil(timeout: 120) {
            switch try calls.attempt("Version", [:], timeout: 10) {
            case .success: return true
            case .failure(let error): last = error.message; return false
            }
        }
        guard ready else {
            rig.stop()
            throw SupportError("the CRI plugin did not answer within 120 s: \(last)\n\(rig.log)")
        }
        return rig
    }

    // MARK: configs

    private func podConfig(_ handler: CRIHandler, name: String, logDirectory: String, cgroupParent: String,
                           pid: String = "POD", ipc: String = "POD", privileged: Bool = false,
                           sysctls: [String: String] = [:]) -> [String: Any] {
        [
            "metadata": ["name": name, "uid": randomName(12), "namespace": "veil-test", "attempt": 0],
            "logDirectory": logDirectory,
            "annotations": handler.annotations,
            "linux": [
                "cgroupParent": cgroupParent,
                "sysctls": sysctls,
                // The host's network: no CNI here.
                "securityContext": ["namespaceOptions": ["network": "NODE", "pid": pid, "ipc": ipc], "privileged": privileged] as [String: Any],
            ] as [String: Any],
        ]
    }

    private func runPod(_ calls: CRICalls, _ handler: CRIHandler, _ config: [String: Any]) throws -> Result<CRIPod, SupportError> {
        try calls.attempt("RunPodSandbox", ["config": config, "runtimeHandler": handler.handler]).map { answer in
            CRIPod(id: answer["podSandboxId"] as? String ?? "", config: config)
        }
    }

    private func containerConfig(_ handler: CRIHandler, name: String, image: String, _ command: [String],
                                 security: [String: Any] = [:]) -> [String: Any] {
        [
            "metadata": ["name": name, "attempt": 0],
            "image": ["image": image],
            "command": command,
            "logPath": name + ".log",
            "annotations": handler.annotations,
            "linux": ["securityContext": security],
        ]
    }

    /// Creates and starts the container; its id.
    private func startContainer(_ calls: CRICalls, pod: CRIPod, _ config: [String: Any]) throws -> String {
        let created = try calls.call("CreateContainer", ["podSandboxId": pod.id, "config": config, "sandboxConfig": pod.config])
        guard let id = created["containerId"] as? String else { throw SupportError("CreateContainer: no id in \(created)") }
        try calls.call("StartContainer", ["containerId": id])
        return id
    }

    /// The container's host pid, from ContainerStatus' verbose info.
    private func hostPid(_ calls: CRICalls, _ container: String) throws -> Int32 {
        let status = try calls.call("ContainerStatus", ["containerId": container, "verbose": true])
        guard let info = (status["info"] as? [String: String])?["info"],
              let object = try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any],
              let pid = object["pid"] as? Int else { throw SupportError("no pid in ContainerStatus: \(status)") }
        return Int32(pid)
    }

    private func removePod(_ calls: CRICalls, _ pod: CRIPod) {
        _ = try? calls.attempt("StopPodSandbox", ["podSandboxId": pod.id])
        _ = try? calls.attempt("RemovePodSandbox", ["podSandboxId": pod.id])
    }

    // MARK: the checks

    @Test("critest's runtime checks", arguments: CRIHandler.all)
    func runtimeChecks(_ handler: CRIHandler) throws {
        let rig = try Self.makeRig()
        defer { rig.stop() }
        let calls = CRICalls(socket: rig.address)
        let parent = "/veil-test/cri-" + randomName(8)
        defer { removeCgroups(parent) }
        try allChecks(handler, calls, rig: rig, parent: parent)

        let containers = try rig.ctr(["containers", "ls", "-q"])
        #expect(containers.succeeded && containers.stdout.isEmpty, "\(handler): containers left:\n\(containers)")
        let clean = waitUntil(timeout: 5) { rig.shimProcesses().isEmpty && cgroupChildren(parent).isEmpty }
        #expect(clean, "\(handler): left behind: shims \(rig.shimProcesses()), cgroups \(cgroupChildren(parent))")
    }

    @Test("a tenant's pod asking for dev.veil.isolation=native: sandboxed under the default install (the annotation never reaches veil), refused where an admin passes annotations without allowing lowering; the veil-native handler runs it native")
    func tenantCannotLowerTheLevel() throws {
        let rig = try Self.makeRig()
        defer { rig.stop() }
        let calls = CRICalls(socket: rig.address)
        let parent = "/veil-test/cri-" + randomName(8)
        defer { removeCgroups(parent) }
        let logs = rig.directory + "/logs"
        let installed = try String(contentsOfFile: rig.configPath, encoding: .utf8)
        #expect(!installed.contains("dev.veil"), "veil install passes no dev.veil.* annotation by default:\n\(installed)")

        /// The uid map of a container in a fresh pod (both carrying the handler's annotations), or the error.
        func uidMap(_ handler: CRIHandler, pod name: String) throws -> Result<[Substring], SupportError> {
            let pod: CRIPod
            switch try runPod(calls, handler, podConfig(handler, name: name, logDirectory: logs + "/" + name, cgroupParent: parent)) {
            case .failure(let error): return .failure(error)
            case .success(let made): pod = made
            }
            defer { removePod(calls, pod) }
            let container = try startContainer(calls, pod: pod, containerConfig(handler, name: "probe", image: rig.image, ["sleep", "1000"]))
            let map = try calls.exec(container, ["cat", "/proc/self/uid_map"])
            return .success(map.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }))
        }
        let native = ["dev.veil.isolation": "native"]
        let tenant = CRIHandler(name: "tenant", handler: "veil", annotations: native)

        // Default install: containerd does not hand the annotation to veil; the pod runs sandboxed.
        let sandboxed = try uidMap(tenant, pod: "tenant").get()
        #expect(sandboxed.count == 3 && sandboxed[0] == "0" && (UInt64(sandboxed[1]) ?? 0) >= 1 << 30, "tenant pod on veil: uid_map \(sandboxed)")
        // The operator's way: the veil-native handler (its ConfigPath TOML says isolation = "native").
        let admin = try uidMap(CRIHandler(name: "admin", handler: "veil-native", annotations: [:]), pod: "admin").get()
        #expect(admin == ["0", "0", "4294967295"], "pod on veil-native: uid_map \(admin)")

        // An admin who passes dev.veil.* by hand, without allow_lower_isolation: veil refuses the pod, naming the annotation and the setting.
        let header = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.veil]\n"
        try #require(installed.contains(header), "\(installed)")
        let passing = installed.replacingOccurrences(of: header, with: header + "  pod_annotations = [\"dev.veil.*\"]\n  container_annotations = [\"dev.veil.*\"]\n")
        try passing.write(toFile: rig.configPath, atomically: true, encoding: .utf8)
        try rig.restart()
        let ready = try waitUntil(timeout: 120) { if case .success = try calls.attempt("Version", [:], timeout: 10) { return true }; return false }
        try #require(ready, "the CRI plugin did not answer after the restart:\n\(rig.log)")
        switch try uidMap(tenant, pod: "tenant-passed") {
        case .success(let map):
            Issue.record("a pod lowered its level through a pass-through without allow_lower_isolation: uid_map \(map)")
        case .failure(let error):
            #expect(error.message.contains("RunPodSandbox") && error.message.contains("annotations[\"dev.veil.isolation\"]")
                    && error.message.contains("allow_lower_isolation"), "\(error)")
        }
        // The same handler still runs pods that ask for nothing: sandboxed.
        let plain = try uidMap(CRIHandler.veil, pod: "plain").get()
        #expect(plain.count == 3 && (UInt64(plain[1]) ?? 0) >= 1 << 30, "plain pod on veil: uid_map \(plain)")

        let containers = try rig.ctr(["containers", "ls", "-q"])
        #expect(containers.succeeded && containers.stdout.isEmpty, "containers left:\n\(containers)")
        let clean = waitUntil(timeout: 5) { rig.shimProcesses().isEmpty && cgroupChildren(parent).isEmpty }
        #expect(clean, "left behind: shims \(rig.shimProcesses()), cgroups \(cgroupChildren(parent))")
    }

    /// One pod (shared pid namespace, an IPC sysctl) and its containers: run as user 1000, group
    /// 2000 with supplemental group 3000 on a read-only rootfs; the CRI log file; ExecSync and its
    /// timeout; ContainerStats; UpdateContainerResources seen in the host's cgroup.
    /// The scenarios, through either CRI implementation.
    func allChecks(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String) throws {
        let logs = rig.directory + "/logs"
        try podWithUsersLogsAndResources(handler, calls, rig: rig, parent: parent, logs: logs + "/main")
        try securityProfiles(handler, calls, rig: rig, parent: parent, logs: logs + "/profiles")
        try exitStatuses(handler, calls, rig: rig, parent: parent, logs: logs + "/exits")
        try hostNamespaces(handler, calls, rig: rig, parent: parent, logs: logs + "/host")
        try privileged(handler, calls, rig: rig, parent: parent, logs: logs + "/privileged")
    }

    /// The same scenarios through CRI-O v1.26.4 (veil's handlers as `veil install --crio` writes them):
    /// where runc passes, veil must, at both levels.
    @Test("critest's runtime checks through CRI-O", arguments: CRIHandler.all)
    func runtimeChecksThroughCRIO(_ handler: CRIHandler) throws {
        guard let rig = try CRIORig.start() else {
            print("skipping: no CRI-O built here (scripts/build-crio.sh needs the fetched cri-o source once)")
            return
        }
        defer { rig.stop() }
        try allChecks(handler, CRICalls(socket: rig.address), rig: rig, parent: rig.cgroupParent)
    }

    private func podWithUsersLogsAndResources(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String, logs: String) throws {
        let config = podConfig(handler, name: "main", logDirectory: logs, cgroupParent: parent, sysctls: ["kernel.shm_rmid_forced": "1"])
        let pod = try runPod(calls, handler, config).get()
        defer { removePod(calls, pod) }

        let security: [String: Any] = ["runAsUser": ["value": 1000], "runAsGroup": ["value": 2000], "supplementalGroups": [3000],
                                       "readonlyRootfs": true]
        let command = ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000"]
        // hostPath volumes: one writable (world-writable on the host), one read-only.
        let volume = rig.directory + "/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        chmod(volume, 0o777)
        var workerConfig = containerConfig(handler, name: "worker", image: rig.image, command, security: security)
        workerConfig["mounts"] = [["containerPath": "/data", "hostPath": volume],
                                  ["containerPath": "/ro", "hostPath": volume, "readonly": true]]
        let container = try startContainer(calls, pod: pod, workerConfig)

        // Identity and the read-only rootfs, as the process sees them.
        let id = try calls.exec(container, ["sh", "-c", "id -u; id -g; id -G"])
        #expect(id.status == 0 && id.stdout == "1000\n2000\n2000 3000\n", "\(handler): run as user: \(id)")
        let write = try calls.exec(container, ["touch", "/written"])
        #expect(write.status != 0 && write.stderr.contains("Read-only file system"), "\(handler): readonly rootfs: \(write)")

        // A file the user writes in a volume belongs to that user on the host too (at the sandbox
        // level through the id-mapped bind mount); the read-only volume refuses writes.
        let written = try calls.exec(container, ["touch", "/data/by-user"])
        let owner = (try? FileManager.default.attributesOfItem(atPath: volume + "/by-user")[.ownerAccountID] as? Int) ?? -1
        #expect(written.status == 0 && owner == 1000, "\(handler): file written to a volume: \(written), host owner \(owner)")
        let refused = try calls.exec(container, ["touch", "/ro/refused"])
        #expect(refused.status != 0 && refused.stderr.contains("Read-only file system"), "\(handler): read-only volume: \(refused)")

        // The pod's pid namespace: the pause process is pid 1; the pod's IPC sysctl is set.
        let pid1 = try calls.exec(container, ["cat", "/proc/1/cmdline"])
        #expect(pid1.stdout.hasPrefix("/pause"), "\(handler): shared pid namespace: \(pid1)")
        let sysctl = try calls.exec(container, ["cat", "/proc/sys/kernel/shm_rmid_forced"])
        #expect(sysctl.stdout == "1\n", "\(handler): pod sysctl: \(sysctl)")

        // The CRI log format: "<RFC 3339 time> <stream> F <line>", one file per container.
        let logFile = logs + "/worker.log"
        var logText = ""
        let logged = waitUntil(timeout: 10) {
            logText = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            return logText.contains("to-stdout") && logText.contains("to-stderr")
        }
        #expect(logged, "\(handler): \(logFile) holds: \(logText)")
        let lines = logText.split(separator: "\n").map(String.init)
        let pattern = try NSRegularExpression(pattern: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d) (stdout|stderr) F (.*)$"#)
        for line in lines {
            let match = pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line))
            #expect(match != nil, "\(handler): not a CRI log line: \(line)")
        }
        #expect(lines.contains { $0.hasSuffix(" stdout F to-stdout") }, "\(handler): \(logText)")
        #expect(lines.contains { $0.hasSuffix(" stderr F to-stderr") }, "\(handler): \(logText)")

        // ExecSync past its timeout ends promptly, naming the timeout: containerd fails the call,
        // CRI-O (conmon) answers exit code -1 with "command timed out" on stderr.
        let started = Date()
        let late = try calls.attempt("ExecSync", ["containerId": container, "cmd": ["sleep", "30"], "timeout": 1], timeout: 60)
        let elapsed = Date().timeIntervalSince(started)
        switch late {
        case .failure(let error):
            #expect(error.message.contains("timeout"), "\(handler): ExecSync timeout: \(error)")
        case .success(let answer):
            let stderr = (answer["stderr"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(answer["exitCode"] as? Int == -1 && stderr.contains("timed out"), "\(handler): ExecSync of sleep 30 with timeout 1 answered: \(answer)")
        }
        #expect(elapsed < 10, "\(handler): ExecSync with timeout 1 took \(elapsed) s")
        let after = try calls.exec(container, ["echo", "still-here"])
        #expect(after.stdout == "still-here\n", "\(handler): exec after a timed-out exec: \(after)")

        // Stats.
        let burn = try calls.exec(container, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], timeout: 30)
        #expect(burn.status == 0, "\(handler): \(burn)")
        let stats = try calls.call("ContainerStats", ["containerId": container])
        let usage = stats["stats"] as? [String: Any]
        let cpu = ((usage?["cpu"] as? [String: Any])?["usageCoreNanoSeconds"] as? [String: Any])?["value"] as? String
        let memory = ((usage?["memory"] as? [String: Any])?["workingSetBytes"] as? [String: Any])?["value"] as? String
        #expect((UInt64(cpu ?? "") ?? 0) > 0, "\(handler): ContainerStats cpu: \(stats)")
        #expect((UInt64(memory ?? "") ?? 0) > 0, "\(handler): ContainerStats memory: \(stats)")

        // UpdateContainerResources reaches the container's cgroup.
        let limit = 96 * 1024 * 1024
        try calls.call("UpdateContainerResources", ["containerId": container,
                                                    "linux": ["memoryLimitInBytes": limit, "cpuPeriod": 100_000, "cpuQuota": 50_000]])
        let pid = try hostPid(calls, container)
        let memoryDir = "/sys/fs/cgroup/memory" + (cgroupPath(of: pid, controller: "memory") ?? "/?")
        let cpuDir = "/sys/fs/cgroup/cpu" + (cgroupPath(of: pid, controller: "cpu") ?? "/?")
        #expect(readTrimmed(memoryDir + "/memory.limit_in_bytes") == String(limit), "\(handler): memory limit in \(memoryDir)")
        #expect(readTrimmed(cpuDir + "/cpu.cfs_quota_us") == "50000", "\(handler): cpu quota in \(cpuDir)")
    }

    /// Capabilities added and dropped; seccomp Unconfined, RuntimeDefault and a Localhost profile.
    /// The sandbox's own policy stays under any of them (so Unconfined still shows a filter there).
    private func securityProfiles(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String, logs: String) throws {
        let pod = try runPod(calls, handler, podConfig(handler, name: "profiles", logDirectory: logs, cgroupParent: parent)).get()
        defer { removePod(calls, pod) }
        func status(_ name: String, _ security: [String: Any]) throws -> (container: String, fields: [String: String]) {
            let container = try startContainer(calls, pod: pod, containerConfig(handler, name: name, image: rig.image, ["sleep", "1000"], security: security))
            let status = try calls.exec(container, ["grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"])
            var fields: [String: String] = [:]
            for line in status.stdout.split(separator: "\n") {
                let parts = line.split(separator: "\t").map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
            return (container, fields)
        }

        // CAP_NET_ADMIN (bit 12) alone.
        let caps = try status("caps", ["capabilities": ["addCapabilities": ["NET_ADMIN"], "dropCapabilities": ["ALL"]]])
        #expect(caps.fields["CapEff:"] == "0000000000001000", "\(handler): drop ALL, add NET_ADMIN: \(caps.fields)")

        let unconfined = try status("unconfined", ["seccomp": ["profileType": "Unconfined"]])
        #expect(unconfined.fields["Seccomp:"] == (handler.isSandbox ? "2" : "0"), "\(handler): Unconfined: \(unconfined.fields)")

        // containerd's default profile refuses unshare of a user namespace... and so does the sandbox.
        let runtimeDefault = try status("default", ["seccomp": ["profileType": "RuntimeDefault"]])
        #expect(runtimeDefault.fields["Seccomp:"] == "2", "\(handler): RuntimeDefault: \(runtimeDefault.fields)")
        let unshare = try calls.exec(runtimeDefault.container, ["unshare", "-U", "true"])
        #expect(unshare.status != 0, "\(handler): unshare under RuntimeDefault: \(unshare)")

        // A profile on the node refusing mkdir: enforced at every level (stacked under the sandbox's).
        let profile = rig.directory + "/no-mkdir.json"
        let rules = #"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#
        try rules.write(toFile: profile, atomically: true, encoding: .utf8)
        let localhost = try status("localhost", ["seccomp": ["profileType": "Localhost", "localhostRef": profile]])
        let mkdir = try calls.exec(localhost.container, ["mkdir", "/tmp/refused"])
        #expect(mkdir.status != 0 && mkdir.stderr.contains("Operation not permitted"), "\(handler): mkdir under the Localhost profile: \(mkdir)")
        let touch = try calls.exec(localhost.container, ["touch", "/tmp/allowed"])
        #expect(touch.status == 0, "\(handler): touch under the Localhost profile: \(touch)")
    }

    /// ContainerStatus after the program ends: its exit code, and exit code 137 with reason
    /// OOMKilled for one the memory limit killed (the shim must report the OOM event first).
    private func exitStatuses(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String, logs: String) throws {
        let pod = try runPod(calls, handler, podConfig(handler, name: "exits", logDirectory: logs, cgroupParent: parent, pid: "CONTAINER")).get()
        defer { removePod(calls, pod) }
        func finished(_ name: String, _ command: [String], resources: [String: Any] = [:]) throws -> [String: Any] {
            var config = containerConfig(handler, name: name, image: rig.image, command)
            if !resources.isEmpty { config["linux"] = ["resources": resources, "securityContext": [:] as [String: Any]] }
            let container = try startContainer(calls, pod: pod, config)
            var status: [String: Any] = [:]
            let exited = try waitUntil(timeout: 20) {
                status = (try calls.call("ContainerStatus", ["containerId": container]))["status"] as? [String: Any] ?? [:]
                return status["state"] as? String == "CONTAINER_EXITED"
            }
            #expect(exited, "\(handler): \(name) did not exit: \(status)")
            return status
        }
        let three = try finished("three", ["sh", "-c", "exit 3"])
        #expect(three["exitCode"] as? Int == 3 && three["reason"] as? String == "Error", "\(handler): exit 3: \(three)")
        let hog = try finished("hog", ["sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}"],
                               resources: ["memoryLimitInBytes": 16 << 20])
        #expect(hog["exitCode"] as? Int == 137 && hog["reason"] as? String == "OOMKilled", "\(handler): over its memory limit: \(hog)")
    }

    /// hostPID and hostIPC: runc shares the host's; the sandbox refuses the pod, naming the remedy.
    private func hostNamespaces(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String, logs: String) throws {
        let config = podConfig(handler, name: "host", logDirectory: logs, cgroupParent: parent, pid: "NODE", ipc: "NODE")
        let attempt = try runPod(calls, handler, config)
        if handler.isSandbox {
            guard case .failure(let error) = attempt else {
                if case .success(let pod) = attempt { removePod(calls, pod) }
                Issue.record("\(handler): a hostPID pod ran at the sandbox level")
                return
            }
            #expect(error.message.contains("hostPID") && error.message.contains("veil-native runtime handler"), "\(handler): \(error)")
            return
        }
        let pod = try attempt.get()
        defer { removePod(calls, pod) }
        let container = try startContainer(calls, pod: pod, containerConfig(handler, name: "viewer", image: rig.image, ["sleep", "1000"]))
        // The test runner's own pid is visible, and the namespaces are the host's.
        let mine = try calls.exec(container, ["cat", "/proc/\(getpid())/comm"])
        let ownComm = readTrimmed("/proc/self/comm") ?? "?"
        #expect(mine.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ownComm, "\(handler): host pid namespace: \(mine)")
        for type in ["pid", "ipc", "net"] {
            let inside = try calls.exec(container, ["readlink", "/proc/self/ns/\(type)"])
            let host = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(type)")) ?? "?"
            #expect(inside.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == host, "\(handler): \(type) namespace: \(inside)")
        }
    }

    /// A privileged container: every capability, a writable /sys, the host's devices, no seccomp.
    private func privileged(_ handler: CRIHandler, _ calls: CRICalls, rig: any CRIRuntimeRig, parent: String, logs: String) throws {
        let config = podConfig(handler, name: "privileged", logDirectory: logs, cgroupParent: parent, privileged: true)
        let pod = try runPod(calls, handler, config).get()
        defer { removePod(calls, pod) }
        let container = try startContainer(calls, pod: pod, containerConfig(handler, name: "admin", image: rig.image, ["sleep", "1000"],
                                                                           security: ["privileged": true]))
        let status = try calls.exec(container, ["grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"])
        let lines = status.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        let capEff = lines.first { $0.first == "CapEff:" }?.last ?? ""
        let hostCapEff = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("CapBnd:") }?.split(separator: "\t").last.map(String.init) ?? "?"
        // Every capability the host has (this machine lacks CAP_SYS_RESOURCE).
        #expect(capEff == hostCapEff, "\(handler): privileged CapEff: \(status), host bounding set \(hostCapEff)")
        let mount = try calls.exec(container, ["sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted"])
        let devices = try calls.exec(container, ["ls", "/dev"])
        if handler.isSandbox {
            // The sandbox's policy stays in place: mounting is refused (as runsc keeps its own kernel).
            #expect(mount.stdout.isEmpty, "\(handler): mount in a privileged sandbox: \(mount)")
        } else {
            #expect(mount.stdout == "mounted\n", "\(handler): mount in a privileged container: \(mount)")
            #expect(lines.contains { $0 == ["Seccomp:", "0"] }, "\(handler): no seccomp for privileged: \(status)")
        }
        let names = devices.stdout.split(separator: "\n").map(String.init)
        if handler.isSandbox {
            // veil install sets privileged_without_host_devices for the veil handler: the default /dev set only.
            #expect(devices.status == 0 && !names.contains("loop-control") && !names.contains("kmsg") && !names.contains("tty0"),
                    "\(handler): host devices in a privileged sandbox: \(devices)")
        } else {
            // The host's devices are there (the host has more than the default set: e.g. /dev/loop-control or a disk).
            #expect(names.count > 15, "\(handler): /dev of a privileged container: \(devices)")
        }
    }
}

/// /proc/PID/cgroup's path for a v1 controller ("memory", "cpu", ...).
private func cgroupPath(of pid: Int32, controller: String) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: ":", maxSplits: 2).map(String.init)
        if fields.count == 3, fields[1].split(separator: ",").contains(Substring(controller)) { return fields[2] }
    }
    return nil
}

private func readTrimmed(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

import CVeilLinux
import FoundationEssentials
import Glibc
import Testing
import VeilCgroups
import VeilLinux
import VeilSpec
@testable import VeilContainer

private func allow(_ type: String, _ major: Int64, _ minor: Int64, _ access: String = "rwm") -> DeviceRule {
    DeviceRule(allow: true, type: type, major: major, minor: minor, access: access)
}

@Suite("CgroupResources(spec:)")
struct CgroupResourcesTests {
    @Test func minimalSpecGetsDenyAllThenRuncDefaults() {
        let resources = CgroupResources(spec: Spec(ociVersion: "1.1.0", root: Root(path: "rootfs")))
        #expect(resources.devices.first == DeviceRule(allow: false, type: "a", access: "rwm"))
        #expect(resources.devices.first?.major == nil && resources.devices.first?.minor == nil)
        for rule in [allow("c", 1, 3), allow("c", 1, 5), allow("c", 1, 7), allow("c", 1, 8), allow("c", 1, 9),
                     allow("c", 5, 0), allow("c", 5, 2), allow("c", 136, -1), allow("c", 10, 200),
                     allow("c", -1, -1, "m"), allow("b", -1, -1, "m")] {
            #expect(resources.devices.contains(rule), "missing \(rule)")
        }
        // Only the first rule denies.
        #expect(resources.devices.dropFirst().allSatisfy { $0.allow })
        #expect(resources.memoryLimit == nil)
        #expect(resources.pidsLimit == nil)
    }

    @Test func specRulesComeAfterDenyAllAndBeforeDefaults() {
        let linux = Linux(
            resources: LinuxResources(devices: [
                LinuxDeviceCgroup(allow: false, type: "c", major: 1, minor: 3, access: "w"),
                LinuxDeviceCgroup(allow: true),
            ], memory: LinuxMemory(limit: 1 << 20), pids: LinuxPids(limit: 64)),
            devices: [
                LinuxDevice(path: "/dev/fuse", type: "c", major: 10, minor: 229),
                LinuxDevice(path: "/dev/sdz", type: "b", major: 8, minor: 240),
                LinuxDevice(path: "/dev/unbuf", type: "u", major: 200, minor: 1),
                LinuxDevice(path: "/dev/fifo", type: "p"),
            ])
        let resources = CgroupResources(spec: Spec(ociVersion: "1.1.0", root: Root(path: "rootfs"), linux: linux))
        #expect(resources.devices[0] == DeviceRule(allow: false, type: "a", access: "rwm"))
        #expect(resources.devices[1] == DeviceRule(allow: false, type: "c", major: 1, minor: 3, access: "w"))
        #expect(resources.devices[2] == DeviceRule(allow: true, type: "a", access: "rwm"))
        // Configured devices are allowed; "u" counts as a char device, fifos need no rule.
        #expect(resources.devices.contains(allow("c", 10, 229)))
        #expect(resources.devices.contains(allow("b", 8, 240)))
        #expect(resources.devices.contains(allow("c", 200, 1)))
        #expect(!resources.devices.contains { $0.type == "p" || $0.type == "u" })
        #expect(resources.memoryLimit == 1 << 20)
        #expect(resources.pidsLimit == 64)
    }

    @Test func runcDefaultSpecKeepsItsOwnDenyAll() {
        let resources = CgroupResources(spec: Spec.runcDefault(rootless: false))
        #expect(resources.devices.first == DeviceRule(allow: false, type: "a", access: "rwm"))
        #expect(resources.devices.contains(allow("c", 1, 3)))
    }
}

@Suite("InitPlan and InitMessage")
struct InitPlanCodableTests {
    @Test func initMessageRoundTrips() throws {
        for message in [InitMessage(kind: .runHooks), InitMessage(kind: .ready), InitMessage(kind: .error, message: "boom \"x\"\nline 2\n"),
                        InitMessage(kind: .error, message: "")] {
            #expect(InitMessage(payload: message.payload) == message)
        }
        #expect(InitMessage(payload: Array("error\nmount failed".utf8)) == InitMessage(kind: .error, message: "mount failed"))
        #expect(InitMessage(payload: Array("sandboxListener".utf8)) == InitMessage(kind: .sandboxListener))
        #expect(InitMessage(payload: Array("bogus".utf8)) == nil)
        #expect(InitMessage(payload: Array(#"{"kind":"ready"}"#.utf8)) == nil)
        #expect(InitMessage(payload: []) == nil)
    }

    @Test func initPlanRoundTrips() throws {
        let spec = Spec.runcDefault(rootless: false)
        let state = OCIState(ociVersion: "1.1.0", id: "c", pid: 7, status: .creating, bundle: "/b", rootfs: "/b/rootfs",
                             created: "2024-01-01T00:00:00.000000000Z", owner: "", annotations: nil)
        let plan = InitPlan(id: "c", spec: spec, bundle: "/b", noPivot: true, preserveFds: 2,
                            hasConsoleSocket: true, cgroupPaths: ["memory": "/sys/fs/cgroup/memory/c", "pids": "/sys/fs/cgroup/pids/c"],
                            cgroupUnifiedOnly: false, newUserNamespace: true, newMountNamespace: true)
        let decoded = try JSONDecoder().decode(InitPlan.self, from: Data(JSON.encode(plan)))
        #expect(decoded.id == "c")
        #expect(decoded.spec == spec)
        #expect(decoded.bundle == "/b")
        #expect(decoded.noPivot && decoded.hasConsoleSocket && decoded.newUserNamespace && decoded.newMountNamespace)
        #expect(!decoded.cgroupUnifiedOnly)
        #expect(decoded.preserveFds == 2)
        #expect(decoded.cgroupPaths == plan.cgroupPaths)
        var late = InitPlan.Late(state: state, rootfs: "/b/rootfs")
        late.idmappedMounts = [2, 5]
        late.openedSources = [1]
        late.sandboxDeviceNodes = ["/dev/null": "/run/x/null"]
        late.cpus = 2
        let lateDecoded = try JSONDecoder().decode(InitPlan.Late.self, from: Data(JSON.encode(late)))
        #expect(lateDecoded.rootfs == "/b/rootfs" && !lateDecoded.idmappedRootfs)
        #expect(lateDecoded.idmappedMounts == [2, 5] && lateDecoded.openedSources == [1] && lateDecoded.cpus == 2)
        #expect(lateDecoded.sandboxDeviceNodes == ["/dev/null": "/run/x/null"])
        #expect(lateDecoded.state.status == .creating)
        #expect(lateDecoded.state.pid == 7)
        #expect(lateDecoded.state.annotations == nil)
    }

    /// The init's copy of the config keeps everything the init acts on and drops the rest.
    @Test func specForInitKeepsWhatTheInitReads() throws {
        var spec = Spec.runcDefault(rootless: false)
        spec.annotations = ["io.kubernetes.pod.name": "p"]
        spec.hostname = "h"
        spec.linux?.cgroupsPath = "/a/b"
        spec.linux?.resources = LinuxResources(devices: [LinuxDeviceCgroup(allow: false, access: "rwm")])
        spec.linux?.seccomp = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO")
        spec.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)]
        spec.linux?.sysctl = ["net.ipv4.ip_forward": "1"]
        let forInit = spec.forInit
        #expect(forInit.annotations == nil && forInit.linux?.seccomp == nil && forInit.linux?.resources == nil)
        #expect(forInit.linux?.cgroupsPath == nil && forInit.linux?.uidMappings == nil)
        #expect(forInit.process == spec.process && forInit.mounts == spec.mounts && forInit.root == spec.root)
        #expect(forInit.hostname == "h" && forInit.linux?.sysctl == spec.linux?.sysctl)
        #expect(forInit.linux?.namespaces == spec.linux?.namespaces && forInit.linux?.devices == spec.linux?.devices)
        #expect(forInit.linux?.maskedPaths == spec.linux?.maskedPaths && forInit.linux?.readonlyPaths == spec.linux?.readonlyPaths)
    }

    @Test func initFDSlotsAreDistinct() {
        var plan = InitPlan(
            id: "c", spec: Spec.runcDefault(rootless: false), bundle: "/b", noPivot: false,
            preserveFds: 0, hasConsoleSocket: true, cgroupPaths: [:], cgroupUnifiedOnly: false,
            newUserNamespace: false, newMountNamespace: true)
        #expect(InitFD.sync == 0)
        #expect(InitFD.fifo(plan) == 1 && InitFD.console(plan) == 2)
        plan.mode = .exec
        #expect(InitFD.fifo(plan) == nil && InitFD.console(plan) == 1)
        plan.hasConsoleSocket = false
        #expect(InitFD.console(plan) == nil)
    }
}

@Suite("ContainerError and helpers")
struct ContainerErrorTests {
    @Test func descriptionsNameWhatIsAtFault() {
        #expect(ContainerError.notFound(id: "x").description == "container \"x\" does not exist")
        #expect(ContainerError.invalidState(id: "x", status: .running, action: "start").description
            == "cannot start container \"x\": container is running")
        #expect(ContainerError.invalidConfig(file: "config.json", field: "process.cwd", reason: "must be absolute").description
            == "config.json: process.cwd: must be absolute")
        #expect(ContainerError.invalidConfig(file: "config.json", field: "", reason: "already located").description == "already located")
        #expect(ContainerError.hookFailed(phase: "prestart", index: 2, path: "/h", reason: "exit status 1").description
            == "prestart hook #2 (/h) failed: exit status 1")
    }

    @Test func contextWrapsLinuxErrorsAndPassesContainerErrors() {
        let linux = LinuxError("open", "/x", errno: ENOENT).context("loading")
        #expect(linux.description == "loading: open /x: No such file or directory")
        let passed = ContainerError.notFound(id: "y").context("ignored")
        #expect(passed.description == "container \"y\" does not exist")
    }

    @Test func readLinkAndAbsolute() throws {
        let dir = try makeTempDir("misc")
        defer { removeTree(dir) }
        #expect(symlink("some/relative target", dir + "/l") == 0)
        #expect(FS.readLink(dir + "/l") == "some/relative target")
        #expect(FS.readLink(dir + "/missing") == nil)
        #expect(FS.absolute("/abs") == "/abs")
        #expect(FS.absolute("rel/x") == FS.currentDirectory() + "/rel/x")
        // By name, for a directory not made yet (checkpoint's --parent-path against --image-path).
        #expect(FS.lexicallyAbsolute("../pre1", base: "/run/x/full2") == "/run/x/pre1")
        #expect(FS.lexicallyAbsolute("./a//b/../c", base: "/base") == "/base/a/c")
    }
}

@Suite("SpawnRequest: stage 1, or the init cloned directly")
struct SpawnRequestTests {
    private static let containerNamespaces: [LinuxNamespaceType] = [.pid, .network, .ipc, .uts, .mount, .cgroup]

    private func nativeRequest() -> SpawnRequest {
        var request = SpawnRequest(cgroup: nil, preserveFds: 0)
        for type in Self.containerNamespaces { request.unshareFlags |= type.cloneFlag }
        request.directInitAllowed = true
        return request
    }

    @Test func directWhereStage1HasNothingToDo() {
        var request = nativeRequest()
        #expect(request.clonesInitDirectly && request.stage1Requests == 0)
        request.oomScoreAdj = 100  // written by the init itself, still before any user namespace
        #expect(request.clonesInitDirectly)
        request.directInitAllowed = false  // exec's request
        #expect(!request.clonesInitDirectly)
    }

    @Test func stage1WhereItHasWork() {
        var user = nativeRequest()
        user.unshareUser = true
        #expect(!user.clonesInitDirectly && user.stage1Requests == 1)
        var joined = nativeRequest()
        joined.joins = [(fd: 9, type: LinuxNamespaceType.network.cloneFlag)]
        #expect(!joined.clonesInitDirectly && joined.stage1Requests == 0)
        var scoped = nativeRequest()
        scoped.awaitScope = true
        #expect(!scoped.clonesInitDirectly && scoped.stage1Requests == 1)
        scoped.unshareUser = true
        #expect(scoped.stage1Requests == 2)
        var timed = nativeRequest()
        timed.unshareFlags |= LinuxNamespaceType.time.cloneFlag
        #expect(!timed.clonesInitDirectly)
        var offsets = nativeRequest()
        offsets.timeOffsets = "monotonic 5 0\n"
        #expect(!offsets.clonesInitDirectly)
    }
}

/// The runtime's side of stage 1's conversation, played against a scripted stage 1 on the other
/// end of a socket pair (its messages queued before the runtime reads them).
@Suite("InitChannel.awaitInitPid")
struct AwaitInitPidTests {
    private func plan() -> InitChannel.PendingPlan {
        let spec = Spec.runcDefault(rootless: false)
        let plan = InitPlan(id: "c", spec: spec, bundle: "/b", noPivot: false, preserveFds: 0, hasConsoleSocket: false,
                            cgroupPaths: [:], cgroupUnifiedOnly: false, newUserNamespace: true, newMountNamespace: true)
        return InitChannel.PendingPlan(plan, requestsBefore: 1)
    }

    private func pidPayload(_ pid: Int32) -> [UInt8] { withUnsafeBytes(of: pid) { Array($0) } }

    @Test func mapsThenPlanThenTheWorkBeforeThePid() throws {
        let (runtime, stage1) = try SyncSocket.pair()
        try stage1.send(type: UInt32(VEIL_SYNC_STAGE1_READY))
        try stage1.send(type: UInt32(VEIL_SYNC_INIT_PID), payload: pidPayload(4242))
        var steps: [String] = []
        let pid = try InitChannel(runtime).awaitInitPid(whileInitStarts: { steps.append("furnish") },
                                                        writeIDMaps: { steps.append("maps") }, plan: plan())
        #expect(pid == 4242)
        #expect(steps == ["maps", "furnish"])
        // What stage 1 (and the init) read: the maps' answer, then the plan.
        #expect(try stage1.receive()?.type == UInt32(VEIL_SYNC_ACK))
        #expect(try stage1.receive()?.type == UInt32(VEIL_SYNC_PLAN))
    }

    /// The work after the plan fails once the init exists: its pid is still read, the init is
    /// killed and reaped, and that failure (not a later one) is what create reports.
    @Test func aFailureWhileTheInitStartsTakesTheInitAlong() throws {
        let (runtime, stage1) = try SyncSocket.pair()
        let initStandIn = try spawnProcess(["/bin/sleep", "60"])
        try stage1.send(type: UInt32(VEIL_SYNC_STAGE1_READY))
        try stage1.send(type: UInt32(VEIL_SYNC_INIT_PID), payload: pidPayload(initStandIn))
        do {
            _ = try InitChannel(runtime).awaitInitPid(whileInitStarts: { () throws(ContainerError) in throw .initFailed("furnishing failed") },
                                                      writeIDMaps: {}, plan: plan())
            Issue.record("awaitInitPid returned despite the failure")
        } catch {
            #expect("\(error)".contains("furnishing failed"))
        }
        // Reaped already: the pid is no child of ours any more.
        #expect(waitpid(initStandIn, nil, WNOHANG) == -1 && errno == ECHILD)
    }

    @Test func aFailureWhileTheInitStartsWinsOverStage1sReport() throws {
        let (runtime, stage1) = try SyncSocket.pair()
        try stage1.send(type: UInt32(VEIL_SYNC_STAGE1_READY))
        try stage1.send(type: UInt32(VEIL_SYNC_CHILD_ERROR))  // stage 1 failed after its maps
        do {
            _ = try InitChannel(runtime).awaitInitPid(whileInitStarts: { () throws(ContainerError) in throw .initFailed("furnishing failed") },
                                                      writeIDMaps: {}, plan: plan())
            Issue.record("awaitInitPid returned without an init")
        } catch {
            #expect("\(error)".contains("furnishing failed"))
        }
    }
}

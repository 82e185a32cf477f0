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
        for message in [InitMessage(kind: .runHooks), InitMessage(kind: .ready), InitMessage(kind: .error, message: "boom \"x\"\n")] {
            let decoded = try JSONDecoder().decode(InitMessage.self, from: Data(JSON.encode(message)))
            #expect(decoded.kind == message.kind)
            #expect(decoded.message == message.message)
        }
        let raw = try JSONDecoder().decode(InitMessage.self, from: Data(#"{"kind":"error","message":"mount failed"}"#.utf8))
        #expect(raw.kind == .error)
        #expect(raw.message == "mount failed")
        #expect(throws: (any Error).self) { try JSONDecoder().decode(InitMessage.self, from: Data(#"{"kind":"bogus"}"#.utf8)) }
    }

    @Test func initPlanRoundTrips() throws {
        let spec = Spec.runcDefault(rootless: false)
        let state = OCIState(ociVersion: "1.1.0", id: "c", pid: 7, status: .creating, bundle: "/b", rootfs: "/b/rootfs",
                             created: "2024-01-01T00:00:00.000000000Z", owner: "", annotations: nil)
        let plan = InitPlan(id: "c", spec: spec, bundle: "/b", rootfs: "/b/rootfs", noPivot: true, preserveFds: 2,
                            hasConsoleSocket: true, cgroupPaths: ["memory": "/sys/fs/cgroup/memory/c", "pids": "/sys/fs/cgroup/pids/c"],
                            cgroupUnifiedOnly: false, newUserNamespace: true, newMountNamespace: true, state: state)
        let decoded = try JSONDecoder().decode(InitPlan.self, from: Data(JSON.encode(plan)))
        #expect(decoded.id == "c")
        #expect(decoded.spec == spec)
        #expect(decoded.bundle == "/b" && decoded.rootfs == "/b/rootfs")
        #expect(decoded.noPivot && decoded.hasConsoleSocket && decoded.newUserNamespace && decoded.newMountNamespace)
        #expect(!decoded.cgroupUnifiedOnly)
        #expect(decoded.preserveFds == 2)
        #expect(decoded.cgroupPaths == plan.cgroupPaths)
        #expect(decoded.state.status == .creating)
        #expect(decoded.state.pid == 7)
        #expect(decoded.state.annotations == nil)
    }

    @Test func initFDSlotsAreDistinct() {
        var plan = InitPlan(
            id: "c", spec: Spec.runcDefault(rootless: false), bundle: "/b", rootfs: "/b/rootfs", noPivot: false,
            preserveFds: 0, hasConsoleSocket: true, cgroupPaths: [:], cgroupUnifiedOnly: false,
            newUserNamespace: false, newMountNamespace: true,
            state: OCIState(ociVersion: "1.1.0", id: "c", pid: 1, status: .creating, bundle: "/b", rootfs: "/b/rootfs", created: "", owner: ""))
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

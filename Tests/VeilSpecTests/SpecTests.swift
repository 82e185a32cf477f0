import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Testing

@testable import VeilSpec

private func decode(_ json: String) throws(SpecError) -> Spec {
    try Spec.decode(Array(json.utf8), file: "config.json")
}

/// Runs `body`, expecting a SpecError, and returns its description.
private func errorText(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as SpecError {
        return error.description
    } catch {
        return "unexpected non-SpecError: \(error)"
    }
}

private let minimal = #"{"ociVersion":"1.1.0","root":{"path":"rootfs"}}"#

@Suite struct DecodingTests {
    @Test func runcDefaultDecodesAndRoundTrips() throws {
        let spec = try decode(runcDefaultJSON)
        #expect(spec.ociVersion == "1.1.0")
        #expect(spec.process?.args == ["sh"])
        #expect(spec.process?.capabilities?.ambient == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        #expect(spec.root == Root(path: "rootfs", readonly: true))
        #expect(spec.mounts?.count == 7)
        #expect(spec.linux?.namespaces?.map(\.type) == [.pid, .network, .ipc, .uts, .mount])
        #expect(spec.linux?.resources?.devices == [LinuxDeviceCgroup(allow: false, access: "rwm")])
        try spec.validate()

        let again = try Spec.decode(try spec.encodedPretty(), file: "config.json")
        #expect(again == spec)
    }

    @Test func runcDefaultMatchesRuncSpecByteForByte() throws {
        let out = String(decoding: try Spec.runcDefault(rootless: false).encodedPretty(), as: UTF8.self)
        #expect(out == runcDefaultJSON + "\n")
        #expect(try decode(runcDefaultJSON) == Spec.runcDefault(rootless: false))
    }

    @Test func rootlessDefault() throws {
        let spec = Spec.runcDefault(rootless: true)
        try spec.validate()
        #expect(spec.linux?.resources == nil)
        #expect(spec.linux?.namespaces?.map(\.type) == [.pid, .ipc, .uts, .mount, .user])
        #expect(spec.linux?.uidMappings?.count == 1)
        #expect(spec.mounts?[5] == Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"]))
        #expect(spec.mounts?[2].options?.contains("gid=5") == false)
        // runc's output as root (hostID 0); runc maps the caller's effective ids, as veil does.
        let mappings = runcRootlessJSON.split(separator: "\"gidMappings\"", omittingEmptySubsequences: false)
        try #require(mappings.count == 2)
        let expected = mappings[0].replacing("\"hostID\": 0,", with: "\"hostID\": \(geteuid()),")
            + "\"gidMappings\"" + mappings[1].replacing("\"hostID\": 0,", with: "\"hostID\": \(getegid()),")
        let out = String(decoding: try spec.encodedPretty(), as: UTF8.self)
        #expect(out == expected + "\n")
    }

    @Test func unknownFieldsAreIgnored() throws {
        let json = #"{"ociVersion":"1.1.0","future":{"x":[1,2]},"root":{"path":"r","extra":true},"linux":{"namespaces":[{"type":"pid","bogus":1}],"intelRdt":{"closID":"a"}}}"#
        let spec = try decode(json)
        #expect(spec.root.path == "r")
        #expect(spec.linux?.namespaces == [LinuxNamespace(type: .pid)])
    }

    @Test func nilFieldsAreOmitted() throws {
        let spec = Spec(ociVersion: "1.1.0", process: Process(cwd: "/"), root: Root(path: "rootfs"))
        let out = String(decoding: try spec.encodedPretty(), as: UTF8.self)
        #expect(!out.contains("null"))
        #expect(!out.contains("hostname"))
        #expect(!out.contains("readonly"))
        #expect(out.hasSuffix("}\n"))
        #expect(out == "{\n\t\"ociVersion\": \"1.1.0\",\n\t\"process\": {\n\t\t\"user\": {\n\t\t\t\"uid\": 0,\n\t\t\t\"gid\": 0\n\t\t},\n\t\t\"cwd\": \"/\"\n\t},\n\t\"root\": {\n\t\t\"path\": \"rootfs\"\n\t}\n}\n")
    }

    /// Go's encoding/json sorts map keys; struct fields keep their declaration order.
    @Test func mapKeysAreSortedAsGoSortsThem() throws {
        var spec = Spec(ociVersion: "1.1.0", root: Root(path: "rootfs"))
        spec.annotations = ["zeta": "1", "alpha": "2", "mid": "3", "Beta": "4"]
        let out = String(decoding: try spec.encodedPretty(), as: UTF8.self)
        #expect(out == "{\n\t\"ociVersion\": \"1.1.0\",\n\t\"root\": {\n\t\t\"path\": \"rootfs\"\n\t},\n\t\"annotations\": {\n"
            + "\t\t\"Beta\": \"4\",\n\t\t\"alpha\": \"2\",\n\t\t\"mid\": \"3\",\n\t\t\"zeta\": \"1\"\n\t}\n}\n")
    }

    @Test func fullResourcesRoundTrip() throws {
        let json = #"""
            {"ociVersion":"1.1.0","root":{"path":"rootfs"},
             "hooks":{"createRuntime":[{"path":"/bin/true","args":["true"],"timeout":5}]},
             "annotations":{"a":"b"},
             "linux":{"sysctl":{"net.ipv4.ip_forward":"1"},
              "timeOffsets":{"monotonic":{"secs":10,"nanosecs":5}},
              "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":0}],
              "resources":{
               "memory":{"limit":-1,"swap":1024,"swappiness":60,"disableOOMKiller":true,"checkBeforeUpdate":true},
               "cpu":{"shares":1024,"quota":-1,"burst":10,"period":100000,"cpus":"0-1","mems":"0","idle":1},
               "pids":{"limit":100},
               "blockIO":{"weight":10,"weightDevice":[{"major":8,"minor":0,"weight":500}],"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":600}]},
               "hugepageLimits":[{"pageSize":"2MB","limit":1024}],
               "network":{"classID":1,"priorities":[{"name":"eth0","priority":5}]},
               "rdma":{"mlx5_1":{"hcaHandles":3}},
               "unified":{"memory.high":"1G"}},
              "seccomp":{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],
               "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]},
              "personality":{"domain":"LINUX32"}}}
            """#
        let spec = try decode(json)
        #expect(spec.linux?.resources?.memory?.limit == -1)
        #expect(spec.linux?.resources?.cpu?.shares == 1024)
        #expect(spec.linux?.resources?.blockIO?.weightDevice?.first?.weight == 500)
        #expect(spec.linux?.resources?.rdma?["mlx5_1"]?.hcaHandles == 3)
        #expect(spec.linux?.seccomp?.syscalls?.first?.args?.first?.op == "SCMP_CMP_EQ")
        #expect(spec.linux?.timeOffsets?["monotonic"]?.secs == 10)
        let again = try Spec.decode(try spec.encodedPretty(), file: "config.json")
        #expect(again == spec)
    }
}

@Suite struct ErrorMessageTests {
    @Test func malformedJSONHasLineAndColumn() {
        let json = "{\n  \"ociVersion\": \"1.1.0\",\n    x: 1\n}"
        #expect(errorText { _ = try decode(json) } == "config.json: malformed JSON at line 3 column 5: expected a string object key")
        #expect(errorText { _ = try decode("{\"a\": [1, 2,, 3]}") } == "config.json: malformed JSON at line 1 column 13: unexpected character ','")
        #expect(errorText { _ = try decode("{\"a\": 1") } == "config.json: malformed JSON at line 1 column 8: unexpected end of input")
        #expect(errorText { _ = try decode("") } == "config.json: malformed JSON at line 1 column 1: unexpected end of input")
    }

    @Test func wrongTypeNamesPath() {
        let json = #"{"ociVersion":"1.1.0","root":{"path":"r"},"process":{"cwd":"/","user":{"uid":"0"}}}"#
        #expect(errorText { _ = try decode(json) } == "config.json: process.user.uid: expected a number, found a string")
        let json2 = #"{"ociVersion":"1.1.0","root":{"path":"r"},"mounts":[{"destination":"/a"},{"destination":"/b","options":"ro"}]}"#
        #expect(errorText { _ = try decode(json2) } == "config.json: mounts[1].options: expected an array, found a string")
        #expect(errorText { _ = try decode("[]") } == "config.json: expected an object, found an array")
    }

    @Test func unknownNamespaceType() throws {
        let json = #"{"ociVersion":"1.1.0","root":{"path":"r"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"foo"}]}}"#
        #expect(errorText { _ = try decode(json) } == #"config.json: linux.namespaces[2].type: unknown namespace type "foo""#)
    }

    @Test func missingRoot() {
        #expect(errorText { _ = try decode(#"{"ociVersion":"1.1.0"}"#) } == "config.json: root: required field missing")
        #expect(errorText { _ = try decode(#"{"ociVersion":"1.1.0","root":{"path":"r"},"process":{"args":["sh"]}}"#) }
            == "config.json: process.cwd: required field missing")
    }

    @Test func nullAndDictionaryKeysInPath() {
        #expect(errorText { _ = try decode(#"{"ociVersion":"1.1.0","root":null}"#) } == "config.json: root: expected an object, found null")
        let json = #"{"ociVersion":"1.1.0","root":{"path":"r"},"linux":{"sysctl":{"net.ipv4.ip_forward":1}}}"#
        #expect(errorText { _ = try decode(json) } == #"config.json: linux.sysctl["net.ipv4.ip_forward"]: expected a string, found a number"#)
    }

    @Test func numberOutOfRange() {
        let json = #"{"ociVersion":"1.1.0","root":{"path":"r"},"process":{"cwd":"/","user":{"uid":-1}}}"#
        #expect(errorText { _ = try decode(json) }
            == "config.json: process.user.uid: number -1 does not fit the field's type (negative, fractional or too large)")
        // Legitimately negative numbers elsewhere must not be blamed.
        let json2 = #"{"ociVersion":"1.1.0","root":{"path":"r"},"process":{"cwd":"/","oomScoreAdj":-1000},"linux":{"resources":{"memory":{"limit":-1},"cpu":{"shares":1.5}}}}"#
        #expect(errorText { _ = try decode(json2) }
            == "config.json: linux.resources.cpu.shares: number 1.5 does not fit the field's type (negative, fractional or too large)")
        let json3 = #"{"ociVersion":"1.1.0","root":{"path":"r"},"linux":{"namespaces":[{"type":"pid"}],"uidMappings":[{"containerID":0,"hostID":0,"size":1},{"containerID":1,"hostID":99999999999999999999,"size":1}]}}"#
        #expect(errorText { _ = try decode(json3) }
            == "config.json: linux.uidMappings[1].hostID: number 99999999999999999999 does not fit the field's type (negative, fractional or too large)")
    }

    @Test func missingFile() {
        let dir = "/nonexistent-veil-bundle"
        #expect(errorText { _ = try Spec.load(bundle: dir) } == "open /nonexistent-veil-bundle/config.json: no such file or directory")
    }

    @Test func loadFromBundle() throws {
        let dir = "/tmp/veil-spec-test-\(getpid())"
        mkdir(dir, 0o755)
        defer {
            unlink(dir + "/config.json")
            rmdir(dir)
        }
        let bytes = try Spec.runcDefault(rootless: false).encodedPretty()
        let fd = open(dir + "/config.json", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(try Spec.load(bundle: dir) == Spec.runcDefault(rootless: false))
    }
}

@Suite struct ValidationTests {
    private func validationError(_ mutate: (inout Spec) -> Void) -> String? {
        var spec = Spec.runcDefault(rootless: false)
        mutate(&spec)
        return errorText { try spec.validate() }
    }

    @Test func relativeCwd() {
        #expect(validationError { $0.process?.cwd = "tmp" } == #"process.cwd: must be an absolute path, got "tmp""#)
    }

    @Test func relativeCwdFromJSON() throws {
        let spec = try decode(#"{"ociVersion":"1.1.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"work"}}"#)
        #expect(errorText { try spec.validate() } == #"process.cwd: must be an absolute path, got "work""#)
    }

    @Test func otherRules() {
        #expect(validationError { $0.ociVersion = "" } == "ociVersion: must not be empty")
        #expect(validationError { $0.root.path = "" } == "root.path: must not be empty")
        #expect(validationError { $0.process?.args = [] } == "process.args: must not be empty")
        #expect(validationError { $0.process?.args = nil } == "process.args: required field missing")
        #expect(validationError { $0.mounts?[3].destination = "dev/shm" } == #"mounts[3].destination: must be an absolute path, got "dev/shm""#)
        #expect(validationError { $0.linux?.namespaces?.append(LinuxNamespace(type: .pid)) }
            == #"linux.namespaces[5].type: duplicate namespace type "pid""#)
        #expect(validationError { $0.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)] }
            == "linux.uidMappings: set but no user namespace is requested")
        #expect(validationError { $0.linux?.namespaces?.append(LinuxNamespace(type: .user)) }
            == "linux.uidMappings: required when creating a user namespace")
        #expect(validationError { $0.linux?.namespaces?.append(LinuxNamespace(type: .user, path: "/proc/1/ns/user")) } == nil)
        #expect(validationError { $0.linux?.rootfsPropagation = "weird" } == #"linux.rootfsPropagation: unknown propagation mode "weird""#)
        #expect(validationError { $0.linux?.timeOffsets = ["monotonic": LinuxTimeOffset(secs: 1)] }
            == "linux.timeOffsets: set but no time namespace is requested")
        #expect(validationError { $0.hooks = Hooks(poststop: [Hook(path: "rm")]) } == #"hooks.poststop[0].path: must be an absolute path, got "rm""#)
    }
}

@Suite struct MountOptionTests {
    @Test func flagsAndData() {
        let o = MountOptions.parse(["nosuid", "noexec", "nodev", "mode=1777", "size=65536k", "ro"])
        #expect(o.flags == MountFlag.nosuid | MountFlag.noexec | MountFlag.nodev | MountFlag.rdonly)
        #expect(o.data == ["mode=1777", "size=65536k"])
        #expect(o.dataString == "mode=1777,size=65536k")
        #expect(!o.isBind)
        #expect(o.propagation.isEmpty)
    }

    @Test func laterOptionsWinAndClear() {
        let o = MountOptions.parse(["ro", "nosuid", "rw", "suid", "noatime", "atime", "strictatime"])
        #expect(o.flags == MountFlag.strictatime)
        #expect(o.clearedFlags == MountFlag.rdonly | MountFlag.nosuid | MountFlag.noatime)
    }

    @Test func bindAndPropagation() {
        let o = MountOptions.parse(["rbind", "rprivate", "shared", "tmpcopyup", "ro"])
        #expect(o.isBind)
        #expect(o.isRecursiveBind)
        #expect(o.flags == MountFlag.bind | MountFlag.rec | MountFlag.rdonly)
        #expect(o.propagation == [MountFlag.private | MountFlag.rec, MountFlag.shared])
        #expect(o.extensions == ["tmpcopyup"])
        #expect(o.data.isEmpty)

        let b = MountOptions.parse(["bind", "remount", "relatime", "dirsync", "sync", "mand"])
        #expect(b.isBind && !b.isRecursiveBind)
        #expect(b.flags == MountFlag.bind | MountFlag.remount | MountFlag.relatime | MountFlag.dirsync | MountFlag.synchronous | MountFlag.mandlock)
    }

    @Test func recursiveAttributes() {
        #expect(MountOptions.parse(["rbind", "ro"]).recursive == nil)
        let o = MountOptions.parse(["rbind", "ro", "rro", "rnosuid", "rnodev", "rnoatime"])
        #expect(o.flags == MountFlag.bind | MountFlag.rec | MountFlag.rdonly)
        #expect(o.recursive?.set == MountAttribute.rdonly | MountAttribute.nosuid | MountAttribute.nodev | MountAttribute.noatime)
        #expect(o.recursive?.clear == MountAttribute.atimeMask)
        #expect(o.extensions.contains("rro"))
        // Later ones win, as for the plain flags.
        let w = MountOptions.parse(["rro", "rrw", "rstrictatime", "rrelatime"])
        #expect(w.recursive?.set == 0)
        #expect(w.recursive?.clear == MountAttribute.rdonly | MountAttribute.atimeMask)
    }

    @Test func propagationNames() {
        #expect(MountOptions.propagationFlags("rslave") == MountFlag.slave | MountFlag.rec)
        #expect(MountOptions.propagationFlags("private") == UInt(0x40000))
        #expect(MountOptions.propagationFlags("runbindable") == MountFlag.unbindable | MountFlag.rec)
        #expect(MountOptions.propagationFlags("ro") == nil)
    }
}

@Suite struct NameTableTests {
    @Test func signals() {
        #expect(SignalName.parse("9") == 9)
        #expect(SignalName.parse("KILL") == 9)
        #expect(SignalName.parse("SIGKILL") == 9)
        #expect(SignalName.parse("sigterm") == 15)
        #expect(SignalName.parse("term") == 15)
        #expect(SignalName.parse("SIGCHLD") == 17)
        #expect(SignalName.parse("RTMIN") == 34)
        #expect(SignalName.parse("RTMIN+3") == 37)
        #expect(SignalName.parse("SIGRTMAX-1") == 63)
        #expect(SignalName.parse("RTMIN+31") == nil)
        #expect(SignalName.parse("65") == nil)
        #expect(SignalName.parse("-1") == nil)
        #expect(SignalName.parse("NOPE") == nil)
        #expect(SignalName.parse("") == nil)
        #expect(SignalName.name(9) == "SIGKILL")
        #expect(SignalName.name(6) == "SIGABRT")
        #expect(SignalName.name(35) == "SIGRTMIN+1")
        #expect(SignalName.name(64) == "SIGRTMAX")
        #expect(SignalName.name(32) == nil)
    }

    @Test func capabilities() {
        #expect(CapabilityName.all.count == 41)
        #expect(CapabilityName.number("CAP_CHOWN") == 0)
        #expect(CapabilityName.number("kill") == 5)
        #expect(CapabilityName.number("cap_sys_admin") == 21)
        #expect(CapabilityName.number("CAP_AUDIT_WRITE") == 29)
        #expect(CapabilityName.number("CAP_CHECKPOINT_RESTORE") == 40)
        #expect(CapabilityName.number("CAP_NOPE") == nil)
        #expect(CapabilityName.name(39) == "CAP_BPF")
    }
}

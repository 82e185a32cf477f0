import Testing
import VeilCgroups
@testable import VeilSystemd

@Suite("cgroupsPath and slices")
struct CgroupsPathTests {
    @Test func expandsSlices() throws {
        #expect(try SystemdCgroupsPath.expand(slice: "-.slice") == [])
        #expect(try SystemdCgroupsPath.expand(slice: "a.slice") == ["a.slice"])
        #expect(try SystemdCgroupsPath.expand(slice: "kubepods-besteffort-pod1.slice")
                == ["kubepods.slice", "kubepods-besteffort.slice", "kubepods-besteffort-pod1.slice"])
        for bad in ["a--b.slice", "-a.slice", "a-.slice", "a/b.slice", ".slice", "foo"] {
            #expect(throws: SystemdError.self, "\(bad)") { try SystemdCgroupsPath.expand(slice: bad) }
        }
    }

    @Test func parsesRuncForm() throws {
        let empty = try SystemdCgroupsPath.parse(nil, containerID: "c1")
        #expect(empty == SystemdCgroupsPath(slice: "system.slice", unit: "veil-c1.scope"))
        let kube = try SystemdCgroupsPath.parse("kubepods-besteffort-pod1.slice:cri-containerd:abc", containerID: "abc")
        #expect(kube.unit == "cri-containerd-abc.scope")
        #expect(try kube.components == ["kubepods.slice", "kubepods-besteffort.slice", "kubepods-besteffort-pod1.slice", "cri-containerd-abc.scope"])
        #expect(try SystemdCgroupsPath.parse(":p:n", containerID: "x") == SystemdCgroupsPath(slice: "system.slice", unit: "p-n.scope"))
        #expect(try SystemdCgroupsPath.parse("machine.slice::n", containerID: "x").unit == "n.scope")
    }

    @Test func refusesWhatCannotNameAScope() {
        for bad in ["a.slice:b", "a:b:c:d", "/sys/fs/cgroup/x", "a.slice:p:n.slice", "a.slice:p:n/../x", "a.slice:p:n m"] {
            #expect(throws: SystemdError.self, "\(bad)") { try SystemdCgroupsPath.parse(bad, containerID: "x") }
        }
        do {
            _ = try SystemdCgroupsPath.parse("a:b", containerID: "x")
            Issue.record("accepted a two-part path")
        } catch {
            #expect("\(error)".contains("linux.cgroupsPath"))
        }
    }
}

@Suite("resources as unit properties")
struct PropertyTests {
    func props(_ r: CgroupResources, unified: Bool = true) throws -> [String: BusValue] {
        var result: [String: BusValue] = [:]
        for p in try PropertyTranslator(unified: unified).translate(r).properties { result[p.name] = p.value }
        return result
    }

    @Test func memoryAndPids() throws {
        let v2 = try props(CgroupResources(memoryLimit: 64 << 20, memoryReservation: 32 << 20, memorySwap: 128 << 20, pidsLimit: 0))
        #expect(v2["MemoryMax"] == .uint64(64 << 20))
        #expect(v2["MemoryLow"] == .uint64(32 << 20))
        #expect(v2["MemorySwapMax"] == .uint64(64 << 20))  // swap alone: 128M - 64M
        #expect(v2["TasksMax"] == .uint64(1))  // systemd refuses 0
        #expect(try props(CgroupResources(memoryLimit: -1, pidsLimit: -1))["MemoryMax"] == .uint64(.max))
        #expect(try props(CgroupResources(pidsLimit: -1))["TasksMax"] == .uint64(.max))
        let v1 = try props(CgroupResources(memoryLimit: 64 << 20), unified: false)
        #expect(v1["MemoryLimit"] == .uint64(64 << 20) && v1["MemoryMax"] == nil)
        #expect(throws: SystemdError.self) { try props(CgroupResources(memoryLimit: 128 << 20, memorySwap: 64 << 20)) }
    }

    @Test func cpu() throws {
        for (shares, weight) in [(UInt64(2), UInt64(1)), (512, 20), (1024, 39), (262_144, 10_000)] {
            #expect(try props(CgroupResources(cpuShares: shares))["CPUWeight"] == .uint64(weight))
        }
        #expect(try props(CgroupResources(cpuShares: 1024), unified: false)["CPUShares"] == .uint64(1024))
        #expect(try props(CgroupResources(cpuQuota: 50_000, cpuPeriod: 100_000))["CPUQuotaPerSecUSec"] == .uint64(500_000))
        let rounded = try PropertyTranslator(unified: true).translate(CgroupResources(cpuQuota: 12_345, cpuPeriod: 100_000))
        #expect(rounded.properties.contains(UnitProperty("CPUQuotaPerSecUSec", .uint64(130_000))))
        #expect(rounded.files.cpuQuota == 13_000)  // the file agrees with what systemd keeps
        let periodOnly = try props(CgroupResources(cpuPeriod: 50_000))
        #expect(periodOnly["CPUQuotaPerSecUSec"] == .uint64(.max) && periodOnly["CPUQuotaPeriodUSec"] == .uint64(50_000))
        #expect(try props(CgroupResources(blockIOWeight: 500))["IOWeight"] == .uint64(4950))
    }

    @Test func cpusetMasks() throws {
        #expect(try CPUSetBits.mask("0-3,8", field: "cpu.cpus") == [0x0F, 0x01])
        #expect(try CPUSetBits.mask("1,3-5", field: "cpu.cpus") == [0x3A])
        #expect(try CPUSetBits.mask(" 0 , ,2", field: "cpu.cpus") == [0x05])
        #expect(throws: SystemdError.self) { try CPUSetBits.mask("x", field: "cpu.cpus") }
        #expect(throws: SystemdError.self) { try CPUSetBits.mask("3-1", field: "cpu.cpus") }
        #expect(throws: SystemdError.self) { try CPUSetBits.mask("", field: "cpu.cpus") }
        #expect(try props(CgroupResources(cpusetCpus: "0-1"))["AllowedCPUs"] == .bytes([0x03]))
        #expect(try props(CgroupResources(cpusetCpus: ""))["AllowedCPUs"] == nil)
    }

    @Test func unifiedKeys() throws {
        let p = try props(CgroupResources(unified: ["memory.high": "max", "pids.max": "0", "cpu.max": "50000 100000", "io.max": "8:0 rbps=1", "memory.min": "1024"]))
        #expect(p["MemoryHigh"] == .uint64(.max))
        #expect(p["MemoryMin"] == .uint64(1024))
        #expect(p["TasksMax"] == .uint64(1))
        #expect(p["CPUQuotaPerSecUSec"] == .uint64(500_000))
        #expect(p.count == 5)  // + CPUQuotaPeriodUSec; io.max stays a file write
        #expect(throws: SystemdError.self) { try props(CgroupResources(unified: ["memory.max": "lots"])) }
    }

    @Test func deviceRules() {
        let runcDefault = [DeviceRule(allow: false), DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
                           DeviceRule(allow: true, type: "c", major: 136, minor: -1, access: "rwm"),
                           DeviceRule(allow: true, type: "c", major: 5, minor: 0, access: "rw"),
                           DeviceRule(allow: true, type: "c", major: 5, minor: 0, access: "m")]
        #expect(DeviceAllowList.properties(for: runcDefault) == [
            UnitProperty("DevicePolicy", .string("strict")),
            UnitProperty("DeviceAllow", .stringPairs([("/dev/char/1:3", "rwm"), ("char-136", "rwm"), ("/dev/char/5:0", "rwm")]))])
        #expect(DeviceAllowList.properties(for: [DeviceRule(allow: true)]) == [
            UnitProperty("DevicePolicy", .string("auto")), UnitProperty("DeviceAllow", .stringPairs([]))])
        // A deny-list systemd cannot say: deny-all there, veil's device program decides.
        #expect(DeviceAllowList.properties(for: [DeviceRule(allow: true), DeviceRule(allow: false, type: "c", major: 1, minor: 3)]) == [
            UnitProperty("DevicePolicy", .string("strict")), UnitProperty("DeviceAllow", .stringPairs([]))])
        // Taking access away again removes the entry; a minor of any major has no systemd name.
        #expect(DeviceAllowList.properties(for: [DeviceRule(allow: true, type: "c", major: 1, minor: 5, access: "rw"),
                                                 DeviceRule(allow: false, type: "c", major: 1, minor: 5, access: "rw"),
                                                 DeviceRule(allow: true, type: "c", major: -1, minor: 5)]) == [
            UnitProperty("DevicePolicy", .string("strict")), UnitProperty("DeviceAllow", .stringPairs([]))])
    }
}

@Suite("org.systemd.property annotations")
struct AnnotationTests {
    @Test func gvariantValues() throws {
        #expect(try GVariantText.parse("true") == .bool(true))
        #expect(try GVariantText.parse("7") == .int32(7))
        #expect(try GVariantText.parse("@t 7") == .uint64(7))
        #expect(try GVariantText.parse("uint64 2000000") == .uint64(2_000_000))
        #expect(try GVariantText.parse("1.5") == .double(1.5))
        #expect(try GVariantText.parse("'inactive-or-failed'") == .string("inactive-or-failed"))
        #expect(try GVariantText.parse("['crio.service', \"a,b\"]") == .strings(["crio.service", "a,b"]))
        #expect(try GVariantText.parse("[]") == .strings([]))
        for bad in ["yes", "'open", "[1, 2]", "uint32 -1", "@t", "uint64 'x'"] {
            #expect(throws: GVariantText.ParseError.self, "\(bad)") { try GVariantText.parse(bad) }
        }
    }

    @Test func namesAndSeconds() throws {
        let p = try SystemdAnnotations.properties(["org.systemd.property.TimeoutStopSec": "uint64 5",
                                                   "org.systemd.property.CollectMode": "'inactive-or-failed'",
                                                   "org.systemd.property.After": "['crio.service']",
                                                   "io.kubernetes.cri-o.Foo": "x"], restricted: true)
        #expect(p == [UnitProperty("After", .strings(["crio.service"])), UnitProperty("CollectMode", .string("inactive-or-failed")),
                      UnitProperty("TimeoutStopUSec", .uint64(5_000_000))])
        #expect(try SystemdAnnotations.properties(["org.systemd.property.TimeoutStopUSec": "uint64 5"], restricted: true)
                == [UnitProperty("TimeoutStopUSec", .uint64(5))])
        for bad in ["Ab", "A1b", "Foo-Bar"] {
            #expect(throws: SystemdError.self) { try SystemdAnnotations.properties(["org.systemd.property." + bad: "true"], restricted: false) }
        }
        do {
            _ = try SystemdAnnotations.properties(["org.systemd.property.Zzz": "garbage"], restricted: false)
            Issue.record("accepted garbage")
        } catch { #expect("\(error)".contains("org.systemd.property.Zzz")) }
    }

    @Test func sandboxAllowList() throws {
        for key in ["MemoryMax", "Slice", "DevicePolicy", "Delegate", "TasksMax"] {
            do {
                _ = try SystemdAnnotations.properties(["org.systemd.property." + key: "uint64 1"], restricted: true)
                Issue.record("\(key) allowed at the sandbox level")
            } catch {
                #expect(error == .propertyNotAllowed(key: "org.systemd.property." + key))
                #expect("\(error)".contains("--allow-systemd-properties"))
            }
            #expect(try SystemdAnnotations.properties(["org.systemd.property." + key: "uint64 1"], restricted: false).count == 1)
        }
    }
}

@Suite("the scope's cgroup")
struct ScopeCgroupTests {
    @Test func unifiedMakesNothingAndNamesTheScope() throws {
        let layout = CgroupLayout.unified(CgroupHierarchy(controllers: [], mountpoint: "/nonexistent/cgroup", isUnified: true))
        let path = try SystemdCgroupsPath.parse("kubepods-besteffort-pod1.slice:cri-containerd:abc", containerID: "abc")
        let cgroup = try Cgroup.systemdScope(components: try path.components, unit: SystemdScopeRef(unit: path.unit, slice: path.slice), layout: layout)
        let dir = "/nonexistent/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"
        #expect(cgroup.paths == ["unified": dir])
        #expect(cgroup.created == [dir])  // removed with the container; systemd's slices never are
        #expect(cgroup.systemd == SystemdScopeRef(unit: "cri-containerd-abc.scope", slice: "kubepods-besteffort-pod1.slice"))
        // The warden's cgroup is named now and made once systemd made the scope.
        #expect(try cgroup.makeSupervisorCgroups() == [dir + "/veil-warden"])
        #expect(try cgroup.processes() == [])  // a scope systemd removed holds nobody
    }
}

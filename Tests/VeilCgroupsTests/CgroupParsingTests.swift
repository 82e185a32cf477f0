import FoundationEssentials
import Testing
import VeilLinux
@testable import VeilCgroups

@Suite("Path and layout parsing")
struct CgroupParsingTests {
    static let hybridMountinfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
    42 31 0:32 / /mnt/with\\040space rw,relatime - cgroup cgroup rw,memory
    """

    /// What a cgroup file reads as: its value without the newline or padding around it.
    @Test func trimsWhiteSpaceOnBothEnds() {
        #expect(trimmed("FROZEN\n") == "FROZEN")
        #expect(trimmed(" \t0-1 \n\n") == "0-1")
        #expect(trimmed("max 100000") == "max 100000")
        #expect(trimmed("\n \t") == "")
        #expect(trimmed("") == "")
        #expect(trimmed("a b\nc"[...]) == "a b\nc")
    }

    @Test func parsesHybrid() throws {
        let layout = try #require(CgroupLayout.parse(mountinfo: Self.hybridMountinfo))
        guard case .hybrid(let v1, let unified) = layout else {
            Issue.record("expected hybrid, got \(layout)")
            return
        }
        #expect(v1.map(\.controllers) == [["cpu", "cpuacct"], ["cpuset"], ["memory"], ["name=systemd"]])
        #expect(v1[0].mountpoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(v1[2].root == "/docker/abc")
        #expect(unified.mountpoint == "/sys/fs/cgroup/unified")
        #expect(!layout.isUnifiedOnly)
    }

    @Test func parsesUnifiedAndEscapes() throws {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
        #expect(CgroupLayout.parse(mountinfo: text) == .unified(
            CgroupHierarchy(controllers: [], mountpoint: "/sys/fs/cgroup", root: "/", isUnified: true)))
        #expect(CgroupLayout.parse(mountinfo: "1 2 0:1 / / rw - ext4 /dev/sda rw\n") == nil)
        #expect(Mounts.unescapeOctal("/a\\040b\\134c") == "/a b\\c")
    }

    @Test func resolvesAbsoluteRelativeAndDefault() throws {
        let layout = try #require(CgroupLayout.parse(mountinfo: Self.hybridMountinfo))
        let own = OwnCgroups.parse("""
        4:memory:/docker/abc/inner
        3:cpu,cpuacct:/user:1000
        2:cpuset:/
        1:name=systemd:/init.scope
        0::/u
        """)
        #expect(own.v1["cpuacct"] == "/user:1000")
        #expect(own.unified == "/u")

        func dirs(_ path: String?, _ id: String = "ctr") throws -> [String] {
            try Cgroup.resolve(cgroupsPath: path, containerID: id, layout: layout, own: own)
                .map { joinPath($0.0.mountpoint, $0.1) }
        }
        #expect(try dirs("/default/t1") == [
            "/sys/fs/cgroup/cpu,cpuacct/default/t1", "/sys/fs/cgroup/cpuset/default/t1",
            "/sys/fs/cgroup/memory/default/t1", "/sys/fs/cgroup/systemd/default/t1",
            "/sys/fs/cgroup/unified/default/t1",
        ])
        // Relative: under the caller's cgroup, with the memory mount root stripped.
        #expect(try dirs("foo/bar") == [
            "/sys/fs/cgroup/cpu,cpuacct/user:1000/foo/bar", "/sys/fs/cgroup/cpuset/foo/bar",
            "/sys/fs/cgroup/memory/inner/foo/bar", "/sys/fs/cgroup/systemd/init.scope/foo/bar",
            "/sys/fs/cgroup/unified/u/foo/bar",
        ])
        #expect(try dirs(nil, "c9")[1] == "/sys/fs/cgroup/cpuset/c9")
        #expect(try dirs("", "c9")[1] == "/sys/fs/cgroup/cpuset/c9")
        #expect(try dirs("/../x/./y")[1] == "/sys/fs/cgroup/cpuset/x/y")
        #expect(throws: CgroupError.self) { try dirs("/") }
        #expect(throws: CgroupError.self) { try dirs(nil, "") }
    }

    /// On cgroup v2 alone, a relative path (and no path) goes beside the caller's cgroup, as runc's
    /// fs2 driver places it: a service's own cgroup holds its processes, so no child of it may
    /// enable controllers. An absolute path stays where it says.
    @Test func unifiedRelativeGoesBesideTheCaller() throws {
        let layout = try #require(CgroupLayout.parse(mountinfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"))
        func dirs(_ path: String?, own: String) throws -> [String] {
            try Cgroup.resolve(cgroupsPath: path, containerID: "c9", layout: layout, own: OwnCgroups.parse("0::\(own)\n"))
                .map { joinPath($0.0.mountpoint, $0.1) }
        }
        #expect(try dirs(nil, own: "/system.slice/test.service") == ["/sys/fs/cgroup/system.slice/c9"])
        #expect(try dirs("foo/bar", own: "/system.slice/test.service") == ["/sys/fs/cgroup/system.slice/foo/bar"])
        #expect(try dirs(nil, own: "/init.scope") == ["/sys/fs/cgroup/c9"])
        #expect(try dirs(nil, own: "/") == ["/sys/fs/cgroup/c9"])
        #expect(try dirs("/abs/x", own: "/system.slice/test.service") == ["/sys/fs/cgroup/abs/x"])
    }

    /// The cgroupfs driver refuses runc's systemd form, naming the flag that takes it.
    @Test func systemdPathIsRejected() throws {
        let path = "system.slice:veil:abc"
        #expect(throws: CgroupError.systemdPathUnsupported(path: path)) {
            try Cgroup.create(cgroupsPath: path, containerID: "abc")
        }
        #expect(CgroupError.systemdPathUnsupported(path: path).description
            == "system.slice:veil:abc looks like a systemd cgroup path (slice:prefix:name): run with --systemd-cgroup, or give a cgroupfs path")
    }

    @Test func missingOwnCgroup() throws {
        let layout = try #require(CgroupLayout.parse(mountinfo: Self.hybridMountinfo))
        #expect(throws: CgroupError.ownCgroupUnknown(hierarchy: "cpu,cpuacct")) {
            try Cgroup.resolve(cgroupsPath: "rel", containerID: "x", layout: layout, own: OwnCgroups())
        }
    }

    @Test func conversions() throws {
        #expect(Cgroup.convertSharesToWeight(2) == 1)
        #expect(Cgroup.convertSharesToWeight(1024) == 39)
        #expect(Cgroup.convertSharesToWeight(262_144) == 10_000)
        #expect(Cgroup.convertSharesToWeight(1) == 1)
        #expect(try Cgroup.convertSwapToV2(memorySwap: nil, memory: nil) == nil)
        #expect(try Cgroup.convertSwapToV2(memorySwap: nil, memory: -1) == -1)
        #expect(try Cgroup.convertSwapToV2(memorySwap: -1, memory: 100) == -1)
        #expect(try Cgroup.convertSwapToV2(memorySwap: 300, memory: 100) == 200)
        #expect(throws: CgroupError.self) { try Cgroup.convertSwapToV2(memorySwap: 50, memory: 100) }
        #expect(throws: CgroupError.self) { try Cgroup.convertSwapToV2(memorySwap: 50, memory: nil) }
    }

    @Test func deviceLines() throws {
        #expect(try DeviceRule(allow: true).cgroupV1Line() == "a")
        #expect(try DeviceRule(allow: true, type: "b", major: 8, minor: nil, access: "r").cgroupV1Line() == "b 8:* r")
        #expect(throws: CgroupError.self) { try DeviceRule(allow: true, type: "c", access: "rx").cgroupV1Line() }
        #expect(throws: CgroupError.self) { try DeviceRule(allow: true, type: "c", major: -5).cgroupV1Line() }
    }
}

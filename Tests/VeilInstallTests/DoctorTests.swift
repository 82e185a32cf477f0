import Foundation
import Glibc
import Testing
import VeilCgroups
@testable import VeilInstall

@Suite struct DoctorContainerdTests {
    func inspect(_ text: String?, installed: Bool = true) throws -> DoctorContainerd.Inspection {
        let scratch = try Scratch()
        defer { scratch.remove() }
        if let text { try scratch.write("config.toml", text) }
        return DoctorContainerd.inspect(configPath: scratch.file("config.toml"), installed: installed)
    }

    @Test func v2WithVeilPasses() throws {
        let result = try inspect("""
            version = 2
            root = "/data/containerd"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.sandboxed]
              runtime_type = "io.containerd.veil.v1"
            """)
        #expect(result.check.name == "containerd.config")
        #expect(result.check.status == .pass)
        #expect(result.check.fix == nil)
        #expect(result.check.detail.contains("config version 2"))
        #expect(result.check.detail.contains("\"sandboxed\""))
        #expect(result.veilRuntimes == ["sandboxed"])
        #expect(result.storage == RuntimeStorage(root: "/data/containerd", state: "/run/containerd"))
    }

    @Test func v3WithVeilPasses() throws {
        let result = try inspect("""
            version = 3
            state = "/run/ctrd"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.veil]
              runtime_type = 'io.containerd.veil.v1'
            """)
        #expect(result.check.status == .pass)
        #expect(result.check.detail.contains("config version 3"))
        #expect(result.veilRuntimes == ["veil"])
        #expect(result.storage == RuntimeStorage(root: "/var/lib/containerd", state: "/run/ctrd"))
    }

    @Test func withoutVeilWarnsWithInstallFix() throws {
        let result = try inspect("""
            version = 2
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
            """)
        #expect(result.check.status == .warn)
        #expect(result.check.fix?.hasPrefix("veil install --containerd --config ") == true)
        // A v3 table in a v2 file is not where containerd looks.
        let misplaced = try inspect("""
            version = 2
            [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.veil]
              runtime_type = "io.containerd.veil.v1"
            """)
        #expect(misplaced.check.status == .warn)
    }

    @Test func veilWithTheWrongTypeWarns() throws {
        let result = try inspect("""
            version = 2
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.veil]
              runtime_type = "io.containerd.runc.v2"
            """)
        #expect(result.check.status == .warn)
        #expect(result.check.detail.contains("\"io.containerd.runc.v2\""))
        #expect(result.check.fix?.contains("runtime_type = \"io.containerd.veil.v1\"") == true)
    }

    @Test func missingFileAndMissingContainerd() throws {
        let absent = try inspect(nil, installed: true)
        #expect(absent.check.status == .warn)
        #expect(absent.check.fix?.contains("veil install --containerd") == true)
        #expect(absent.storage == RuntimeStorage(root: "/var/lib/containerd", state: "/run/containerd"))
        let notInstalled = try inspect(nil, installed: false)
        #expect(notInstalled.check.status == .pass)
        #expect(notInstalled.storage == nil)
    }

    @Test func corruptConfigFails() throws {
        let result = try inspect("version = 2\n[plugins\n")
        #expect(result.check.status == .fail)
        #expect(result.check.detail.contains("line"))
        let badVersion = try inspect("version = 7\n")
        #expect(badVersion.check.status == .fail)
        #expect(badVersion.check.detail.contains("unsupported config version 7"))
    }
}

@Suite struct DoctorCRIOTests {
    @Test func dropInPointingAtAnExistingVeil() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.file("conf.d"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.file("bin"), withIntermediateDirectories: true)
        try scratch.write("bin/veil", "#!/bin/sh\n")
        chmod(scratch.file("bin/veil"), 0o755)
        symlink("veil", scratch.file("bin/veil-native"))
        try scratch.write("conf.d/50-veil.conf", CRIODropIn.render(name: "veil", runtimePath: scratch.file("bin/veil"), nativeRuntimePath: scratch.file("bin/veil-native")))
        try scratch.write("crio.conf", "[crio]\nroot = \"/srv/containers\"\n")
        try scratch.write("storage.conf", "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/other\"\nrunroot = \"/run/other\"\n")
        var options = DoctorOptions()
        options.crioDirectory = scratch.file("conf.d")
        options.crioConfig = scratch.file("crio.conf")
        options.containersStorageConfig = scratch.file("storage.conf")
        let good = DoctorCRIO.inspect(options: options, installed: true)
        #expect(good.check.status == .pass && good.check.detail.contains("\"veil-native\""), "\(good.check)")
        #expect(good.handlers.map(\.name) == ["veil", "veil-native"])

        // A later drop-in dropping pods' infra containers again: the sandbox level would refuse CRI-O's pods.
        try scratch.write("conf.d/90-site.conf", "[crio.runtime]\ndrop_infra_ctr = true\n")
        let dropped = DoctorCRIO.inspect(options: options, installed: true)
        #expect(dropped.check.status == .fail && dropped.check.detail.contains("90-site.conf sets drop_infra_ctr = true"), "\(dropped.check)")
        unlink(scratch.file("conf.d/90-site.conf"))

        // The veil-native link missing: CRI-O would refuse to start too.
        unlink(scratch.file("bin/veil-native"))
        let noLink = DoctorCRIO.inspect(options: options, installed: true)
        #expect(noLink.check.status == .fail && noLink.check.detail.contains("\"veil-native\""), "\(noLink.check)")
        symlink("veil", scratch.file("bin/veil-native"))
        // crio.conf's root wins over storage.conf's graphroot; runroot comes from storage.conf.
        #expect(good.storage == RuntimeStorage(root: "/srv/containers", state: "/run/other"))

        // The binary gone: CRI-O would refuse to start.
        unlink(scratch.file("bin/veil"))
        let gone = DoctorCRIO.inspect(options: options, installed: true)
        #expect(gone.check.status == .fail)
        #expect(gone.check.fix?.contains("veil install --crio") == true)

        // No drop-in at all: a warning with the install command.
        unlink(scratch.file("conf.d/50-veil.conf"))
        let none = DoctorCRIO.inspect(options: options, installed: true)
        #expect(none.check.status == .warn)
        #expect(none.check.fix?.hasPrefix("veil install --crio") == true)
        #expect(DoctorCRIO.inspect(options: options, installed: false).storage == nil)
    }

    @Test func defaultsWithoutConfigs() {
        let result = DoctorCRIO.evaluate(files: [], directory: "/etc/crio/crio.conf.d", storageConf: nil, isExecutable: { _ in true })
        #expect(result.storage == RuntimeStorage(root: "/var/lib/containers/storage", state: "/run/containers/storage"))
        #expect(result.check.fix == "veil install --crio")
    }
}

@Suite struct DoctorEvictionTests {
    @Test func kubeletConfigWithCustomThresholds() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.yaml", """
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            # evictionHard: {nodefs.available: "1%"}
            evictionHard:
              memory.available: "200Mi"   # memory is not doctor's business
              nodefs.available: "20%"
              'imagefs.available': 25%
              nodefs.inodesFree: 1k
            evictionSoft:
              nodefs.available: "30%"
            """)
        let settings = EvictionSettings.from(kubeletConfig: scratch.read("config.yaml"), path: scratch.file("config.yaml"))
        #expect(settings.thresholds == ["memory.available": "200Mi", "nodefs.available": "20%", "imagefs.available": "25%", "nodefs.inodesFree": "1k"])
        #expect(settings.source.hasSuffix("config.yaml evictionHard"))
    }

    @Test func flowMappingJSONAndMerging() {
        let flow = KubeletConfigReader.read("kind: KubeletConfiguration\nevictionHard: {\"nodefs.available\": \"5%\", imagefs.available: 7%}\nmergeDefaultEvictionSettings: true\n")
        #expect(flow.evictionHard == ["nodefs.available": "5%", "imagefs.available": "7%"])
        #expect(flow.mergeDefaults)
        let json = KubeletConfigReader.read("{\n  \"kind\": \"KubeletConfiguration\",\n  \"evictionHard\": {\n    \"nodefs.available\": \"3%\",\n    \"imagefs.available\": \"4%\"\n  }\n}\n")
        #expect(json.evictionHard == ["nodefs.available": "3%", "imagefs.available": "4%"])
        // Merged: what the file leaves out comes from the defaults.
        let merged = EvictionSettings.from(kubeletConfig: "evictionHard:\n  nodefs.available: 5%\nmergeDefaultEvictionSettings: true\n", path: "k")
        #expect(merged.thresholds == ["nodefs.available": "5%", "imagefs.available": "15%", "nodefs.inodesFree": "5%"])
        // Not merged: kubelet turns the others off.
        let alone = EvictionSettings.from(kubeletConfig: "evictionHard:\n  nodefs.available: 5%\n", path: "k")
        #expect(alone.thresholds == ["nodefs.available": "5%"])
        // No file, or no evictionHard: the defaults.
        #expect(EvictionSettings.from(kubeletConfig: nil, path: "k").thresholds == EvictionSettings.defaults)
        #expect(EvictionSettings.from(kubeletConfig: "kind: KubeletConfiguration\n", path: "k").thresholds == EvictionSettings.defaults)
    }

    @Test func thresholdParsing() {
        #expect(EvictionThreshold.parse("10%") == .percent(10))
        #expect(EvictionThreshold.parse(" 2.5% ") == .percent(2.5))
        #expect(EvictionThreshold.parse("1Gi") == .quantity(1_073_741_824))
        #expect(EvictionThreshold.parse("500Mi") == .quantity(500 * 1_048_576))
        #expect(EvictionThreshold.parse("100k") == .quantity(100_000))
        #expect(EvictionThreshold.parse("4096") == .quantity(4096))
        #expect(EvictionThreshold.parse("lots") == nil)
        #expect(EvictionThreshold.parse("-1%") == nil)
        #expect(EvictionThreshold.quantity(25).percent(of: 100) == 25)
    }

    @Test func decisions() {
        // Below the threshold fails, within 5 points warns, above passes; 0% and 100% are off.
        #expect(DoctorStorage.decide(freePercent: 9.9, thresholdPercent: 10) == .fail)
        #expect(DoctorStorage.decide(freePercent: 10, thresholdPercent: 10) == .warn)
        #expect(DoctorStorage.decide(freePercent: 14.9, thresholdPercent: 10) == .warn)
        #expect(DoctorStorage.decide(freePercent: 15, thresholdPercent: 10) == .pass)
        #expect(DoctorStorage.decide(freePercent: 1, thresholdPercent: 0) == .pass)
        #expect(DoctorStorage.decide(freePercent: 1, thresholdPercent: 100) == .pass)
    }

    func check(_ stats: FilesystemStats, kind: String = "nodefs", thresholds: [String: String] = EvictionSettings.defaults) -> DoctorCheck {
        DoctorStorage.eviction(name: "eviction.\(kind)", kind: kind, filesystems: [(label: "test", mount: "/ ext4", stats: stats)],
                               settings: EvictionSettings(thresholds: thresholds, source: "test"))
    }

    @Test func statfsNumbersToStatus() {
        let gib: UInt64 = 1 << 30
        // 50% free space, 50% free inodes: pass.
        #expect(check(FilesystemStats(totalBytes: 100 * gib, availableBytes: 50 * gib, totalInodes: 1000, freeInodes: 500)).status == .pass)
        // nodefs.available<10%: 12% free warns, 8% fails.
        let warn = check(FilesystemStats(totalBytes: 100 * gib, availableBytes: 12 * gib, totalInodes: 1000, freeInodes: 500))
        #expect(warn.status == .warn)
        #expect(warn.fix?.contains("free space on / ext4") == true)
        let fail = check(FilesystemStats(totalBytes: 100 * gib, availableBytes: 8 * gib, totalInodes: 1000, freeInodes: 500))
        #expect(fail.status == .fail)
        #expect(fail.detail.contains("BELOW"))
        // Inodes: nodefs.inodesFree<5%: 4% free fails even with space to spare.
        #expect(check(FilesystemStats(totalBytes: 100 * gib, availableBytes: 90 * gib, totalInodes: 1000, freeInodes: 40)).status == .fail)
        // imagefs.available<15%: 18% free warns on the image filesystem but would pass as nodefs.
        let eighteen = FilesystemStats(totalBytes: 100 * gib, availableBytes: 18 * gib, totalInodes: 1000, freeInodes: 900)
        #expect(check(eighteen, kind: "imagefs").status == .warn)
        #expect(check(eighteen, kind: "nodefs").status == .pass)
        // An absolute threshold is compared as its share of the filesystem: 20Gi of 100Gi is 20%.
        #expect(check(eighteen, kind: "imagefs", thresholds: ["imagefs.available": "20Gi"]).status == .fail)
        // A filesystem without inode counts (btrfs) is judged on space alone.
        #expect(check(FilesystemStats(totalBytes: 100 * gib, availableBytes: 50 * gib, totalInodes: 0, freeInodes: 0)).status == .pass)
        // No numbers at all: a warning, never a pass.
        let unknown = DoctorStorage.eviction(name: "eviction.nodefs", kind: "nodefs", filesystems: [(label: "x", mount: "?", stats: nil)],
                                             settings: EvictionSettings(thresholds: EvictionSettings.defaults, source: "t"))
        #expect(unknown.status == .warn)
    }

    @Test func sharedFilesystem() {
        let shared = DoctorStorage.shared(name: "storage.containerd-root", label: "containerd root", path: "/var/lib/containerd",
                                          existing: "/var/lib", device: 2049, rootDevice: 2049, mount: "/ ext4")
        #expect(shared.status == .warn)
        #expect(shared.detail.contains("not created yet"))
        let own = DoctorStorage.shared(name: "storage.containerd-root", label: "containerd root", path: "/var/lib/containerd",
                                       existing: "/var/lib/containerd", device: 2065, rootDevice: 2049, mount: "/var/lib/containerd xfs")
        #expect(own.status == .pass)
        #expect(own.fix == nil)
    }
}

@Suite struct DoctorKernelAndCgroupTests {
    @Test func kernelParts() {
        #expect(DoctorKernel.parseRelease("6.1.0-18-amd64").map { [$0.major, $0.minor] } == [6, 1])
        #expect(DoctorKernel.parseRelease("5.12rc1").map { [$0.major, $0.minor] } == [5, 12])
        #expect(DoctorKernel.parseRelease("garbage") == nil)
        #expect(DoctorKernel.version(release: "6.1.0-18-amd64").status == .pass)
        #expect(DoctorKernel.version(release: "5.10.0-28-amd64").status == .warn)
        #expect(DoctorKernel.seccompNotify(actionsAvail: "kill_process kill_thread trap errno user_notif trace log allow\n").status == .pass)
        #expect(DoctorKernel.seccompNotify(actionsAvail: "kill_process errno allow").status == .fail)
        #expect(DoctorKernel.userNamespaces(maxUserNamespaces: "0", unprivilegedClone: nil).status == .fail)
        let userns = DoctorKernel.userNamespaces(maxUserNamespaces: "63000", unprivilegedClone: "0")
        #expect(userns.status == .pass)
        #expect(userns.detail.contains("unprivileged_userns_clone = 0"))
        #expect(DoctorKernel.idmappedMounts(release: "6.1.0", mountSetattr: .available, openTree: .available).status == .pass)
        #expect(DoctorKernel.idmappedMounts(release: "5.10.0", mountSetattr: .missing, openTree: .available).status == .fail)
        #expect(SyscallProbe(errno: ENOSYS) == .missing)
        #expect(SyscallProbe(errno: EBADF) == .available)
        #expect(SyscallProbe(errno: EPERM) == .denied(EPERM))
        #expect(DoctorKernel.syscall("kernel.clone3", call: "clone3", since: "5.3", use: "x", .missing).status == .fail)
    }

    @Test func cgroupControllers() throws {
        let v2 = try #require(CgroupLayout.parse(mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
        #expect(DoctorCgroups.layout(v2).status == .pass)
        #expect(DoctorCgroups.controllers(v2, available: "cpuset cpu io memory hugetlb pids rdma", subtreeControl: "cpuset cpu io memory hugetlb pids").status == .pass)
        let notEnabled = DoctorCgroups.controllers(v2, available: "cpuset cpu io memory hugetlb pids", subtreeControl: "memory")
        #expect(notEnabled.status == .warn)
        #expect(notEnabled.fix == "echo '+cpu +pids +cpuset +io +hugetlb' > /sys/fs/cgroup/cgroup.subtree_control")
        #expect(DoctorCgroups.controllers(v2, available: "cpuset io", subtreeControl: "").status == .fail)
        let hybrid = try #require(CgroupLayout.parse(mountinfo: """
            32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
            """))
        #expect(DoctorCgroups.layout(hybrid).status == .warn)
        let lacking = DoctorCgroups.controllers(hybrid, available: nil, subtreeControl: nil)
        #expect(lacking.status == .fail)
        #expect(lacking.detail.contains("pids, devices, freezer"))
        #expect(DoctorCgroups.layout(nil).status == .fail)
    }
}

@Suite struct DoctorBinaryTests {
    @Test func locateAndCompareVersions() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        for dir in ["path", "prefix"] { try FileManager.default.createDirectory(atPath: scratch.file(dir), withIntermediateDirectories: true) }
        func script(_ name: String, _ output: String) throws {
            try scratch.write(name, "#!/bin/sh\nprintf '\(output)'\n")
            chmod(scratch.file(name), 0o755)
        }
        try script("path/veil", "veil version 0.1.0\\nspec: 1.1.0\\n")
        try script("prefix/veil", "veil version 0.2.0\\nspec: 1.1.0\\n")
        try script("prefix/containerd-shim-veil-v1", "containerd-shim-veil-v1:\\n  Version: 0.1.0\\n")
        let searchPath = scratch.file("empty") + ":" + scratch.file("path")

        let veil = DoctorBinaries.locate("veil", searchPath: searchPath, prefix: scratch.file("prefix"))
        #expect(veil.onPath == scratch.file("path/veil"))
        #expect(veil.inPrefix == scratch.file("prefix/veil"))
        #expect(DoctorBinaries.binary(veil, prefix: scratch.file("prefix"), required: true).status == .pass)
        let shim = DoctorBinaries.locate("containerd-shim-veil-v1", searchPath: searchPath, prefix: scratch.file("prefix"))
        #expect(DoctorBinaries.binary(shim, prefix: scratch.file("prefix"), required: true).status == .warn)

        let checks = DoctorBinaries.checks(searchPath: searchPath, prefix: scratch.file("prefix"), shimRequired: true, host: SystemHost())
        #expect(checks.map(\.name) == ["binary.veil", "binary.shim", "binary.versions", "binary.warden"])
        // No veil-warden beside veil nor on PATH: the default (sandbox) level cannot start.
        #expect(checks[3].status == .fail && checks[3].detail.contains("veil-warden"), "\(checks[3])")
        try script("prefix/veil-warden", "")
        let withWarden = DoctorBinaries.checks(searchPath: searchPath, prefix: scratch.file("prefix"), shimRequired: true, host: SystemHost())
        #expect(withWarden[3].status == .pass && withWarden[3].detail == scratch.file("prefix/veil-warden"), "\(withWarden[3])")
        #expect(checks[2].status == .fail, "\(checks[2])")
        #expect(checks[2].detail.contains("0.2.0"))

        // One version everywhere: pass.
        try script("prefix/veil", "veil version 0.1.0\\n")
        let same = DoctorBinaries.checks(searchPath: searchPath, prefix: scratch.file("prefix"), shimRequired: true, host: SystemHost())
        #expect(same[2].status == .pass, "\(same[2])")

        // Not executable: fail with chmod.
        chmod(scratch.file("path/veil"), 0o644)
        let plain = DoctorBinaries.locate("veil", searchPath: searchPath, prefix: scratch.file("prefix"))
        let bad = DoctorBinaries.binary(plain, prefix: scratch.file("prefix"), required: true)
        #expect(bad.status == .fail)
        #expect(bad.fix == "chmod 755 \(scratch.file("path/veil"))")

        let none = DoctorBinaries.locate("veil", searchPath: scratch.file("empty"), prefix: scratch.file("empty"))
        #expect(DoctorBinaries.binary(none, prefix: "/usr/local/bin", required: true).status == .fail)
        #expect(DoctorBinaries.binary(none, prefix: "/usr/local/bin", required: false).status == .warn)
    }

    @Test func versionParsing() {
        #expect(DoctorBinaries.parseVersion("veil version 0.1.0\nspec: 1.1.0") == "0.1.0")
        #expect(DoctorBinaries.parseVersion("containerd-shim-veil-v1:\n  Version: v1.2.3\n") == "1.2.3")
        #expect(DoctorBinaries.parseVersion("no version here") == nil)
    }
}

@Suite struct DoctorIsolationFloorTests {
    static let passing = """
        version = 2
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.veil]
          runtime_type = "io.containerd.veil.v1"
          pod_annotations = ["dev.veil.*"]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.veil.options]
          ConfigPath = "/etc/veil/veil.toml"
        """

    @Test func passThroughPlusAllowLoweringWarns() {
        let check = DoctorIsolationFloor.containerd(configPath: "/c.toml", text: Self.passing) { path in
            path == "/etc/veil/veil.toml" ? "allow_lower_isolation = true\n" : nil
        }
        #expect(check.name == "containerd.isolation-floor")
        #expect(check.status == .warn)
        #expect(check.detail.contains("runtime \"veil\"") && check.detail.contains("pod_annotations \"dev.veil.*\"") && check.detail.contains("allow_lower_isolation = true"), "\(check)")
        #expect(check.fix?.contains("veil-native RuntimeClass") == true)
    }

    @Test func eitherHalfAloneIsFine() {
        // Lowering allowed but nothing reaches veil; annotations reach veil but may only raise; native has nothing below it.
        let notPassed = Self.passing.replacingOccurrences(of: "  pod_annotations = [\"dev.veil.*\"]\n", with: "")
        #expect(DoctorIsolationFloor.containerd(configPath: "/c.toml", text: notPassed) { _ in "allow_lower_isolation = true\n" }.status == .pass)
        let floor = DoctorIsolationFloor.containerd(configPath: "/c.toml", text: Self.passing) { _ in "isolation = \"sandbox\"\n" }
        #expect(floor.status == .pass && floor.detail.contains("veil: sandbox"), "\(floor)")
        #expect(DoctorIsolationFloor.containerd(configPath: "/c.toml", text: Self.passing) { _ in "isolation = \"native\"\nallow_lower_isolation = true\n" }.status == .pass)
        #expect(DoctorIsolationFloor.containerd(configPath: "/c.toml", text: nil) { _ in nil }.status == .pass)
        // Other patterns that reach dev.veil.isolation count too.
        let star = Self.passing.replacingOccurrences(of: "\"dev.veil.*\"", with: "\"*\"")
        #expect(DoctorIsolationFloor.containerd(configPath: "/c.toml", text: star) { _ in "allow_lower_isolation = true\n" }.status == .warn)
        #expect(DoctorIsolationFloor.glob("dev.veil.*", matches: "dev.veil.isolation"))
        #expect(DoctorIsolationFloor.glob("dev.?eil.isolation", matches: "dev.veil.isolation"))
        #expect(!DoctorIsolationFloor.glob("io.kubernetes.*", matches: "dev.veil.isolation"))
    }

    @Test func crioWrapperWithTheFlagWarns() {
        let handlers = [DoctorCRIO.Handler(name: "veil", file: "/etc/crio/crio.conf.d/50-veil.conf", runtimePath: "/usr/local/bin/veil"),
                        DoctorCRIO.Handler(name: "veil-open", file: "/etc/crio/crio.conf.d/60.conf", runtimePath: "/usr/local/bin/veil-open")]
        let scripts = ["/usr/local/bin/veil-open": "#!/bin/sh\nexec /usr/local/bin/veil --allow-lower-isolation \"$@\"\n"]
        let check = DoctorIsolationFloor.crio(handlers: handlers) { scripts[$0] }
        #expect(check.name == "crio.isolation-floor" && check.status == .warn)
        #expect(check.detail.contains("\"veil-open\"") && !check.detail.contains("\"veil\" "), "\(check)")
        #expect(DoctorIsolationFloor.crio(handlers: Array(handlers.prefix(1))) { scripts[$0] }.status == .pass)
    }
}

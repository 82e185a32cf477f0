import Foundation
import Testing
@testable import VeilInstall

/// The node's cgroup driver: what `veil install --containerd` copies from the runc handler, and
/// what `veil doctor` compares.
@Suite struct CgroupDriverTests {
    static func config(version: Int, systemd: Bool?) -> String {
        let plugin = version == 3 ? "'io.containerd.cri.v1.runtime'" : "\"io.containerd.grpc.v1.cri\""
        var text = "version = \(version)\n[plugins.\(plugin).containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
        if let systemd { text += "[plugins.\(plugin).containerd.runtimes.runc.options]\n  SystemdCgroup = \(systemd)\n" }
        return text
    }

    @Test(arguments: [(2, true), (2, false), (3, true), (3, false)])
    func runcHandlersDriverReachesVeilsHandlers(version: Int, systemd: Bool) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let original = Self.config(version: version, systemd: systemd)
        try scratch.write("config.toml", original)
        var options = containerdOptions(scratch)
        options.nativeShimConfig = scratch.file("veil-native.toml")
        options.shimConfig = scratch.file("veil.toml")
        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("veil-native.toml")?.contains("\nsystemd_cgroup = \(systemd)\n") == true)
        #expect(scratch.read("veil.toml")?.contains("\nsystemd_cgroup = \(systemd)\n") == true)
        _ = try Installer(options: options, host: FakeHost()).uninstall()
        #expect(scratch.read("config.toml") == original, "uninstall puts the file back byte for byte")
        #expect(scratch.read("veil.toml") == nil && scratch.read("veil-native.toml") == nil)
    }

    @Test func noDriverSaidMeansNoKey() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("config.toml", Self.config(version: 2, systemd: nil))
        var options = containerdOptions(scratch)
        options.nativeShimConfig = scratch.file("veil-native.toml")
        _ = try Installer(options: options, host: FakeHost()).install()
        #expect(scratch.read("veil-native.toml")?.contains("\nsystemd_cgroup") == false)
        #expect(try ContainerdConfig.runcSystemdCgroup(in: Self.config(version: 3, systemd: true), file: "t") == true)
        #expect(try ContainerdConfig.runcSystemdCgroup(in: "", file: "t") == nil)
    }

    @Test func kubeletDriverFromConfigOrFlags() {
        let yaml = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
        #expect(DoctorCgroupDriver.kubeletDriver(config: yaml, configPath: "/var/lib/kubelet/config.yaml", flagFiles: [])
                == .init(driver: "systemd", source: "/var/lib/kubelet/config.yaml"))
        let flags = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --cgroup-driver=cgroupfs\"\n"
        #expect(DoctorCgroupDriver.kubeletDriver(config: "kind: KubeletConfiguration\n", configPath: "c", flagFiles: [("flags.env", flags)])
                == .init(driver: "cgroupfs", source: "flags.env"))
        #expect(DoctorCgroupDriver.kubeletDriver(config: nil, configPath: "c", flagFiles: [("f", nil)]) == nil)
    }

    @Test func mismatchIsTheClassicFailure() {
        let kubelet = DoctorCgroupDriver.Setting(driver: "systemd", source: "/var/lib/kubelet/config.yaml")
        let mismatch = DoctorCgroupDriver.check(systemdRunning: true, kubelet: kubelet, containerdRunc: false)
        #expect(mismatch.status == .fail)
        #expect(mismatch.detail.contains("kubelet cgroup driver: systemd is different from the runtime's: cgroupfs"))
        #expect(DoctorCgroupDriver.check(systemdRunning: true, kubelet: kubelet, containerdRunc: true).status == .pass)
        #expect(DoctorCgroupDriver.check(systemdRunning: false, kubelet: nil, containerdRunc: true).status == .fail)
        #expect(DoctorCgroupDriver.check(systemdRunning: false, kubelet: nil, containerdRunc: nil).status == .pass)
    }
}

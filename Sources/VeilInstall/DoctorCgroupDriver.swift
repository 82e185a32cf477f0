import VeilLinux

/// Which cgroup driver the node's parts use. The kubelet, the container manager's runc handler
/// and veil must agree: a kubelet on the systemd driver gives pods "…slice:cri-containerd:<id>"
/// cgroup paths a cgroupfs runtime refuses, and the other way round pods land outside the slices
/// the kubelet accounts (Kubernetes' "cgroup driver mismatch").
public enum DoctorCgroupDriver {
    /// What the kubelet's files say: "systemd" / "cgroupfs", and where it was read.
    public struct Setting: Equatable, Sendable {
        public var driver: String
        public var source: String
        public init(driver: String, source: String) {
            self.driver = driver
            self.source = source
        }
    }

    static func check(options: DoctorOptions) -> DoctorCheck {
        let kubelet = kubeletDriver(config: DoctorFiles.read(options.kubeletConfig), configPath: options.kubeletConfig,
                                    flagFiles: ["/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet"].map { ($0, DoctorFiles.read($0)) })
        let containerdText = DoctorFiles.read(options.containerdConfig)
        let runc = containerdText.flatMap { try? ContainerdConfig.runcSystemdCgroup(in: $0, file: options.containerdConfig) } ?? nil
        return check(systemdRunning: FS.isDirectory("/run/systemd/system"), kubelet: kubelet, containerdRunc: runc)
    }

    /// The kubelet's driver: `cgroupDriver:` in its KubeletConfiguration, else `--cgroup-driver=` in the
    /// flag files kubeadm and packages write; nil when neither says (the kubelet's default is cgroupfs).
    public static func kubeletDriver(config: String?, configPath: String, flagFiles: [(path: String, text: String?)]) -> Setting? {
        for line in (config ?? "").split(separator: "\n") {
            let trimmed = trim(line, " \t")
            guard trimmed.hasPrefix("cgroupDriver:") else { continue }
            let value = trim(trimmed.dropFirst("cgroupDriver:".count), " \t\"'")
            return Setting(driver: value, source: configPath)
        }
        for (path, text) in flagFiles {
            guard let text, let range = text.firstRange(of: "--cgroup-driver=") else { continue }
            let value = text[range.upperBound...].prefix { !" \t\n\"'".contains($0) }
            return Setting(driver: String(value), source: path)
        }
        return nil
    }

    static func trim(_ s: Substring, _ characters: String) -> String {
        String(s.drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }

    public static func check(systemdRunning: Bool, kubelet: Setting?, containerdRunc: Bool?) -> DoctorCheck {
        let name = "cgroup.driver"
        let runtime = containerdRunc.map { $0 ? "systemd" : "cgroupfs" }
        var parts = ["systemd " + (systemdRunning ? "is" : "is not") + " PID 1"]
        if let kubelet { parts.append("kubelet: \(kubelet.driver) (\(kubelet.source))") }
        if let runtime { parts.append("containerd's runc handler: \(runtime) (veil's handlers follow it; unset, veil infers it from each pod's cgroup path)") }
        let detail = parts.joined(separator: "; ")
        if let kubelet, let runtime, kubelet.driver != runtime {
            return DoctorCheck(name, .fail, "kubelet cgroup driver: \(kubelet.driver) is different from the runtime's: \(runtime); \(detail)",
                               fix: "make them agree: cgroupDriver in \(kubelet.source) and SystemdCgroup in containerd's runc options (then veil install --containerd again)")
        }
        let systemdWanted = kubelet?.driver == "systemd" || runtime == "systemd"
        if systemdWanted && !systemdRunning {
            return DoctorCheck(name, .fail, "the systemd cgroup driver is configured but systemd does not run here; \(detail)",
                               fix: "use the cgroupfs driver on a node without systemd")
        }
        return DoctorCheck(name, .pass, detail)
    }
}

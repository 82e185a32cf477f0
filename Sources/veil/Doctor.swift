import ArgumentParser
import Glibc
import VeilInstall

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: "Check that this node can run veil: kernel, cgroups, containerd/CRI-O registration, binaries, storage.",
        discussion: """
            One line per check with pass, warn or fail, and the fix for the ones that do not pass. \
            Exits 0 when nothing fails, 1 otherwise.
            """)
    @Option(help: "Output format: table or json.") var format: String = "table"
    @Option(name: .customLong("containerd-config"), help: "containerd's config file.") var containerdConfig: String = InstallOptions.defaultContainerdConfig
    @Option(name: .customLong("crio-dir"), help: "CRI-O's drop-in directory.") var crioDir: String = "/etc/crio/crio.conf.d"
    @Option(name: .customLong("kubelet-config"), help: "kubelet's config file (for evictionHard).") var kubeletConfig: String = DoctorOptions.defaultKubeletConfig
    @Option(help: "Where veil install puts the binaries.") var prefix: String = "/usr/local/bin"

    func validate() throws {
        guard format == "table" || format == "json" else { throw ValidationError("--format must be table or json, not \(format)") }
    }

    func run() throws {
        var options = DoctorOptions()
        options.containerdConfig = containerdConfig
        options.crioDirectory = crioDir
        options.kubeletConfig = kubeletConfig
        options.prefix = prefix
        let checks = VeilInstall.Doctor(options: options).run()
        writeOut(format == "json" ? VeilInstall.Doctor.renderJSON(checks) : VeilInstall.Doctor.renderTable(checks))
        Glibc.exit(VeilInstall.Doctor.exitStatus(checks))
    }
}

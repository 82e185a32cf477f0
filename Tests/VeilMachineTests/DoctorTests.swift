import Foundation
import Glibc
import Testing
@testable import VeilInstall

@Suite struct DoctorRunTests {
    /// The real checks on this machine (as root, as `veil doctor` runs): every check present once,
    /// with a valid status, and the exit status following the fails.
    @Test(.enabled(if: getuid() == 0 || veilRequired, "needs root: doctor probes the kernel as an operator runs it"))
    func realChecksAsJSON() throws {
        let kubelet = "/tmp/veil-doctor-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).yaml"
        defer { unlink(kubelet) }
        var options = DoctorOptions()
        options.kubeletConfig = kubelet
        try Data("evictionHard:\n  nodefs.available: \"1%\"\n  imagefs.available: \"1%\"\n".utf8).write(to: URL(fileURLWithPath: kubelet))
        let checks = Doctor(options: options).run()
        let json = Doctor.renderJSON(checks)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let items = try #require(object["checks"] as? [[String: Any]])
        let names = items.compactMap { $0["name"] as? String }
        #expect(names == Doctor.checkNames)
        for item in items {
            let status = try #require(item["status"] as? String)
            #expect(["pass", "warn", "fail"].contains(status), "\(item)")
            #expect((item["detail"] as? String)?.isEmpty == false)
            #expect((item["fix"] == nil) == (status == "pass"), "\(item)")
        }
        #expect(object["ok"] as? Bool == (Doctor.exitStatus(checks) == 0))
        // This machine runs veil's own tests, so what they need must be there.
        for name in ["kernel.seccomp-notify", "kernel.idmapped-mounts", "kernel.pidfd", "kernel.clone3", "kernel.openat2"] {
            #expect(checks.first { $0.name == name }?.status == .pass, "\(name)")
        }
        #expect(checks.first { $0.name == "eviction.nodefs" }?.detail.contains("\(kubelet) evictionHard") == true)
        let table = Doctor.renderTable(checks)
        #expect(table.hasPrefix("CHECK"))
        #expect(table.contains("\(checks.count) checks:"))
    }
}

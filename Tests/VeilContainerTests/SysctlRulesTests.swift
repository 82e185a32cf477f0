import Testing
import VeilSpec
@testable import VeilContainer

/// linux.sysctl keys are allowed only in a namespace the container has (runc's rule).
@Suite struct SysctlRulesTests {
    private func spec(_ sysctl: [String: String], _ namespaces: [LinuxNamespace]) -> Spec {
        var linux = Linux()
        linux.sysctl = sysctl
        linux.namespaces = namespaces
        return Spec(ociVersion: "1.1.0", root: Root(path: "rootfs"), linux: linux)
    }

    @Test func keysMapToTheirNamespaces() {
        #expect(SysctlRules.namespace(of: "kernel.shm_rmid_forced") == .ipc)
        #expect(SysctlRules.namespace(of: "fs.mqueue.msg_max") == .ipc)
        #expect(SysctlRules.namespace(of: "kernel.hostname") == .uts)
        #expect(SysctlRules.namespace(of: "net.ipv4.ip_forward") == .network)
        #expect(SysctlRules.namespace(of: "kernel.pid_max") == nil)
        #expect(SysctlRules.namespace(of: "vm.overcommit_memory") == nil)
    }

    @Test func refusedOutsideTheContainersNamespaces() throws {
        let all = [LinuxNamespace(type: .ipc), LinuxNamespace(type: .uts), LinuxNamespace(type: .network)]
        try SysctlRules.check(spec(["kernel.sem": "1 2 3 4", "net.ipv4.ip_forward": "1", "kernel.domainname": "x"], all))
        for (sysctl, namespaces) in [(["kernel.pid_max": "4096"], all),
                                     (["net.core.somaxconn": "64"], [LinuxNamespace(type: .ipc)]),
                                     (["net.core.somaxconn": "64"], [LinuxNamespace(type: .network, path: "/proc/self/ns/net")]),
                                     (["kernel.msgmax": "64"], [LinuxNamespace(type: .network)])] {
            #expect(throws: ContainerError.self, "\(sysctl) with \(namespaces)") { try SysctlRules.check(spec(sysctl, namespaces)) }
        }
    }
}

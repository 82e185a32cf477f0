import Foundation
import Testing
@testable import VeilCRI
import VeilSpec

@Suite("CRI endpoint addresses")
struct CRIEndpointTests {
    @Test("unix:// addresses and absolute paths name the socket")
    func parses() throws {
        #expect(try CRIEndpoint("unix:///run/containerd/containerd.sock").path == "/run/containerd/containerd.sock")
        #expect(try CRIEndpoint("/run/crio/crio.sock").path == "/run/crio/crio.sock")
    }

    @Test("other schemes, relative and over-long paths are refused naming the flag", arguments: [
        "tcp://127.0.0.1:10010", "npipe:////./pipe/containerd", "containerd.sock", "unix://relative.sock",
        "unix:///" + String(repeating: "a", count: 120),
    ])
    func refuses(_ address: String) {
        #expect {
            _ = try CRIEndpoint(address)
        } throws: { error in
            "\(error)".hasPrefix("--cri-endpoint \(address):")
        }
    }

    @Test("probing a path with no socket says it cannot reach the endpoint, and why")
    func probeMissing() throws {
        let endpoint = try CRIEndpoint("unix:///nonexistent-veil-dir/c.sock")
        #expect {
            try endpoint.probe()
        } throws: { error in
            "\(error)".contains("cannot reach the CRI endpoint unix:///nonexistent-veil-dir/c.sock")
                && "\(error)".contains("No such file or directory")
        }
    }
}

@Suite("veil verify's report and checks")
struct VerifyReportTests {
    let report = VerifyReport(checks: [
        VerifyCheck("endpoint", .pass, "containerd 1.6.20"),
        VerifyCheck("sandbox-marker", .skip, "isolation native"),
        VerifyCheck("exec", .fail, "exit 1, stdout \"\""),
    ])

    @Test("a failed check fails the run; skipped ones do not")
    func exitStatus() {
        #expect(report.exitStatus == 1)
        #expect(VerifyReport(checks: [VerifyCheck("a", .pass, ""), VerifyCheck("b", .skip, "")]).exitStatus == 0)
    }

    @Test("table: one aligned line per check and a summary")
    func table() {
        #expect(report.renderTable() == """
            CHECK           STATUS  DETAIL
            endpoint        pass    containerd 1.6.20
            sandbox-marker  skip    isolation native
            exec            fail    exit 1, stdout ""

            3 checks: 1 pass, 1 fail, 1 skip

            """)
    }

    @Test("json: checks in order with escaped details, and ok")
    func json() throws {
        let text = report.renderJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let checks = try #require(object["checks"] as? [[String: String]])
        #expect(checks.map { $0["name"] } == ["endpoint", "sandbox-marker", "exec"])
        #expect(checks[2]["detail"] == "exit 1, stdout \"\"")
        #expect(object["ok"] as? Bool == false)
    }

    @Test("containerd's answer to an unknown handler becomes a message naming it")
    func unknownHandler() {
        var options = VerifyOptions()
        options.handler = "nosuch"
        let verifier = Verifier(options: options)
        let refused = verifier.runPodFailure(.rpc(method: "RunPodSandbox", code: "unknown",
                                                  message: "failed to get sandbox runtime: no runtime for \"nosuch\" is configured"))
        #expect(refused.hasPrefix("the CRI runtime has no runtime handler \"nosuch\""))
        #expect(refused.hasSuffix("no runtime for \"nosuch\" is configured"))
        let other = verifier.runPodFailure(.rpc(method: "RunPodSandbox", code: "unknown", message: "failed to start sandbox container"))
        #expect(other == "RunPodSandbox with handler \"nosuch\" failed: failed to start sandbox container")
    }

    @Test("runtime type and pid come from containerd's verbose info JSON")
    func runtimeInfo() throws {
        let json = #"{"sandboxID":"abc","pid":4242,"removing":false,"runtimeType":"io.containerd.veil.v1","runtimeOptions":null,"config":{}}"#
        let info = try #require(Verifier.RuntimeInfo(json))
        #expect(info.pid == 4242)
        #expect(info.runtimeType == "io.containerd.veil.v1")
        #expect(Verifier.RuntimeInfo("not json") == nil)
        #expect(Verifier.RuntimeInfo(nil) == nil)
        let verifier = Verifier(options: VerifyOptions())
        let runc = try #require(Verifier.RuntimeInfo(#"{"pid":1,"runtimeType":"io.containerd.runc.v2"}"#))
        #expect(verifier.runtimeTypeStatus(info, info) == .pass)
        #expect(verifier.runtimeTypeStatus(runc, info) == .fail)
        #expect(verifier.runtimeTypeDetail(runc, info).hasPrefix("container runs under io.containerd.runc.v2, pod under io.containerd.veil.v1"))
    }

    @Test("the shim check names the parent it found")
    func shimParent() {
        let verifier = Verifier(options: VerifyOptions())
        // This test process's parent is not containerd's shim.
        let (status, detail) = verifier.shimCheck(containerPid: getpid(), podPid: nil)
        #expect(status == .fail)
        #expect(detail.hasPrefix("the parent of container pid \(getpid()) is "))
        #expect(verifier.shimCheck(containerPid: nil, podPid: nil).0 == .fail)
    }

    @Test("the pod and container carry the run label and host networking, and no isolation annotation (the handler sets the level)")
    func configs() throws {
        var options = VerifyOptions()
        options.isolation = .native
        options.cgroupParent = "/veil-test/x"
        let verifier = Verifier(options: options)
        let pod = verifier.sandboxConfig(runID: "r1")
        #expect(pod.annotations.isEmpty)
        #expect(pod.labels == [Verifier.runLabel: "r1"])
        #expect(pod.linux.securityContext.namespaceOptions.network == .node)
        #expect(pod.linux.cgroupParent == "/veil-test/x")
        #expect(pod.hostname.isEmpty)
        let container = verifier.containerConfig(runID: "r1")
        #expect(container.annotations.isEmpty)
        #expect(container.image.image == options.image)
        // Upstream field numbers on the wire: RunPodSandboxRequest.runtime_handler is field 2 (tag 0x12).
        var request = Runtime_V1_RunPodSandboxRequest()
        request.runtimeHandler = "veil"
        let bytes: [UInt8] = try request.serializedBytes()
        #expect(bytes == [0x12, 4] + Array("veil".utf8))
        #expect(VerifyOptions().isolation == .sandbox)
        #expect(VerifyOptions.defaultHandler(for: .native) == "veil-native" && VerifyOptions.defaultHandler(for: .sandbox) == "veil")
    }

    @Test("pod uids look like UUIDs (version 4)")
    func uuids() {
        let value = uuid()
        let parts = value.split(separator: "-").map(\.count)
        #expect(parts == [8, 4, 4, 4, 12])
        #expect(value.dropFirst(14).first == "4")
        #expect(uuid() != value)
    }
}

@Suite("veil verify's check order")
struct VerifyOrderTests {
    @Test("checks that did not run are skipped in their place, naming the first failure; cleanup stays last")
    func completed() {
        let verifier = Verifier(options: VerifyOptions())
        let partial = VerifyReport(checks: [
            VerifyCheck("endpoint", .pass, "up"), VerifyCheck("image", .pass, "present"),
            VerifyCheck("pod", .fail, "no handler"), VerifyCheck("cleanup", .pass, "nothing was left to remove"),
        ])
        let full = verifier.completed(partial)
        #expect(full.checks.map(\.name) == Verifier.Check.allCases.map(\.rawValue))
        #expect(full.checks[3] == VerifyCheck("container", .skip, "not run: pod failed"))
        #expect(full.checks.last == VerifyCheck("cleanup", .pass, "nothing was left to remove"))
        #expect(verifier.completed(VerifyReport()).checks.last == VerifyCheck("cleanup", .skip, "nothing was created"))
    }
}

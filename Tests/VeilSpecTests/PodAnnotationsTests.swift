import Testing
import VeilSpec

@Suite("pod membership from config.json's annotations")
struct PodAnnotationsTests {
    @Test func bothManagers() {
        let containerd = PodAnnotations(["io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1"])
        #expect(containerd?.kind == .container && containerd?.manager == .containerd && containerd?.sandboxID == "pod1")
        let crio = PodAnnotations(["io.kubernetes.cri-o.ContainerType": "sandbox", "io.kubernetes.cri-o.SandboxID": "pod2"])
        #expect(crio?.kind == .sandbox && crio?.manager == .crio && crio?.sandboxID == "pod2")
        #expect(PodAnnotations(nil) == nil)
        #expect(PodAnnotations(["io.kubernetes.cri.container-type": "other"]) == nil)
    }

    /// CRI-O copies a pod's annotations into config.json before its own keys: a tenant may forge
    /// containerd's keys there, never CRI-O's, so CRI-O's decide.
    @Test func crioKeysWinOverForgedContainerdKeys() {
        let forged = PodAnnotations(["io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "victim",
                                     "io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "mine"])
        #expect(forged?.manager == .crio && forged?.sandboxID == "mine")
        #expect(PodAnnotations(["io.kubernetes.cri.container-type": "container", "io.kubernetes.cri-o.ContainerType": "bogus"]) == nil)
    }
}

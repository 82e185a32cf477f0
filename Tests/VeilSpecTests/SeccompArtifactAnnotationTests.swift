import Testing
import VeilSpec

/// CRI-O's order of the seccomp-profile annotations: the pod's keys (container, then POD), then the image's.
@Suite struct SeccompArtifactAnnotationTests {
    let old = "seccomp-profile.kubernetes.cri-o.io", new = "seccomp-profile.crio.io"

    @Test func containerKeyBeatsPodKeyAndNewBaseBeatsOld() {
        let keys = SeccompArtifactAnnotation.podKeys(containerName: "web")
        #expect(keys == ["\(new)/web", "\(old)/web", "\(new)/POD", "\(old)/POD"])
        let annotations = ["\(old)/POD": "r/pod:1", "\(old)/web": "r/web:1", "\(old)/db": "r/db:1"]
        #expect(SeccompArtifactAnnotation.first(of: keys, in: annotations) == .init(source: "\(old)/web", reference: "r/web:1"))
        #expect(SeccompArtifactAnnotation.first(of: SeccompArtifactAnnotation.podKeys(containerName: "cache"), in: annotations)
                == .init(source: "\(old)/POD", reference: "r/pod:1"))
        #expect(SeccompArtifactAnnotation.first(of: keys, in: ["\(old)/web": "a/b:1", "\(new)/web": "c/d:2"])?.reference == "c/d:2")
    }

    @Test func withoutAContainerNameOnlyThePodKeyCounts() {
        let keys = SeccompArtifactAnnotation.podKeys(containerName: nil)
        #expect(keys == ["\(new)/POD", "\(old)/POD"])
        #expect(SeccompArtifactAnnotation.first(of: keys, in: ["\(old)/web": "r/web:1"]) == nil)
    }

    @Test func imageSideStartsWithThePlainKey() {
        let keys = SeccompArtifactAnnotation.imageKeys(containerName: "web")
        #expect(Array(keys.prefix(2)) == [new, old])
        let match = SeccompArtifactAnnotation.first(of: keys, in: [old: "r/plain:1", "\(old)/web": "r/web:1"], origin: "image ")
        #expect(match == .init(source: "image \(old)", reference: "r/plain:1"))
    }

    @Test func blankValuesAreIgnoredAndValuesTrimmed() {
        let keys = SeccompArtifactAnnotation.podKeys(containerName: "web")
        #expect(SeccompArtifactAnnotation.first(of: keys, in: ["\(old)/web": "  ", "\(old)/POD": " r/p:1\n"])?.reference == "r/p:1")
    }

    @Test func criNamesAndTheSandboxContainer() {
        #expect(SeccompArtifactAnnotation.containerName(["io.kubernetes.cri.container-name": "web"]) == "web")
        #expect(SeccompArtifactAnnotation.containerName(["io.kubernetes.container.name": "db"]) == "db")
        #expect(SeccompArtifactAnnotation.imageReference(["io.kubernetes.cri.image-name": "docker.io/library/nginx:1"]) == "docker.io/library/nginx:1")
        #expect(SeccompArtifactAnnotation.isPodSandbox(["io.kubernetes.cri.container-type": "sandbox"]))
        #expect(!SeccompArtifactAnnotation.isPodSandbox(["io.kubernetes.cri.container-type": "container"]))
        #expect(SeccompArtifactAnnotation.mentioned(in: ["\(old)/POD": "x"]) && SeccompArtifactAnnotation.mentioned(in: [new: "x"]))
        #expect(!SeccompArtifactAnnotation.mentioned(in: ["seccomp-profile.kubernetes.cri-o.iox": "x", "other": "y"]))
    }
}

import VeilRegistry
import VeilSeccomp
import VeilSpec

/// Seccomp profiles named by annotation and pulled from a registry (CRI-O's feature, for every
/// runtime manager): what `create` does with them.
public struct SeccompArtifactPolicy: Sendable {
    /// How to reach registries and where pulled profiles are cached.
    public var registry = RegistrySettings()
    /// Also look for the annotations on the image's manifest. Off by default: veil cannot read
    /// the runtime manager's image store, so this costs a registry request per image (cached for
    /// the tag's TTL) and fails containers whose image registry veil cannot reach (an image
    /// named localhost/… has none and is skipped).
    public var fromImages = false

    public init() {}
}

/// A profile taken from a registry for one container, compiled.
struct AppliedArtifact {
    let match: SeccompArtifactAnnotation.Match
    let pulled: PulledProfile
    let program: SeccompProgram?
}

extension Runtime {
    /// Sets linux.seccomp from the registry when an annotation names a profile and config.json has
    /// none (as CRI-O: a profile the runtime manager set, RuntimeDefault or Localhost, wins). Called
    /// before the sandbox rewrites the spec, so at that level the profile is a filter of its own
    /// beside the sandbox policy: the kernel takes the stricter answer of the two, so it can only
    /// refuse more. Every failure names the annotation and the reference; nothing falls back.
    func applySeccompArtifact(id: String, to spec: inout Spec) throws(ContainerError) -> AppliedArtifact? {
        guard let policy = seccompArtifacts, spec.linux?.seccomp == nil else { return nil }
        let annotations = spec.annotations ?? [:]
        guard !SeccompArtifactAnnotation.isPodSandbox(annotations) else { return nil }
        let name = SeccompArtifactAnnotation.containerName(annotations)
        var match = SeccompArtifactAnnotation.first(of: SeccompArtifactAnnotation.podKeys(containerName: name), in: annotations)
        // Images named localhost/… have no registry (podman's and CRI-O's convention for local images).
        if match == nil, policy.fromImages, let image = SeccompArtifactAnnotation.imageReference(annotations), !image.hasPrefix("localhost/") {
            let imageAnnotations: [String: String]
            do { imageAnnotations = try SeccompArtifact.imageAnnotations(image, settings: policy.registry) } catch {
                throw .invalidConfig(file: "config.json", field: "annotations[\"io.kubernetes.cri.image-name\"]",
                                     reason: "reading the seccomp-profile annotations of image \(image): \(error)")
            }
            match = SeccompArtifactAnnotation.first(of: SeccompArtifactAnnotation.imageKeys(containerName: name), in: imageAnnotations,
                                                    origin: "image \(image) annotation ")
        }
        guard let match else { return nil }
        let field = match.source.hasPrefix("image ") ? match.source : "annotations[\"\(match.source)\"]"
        func refused(_ cause: String) -> ContainerError {
            .invalidConfig(file: "config.json", field: field, reason: "seccomp profile \(match.reference): \(cause)")
        }
        let pulled: PulledProfile
        do { pulled = try SeccompArtifact.pull(match.reference, settings: policy.registry) } catch { throw refused("\(error)") }
        var program: SeccompProgram?
        if SeccompProgram.isEnabled(pulled.profile) {
            do { program = try SeccompProgram.compile(pulled.profile, field: "layer \(pulled.layerDigest)") } catch { throw refused("\(error)") }
        }
        if spec.linux == nil { spec.linux = Linux() }
        spec.linux?.seccomp = pulled.profile
        spec.annotations = annotations.merging([SeccompArtifactAnnotation.applied: "\(pulled.reference)@\(pulled.manifestDigest)"]) { $1 }
        log.debug("create \(id): seccomp profile \(pulled.reference)@\(pulled.manifestDigest) from \(match.source)"
                  + (pulled.fromCache ? " (cached)" : " (pulled)"))
        return AppliedArtifact(match: match, pulled: pulled, program: program)
    }
}

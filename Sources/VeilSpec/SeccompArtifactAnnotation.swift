/// The annotations that name a container's seccomp profile as an OCI artifact in a registry
/// (CRI-O 1.30's feature, which veil honours for every runtime manager that passes them), and
/// the order in which they are consulted.
public enum SeccompArtifactAnnotation {
    /// The key's base: CRI-O 1.35's name first, then the one CRI-O 1.30–1.34 know.
    public static let bases = ["seccomp-profile.crio.io", "seccomp-profile.kubernetes.cri-o.io"]
    /// The suffix that applies to every container of the pod.
    public static let podSuffix = "POD"
    /// What veil adds to the container's annotations once a profile was applied: the reference
    /// with its manifest digest, so `veil state` shows which profile the container runs under.
    public static let applied = "dev.veil.seccomp-artifact"

    /// The container's name in the pod, as containerd's CRI plugin and CRI-O write it.
    static let containerNameKeys = ["io.kubernetes.cri.container-name", "io.kubernetes.container.name"]
    /// The image reference the container was made from.
    static let imageNameKeys = ["io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"]

    /// One annotation that named a profile.
    public struct Match: Equatable, Sendable {
        /// The annotation's key, for error messages (prefixed with "image " when it came from the image's manifest).
        public let source: String
        public let reference: String

        public init(source: String, reference: String) {
            self.source = source
            self.reference = reference
        }
    }

    public static func containerName(_ annotations: [String: String]) -> String? {
        containerNameKeys.lazy.compactMap { annotations[$0] }.first { !$0.isEmpty }
    }

    public static func imageReference(_ annotations: [String: String]) -> String? {
        imageNameKeys.lazy.compactMap { annotations[$0] }.first { !$0.isEmpty }
    }

    /// A pod's sandbox (pause) container never gets a pulled profile (as in CRI-O).
    public static func isPodSandbox(_ annotations: [String: String]) -> Bool {
        PodAnnotations(annotations)?.kind == .sandbox
    }

    /// The pod's (config.json's) keys, most specific first: `<base>/<container>`, then `<base>/POD`.
    public static func podKeys(containerName: String?) -> [String] {
        let suffixes = (containerName.map { [$0] } ?? []) + [podSuffix]
        return suffixes.flatMap { suffix in bases.map { "\($0)/\(suffix)" } }
    }

    /// The image manifest's keys in CRI-O's order: the plain key, then `<base>/<container>`, then `<base>/POD`.
    public static func imageKeys(containerName: String?) -> [String] {
        bases + podKeys(containerName: containerName)
    }

    /// Whether any annotation could name a profile at all (cheap: the common case has none).
    public static func mentioned(in annotations: [String: String]) -> Bool {
        annotations.keys.contains { key in bases.contains { key == $0 || key.hasPrefix($0 + "/") } }
    }

    /// The first of `keys` present in `annotations` with a value; `origin` prefixes the source.
    public static func first(of keys: [String], in annotations: [String: String], origin: String = "") -> Match? {
        for key in keys {
            if let value = annotations[key]?.trimmingWhitespace, !value.isEmpty {
                return Match(source: origin + key, reference: value)
            }
        }
        return nil
    }
}

extension StringProtocol {
    /// Without leading and trailing white space (Foundation's trimmingCharacters(in:) would link
    /// full Foundation, CoreFoundation and ICU, into every command).
    public var trimmingWhitespace: String {
        var view = self[...]
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}

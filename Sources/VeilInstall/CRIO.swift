import TOMLKit

/// The CRI-O drop-in that registers veil as an OCI runtime handler.
public enum CRIODropIn {
    public static let fileName = "50-veil.conf"
    /// CRI-O's annotation for seccomp profiles pulled as OCI artifacts (CRI-O 1.30+; later releases
    /// also accept `seccomp-profile.crio.io`, which older ones refuse as an unknown allowed_annotation).
    /// dev.veil.isolation is not among them: a pod's annotation must not pick the level (CRI-O copies
    /// pods' annotations into config.json anyway, where veil lets them raise the level, never lower it).
    public static let defaultAnnotations = ["seccomp-profile.kubernetes.cri-o.io"]

    /// The first CRI-O that accepts `seccomp-profile.kubernetes.cri-o.io` in allowed_annotations.
    public static let seccompAnnotationSince = [1, 30]

    /// (major, minor) from `crio --version` ("crio version 1.26.4").
    public static func version(_ output: String) -> [Int]? {
        for token in output.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            let parts = token.split(separator: ".").map { Int($0) }
            if parts.count >= 2, let major = parts[0], let minor = parts[1] { return [major, minor] }
        }
        return nil
    }

    /// CRI-O's switch for the pod's infra container.
    public static let infraKey = "drop_infra_ctr"

    /// The drop-in: `name` runs veil (the sandbox level; a privileged pod gets no host devices),
    /// `name`-native runs `nativeRuntimePath`, veil under the name that means --isolation native.
    public static func render(name: String, runtimePath: String, nativeRuntimePath: String, runtimeRoot: String = "/run/veil",
                              annotations: [String] = defaultAnnotations) -> String {
        var text = "# Written by `veil install --crio`; `veil uninstall --crio` removes it.\n"
        text += "[crio.runtime]\n"
        text += "# The sandbox level holds a pod's namespaces in its infra (pause) container, as under containerd:\n"
        text += "# CRI-O must keep it (its default drops it). Node-wide: every pod gets one, as with containerd.\n"
        text += "\(infraKey) = false\n\n"
        text += table(name: name, runtimePath: runtimePath, runtimeRoot: runtimeRoot, withoutHostDevices: true, annotations: annotations)
        text += "\n# \(name)-native: runc's semantics (no sandbox), for the pods a cluster admin grants its RuntimeClass.\n"
        text += table(name: name + "-native", runtimePath: nativeRuntimePath, runtimeRoot: runtimeRoot, withoutHostDevices: false, annotations: annotations)
        return text
    }

    static func table(name: String, runtimePath: String, runtimeRoot: String, withoutHostDevices: Bool, annotations: [String]) -> String {
        var text = "[\(TOMLDoc.dotted(["crio", "runtime", "runtimes", name]))]\n"
        text += "runtime_path = \(TOMLDoc.quote(runtimePath))\n"
        text += "runtime_type = \"oci\"\n"
        text += "runtime_root = \(TOMLDoc.quote(runtimeRoot))\n"
        if withoutHostDevices { text += "privileged_without_host_devices = true\n" }
        if annotations.isEmpty {
            text += "allowed_annotations = []\n"
        } else {
            text += "allowed_annotations = [\n" + annotations.map { "  \(TOMLDoc.quote($0)),\n" }.joined() + "]\n"
        }
        return text
    }

    /// Removes the runtime tables (`name`, `name`-native) from a drop-in veil wrote but someone
    /// edited since. Returns nil when nothing else is left (delete the file), else the remaining document.
    public static func planRemoval(text: String, file: String, name: String) throws(InstallError) -> String? {
        let root = try TOMLDoc.parse(text, file: file)
        try TOMLDoc.removeTable(at: ["crio", "runtime", "runtimes", name + "-native"], in: root, pruneFrom: 0, file: file)
        try TOMLDoc.removeTable(at: ["crio", "runtime", "runtimes", name], in: root, pruneFrom: 0, file: file)
        if let runtime = try TOMLDoc.table(at: ["crio", "runtime"], in: root, file: file), runtime[infraKey]?.bool == false {
            runtime.remove(at: infraKey)
        }
        return TOMLDoc.hasNoValues(root) ? nil : TOMLDoc.render(root)
    }
}

/// Docker's daemon.json: `"runtimes": {"veil": {"path": …}}`.
public enum DockerConfig {
    public struct Plan: Equatable {
        public var text: String
        public var changed: Bool
        /// True when the edit created the `runtimes` object.
        public var createdRuntimes: Bool
    }

    public static func planInstall(original: String?, file: String, name: String, runtimePath: String) throws(InstallError) -> Plan {
        let source = original ?? ""
        let blank = source.allSatisfy { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        var root = blank ? JSONValue.object([]) : try JSONValue.parse(Array(source.utf8), file: file)
        guard case .object = root else { throw .badValue(file: file, key: "(top level)", message: "expected a JSON object") }
        var runtimes = root["runtimes"] ?? .object([])
        guard case .object = runtimes else { throw .badValue(file: file, key: "runtimes", message: "expected an object") }
        if let existing = runtimes[name] {
            guard case .object = existing else { throw .badValue(file: file, key: "runtimes.\(name)", message: "expected an object") }
            if existing["path"]?.stringValue == runtimePath { return Plan(text: source, changed: false, createdRuntimes: false) }
        }
        var entry = runtimes[name] ?? .object([])
        entry.set("path", .string(runtimePath))
        runtimes.set(name, entry)
        let created = root["runtimes"] == nil
        root.set("runtimes", runtimes)
        return Plan(text: root.render(indent: JSONValue.detectIndent(source)), changed: true, createdRuntimes: created)
    }

    /// Removes the runtime `name`; nil when it is not there.
    public static func planRemoval(text: String, file: String, name: String, removeEmptyRuntimes: Bool) throws(InstallError) -> String? {
        var root = try JSONValue.parse(Array(text.utf8), file: file)
        guard var runtimes = root["runtimes"], runtimes[name] != nil else { return nil }
        runtimes.remove(name)
        if runtimes.isEmptyObject && removeEmptyRuntimes { root.remove("runtimes") } else { root.set("runtimes", runtimes) }
        return root.render(indent: JSONValue.detectIndent(text))
    }
}

import TOMLKit
import VeilSpec

/// Whether a tenant can lower the isolation level: a runtime for veil whose operator settings allow
/// lowering (allow_lower_isolation, --allow-lower-isolation) while pods' dev.veil.isolation
/// annotation reaches veil. Such a pod runs native, and a privileged one is host root.
public enum DoctorIsolationFloor {
    /// containerd: `text` is config.toml (nil: no file); `readFile` reads a runtime's ConfigPath TOML.
    public static func containerd(configPath: String, text: String?, readFile: (String) -> String?) -> DoctorCheck {
        let name = "containerd.isolation-floor"
        guard let text, let root = try? TOMLDoc.parse(text, file: configPath),
              let version = try? ContainerdConfig.version(of: root, file: configPath) ?? 2,
              let runtimes = try? TOMLDoc.table(at: ContainerdConfig.runtimesPath(version: version), in: root, file: configPath) else {
            return DoctorCheck(name, .pass, "no containerd runtime for veil: nothing to check")
        }
        var open: [String] = [], fixes: [String] = [], fine: [String] = []
        for key in runtimes.keys.sorted() {
            guard let table = runtimes[key]?.table, table["runtime_type"]?.string == ContainerdConfig.runtimeType else { continue }
            let passing = ContainerdConfig.annotationKeys.flatMap { list in
                (table[list]?.array.map { $0.compactMap { $0.string } } ?? []).filter { glob($0, matches: IsolationLevel.annotation) }.map { "\(list) \"\($0)\"" }
            }
            let configPath = (try? TOMLDoc.table(at: ["options"], in: table, file: configPath))?["ConfigPath"]?.string
            let settings = configPath.flatMap(readFile).flatMap { try? TOMLDoc.parse($0, file: configPath ?? "") }
            let level = settings?["isolation"]?.string.flatMap(IsolationLevel.init(rawValue:)) ?? .default
            let allowed = settings?[IsolationLevel.allowLoweringKey]?.bool == true
            if !passing.isEmpty && allowed && level > .native {
                open.append("runtime \"\(key)\" passes pods' \(IsolationLevel.annotation) to veil (\(passing.joined(separator: ", "))) and its ConfigPath \(configPath ?? "") sets \(IsolationLevel.allowLoweringKey) = true")
                fixes.append("remove \(IsolationLevel.allowLoweringKey) from \(configPath ?? "the ConfigPath TOML") or the dev.veil.* entries from runtime \"\(key)\"'s pod_annotations and container_annotations (veil install --containerd without --allow-lower-isolation)")
            } else {
                fine.append("\(key): \(level.rawValue)")
            }
        }
        if !open.isEmpty {
            return DoctorCheck(name, .warn, "\(configPath): " + open.joined(separator: "; ") + ": a tenant's pod can lower its level to native (runc's semantics; a privileged pod is host root)",
                               fix: fixes.joined(separator: "; ") + "; grant native through the veil-native RuntimeClass instead")
        }
        guard !fine.isEmpty else { return DoctorCheck(name, .pass, "no containerd runtime for veil: nothing to check") }
        return DoctorCheck(name, .pass, "no veil runtime lets a pod lower its isolation level (\(fine.joined(separator: ", ")); an annotation may only raise it)")
    }

    /// CRI-O copies every pod annotation into config.json, so dev.veil.isolation always reaches
    /// veil: a handler lets tenants lower the level when it runs veil with --allow-lower-isolation
    /// (CRI-O gives a runtime no flags, so that takes a wrapper script as runtime_path).
    public static func crio(handlers: [DoctorCRIO.Handler], readFile: (String) -> String?) -> DoctorCheck {
        let name = "crio.isolation-floor"
        var open: [String] = []
        for handler in handlers.sorted(by: { $0.name < $1.name }) {
            guard let path = handler.runtimePath, let script = readFile(path), script.hasPrefix("#!"),
                  script.contains("veil"), script.contains(IsolationLevel.allowLoweringFlag) else { continue }
            open.append("handler \"\(handler.name)\" (\(handler.file)) runs \(path), which starts veil with \(IsolationLevel.allowLoweringFlag)")
        }
        guard open.isEmpty else {
            return DoctorCheck(name, .warn, open.joined(separator: "; ") + ": CRI-O hands every pod annotation to the runtime, so a tenant's pod can lower its level to native with \(IsolationLevel.annotation)",
                               fix: "drop \(IsolationLevel.allowLoweringFlag) from the script; grant native through the veil-native handler and its RuntimeClass instead")
        }
        return DoctorCheck(name, .pass, "no CRI-O handler runs veil with \(IsolationLevel.allowLoweringFlag): a pod's \(IsolationLevel.annotation) may only raise the level")
    }

    /// containerd's annotation patterns: `*` any run of characters, `?` one character.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

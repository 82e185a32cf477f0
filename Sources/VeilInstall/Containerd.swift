import TOMLKit

/// Registering veil as a containerd runtime (CRI plugin) in config.toml, versions 1, 2 and 3.
public enum ContainerdConfig {
    public static let runtimeType = "io.containerd.veil.v1"
    static let runcType = "io.containerd.runc.v2"

    /// The table that holds the CRI runtimes for a config version.
    public static func runtimesPath(version: Int) -> [String] {
        switch version {
        case 1: return ["plugins", "cri", "containerd", "runtimes"]
        case 2: return ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"]
        default: return ["plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes"]
        }
    }

    /// The config version for a new file, from `containerd --version` output (1.x → 2, 2.x or later → 3).
    public static func defaultVersion(containerdVersionOutput output: String?) -> Int {
        guard let output else { return 2 }
        for token in output.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            let t = token.hasPrefix("v") ? token.dropFirst() : token[...]
            let parts = t.split(separator: ".")
            if parts.count >= 2, let major = Int(parts[0]), parts[1].first?.isNumber == true {
                return major >= 2 ? 3 : 2
            }
        }
        return 2
    }

    /// The result of planning an install: the new text and what it changes.
    public struct Plan: Equatable {
        public var file: String
        public var version: Int
        /// The path of the veil runtime table.
        public var tablePath: [String]
        /// The index in `tablePath` of the first table the edit creates (nil if all existed).
        public var createdDepth: Int?
        public var original: String?
        public var text: String
        /// False when the runtime is already registered with the same values.
        public var changed: Bool
    }

    /// Reads the version key: 1 when a non-empty config has none (containerd's rule), 2 or 3 as written.
    static func version(of table: TOMLTable, file: String) throws(InstallError) -> Int? {
        guard let value = table["version"] else { return table.isEmpty ? nil : 1 }
        guard let v = value.int else {
            throw .badValue(file: file, key: "version", message: "expected an integer, found \(TOMLDoc.typeName(value))")
        }
        guard (1...3).contains(v) else { throw .badValue(file: file, key: "version", message: "unsupported config version \(v) (veil knows 1, 2 and 3)") }
        return v
    }

    /// Plans adding the runtime `name` to `original` (nil or blank for no file).
    public static func planInstall(original: String?, file: String, name: String, shimConfig: String?, defaultVersion: Int) throws(InstallError) -> Plan {
        let source = original ?? ""
        let root = try TOMLDoc.parse(source, file: file)
        let existingVersion = try version(of: root, file: file)
        let version = existingVersion ?? defaultVersion
        let path = runtimesPath(version: version) + [name]

        // Already there with our values: nothing to do.
        if let table = try TOMLDoc.table(at: path, in: root, file: file), try matches(table, shimConfig: shimConfig, file: file, path: path) {
            return Plan(file: file, version: version, tablePath: path, createdDepth: nil, original: original, text: source, changed: false)
        }

        let edited = try TOMLDoc.parse(source, file: file)
        if existingVersion == nil { edited["version"] = version }
        let (table, created) = try TOMLDoc.ensureTable(at: path, in: edited, file: file)
        table["runtime_type"] = runtimeType
        // CRI passes a pod's and a container's annotations to the runtime only when listed here:
        // dev.veil.isolation=native must reach veil.
        table["pod_annotations"] = TOMLArray(passedAnnotations)
        table["container_annotations"] = TOMLArray(passedAnnotations)
        if let shimConfig {
            let (options, _) = try TOMLDoc.ensureTable(at: ["options"], in: table, file: file)
            options["ConfigPath"] = shimConfig
        }
        // containerd replaces its built-in runtimes (runc) with the table from the file, so a
        // runtimes table made here must list runc too, or CRI's default runtime disappears.
        var withRunc = false
        if let created, created <= path.count - 2, name != "runc",
           (try TOMLDoc.table(at: Array(path.dropLast(2)), in: edited, file: file)?["default_runtime_name"]?.string ?? "runc") == "runc",
           let runtimes = try TOMLDoc.table(at: Array(path.dropLast()), in: edited, file: file) {
            runtimes["runc"] = TOMLTable(["runtime_type": runcType])
            withRunc = true
        }

        // Prefer appending our table to the file as it is (comments and layout kept) when TOMLKit
        // reads the result as exactly the edited document; else TOMLKit's serialization.
        var text = TOMLDoc.render(edited)
        if created != nil {
            var appended = source
            if existingVersion == nil { appended = "version = \(version)\n" + (source.isEmpty ? "" : "\n" + source) }
            appended += separator(after: appended) + block(path: path, shimConfig: shimConfig, withRunc: withRunc)
            if let reread = try? TOMLDoc.parse(appended, file: file), reread == edited { text = appended }
        }
        return Plan(file: file, version: version, tablePath: path, createdDepth: created, original: original, text: text, changed: true)
    }

    /// The text veil appends for its runtime table.
    static func block(path: [String], shimConfig: String?, withRunc: Bool) -> String {
        var text = ""
        if withRunc {
            text += "# containerd's default runtime: a runtimes table in this file replaces the built-in one.\n"
            text += "[\(TOMLDoc.dotted(path.dropLast() + ["runc"]))]\n  runtime_type = \(TOMLDoc.quote(runcType))\n\n"
        }
        text += "[\(TOMLDoc.dotted(path))]\n  runtime_type = \(TOMLDoc.quote(runtimeType))\n"
        let annotations = "[" + passedAnnotations.map(TOMLDoc.quote).joined(separator: ", ") + "]"
        text += "  pod_annotations = \(annotations)\n  container_annotations = \(annotations)\n"
        if let shimConfig {
            text += "\n[\(TOMLDoc.dotted(path + ["options"]))]\n  ConfigPath = \(TOMLDoc.quote(shimConfig))\n"
        }
        return text
    }

    /// What goes between existing text and an appended block: a blank line.
    /// The annotations CRI must hand to veil (glob patterns, as containerd matches them).
    static let passedAnnotations = ["dev.veil.*"]

    static func separator(after existing: String) -> String {
        existing.isEmpty || existing.hasSuffix("\n\n") ? "" : existing.hasSuffix("\n") ? "\n" : "\n\n"
    }

    static func matches(_ table: TOMLTable, shimConfig: String?, file: String, path: [String]) throws(InstallError) -> Bool {
        guard table["runtime_type"]?.string == runtimeType else { return false }
        for key in ["pod_annotations", "container_annotations"] {
            let listed = table[key]?.array.map { $0.compactMap { $0.string } } ?? []
            guard passedAnnotations.allSatisfy(listed.contains) else { return false }
        }
        let configured = try TOMLDoc.table(at: ["options"], in: table, file: file)?["ConfigPath"]
        if let configured, configured.string == nil {
            throw .badValue(file: file, key: TOMLDoc.dotted(path + ["options", "ConfigPath"]), message: "expected a string, found \(TOMLDoc.typeName(configured))")
        }
        return configured?.string == shimConfig
    }

    /// Removes the runtime `name` from `text`. Returns nil when it is not there. Parent tables from
    /// `createdDepth` down that become empty are removed too.
    public static func planRemoval(text: String, file: String, name: String, createdDepth: Int?) throws(InstallError) -> String? {
        let root = try TOMLDoc.parse(text, file: file)
        guard let version = try version(of: root, file: file) else { return nil }
        let path = runtimesPath(version: version) + [name]
        guard try TOMLDoc.table(at: path, in: root, file: file) != nil else { return nil }
        // The runc entry veil added beside its own (see planInstall), if still as veil wrote it.
        if let createdDepth, createdDepth <= path.count - 2, name != "runc",
           let runtimes = try TOMLDoc.table(at: Array(path.dropLast()), in: root, file: file),
           let runc = runtimes["runc"]?.table, runc.keys == ["runtime_type"], runc["runtime_type"]?.string == runcType {
            runtimes.remove(at: "runc")
        }
        try TOMLDoc.removeTable(at: path, in: root, pruneFrom: createdDepth, file: file)
        // The block veil appended, if still there verbatim, is cut out so the rest keeps its layout.
        for shim in shimConfigCandidates(text: text, path: path, file: file) {
            for withRunc in [true, false] {
                if let cut = cutBlock(block(path: path, shimConfig: shim, withRunc: withRunc), from: text),
                   let reread = try? TOMLDoc.parse(cut, file: file), reread == root { return cut }
            }
        }
        return TOMLDoc.render(root)
    }

    private static func shimConfigCandidates(text: String, path: [String], file: String) -> [String?] {
        guard let root = try? TOMLDoc.parse(text, file: file),
              let table = try? TOMLDoc.table(at: path + ["options"], in: root, file: file),
              let value = table["ConfigPath"]?.string else { return [nil] }
        return [value, nil]
    }

    /// `text` without the last occurrence of `block` and the blank line veil put before it.
    static func cutBlock(_ block: String, from text: String) -> String? {
        let haystack = Array(text.utf8), needle = Array(block.utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var start = haystack.count - needle.count
        while start >= 0 {
            if haystack[start] == needle[0] && Array(haystack[start..<(start + needle.count)]) == needle { break }
            start -= 1
        }
        guard start >= 0 else { return nil }
        var before = Array(haystack[0..<start])
        let after = haystack[(start + needle.count)...]
        if before.suffix(2) == [0x0a, 0x0a] && (after.isEmpty || after.first == 0x0a) { before.removeLast() }
        return String(decoding: before + after, as: UTF8.self)
    }
}

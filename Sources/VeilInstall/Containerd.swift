import TOMLKit
import VeilSpec

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

    /// The node's cgroup driver as containerd's runc handler has it (`SystemdCgroup` in its options
    /// table), nil when the file does not say: veil's handlers are given the same.
    public static func runcSystemdCgroup(in text: String, file: String) throws(InstallError) -> Bool? {
        let root = try TOMLDoc.parse(text, file: file)
        let version = try version(of: root, file: file) ?? 2
        let options = try TOMLDoc.table(at: runtimesPath(version: version) + ["runc", "options"], in: root, file: file)
        return options?["SystemdCgroup"]?.bool
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

    /// What veil registers: the runtime `name` (the sandbox level, or whatever its ConfigPath TOML
    /// says) and `name`-native, whose own ConfigPath TOML says isolation = "native", so that a
    /// cluster admin grants the native level through its own RuntimeClass instead of a pod asking
    /// for it with an annotation.
    public struct Registration: Equatable {
        public var name: String
        /// ConfigPath of `name`'s options table (nil: none, the shim's defaults).
        public var shimConfig: String?
        /// ConfigPath of `name`-native's options table; nil registers no native handler.
        public var nativeShimConfig: String?
        /// Lists dev.veil.* in `name`'s pod_annotations and container_annotations, so pods'
        /// annotations reach veil (off by default: pods are the tenants').
        public var passAnnotations = false
        /// Lists the seccomp-profile annotations (CRI-O's, for profiles pulled from registries) in
        /// both handlers' pod_annotations and container_annotations. A pulled profile can only
        /// restrict a container, so a tenant gains nothing by it; still off unless asked for.
        public var passSeccompAnnotations = false

        public init(name: String, shimConfig: String? = nil, nativeShimConfig: String? = nil, passAnnotations: Bool = false,
                    passSeccompAnnotations: Bool = false) {
            self.name = name
            self.shimConfig = shimConfig
            self.nativeShimConfig = nativeShimConfig
            self.passAnnotations = passAnnotations
            self.passSeccompAnnotations = passSeccompAnnotations
        }

        public var nativeName: String { Registration.nativeName(of: name) }
        public static func nativeName(of name: String) -> String { name + "-native" }
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
        /// False when the runtimes are already registered with the same values.
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

    /// One runtime table as veil writes it.
    struct RuntimeTable: Equatable {
        var name: String
        var shimConfig: String?
        /// The annotation patterns this table lists in pod_annotations and container_annotations.
        var passedAnnotations: [String]
        /// containerd's privileged_without_host_devices: a privileged pod gets no host devices.
        var withoutHostDevices: Bool
    }

    static func tables(_ registration: Registration) -> [RuntimeTable] {
        let seccomp = registration.passSeccompAnnotations ? seccompAnnotations : []
        var list = [RuntimeTable(name: registration.name, shimConfig: registration.shimConfig,
                                 passedAnnotations: (registration.passAnnotations ? isolationAnnotations : []) + seccomp, withoutHostDevices: true)]
        if let native = registration.nativeShimConfig {
            list.append(RuntimeTable(name: registration.nativeName, shimConfig: native, passedAnnotations: seccomp, withoutHostDevices: false))
        }
        return list
    }

    /// Plans registering veil's runtimes in `original` (nil or blank for no file).
    public static func planInstall(original: String?, file: String, registration: Registration, defaultVersion: Int) throws(InstallError) -> Plan {
        let source = original ?? ""
        let root = try TOMLDoc.parse(source, file: file)
        let existingVersion = try version(of: root, file: file)
        let version = existingVersion ?? defaultVersion
        let runtimes = runtimesPath(version: version)
        let path = runtimes + [registration.name]
        let wanted = tables(registration)

        // Already there with our values: nothing to do.
        var allMatch = true
        for table in wanted {
            guard let existing = try TOMLDoc.table(at: runtimes + [table.name], in: root, file: file),
                  try matches(existing, table, file: file, path: runtimes + [table.name]) else { allMatch = false; break }
        }
        if allMatch {
            return Plan(file: file, version: version, tablePath: path, createdDepth: nil, original: original, text: source, changed: false)
        }

        let edited = try TOMLDoc.parse(source, file: file)
        if existingVersion == nil { edited["version"] = version }
        var createdDepth: Int?
        var allCreated = true
        for wantedTable in wanted {
            let (table, created) = try TOMLDoc.ensureTable(at: runtimes + [wantedTable.name], in: edited, file: file)
            if let created { createdDepth = min(createdDepth ?? created, created) } else { allCreated = false }
            try apply(wantedTable, to: table, file: file, path: runtimes + [wantedTable.name])
        }
        // containerd replaces its built-in runtimes (runc) with the table from the file, so a
        // runtimes table made here must list runc too, or CRI's default runtime disappears.
        var withRunc = false
        if let created = createdDepth, created <= path.count - 2, registration.name != "runc",
           (try TOMLDoc.table(at: Array(path.dropLast(2)), in: edited, file: file)?["default_runtime_name"]?.string ?? "runc") == "runc",
           let runtimesTable = try TOMLDoc.table(at: runtimes, in: edited, file: file) {
            runtimesTable["runc"] = TOMLTable(["runtime_type": runcType])
            withRunc = true
        }

        // Prefer appending our tables to the file as it is (comments and layout kept) when TOMLKit
        // reads the result as exactly the edited document; else TOMLKit's serialization.
        var text = TOMLDoc.render(edited)
        if allCreated {
            var appended = source
            if existingVersion == nil { appended = "version = \(version)\n" + (source.isEmpty ? "" : "\n" + source) }
            appended += separator(after: appended) + block(runtimes: runtimes, registration: registration, withRunc: withRunc)
            if let reread = try? TOMLDoc.parse(appended, file: file), reread == edited { text = appended }
        }
        return Plan(file: file, version: version, tablePath: path, createdDepth: createdDepth, original: original, text: text, changed: true)
    }

    /// Sets veil's keys in an existing or new runtime table; veil's patterns come out of the
    /// annotation lists when they must not pass (an earlier install listed them), others stay.
    static func apply(_ wanted: RuntimeTable, to table: TOMLTable, file: String, path: [String]) throws(InstallError) {
        table["runtime_type"] = runtimeType
        if wanted.withoutHostDevices { table["privileged_without_host_devices"] = true }
        for key in annotationKeys {
            var listed = table[key]?.array.map { $0.compactMap { $0.string } } ?? []
            listed.removeAll { veilAnnotations.contains($0) && !wanted.passedAnnotations.contains($0) }
            for pattern in wanted.passedAnnotations where !listed.contains(pattern) { listed.append(pattern) }
            if !listed.isEmpty { table[key] = TOMLArray(listed) } else if table[key] != nil { table.remove(at: key) }
        }
        if let shimConfig = wanted.shimConfig {
            let (options, _) = try TOMLDoc.ensureTable(at: ["options"], in: table, file: file)
            options["ConfigPath"] = shimConfig
        }
    }

    /// The text veil appends for its runtime tables.
    static func block(runtimes: [String], registration: Registration, withRunc: Bool) -> String {
        var text = ""
        if withRunc {
            text += "# containerd's default runtime: a runtimes table in this file replaces the built-in one.\n"
            text += "[\(TOMLDoc.dotted(runtimes + ["runc"]))]\n  runtime_type = \(TOMLDoc.quote(runcType))\n\n"
        }
        for (index, table) in tables(registration).enumerated() {
            let path = runtimes + [table.name]
            if index > 0 {
                text += "\n# \(table.name): runc's semantics (no sandbox), for the pods a cluster admin grants its RuntimeClass.\n"
            }
            text += "[\(TOMLDoc.dotted(path))]\n  runtime_type = \(TOMLDoc.quote(runtimeType))\n"
            if table.withoutHostDevices {
                text += "  # A privileged pod gets the sandbox's default /dev, not the host's devices.\n  privileged_without_host_devices = true\n"
            }
            if !table.passedAnnotations.isEmpty {
                let annotations = "[" + table.passedAnnotations.map(TOMLDoc.quote).joined(separator: ", ") + "]"
                if table.passedAnnotations == isolationAnnotations {
                    text += "  # Pods' dev.veil.* annotations reach veil (veil install --allow-lower-isolation).\n"
                } else {
                    text += "  # Pods' annotations that reach veil (veil install --allow-lower-isolation: dev.veil.*;\n"
                    text += "  # --pass-seccomp-annotations: profiles pulled from registries).\n"
                }
                text += "  pod_annotations = \(annotations)\n  container_annotations = \(annotations)\n"
            }
            if let shimConfig = table.shimConfig {
                text += "\n[\(TOMLDoc.dotted(path + ["options"]))]\n  ConfigPath = \(TOMLDoc.quote(shimConfig))\n"
            }
        }
        return text
    }

    /// The CRI keys that list which annotations containerd hands to the runtime.
    static let annotationKeys = ["pod_annotations", "container_annotations"]
    /// The annotations `--allow-lower-isolation` makes CRI hand to veil (glob patterns, as containerd matches them).
    static let isolationAnnotations = ["dev.veil.*"]
    /// The annotations `--pass-seccomp-annotations` makes CRI hand to veil (`*` stops at `/`: the POD
    /// and per-container keys).
    static let seccompAnnotations = SeccompArtifactAnnotation.bases.reversed().map { $0 + "/*" }
    static let veilAnnotations = isolationAnnotations + seccompAnnotations

    /// What goes between existing text and an appended block: a blank line.
    static func separator(after existing: String) -> String {
        existing.isEmpty || existing.hasSuffix("\n\n") ? "" : existing.hasSuffix("\n") ? "\n" : "\n\n"
    }

    static func matches(_ table: TOMLTable, _ wanted: RuntimeTable, file: String, path: [String]) throws(InstallError) -> Bool {
        guard table["runtime_type"]?.string == runtimeType else { return false }
        if wanted.withoutHostDevices && table["privileged_without_host_devices"]?.bool != true { return false }
        for key in annotationKeys {
            let listed = table[key]?.array.map { $0.compactMap { $0.string } } ?? []
            if Set(listed.filter(veilAnnotations.contains)) != Set(wanted.passedAnnotations) { return false }
        }
        let configured = try TOMLDoc.table(at: ["options"], in: table, file: file)?["ConfigPath"]
        if let configured, configured.string == nil {
            throw .badValue(file: file, key: TOMLDoc.dotted(path + ["options", "ConfigPath"]), message: "expected a string, found \(TOMLDoc.typeName(configured))")
        }
        return configured?.string == wanted.shimConfig
    }

    /// Removes veil's runtimes (`name` and `name`-native) from `text`. Returns nil when neither is
    /// there. Parent tables from `createdDepth` down that become empty are removed too.
    public static func planRemoval(text: String, file: String, name: String, createdDepth: Int?) throws(InstallError) -> String? {
        let root = try TOMLDoc.parse(text, file: file)
        guard let version = try version(of: root, file: file) else { return nil }
        let runtimes = runtimesPath(version: version)
        let path = runtimes + [name]
        let nativePath = runtimes + [Registration.nativeName(of: name)]
        let native = try TOMLDoc.table(at: nativePath, in: root, file: file)
        let ownNative = native?["runtime_type"]?.string == runtimeType
        guard try TOMLDoc.table(at: path, in: root, file: file) != nil || ownNative else { return nil }
        // What veil wrote, read back, to find its appended block verbatim below.
        let podAnnotations = try TOMLDoc.table(at: path, in: root, file: file)?["pod_annotations"]?.array?.compactMap { $0.string } ?? []
        func listed(_ patterns: [String]) -> Bool { patterns.allSatisfy(podAnnotations.contains) }
        let registration = Registration(
            name: name,
            shimConfig: try TOMLDoc.table(at: path + ["options"], in: root, file: file)?["ConfigPath"]?.string,
            nativeShimConfig: ownNative ? try TOMLDoc.table(at: nativePath + ["options"], in: root, file: file)?["ConfigPath"]?.string : nil,
            passAnnotations: listed(isolationAnnotations), passSeccompAnnotations: listed(seccompAnnotations))
        // The runc entry veil added beside its own (see planInstall), if still as veil wrote it.
        if let createdDepth, createdDepth <= path.count - 2, name != "runc",
           let runtimesTable = try TOMLDoc.table(at: runtimes, in: root, file: file),
           let runc = runtimesTable["runc"]?.table, runc.keys == ["runtime_type"], runc["runtime_type"]?.string == runcType {
            runtimesTable.remove(at: "runc")
        }
        if ownNative { try TOMLDoc.removeTable(at: nativePath, in: root, pruneFrom: nil, file: file) }
        try TOMLDoc.removeTable(at: path, in: root, pruneFrom: createdDepth, file: file)
        // (When only the native table was left, removeTable pruned nothing.)
        try pruneEmpty(runtimes, in: root, from: createdDepth, file: file)
        // The block veil appended, if still there verbatim, is cut out so the rest keeps its layout.
        for candidate in [registration, Registration(name: name, shimConfig: registration.shimConfig, nativeShimConfig: nil, passAnnotations: registration.passAnnotations,
                                                       passSeccompAnnotations: registration.passSeccompAnnotations)] {
            for withRunc in [true, false] {
                if let cut = cutBlock(block(runtimes: runtimes, registration: candidate, withRunc: withRunc), from: text),
                   let reread = try? TOMLDoc.parse(cut, file: file), reread == root { return cut }
            }
        }
        return TOMLDoc.render(root)
    }

    /// Removes the empty tables of `path` from its end up to depth `from`.
    static func pruneEmpty(_ path: [String], in root: TOMLTable, from: Int?, file: String) throws(InstallError) {
        guard let from else { return }
        var depth = path.count
        while depth > from {
            guard let table = try TOMLDoc.table(at: Array(path[0..<depth]), in: root, file: file), table.isEmpty,
                  let parent = try TOMLDoc.table(at: Array(path[0..<(depth - 1)]), in: root, file: file) else { break }
            parent.remove(at: path[depth - 1])
            depth -= 1
        }
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

/// The Kubernetes RuntimeClass for veil, printed by `veil install --kubernetes`.
public struct RuntimeClassOptions: Equatable {
    public var name = "veil"
    public var handler = "veil"
    /// `key=value` pairs.
    public var nodeSelector: [String] = []
    /// `key[=value][:Effect]`.
    public var tolerations: [String] = []
    public var overheadCPU: String?
    public var overheadMemory: String?

    public init() {}
}

public enum RuntimeClassYAML {
    static let effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

    /// The RuntimeClass of `options` and its native twin (`NAME-native`, handler `HANDLER-native`,
    /// same scheduling and overhead), as two YAML documents.
    public static func renderWithNative(_ options: RuntimeClassOptions) throws(InstallError) -> String {
        var native = options
        native.name = options.name + "-native"
        native.handler = options.handler + "-native"
        return try render(options) + "---\n# Native level (runc's semantics, no sandbox): grant it only to trusted workloads.\n" + render(native)
    }

    public static func render(_ options: RuntimeClassOptions) throws(InstallError) -> String {
        try checkName(options.name, what: "--runtime-name")
        try checkName(options.handler, what: "handler")
        var yaml = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: \(options.name)\nhandler: \(options.handler)\n"
        var selector: [(String, String)] = []
        for item in options.nodeSelector {
            guard let eq = item.firstIndex(of: "=") else { throw .usage("--node-selector \(item): expected key=value") }
            let key = String(item[..<eq]), value = String(item[item.index(after: eq)...])
            try checkLabelKey(key, flag: "--node-selector \(item)")
            try checkLabelValue(value, flag: "--node-selector \(item)")
            selector.append((key, value))
        }
        var tolerations: [String] = []
        for item in options.tolerations {
            var rest = Substring(item), effect: String?
            if let colon = rest.lastIndex(of: ":") {
                effect = String(rest[rest.index(after: colon)...])
                rest = rest[..<colon]
            }
            if let effect, !effects.contains(effect) {
                throw .usage("--toleration \(item): effect must be one of \(effects.joined(separator: ", "))")
            }
            var entry: String
            if let eq = rest.firstIndex(of: "=") {
                let key = String(rest[..<eq]), value = String(rest[rest.index(after: eq)...])
                try checkLabelKey(key, flag: "--toleration \(item)")
                try checkLabelValue(value, flag: "--toleration \(item)")
                entry = "  - key: \(quote(key))\n    operator: Equal\n    value: \(quote(value))\n"
            } else {
                try checkLabelKey(String(rest), flag: "--toleration \(item)")
                entry = "  - key: \(quote(String(rest)))\n    operator: Exists\n"
            }
            if let effect { entry += "    effect: \(effect)\n" }
            tolerations.append(entry)
        }
        if !selector.isEmpty || !tolerations.isEmpty {
            yaml += "scheduling:\n"
            if !selector.isEmpty {
                yaml += "  nodeSelector:\n" + selector.map { "    \(quote($0.0)): \(quote($0.1))\n" }.joined()
            }
            if !tolerations.isEmpty { yaml += "  tolerations:\n" + tolerations.joined() }
        }
        if options.overheadCPU != nil || options.overheadMemory != nil {
            yaml += "overhead:\n  podFixed:\n"
            if let cpu = options.overheadCPU {
                guard isQuantity(cpu) else { throw .usage("--overhead-cpu \(cpu): not a Kubernetes quantity (e.g. 100m or 0.1)") }
                yaml += "    cpu: \(quote(cpu))\n"
            }
            if let memory = options.overheadMemory {
                guard isQuantity(memory) else { throw .usage("--overhead-memory \(memory): not a Kubernetes quantity (e.g. 64Mi)") }
                yaml += "    memory: \(quote(memory))\n"
            }
        }
        return yaml
    }

    /// A DNS-1123 label, which RuntimeClass names and CRI handlers must be.
    public static func checkName(_ name: String, what: String) throws(InstallError) {
        let chars = Array(name.utf8)
        let ok = !chars.isEmpty && chars.count <= 63 && chars.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
            && isLowerAlnum(chars[0]) && isLowerAlnum(chars[chars.count - 1])
        if !ok { throw .usage("\(what) \"\(name)\": must be a DNS label (lowercase letters, digits and '-', at most 63)") }
    }

    static func isLowerAlnum(_ c: UInt8) -> Bool { (0x61...0x7a).contains(c) || (0x30...0x39).contains(c) }
    static func isAlnum(_ c: UInt8) -> Bool { isLowerAlnum(c) || (0x41...0x5a).contains(c) }

    /// `[prefix/]name`: prefix a DNS subdomain, name up to 63 alphanumerics with `-_.` inside.
    static func checkLabelKey(_ key: String, flag: String) throws(InstallError) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last else { throw .usage("\(flag): bad label key \"\(key)\"") }
        if parts.count == 2 {
            let prefix = Array(parts[0].utf8)
            let ok = !prefix.isEmpty && prefix.count <= 253 && prefix.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
                && isLowerAlnum(prefix[0]) && isLowerAlnum(prefix[prefix.count - 1])
            guard ok else { throw .usage("\(flag): bad label key prefix \"\(parts[0])\"") }
        }
        guard !name.isEmpty, isLabelText(String(name)) else { throw .usage("\(flag): bad label key \"\(key)\"") }
    }

    static func checkLabelValue(_ value: String, flag: String) throws(InstallError) {
        guard value.isEmpty || isLabelText(value) else { throw .usage("\(flag): bad label value \"\(value)\"") }
    }

    static func isLabelText(_ text: String) -> Bool {
        let c = Array(text.utf8)
        return c.count <= 63 && !c.isEmpty && isAlnum(c[0]) && isAlnum(c[c.count - 1])
            && c.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix.
    static func isQuantity(_ text: String) -> Bool {
        let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", ""]
        for suffix in suffixes where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            let digits = number.split(separator: ".", omittingEmptySubsequences: false)
            if !number.isEmpty, digits.count <= 2, digits.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
               digits.contains(where: { !$0.isEmpty }) { return true }
        }
        return false
    }

    /// A double-quoted YAML scalar.
    static func quote(_ s: String) -> String { JSONValue.quote(s) }
}

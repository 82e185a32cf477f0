/// runc's `cgroupsPath` under `--systemd-cgroup`: "slice:prefix:name", naming the scope unit
/// `<prefix>-<name>.scope` in `slice`. Pure: nothing is asked of systemd.
public struct SystemdCgroupsPath: Sendable, Equatable {
    /// The short slice name given to systemd ("kubepods-besteffort-pod1.slice").
    public var slice: String
    /// "<prefix>-<name>.scope".
    public var unit: String

    /// The scope's directory components below a hierarchy's root: the expanded slice, then the unit.
    public var components: [String] {
        get throws(SystemdError) { try SystemdCgroupsPath.expand(slice: slice) + [unit] }
    }

    /// An empty path gives `system.slice` and `veil-<id>.scope`, as runc's `:runc:<id>`.
    public static func parse(_ raw: String?, containerID: String) throws(SystemdError) -> SystemdCgroupsPath {
        let text = raw ?? ""
        var slice = "", prefix = "veil", name = containerID
        if !text.isEmpty {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else {
                throw .invalidCgroupsPath(path: text, reason: "expected the systemd form slice:prefix:name")
            }
            (slice, prefix, name) = (parts[0], parts[1], parts[2])
        }
        if slice.isEmpty { slice = "system.slice" }
        if name.isEmpty { name = containerID }
        guard !name.hasSuffix(".slice") else {
            throw .invalidCgroupsPath(path: text, reason: "\(name) is a slice: a container needs a scope (slice:prefix:name with a name that is not a .slice)")
        }
        let unit = prefix.isEmpty ? name + ".scope" : "\(prefix)-\(name).scope"
        guard validUnitName(unit) else {
            throw .invalidCgroupsPath(path: text, reason: "\(unit) is not a valid systemd unit name (letters, digits, \":-_.\\\", at most 255 characters)")
        }
        _ = try expand(slice: slice, path: text)
        return SystemdCgroupsPath(slice: slice, unit: unit)
    }

    /// systemd's slice nesting: "a-b-c.slice" lives in "a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
    public static func expand(slice: String, path: String? = nil) throws(SystemdError) -> [String] {
        let suffix = ".slice"
        let bad = { (reason: String) -> SystemdError in .invalidCgroupsPath(path: path ?? slice, reason: "slice \(slice): \(reason)") }
        guard slice.hasSuffix(suffix), slice.count > suffix.count else { throw bad("must end in .slice") }
        guard !slice.contains("/") else { throw bad("must not contain /") }
        guard validUnitName(slice) else { throw bad("is not a valid systemd unit name") }
        if slice == "-.slice" { return [] }
        let stem = slice.dropLast(suffix.count)
        var components: [String] = []
        var prefix = ""
        for part in stem.split(separator: "-", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw bad("has an empty component between dashes") }
            components.append(prefix + part + suffix)
            prefix += part + "-"
        }
        return components
    }

    static func validUnitName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        return name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || ":-_.\\".unicodeScalars.contains(c)
        }
    }
}

import VeilCgroups

/// OCI device rules as systemd's DevicePolicy/DeviceAllow: the rules are replayed, in order, on a
/// model of the kernel's device cgroup (a default plus exceptions), and the end state is told to
/// systemd. An allow-list maps one to one; a deny-list systemd cannot express, so the unit is
/// left at deny-all and the device program veil attaches afterwards (which replaces systemd's)
/// enforces the real rules, as runc does.
public enum DeviceAllowList {
    struct Key: Hashable { var type: Character; var major: Int64?; var minor: Int64? }

    public static func properties(for rules: [DeviceRule]) -> [UnitProperty] {
        var defaultAllow = false
        var exceptions: [(key: Key, access: Set<Character>)] = []
        for rule in rules {
            let major = rule.major == -1 ? nil : rule.major
            let minor = rule.minor == -1 ? nil : rule.minor
            let access = Set(rule.access)
            if rule.type == "a" || (rule.type.isEmpty) {
                // Every device: a new default, exceptions forgotten (the kernel's behaviour).
                if access.isSuperset(of: ["r", "w", "m"]) || access.isEmpty {
                    defaultAllow = rule.allow
                    exceptions.removeAll()
                    continue
                }
            }
            guard let type = rule.type.first else { continue }
            let key = Key(type: type, major: major, minor: minor)
            // An exception is a rule of the kind opposite to the default.
            let addsException = rule.allow != defaultAllow
            if let index = exceptions.firstIndex(where: { $0.key == key }) {
                if addsException {
                    exceptions[index].access.formUnion(access)
                } else {
                    exceptions[index].access.subtract(access)
                    if exceptions[index].access.isEmpty { exceptions.remove(at: index) }
                }
            } else if addsException {
                exceptions.append((key, access))
            }
        }
        if defaultAllow {
            // Allow-all: systemd's "auto" with no list. With denials: deny-all here, veil's program decides.
            return exceptions.isEmpty
                ? [UnitProperty("DevicePolicy", .string("auto")), UnitProperty("DeviceAllow", .stringPairs([]))]
                : [UnitProperty("DevicePolicy", .string("strict")), UnitProperty("DeviceAllow", .stringPairs([]))]
        }
        var allow: [(String, String)] = []
        for (key, access) in exceptions {
            let perms = String(["r", "w", "m"].filter { access.contains($0) })
            guard !perms.isEmpty, let entry = entry(key) else { continue }
            allow.append((entry, perms))
        }
        return [UnitProperty("DevicePolicy", .string("strict")), UnitProperty("DeviceAllow", .stringPairs(allow))]
    }

    /// systemd's names: "/dev/char/1:3", "char-136" (a whole major), "char-*"; a rule for one minor of
    /// any major has no name and is left to veil's program.
    static func entry(_ key: Key) -> String? {
        let group: String
        switch key.type {
        case "c": group = "char"
        case "b": group = "block"
        case "a": group = "char"  // partial-access "a" rules: systemd has no "any type" entry; runc uses char-*
        default: return nil
        }
        switch (key.major, key.minor) {
        case (nil, nil): return "\(group)-*"
        case (let major?, nil): return "\(group)-\(major)"
        case (let major?, let minor?): return "/dev/\(group)/\(major):\(minor)"
        case (nil, _?): return nil
        }
    }
}

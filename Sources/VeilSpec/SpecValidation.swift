extension Spec {
    /// Checks the invariants the runtime relies on before touching the system, so mistakes
    /// surface as `SpecError.invalid` naming the JSON path instead of a failed syscall.
    public func validate() throws(SpecError) {
        if ociVersion.isEmpty { throw .invalid(path: "ociVersion", reason: "must not be empty") }
        if root.path.isEmpty { throw .invalid(path: "root.path", reason: "must not be empty") }

        if let process {
            guard let args = process.args else { throw .invalid(path: "process.args", reason: "required field missing") }
            if args.isEmpty { throw .invalid(path: "process.args", reason: "must not be empty") }
            if !process.cwd.hasPrefix("/") {
                throw .invalid(path: "process.cwd", reason: "must be an absolute path, got \(quoted(process.cwd))")
            }
            for (i, limit) in (process.rlimits ?? []).enumerated() where limit.soft > limit.hard {
                throw .invalid(path: "process.rlimits[\(i)]", reason: "soft limit \(limit.soft) exceeds hard limit \(limit.hard)")
            }
        }

        for (i, mount) in (mounts ?? []).enumerated() where !mount.destination.hasPrefix("/") {
            throw .invalid(
                path: "mounts[\(i)].destination",
                reason: "must be an absolute path, got \(quoted(mount.destination))")
        }

        if let hooks { try hooks.validate() }
        if let linux { try linux.validate() }
    }
}

extension Hooks {
    fileprivate func validate() throws(SpecError) {
        let lists: [(String, [Hook]?)] = [
            ("prestart", prestart), ("createRuntime", createRuntime), ("createContainer", createContainer),
            ("startContainer", startContainer), ("poststart", poststart), ("poststop", poststop),
        ]
        for (name, list) in lists {
            for (i, hook) in (list ?? []).enumerated() {
                // The spec requires absolute hook paths; runc execs them without a PATH search.
                if !hook.path.hasPrefix("/") {
                    throw .invalid(path: "hooks.\(name)[\(i)].path", reason: "must be an absolute path, got \(quoted(hook.path))")
                }
                if let t = hook.timeout, t <= 0 {
                    throw .invalid(path: "hooks.\(name)[\(i)].timeout", reason: "must be positive, got \(t)")
                }
            }
        }
    }
}

extension Linux {
    fileprivate func validate() throws(SpecError) {
        var seen = Set<String>()
        let list = namespaces ?? []
        for (i, ns) in list.enumerated() {
            if !seen.insert(ns.type.rawValue).inserted {
                throw .invalid(path: "linux.namespaces[\(i)].type", reason: "duplicate namespace type \(quoted(ns.type.rawValue))")
            }
            if let p = ns.path, !p.isEmpty, !p.hasPrefix("/") {
                throw .invalid(path: "linux.namespaces[\(i)].path", reason: "must be an absolute path, got \(quoted(p))")
            }
        }

        // Mappings only mean something for a new user namespace; without one they would be
        // silently ignored, and a new one without them leaves every ID unmapped.
        let userNS = list.first { $0.type == .user }
        let hasUID = !(uidMappings ?? []).isEmpty
        let hasGID = !(gidMappings ?? []).isEmpty
        if userNS == nil {
            if hasUID { throw .invalid(path: "linux.uidMappings", reason: "set but no user namespace is requested") }
            if hasGID { throw .invalid(path: "linux.gidMappings", reason: "set but no user namespace is requested") }
        } else if let userNS, userNS.path?.isEmpty ?? true {
            if !hasUID { throw .invalid(path: "linux.uidMappings", reason: "required when creating a user namespace") }
            if !hasGID { throw .invalid(path: "linux.gidMappings", reason: "required when creating a user namespace") }
        }
        for (name, maps) in [("uidMappings", uidMappings), ("gidMappings", gidMappings)] {
            for (i, m) in (maps ?? []).enumerated() where m.size == 0 {
                throw .invalid(path: "linux.\(name)[\(i)].size", reason: "must be greater than 0")
            }
        }

        if let offsets = timeOffsets, !offsets.isEmpty {
            guard let timeNS = list.first(where: { $0.type == .time }) else {
                throw .invalid(path: "linux.timeOffsets", reason: "set but no time namespace is requested")
            }
            if let p = timeNS.path, !p.isEmpty {
                throw .invalid(path: "linux.timeOffsets", reason: "cannot be set when joining an existing time namespace")
            }
            for key in offsets.keys.sorted() where key != "monotonic" && key != "boottime" {
                throw .invalid(path: "linux.timeOffsets[\(quoted(key))]", reason: "unknown clock, expected \"monotonic\" or \"boottime\"")
            }
        }

        if let prop = rootfsPropagation, !prop.isEmpty, MountOptions.propagationFlags(prop) == nil {
            throw .invalid(path: "linux.rootfsPropagation", reason: "unknown propagation mode \(quoted(prop))")
        }

        for (i, dev) in (devices ?? []).enumerated() {
            if !dev.path.hasPrefix("/") {
                throw .invalid(path: "linux.devices[\(i)].path", reason: "must be an absolute path, got \(quoted(dev.path))")
            }
            if !["c", "b", "u", "p"].contains(dev.type) {
                throw .invalid(path: "linux.devices[\(i)].type", reason: "unknown device type \(quoted(dev.type))")
            }
        }
    }
}

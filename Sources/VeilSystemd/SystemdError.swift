/// Errors of the systemd cgroup driver. Each names the config field, annotation or unit at fault.
public enum SystemdError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `linux.cgroupsPath` cannot name a scope (`reason` says why).
    case invalidCgroupsPath(path: String, reason: String)
    /// A resource that has no systemd property form or a value it cannot take.
    case invalidResource(field: String, value: String, reason: String)
    /// An `org.systemd.property.*` annotation that cannot be used.
    case invalidAnnotation(key: String, reason: String)
    /// Refused at the sandbox level: a tenant may not set this unit property.
    case propertyNotAllowed(key: String)
    /// No systemd to talk to.
    case unavailable(reason: String)
    /// A D-Bus call failed: `name` is the D-Bus error name when there is one.
    case call(method: String, unit: String, name: String, message: String)
    /// The job systemd ran for the unit ended other than "done", or never ended.
    case job(unit: String, method: String, result: String)

    public var description: String {
        switch self {
        case .invalidCgroupsPath(let path, let reason):
            return "linux.cgroupsPath \"\(path)\": \(reason)"
        case .invalidResource(let field, let value, let reason):
            return "linux.resources.\(field)=\(value): \(reason)"
        case .invalidAnnotation(let key, let reason):
            return "annotations[\"\(key)\"]: \(reason)"
        case .propertyNotAllowed(let key):
            return "annotations[\"\(key)\"]: the sandbox level does not let a container set this systemd unit property "
                + "(the operator can allow it with --allow-systemd-properties, or allow_systemd_properties = true in the shim's TOML)"
        case .unavailable(let reason):
            return "--systemd-cgroup: \(reason)"
        case .call(let method, let unit, let name, let message):
            let detail = name.isEmpty ? message : "\(name): \(message)"
            return "systemd \(method) \(unit): \(detail)"
        case .job(let unit, let method, let result):
            return "systemd \(method) \(unit): the job ended with \"\(result)\""
        }
    }
}

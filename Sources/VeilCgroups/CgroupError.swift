import FoundationEssentials
import Glibc

/// Every error thrown by VeilCgroups. Each case names the path (and value) that failed
/// so `veil` can print a message an operator can act on without a debugger.
public enum CgroupError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A "slice:prefix:name" path given to the cgroupfs driver.
    case systemdPathUnsupported(path: String)
    /// The cgroups path (or container id used as its name) cannot be used.
    case invalidPath(path: String, reason: String)
    /// /proc/self/mountinfo lists no cgroup or cgroup2 mount.
    case noCgroupMounts
    /// /proc/self/cgroup has no line for a mounted hierarchy, so a relative path cannot be resolved.
    case ownCgroupUnknown(hierarchy: String)
    /// open/read/mkdir/opendir failed.
    case io(operation: String, path: String, errno: Int32)
    /// Writing `value` to a cgroup file failed (EINVAL/EBUSY are the usual kernel refusals).
    case writeFailed(path: String, value: String, errno: Int32)
    /// rmdir kept failing after retrying while the cgroup's tasks drained.
    case removeBusy(path: String, pids: [Int32], errno: Int32)
    /// A resource was requested but the controller's file is not there (controller not mounted / not enabled).
    case controllerUnavailable(file: String)
    /// A resource value that cannot be expressed in cgroup files.
    case invalidResource(field: String, value: String, reason: String)
    /// A resource that this cgroup version cannot enforce (e.g. `unified` on v1, realtime on v2).
    case unsupported(field: String, reason: String)
    /// The freezer did not reach `wanted` in time; `state` is what the file said last.
    case freezeFailed(path: String, wanted: String, state: String)
    /// A bpf(2) step of the v2 device filter failed; `log` is the verifier's output when loading.
    case bpf(operation: String, path: String, errno: Int32, log: String)

    public var description: String {
        switch self {
        case .systemdPathUnsupported(let path):
            return "\(path) looks like a systemd cgroup path (slice:prefix:name): run with --systemd-cgroup, or give a cgroupfs path"
        case .invalidPath(let path, let reason):
            return "invalid cgroups path \"\(path)\": \(reason)"
        case .noCgroupMounts:
            return "no cgroup or cgroup2 filesystem is mounted (checked /proc/self/mountinfo)"
        case .ownCgroupUnknown(let hierarchy):
            return "cannot resolve a relative cgroups path: /proc/self/cgroup has no entry for hierarchy \(hierarchy)"
        case .io(let operation, let path, let err):
            return "cgroup \(operation) \(path): \(errnoText(err))"
        case .writeFailed(let path, let value, let err):
            return "cannot write \"\(value)\" to \(path): \(errnoText(err))"
        case .removeBusy(let path, let pids, let err):
            let who = pids.isEmpty ? "" : " (processes still inside: \(pids.map(String.init).joined(separator: " ")))"
            return "cannot remove cgroup \(path) after retrying: \(errnoText(err))\(who)"
        case .controllerUnavailable(let file):
            return "cgroup controller not available: \(file) does not exist"
        case .invalidResource(let field, let value, let reason):
            return "invalid cgroup resource \(field)=\(value): \(reason)"
        case .unsupported(let field, let reason):
            return "cgroup resource \(field) cannot be applied: \(reason)"
        case .freezeFailed(let path, let wanted, let state):
            return "cgroup freezer \(path) did not reach \(wanted) (last state \"\(state)\")"
        case .bpf(let operation, let path, let err, let log):
            let detail = log.isEmpty ? "" : "; verifier: \(log)"
            return "device filter \(operation) for \(path): \(errnoText(err))\(detail)"
        }
    }
}

func errnoText(_ err: Int32) -> String {
    guard let text = strerror(err) else { return "errno \(err)" }
    return "\(String(cString: text)) (errno \(err))"
}

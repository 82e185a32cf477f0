import CSeccomp
import CVeilLinux
import Glibc
import VeilLinux

/// What `veil features` reports under "linux.seccomp" (runc's field names).
public enum SeccompFeatures {
    /// Every action name veil accepts, sorted (as runc's `features`).
    public static var actions: [String] { ActionName.allCases.map(\.rawValue).sorted() }

    /// The actions this kernel also supports (/proc/sys/kernel/seccomp/actions_avail).
    public static var availableActions: [String] {
        guard let text = try? FS.readString("/proc/sys/kernel/seccomp/actions_avail") else { return actions }
        let kernel = Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        return ActionName.allCases.filter { kernel.contains($0.kernelName) }.map(\.rawValue).sorted()
    }

    /// Architecture names this libseccomp resolves, sorted.
    public static var archs: [String] { knownArchitectureNames.filter { resolveArchitecture($0) != nil }.sorted() }

    /// Comparison operators, sorted.
    public static var operators: [String] { OperatorName.allCases.map(\.rawValue).sorted() }

    /// Flag names a profile may list.
    public static var knownFlags: [String] { SeccompFilterFlag.known.map(\.name) }

    /// The known flags this kernel accepts (probed with a NULL program, nothing is installed).
    public static var supportedFlags: [String] {
        SeccompFilterFlag.known.filter { flag in
            // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
            let bits = flag.bit == SeccompFilterFlag.waitKillableRecv ? flag.bit | SeccompFilterFlag.newListener : flag.bit
            return veil_seccomp_flags_supported(bits) == 0
        }.map(\.name)
    }

    /// libseccomp's version (major, minor, micro), for runc's `io.github.seccomp.libseccomp.version` annotation.
    public static var libseccompVersion: (major: UInt32, minor: UInt32, micro: UInt32) {
        guard let v = seccomp_version() else { return (0, 0, 0) }
        return (v.pointee.major, v.pointee.minor, v.pointee.micro)
    }

    /// libseccomp's API level (seccomp_api_get); notify needs at least 6.
    public static var apiLevel: UInt32 { seccomp_api_get() }
}

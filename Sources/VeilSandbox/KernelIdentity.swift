import Glibc
import VeilLinux

/// The kernel a sandbox sees: uname's answer, /proc/version, and the boot log `dmesg` prints.
/// The release keeps the host's version numbers (programs compare them to pick features)
/// and names veil, so `uname -r` and /proc/version say where they run.
public struct KernelIdentity: Codable, Sendable, Equatable {
    public var sysname = "Linux"
    public var release: String
    public var version = "#1 SMP PREEMPT_DYNAMIC veil sandbox"
    public var machine: String

    public init(release: String, machine: String) {
        self.release = release
        self.machine = machine
    }

    /// Derived from the host: "6.18.44-fc-v669" becomes "6.18.44-veil".
    public static func current() -> KernelIdentity {
        var host = utsname()
        uname(&host)
        let hostRelease = withUnsafeBytes(of: host.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: host.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = hostRelease.prefix { $0.isNumber || $0 == "." }
        return KernelIdentity(release: (numbers.isEmpty ? "6.1.0" : String(numbers)) + "-veil", machine: machine)
    }

    public var procVersion: String {
        "Linux version \(release) (veil@sandbox) (veil sandbox kernel identity) \(version)\n"
    }

    /// /proc/cmdline: a boot line for the sandbox's kernel, none of the host's (its root device,
    /// its security options), as gVisor shows one of its own.
    public var commandLine: String { "BOOT_IMAGE=/vmlinuz-\(release) ro\n" }

    /// dmesg's lines: the first one is what users grep for, as gVisor's "Starting gVisor...".
    public func bootLog(sandboxID: String, policy: (direct: Int, emulated: Int, refused: Int)) -> String {
        let lines = [
            "Starting veil...",
            "Linux version \(release): a veil sandbox, not the host's kernel",
            "Sandbox \(sandboxID): user namespace, deny-by-default seccomp, warden attached",
            "Policy: \(policy.direct) system calls go to the host kernel, \(policy.emulated) are answered by the warden, \(policy.refused) are refused",
            "Host kernel log, modules and symbols are not visible here",
            "Ready!",
        ]
        return lines.enumerated().map { index, line in
            let micros = index * 1731
            let seconds = micros / 1_000_000, fraction = micros % 1_000_000
            return "[\(String(repeating: " ", count: max(0, 5 - String(seconds).count)))\(seconds).\(pad6(fraction))] \(line)\n"
        }.joined()
    }

    private func pad6(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 6 - text.count)) + text
    }
}

/// /proc files that would show the host: generated per sandbox and bound over the real ones.
public enum ProcViews {
    /// The host's /proc/cpuinfo cut to the first `count` processors.
    public static func cpuinfo(host: String, count: Int) -> String {
        var blocks: [[Substring]] = [[]]
        for line in host.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { if !(blocks.last?.isEmpty ?? true) { blocks.append([]) } } else { blocks[blocks.count - 1].append(line) }
        }
        return blocks.filter { !$0.isEmpty }.prefix(max(1, count)).map { $0.joined(separator: "\n") + "\n\n" }.joined()
    }

    /// CPUs a cpu quota amounts to (rounded up), nil without a quota.
    public static func cpus(quota: Int64?, period: UInt64?) -> Int? {
        guard let quota, quota > 0 else { return nil }
        let period = Int64(period ?? 100_000)
        guard period > 0 else { return nil }
        return Int((quota + period - 1) / period)
    }
}

import Glibc
import VeilLinux

/// What the warden needs to answer for its sandbox, as `key=value` lines in
/// `<input directory>/warden.conf` (and the boot log in `dmesg` beside it): plain text, so the warden
/// links no Foundation and stays a few MiB resident.
public struct WardenConfig: Sendable, Equatable {
    public var sysname = "Linux"
    public var release: String
    public var version: String
    public var machine: String
    /// CLOCK_BOOTTIME (ns) when the sandbox booted.
    public var bootedAt: UInt64
    /// The cgroup directory for sysinfo's memory and process count.
    public var memoryDirectory: String?
    public var memoryUnified = false
    public var bootLog: String
    /// The cgroup directory whose CPU time /proc/stat shows (cpuacct in v1, cpu.stat in v2).
    public var cpuDirectory: String?
    public var cpuUnified = false
    /// CPUs the sandbox sees (nil: the host's).
    public var cpus: Int?
    /// The warden's own cgroups (`veil-warden` children of the owning container's), joined at start.
    public var cgroups: [String] = []

    public static let fileName = "warden.conf"
    public static let bootLogName = "dmesg"
    /// The warden's own seccomp filter (classic BPF, as `veil` compiled it), installed at start.
    public static let filterName = "warden.bpf"

    public init(release: String, version: String, machine: String, bootedAt: UInt64, memoryDirectory: String?,
                memoryUnified: Bool, bootLog: String) {
        self.release = release
        self.version = version
        self.machine = machine
        self.bootedAt = bootedAt
        self.memoryDirectory = memoryDirectory
        self.memoryUnified = memoryUnified
        self.bootLog = bootLog
    }

    public func save(directory: String) throws(LinuxError) {
        var lines = ["sysname=\(sysname)", "release=\(release)", "version=\(version)", "machine=\(machine)",
                     "booted-at=\(bootedAt)", "memory-unified=\(memoryUnified ? 1 : 0)"]
        if let memoryDirectory { lines.append("memory-directory=\(memoryDirectory)") }
        if let cpuDirectory { lines.append("cpu-directory=\(cpuDirectory)") }
        lines.append("cpu-unified=\(cpuUnified ? 1 : 0)")
        if let cpus { lines.append("cpus=\(cpus)") }
        for (index, dir) in cgroups.enumerated() { lines.append("cgroup.\(index)=\(dir)") }
        try FS.writeAtomically(directory + "/" + Self.bootLogName, Array(bootLog.utf8), mode: 0o644)
        try FS.writeAtomically(directory + "/" + Self.fileName, Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o644)
    }

    public static func load(directory: String) throws(LinuxError) -> WardenConfig {
        let path = directory + "/" + fileName
        var values: [String: String] = [:]
        for line in try FS.readString(path).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let release = values["release"], let version = values["version"], let machine = values["machine"],
              let booted = values["booted-at"].flatMap({ UInt64($0) }) else {
            throw LinuxError("parse", "\(path): missing release, version, machine or booted-at", errno: EINVAL)
        }
        var config = WardenConfig(release: release, version: version, machine: machine, bootedAt: booted,
                                  memoryDirectory: values["memory-directory"], memoryUnified: values["memory-unified"] == "1",
                                  bootLog: (try? FS.readString(directory + "/" + bootLogName)) ?? "")
        if let sysname = values["sysname"] { config.sysname = sysname }
        config.cpuDirectory = values["cpu-directory"]
        config.cpuUnified = values["cpu-unified"] == "1"
        config.cpus = values["cpus"].flatMap { Int($0) }
        config.cgroups = (0..<values.count).compactMap { values["cgroup.\($0)"] }
        return config
    }
}

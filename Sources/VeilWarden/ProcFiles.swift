import CVeilLinux
import Glibc
import VeilLinux

/// /proc/meminfo as the sandbox sees it: its memory limit as the machine's memory.
public enum MemInfo {
    /// `cachedBytes` of `usedBytes` is page cache (free(1) shows it as buff/cache, not used), of
    /// which `sharedBytes` is tmpfs and shared memory (not reclaimable, so not available).
    public static func text(totalBytes: UInt64, usedBytes: UInt64, cachedBytes: UInt64 = 0, sharedBytes: UInt64 = 0) -> String {
        let total = totalBytes / 1024, used = min(usedBytes / 1024, total), free = total - used
        let cached = min(cachedBytes / 1024, used), anon = used - cached, shared = min(sharedBytes / 1024, cached)
        let rows: [(String, UInt64)] = [
            ("MemTotal", total), ("MemFree", free), ("MemAvailable", free + cached - shared), ("Buffers", 0), ("Cached", cached),
            ("SwapCached", 0), ("Active", anon), ("Inactive", cached), ("Active(anon)", anon), ("Inactive(anon)", 0),
            ("Active(file)", 0), ("Inactive(file)", cached), ("Unevictable", 0), ("Mlocked", 0), ("SwapTotal", 0),
            ("SwapFree", 0), ("Dirty", 0), ("Writeback", 0), ("AnonPages", anon), ("Mapped", 0), ("Shmem", shared),
            ("KReclaimable", 0), ("Slab", 0), ("SReclaimable", 0), ("SUnreclaim", 0), ("KernelStack", 0),
            ("PageTables", 0), ("CommitLimit", total), ("Committed_AS", anon), ("VmallocTotal", 0),
            ("VmallocUsed", 0), ("VmallocChunk", 0), ("HugePages_Total", 0), ("HugePages_Free", 0),
        ]
        return rows.map { name, value in
            let label = name + ":"
            let number = String(value)
            let unit = name.hasPrefix("HugePages") ? "" : " kB"
            return label + String(repeating: " ", count: max(1, 16 - label.count + 8 - number.count)) + number + unit + "\n"
        }.joined()
    }
}

/// The sandbox's memory as its cgroup counts it.
public struct SandboxMemory {
    public var limit: UInt64?
    public var usage: UInt64?
    /// Page cache within the usage, and the tmpfs/shared memory within that.
    public var cache: UInt64?
    public var shared: UInt64?
    public var processes: Int?

    /// From the cgroup directory in the warden's configuration (v1 or v2 files); memory.stat
    /// (cache, shared) only when asked: sysinfo does without it.
    public static func read(_ config: WardenConfig, withCache: Bool = false) -> SandboxMemory {
        guard let dir = config.memoryDirectory else { return SandboxMemory() }
        func number(_ file: String) -> UInt64? {
            guard let text = try? FS.readString(dir + "/" + file) else { return nil }
            return UInt64(text.split(separator: "\n").first ?? "")
        }
        let statText = withCache ? (try? FS.readString(dir + "/memory.stat")) ?? "" : ""
        func stat(_ key: String) -> UInt64? {
            for line in statText.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 2 && fields[0] == key { return UInt64(fields[1]) }
            }
            return nil
        }
        let unified = config.memoryUnified
        return SandboxMemory(
            limit: unified ? number("memory.max") : number("memory.limit_in_bytes"),
            usage: unified ? number("memory.current") : number("memory.usage_in_bytes"),
            cache: unified ? stat("file") : stat("total_cache"),
            shared: unified ? stat("shmem") : stat("total_shmem"),
            processes: (try? FS.readString(dir + "/cgroup.procs")).map { $0.split(separator: "\n").count })
    }

    /// The sandbox's total memory (its limit, at most the host's) and what it uses of it.
    public func totals() -> (total: UInt64, used: UInt64) {
        var hostTotal: UInt64 = 0, hostFree: UInt64 = 0
        veil_host_memory(&hostTotal, &hostFree)
        let total = min(limit ?? hostTotal, hostTotal)
        return (total, min(usage ?? (hostTotal - hostFree), total))
    }
}

/// The warden's side of the sandbox's /proc views (veil_procfs.h): `veil create` mounts them and
/// answers the init's lookups, then hands the FUSE descriptor over at `Warden.procfsFD`;
/// meminfo is made afresh at every read, version and cpuinfo come from the state directory.
public enum ProcFiles {
    nonisolated(unsafe) static var config: WardenConfig?
    nonisolated(unsafe) static var fixed: [Int32: [UInt8]] = [:]

    public static let versionFile = "proc-version"
    public static let cpuinfoFile = "proc-cpuinfo"

    /// The fixed files, read from the state directory before the warden leaves the host's ids.
    static func load(stateDirectory: String) {
        fixed[Int32(VEIL_PROCFS_VERSION)] = Array(((try? FS.readString(stateDirectory + "/" + versionFile)) ?? "").utf8)
        fixed[Int32(VEIL_PROCFS_CPUINFO)] = Array(((try? FS.readString(stateDirectory + "/" + cpuinfoFile)) ?? "").utf8)
    }

    static func serve(fd: Int32, config: WardenConfig) {
        Self.config = config
        let thread = startThread(fd: fd) { raw in
            let fd = threadFD(raw)
            _ = veil_procfs_serve(fd, { _, file, buffer, capacity in ProcFiles.fill(file: file, buffer: buffer, capacity: capacity) }, nil, -1)
            close(fd)
            return nil
        }
        if thread == nil { close(fd) }
    }

    static func fill(file: Int32, buffer: UnsafeMutablePointer<CChar>?, capacity: Int) -> Int {
        guard let buffer else { return 0 }
        let bytes: [UInt8]
        if file == Int32(VEIL_PROCFS_MEMINFO), let config {
            let memory = SandboxMemory.read(config, withCache: true)
            let (total, used) = memory.totals()
            bytes = Array(MemInfo.text(totalBytes: total, usedBytes: used, cachedBytes: memory.cache ?? 0,
                                       sharedBytes: memory.shared ?? 0).utf8)
        } else {
            bytes = fixed[file] ?? []
        }
        let count = min(bytes.count, capacity)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { memcpy(buffer, base, count) }
        }
        return count
    }
}

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

/// The sandbox's /proc views (veil_procfs.h): each file's name in the view directory and where the
/// sandbox sees it. meminfo and stat are made at every read; the others are fixed at create.
public enum ProcView: Int32, CaseIterable, Sendable {
    case version, meminfo, cpuinfo, stat, cmdline, osrelease, kernelVersion, loadavg

    /// The name in the view directory (as veil_procfs.c serves it).
    public var fileName: String {
        switch self {
        case .version: return "version"
        case .meminfo: return "meminfo"
        case .cpuinfo: return "cpuinfo"
        case .stat: return "stat"
        case .cmdline: return "cmdline"
        case .osrelease: return "osrelease"
        case .kernelVersion: return "kernel-version"
        case .loadavg: return "loadavg"
        }
    }

    /// Where the sandbox sees it.
    public var destination: String {
        switch self {
        case .osrelease: return "/proc/sys/kernel/osrelease"
        case .kernelVersion: return "/proc/sys/kernel/version"
        default: return "/proc/" + fileName
        }
    }

    public var isLive: Bool { self == .meminfo || self == .stat || self == .loadavg }

    /// The fixed files' copies in the warden's input directory, which the warden serves.
    public var stateFileName: String { "proc-" + fileName }
}

/// /proc/stat as the sandbox sees it: its own CPUs (the quota), the time its cgroup spent on
/// them, its boot time and its processes, so that ps, top, uptime, vmstat and psutil add up.
public enum ProcStat {
    /// What the sandbox's cgroup and processes say at one moment.
    public struct Sample: Sendable {
        public var cpus: Int
        /// Nanoseconds of CPU time in user and system mode, in all and (when the cgroup says) per CPU.
        public var userNanoseconds: UInt64
        public var systemNanoseconds: UInt64
        public var perCPU: [(user: UInt64, system: UInt64)]
        /// Nanoseconds since the sandbox booted, and the wall-clock second it booted at.
        public var uptimeNanoseconds: UInt64
        public var bootTime: Int64
        public var processes: Int
        public var running: Int
        public var blocked: Int
        /// Threads of the sandbox (loadavg's second figure).
        public var threads = 0

        public init(cpus: Int, userNanoseconds: UInt64, systemNanoseconds: UInt64, perCPU: [(user: UInt64, system: UInt64)],
                    uptimeNanoseconds: UInt64, bootTime: Int64, processes: Int, running: Int, blocked: Int) {
            self.cpus = cpus
            self.userNanoseconds = userNanoseconds
            self.systemNanoseconds = systemNanoseconds
            self.perCPU = perCPU
            self.uptimeNanoseconds = uptimeNanoseconds
            self.bootTime = bootTime
            self.processes = processes
            self.running = running
            self.blocked = blocked
        }
    }

    /// USER_HZ: /proc/stat counts in hundredths of a second.
    static let tick: UInt64 = 10_000_000

    public static func text(_ sample: Sample) -> String {
        let cpus = max(1, sample.cpus)
        func line(_ label: String, user: UInt64, system: UInt64, capacity: UInt64) -> String {
            let user = user / tick, system = system / tick, total = capacity / tick
            let idle = total > user + system ? total - user - system : 0
            return "\(label) \(user) 0 \(system) \(idle) 0 0 0 0 0 0\n"
        }
        var text = line("cpu ", user: sample.userNanoseconds, system: sample.systemNanoseconds,
                        capacity: sample.uptimeNanoseconds &* UInt64(cpus))
        for cpu in 0..<cpus {
            // Per-CPU figures where the cgroup keeps them, else an even share.
            let share: (user: UInt64, system: UInt64) = cpu < sample.perCPU.count ? sample.perCPU[cpu]
                : (sample.userNanoseconds / UInt64(cpus), sample.systemNanoseconds / UInt64(cpus))
            text += line("cpu\(cpu)", user: share.user, system: share.system, capacity: sample.uptimeNanoseconds)
        }
        text += "intr 0\nctxt 0\nbtime \(sample.bootTime)\nprocesses \(sample.processes)\n"
        text += "procs_running \(max(1, sample.running))\nprocs_blocked \(sample.blocked)\n"
        text += "softirq 0 0 0 0 0 0 0 0 0 0 0\n"
        return text
    }

    /// /proc/loadavg: the sandbox keeps no load average (sysinfo answers 0 too), and its own
    /// runnable and total thread counts rather than the host's.
    public static func loadavg(_ sample: Sample) -> String {
        "0.00 0.00 0.00 \(max(1, sample.running))/\(max(1, sample.threads)) 0\n"
    }

    /// A sample now, from the warden's configuration: cpuacct (v1) or cpu.stat (v2) for the
    /// times, the memory cgroup's tasks for the processes.
    public static func sample(_ config: WardenConfig) -> Sample {
        let uptime = BootClock.now() &- config.bootedAt
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let bootTime = Int64(now.tv_sec) - Int64(uptime / 1_000_000_000)
        var user: UInt64 = 0, system: UInt64 = 0
        var perCPU: [(user: UInt64, system: UInt64)] = []
        if let dir = config.cpuDirectory {
            if config.cpuUnified {
                for row in ((try? FS.readString(dir + "/cpu.stat")) ?? "").split(separator: "\n") {
                    let fields = row.split(separator: " ")
                    guard fields.count == 2, let micros = UInt64(fields[1]) else { continue }
                    if fields[0] == "user_usec" { user = micros * 1000 } else if fields[0] == "system_usec" { system = micros * 1000 }
                }
            } else {
                func numbers(_ file: String) -> [UInt64] {
                    ((try? FS.readString(dir + "/" + file)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
                }
                user = numbers("cpuacct.usage_user").first ?? numbers("cpuacct.usage").first ?? 0
                system = numbers("cpuacct.usage_sys").first ?? 0
                let users = numbers("cpuacct.usage_percpu_user"), systems = numbers("cpuacct.usage_percpu_sys")
                if users.count == systems.count { perCPU = zip(users, systems).map { ($0, $1) } }
            }
        }
        let cpus = config.cpus ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if perCPU.count != cpus && config.cpus != nil { perCPU = Array(perCPU.prefix(cpus)) }
        var processes = 0, running = 0, blocked = 0, threadCount = 0
        if let dir = config.memoryDirectory {
            processes = ((try? FS.readString(dir + "/cgroup.procs")) ?? "").split(separator: "\n").count
            let threads = (try? FS.readString(dir + (config.memoryUnified ? "/cgroup.threads" : "/tasks"))) ?? ""
            for tid in threads.split(separator: "\n") {
                threadCount += 1
                // "pid (comm) S ...": the state follows the last parenthesis (comm may hold any).
                guard let stat = try? FS.readString("/proc/\(tid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
                let state = stat[stat.index(after: close)...].first { $0 != " " }
                if state == "R" { running += 1 } else if state == "D" { blocked += 1 }
            }
        }
        var sample = Sample(cpus: cpus, userNanoseconds: user, systemNanoseconds: system, perCPU: perCPU,
                            uptimeNanoseconds: uptime, bootTime: bootTime, processes: processes, running: running, blocked: blocked)
        sample.threads = threadCount
        return sample
    }
}

/// The warden's side of the sandbox's /proc views (veil_procfs.h): `veil create` mounts them and
/// answers the init's lookups, then hands the FUSE descriptor over at `Warden.procfsFD`;
/// meminfo and stat are made afresh at every read, the others come from the warden's input directory.
public enum ProcFiles {
    nonisolated(unsafe) static var config: WardenConfig?
    nonisolated(unsafe) static var fixed: [Int32: [UInt8]] = [:]

    public static let versionFile = ProcView.version.stateFileName
    public static let cpuinfoFile = ProcView.cpuinfo.stateFileName

    /// The fixed files, read from the input directory before the warden leaves the host's ids.
    static func load(inputDirectory: String) {
        for view in ProcView.allCases where !view.isLive {
            fixed[view.rawValue] = Array(((try? FS.readString(inputDirectory + "/" + view.stateFileName)) ?? "").utf8)
        }
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
        if file == ProcView.meminfo.rawValue, let config {
            let memory = SandboxMemory.read(config, withCache: true)
            let (total, used) = memory.totals()
            bytes = Array(MemInfo.text(totalBytes: total, usedBytes: used, cachedBytes: memory.cache ?? 0,
                                       sharedBytes: memory.shared ?? 0).utf8)
        } else if file == ProcView.stat.rawValue, let config {
            bytes = Array(ProcStat.text(ProcStat.sample(config)).utf8)
        } else if file == ProcView.loadavg.rawValue, let config {
            bytes = Array(ProcStat.loadavg(ProcStat.sample(config)).utf8)
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

import ArgumentParser
import FoundationEssentials
import Glibc
import VeilContainer
import VeilExchange
import VeilLinux
import VeilSpec

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Suspend every process of a container.")
    @Argument var id: String
    func run() throws {
        do { try Context.runtime().pause(id: id) } catch { Context.fail(error) }
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused container.")
    @Argument var id: String
    func run() throws {
        do { try Context.runtime().resume(id: id) } catch { Context.fail(error) }
    }
}

/// "64m", "1g", "1024" (bytes); -1 for unlimited; as runc (docker's units.RAMInBytes).
func parseBytes(_ text: String, flag: String) throws -> Int64 {
    if text == "-1" { return -1 }
    let lower = text.lowercased()
    let units: [(String, Int64)] = [("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("tb", 1 << 40),
                                    ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1)]
    for (suffix, factor) in units where lower.hasSuffix(suffix) {
        guard let value = Int64(lower.dropLast(suffix.count)), value >= 0 else { break }
        return value * factor
    }
    guard let value = Int64(lower), value >= -1 else { throw Failure(message: "\(flag) \(text): not a size (e.g. 512m, 1g, 1048576)") }
    return value
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Change a container's resource limits.")
    // Every value is taken as given even when it starts with "-": -1 means unlimited (runc).
    @Option(name: [.short, .long], help: "A JSON file with linux.resources (- for stdin).") var resources: String?
    @Option(name: .long, parsing: .unconditional, help: "Memory limit (e.g. 512m).") var memory: String?
    @Option(name: .long, parsing: .unconditional, help: "Memory soft limit.") var memoryReservation: String?
    @Option(name: .long, parsing: .unconditional, help: "Memory plus swap limit (-1 for unlimited).") var memorySwap: String?
    @Option(name: .long, parsing: .unconditional, help: "Accepted for runc compatibility; ignored.") var kernelMemory: String?
    @Option(name: .long, parsing: .unconditional, help: "Accepted for runc compatibility; ignored.") var kernelMemoryTcp: String?
    @Option(name: .long, parsing: .unconditional, help: "CPU shares (relative weight).") var cpuShare: UInt64?
    @Option(name: .long, parsing: .unconditional, help: "CPU CFS quota in microseconds.") var cpuQuota: Int64?
    @Option(name: .long, parsing: .unconditional, help: "CPU CFS period in microseconds.") var cpuPeriod: UInt64?
    @Option(name: .long, parsing: .unconditional, help: "CPU CFS burst in microseconds.") var cpuBurst: UInt64?
    @Option(name: .long, parsing: .unconditional, help: "CPU realtime period.") var cpuRtPeriod: UInt64?
    @Option(name: .long, parsing: .unconditional, help: "CPU realtime runtime.") var cpuRtRuntime: Int64?
    @Option(name: .long, parsing: .unconditional, help: "CPUs to use (e.g. 0-1).") var cpusetCpus: String?
    @Option(name: .long, parsing: .unconditional, help: "Memory nodes to use.") var cpusetMems: String?
    @Option(name: .long, parsing: .unconditional, help: "Maximum number of processes.") var pidsLimit: Int64?
    @Option(name: .long, parsing: .unconditional, help: "Block IO weight (10-1000).") var blkioWeight: UInt16?
    @Option(name: .long, parsing: .unconditional, help: "SCHED_IDLE for the cgroup (cgroup v2).") var cpuIdle: Int64?
    @Argument var id: String

    func run() throws {
        do {
            var r = LinuxResources()
            if let path = resources {
                let bytes: [UInt8]
                if path == "-" { bytes = try FileDescriptor(dup(0)).readAll() } else {
                    do { bytes = try FS.readFile(path) } catch { throw Failure(message: "\(error)") }
                }
                do { r = try JSONDecoder().decode(LinuxResources.self, from: Data(bytes)) } catch {
                    throw Failure(message: "\(path): invalid resources JSON: \(error)")
                }
            }
            var memoryChange = r.memory ?? LinuxMemory()
            if let memory { memoryChange.limit = try parseBytes(memory, flag: "--memory") }
            if let memoryReservation { memoryChange.reservation = try parseBytes(memoryReservation, flag: "--memory-reservation") }
            if let memorySwap { memoryChange.swap = try parseBytes(memorySwap, flag: "--memory-swap") }
            if memory != nil || memoryReservation != nil || memorySwap != nil || r.memory != nil { r.memory = memoryChange }
            var cpu = r.cpu ?? LinuxCPU()
            var cpuChanged = r.cpu != nil
            if let cpuShare { cpu.shares = cpuShare; cpuChanged = true }
            if let cpuQuota { cpu.quota = cpuQuota; cpuChanged = true }
            if let cpuPeriod { cpu.period = cpuPeriod; cpuChanged = true }
            if let cpuBurst { cpu.burst = cpuBurst; cpuChanged = true }
            if let cpuRtPeriod { cpu.realtimePeriod = cpuRtPeriod; cpuChanged = true }
            if let cpuRtRuntime { cpu.realtimeRuntime = cpuRtRuntime; cpuChanged = true }
            if let cpusetCpus { cpu.cpus = cpusetCpus; cpuChanged = true }
            if let cpusetMems { cpu.mems = cpusetMems; cpuChanged = true }
            if let cpuIdle { cpu.idle = cpuIdle; cpuChanged = true }
            if cpuChanged { r.cpu = cpu }
            if let pidsLimit { r.pids = LinuxPids(limit: pidsLimit) }
            if let blkioWeight {
                var io = r.blockIO ?? LinuxBlockIO()
                io.weight = blkioWeight
                r.blockIO = io
            }
            try Context.runtime().update(id: id, resources: r)
        } catch { Context.fail(error) }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Print a container's resource statistics and OOM events as JSON lines.")
    @Flag(help: "Print statistics once and exit.") var stats = false
    @Option(help: "Interval between statistics (e.g. 5s, 500ms).") var interval: String = "5s"
    @Argument var id: String

    func run() throws {
        do {
            let runtime = try Context.runtime()
            // One line per event, keys in runc's order (type, id, data; data as runc's types).
            func emit(_ type: String, _ data: CgroupStats?) throws {
                let event = StatsEvent(type: type, id: id, data: data)
                writeOut(String(decoding: try OrderedJSONEncoder.encode(event, layout: .compact), as: UTF8.self))
            }
            if stats {
                try emit(StatsEvent.statsType, try runtime.stats(id: id))
                return
            }
            let period = try parseInterval(interval)
            var lastOOM = try runtime.oomKills(id: id) ?? 0
            var nextStats = Date.now
            while true {
                guard (try? runtime.state(id: id).status).map({ $0 != .stopped }) ?? false else { return }
                if let count = try runtime.oomKills(id: id), count > lastOOM {
                    lastOOM = count
                    try emit(StatsEvent.oomType, nil)
                }
                if Date.now >= nextStats {
                    try emit(StatsEvent.statsType, try runtime.stats(id: id))
                    nextStats = Date.now.addingTimeInterval(period)
                }
                usleep(100_000)
            }
        } catch { Context.fail(error) }
    }

    private func parseInterval(_ text: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let v = Double(text.dropLast(suffix.count)), v > 0 { return v * factor }
        }
        throw Failure(message: "--interval \(text): expected a duration like 5s or 500ms")
    }
}

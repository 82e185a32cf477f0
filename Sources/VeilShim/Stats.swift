import Foundation
import SwiftProtobuf
import TTRPC
import VeilExchange
import VeilShimProtocol

/// containerd's cgroup metrics from `veil events --stats` (runc's stats event, VeilExchange's
/// `StatsEvent`): io.containerd.cgroups.v1.Metrics on cgroup v1 hosts, io.containerd.cgroups.v2.Metrics
/// on unified ones. runc's units are nanoseconds for CPU; v2's metrics count microseconds.
enum StatsConverter {
    static var unifiedHierarchy: Bool {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
    }

    /// The counters of the stats event in veil's output (one JSON event a line).
    static func stats(fromEventsOutput output: String) throws(TTRPCError) -> CgroupStats {
        var decodingError: (any Error)?
        for line in output.split(separator: "\n") {
            do {
                let event = try JSONDecoder().decode(StatsEvent.self, from: Data(line.utf8))
                if event.type == StatsEvent.statsType, let stats = event.data { return stats }
            } catch {
                decodingError = error
            }
        }
        let cause = decodingError.map { ": \($0)" } ?? ""
        throw TTRPCError(.internal, "veil events --stats: no stats event in \(output.prefix(200))\(cause)")
    }

    /// The metrics containerd expects on this host, packed as its Stats response carries them.
    static func metrics(_ stats: CgroupStats, unified: Bool = unifiedHierarchy) throws -> Google_Protobuf_Any {
        unified ? try Google_Protobuf_Any(containerdPacking: v2Metrics(stats))
            : try Google_Protobuf_Any(containerdPacking: v1Metrics(stats))
    }

    static func v2Metrics(_ stats: CgroupStats) -> Io_Containerd_Cgroups_V2_Metrics {
        var m = Io_Containerd_Cgroups_V2_Metrics()
        m.pids.current = stats.pids.current
        m.pids.limit = stats.pids.limit
        let usage = stats.cpu.usage, throttling = stats.cpu.throttling
        m.cpu.usageUsec = usage.total / 1000
        m.cpu.userUsec = usage.user / 1000
        m.cpu.systemUsec = usage.kernel / 1000
        m.cpu.nrPeriods = throttling.periods
        m.cpu.nrThrottled = throttling.throttledPeriods
        m.cpu.throttledUsec = throttling.throttledTime / 1000
        m.memory.usage = stats.memory.usage.usage
        m.memory.usageLimit = stats.memory.usage.limit
        m.memory.anon = stats.memory.raw["anon"] ?? 0
        m.memory.file = stats.memory.raw["file"] ?? 0
        return m
    }

    static func v1Metrics(_ stats: CgroupStats) -> Io_Containerd_Cgroups_V1_Metrics {
        var m = Io_Containerd_Cgroups_V1_Metrics()
        m.pids.current = stats.pids.current
        m.pids.limit = stats.pids.limit
        let usage = stats.cpu.usage, throttling = stats.cpu.throttling
        m.cpu.usage.total = usage.total
        m.cpu.usage.kernel = usage.kernel
        m.cpu.usage.user = usage.user
        m.cpu.usage.perCpu = usage.percpu
        m.cpu.throttling.periods = throttling.periods
        m.cpu.throttling.throttledPeriods = throttling.throttledPeriods
        m.cpu.throttling.throttledTime = throttling.throttledTime
        let memory = stats.memory, raw = stats.memory.raw
        m.memory.cache = memory.cache
        m.memory.usage.usage = memory.usage.usage
        m.memory.usage.limit = memory.usage.limit
        m.memory.usage.max = memory.usage.max
        m.memory.usage.failcnt = memory.usage.failcnt
        m.memory.swap.usage = memory.swap.usage
        m.memory.swap.limit = memory.swap.limit
        m.memory.rss = raw["rss"] ?? 0
        m.memory.totalRss = raw["total_rss"] ?? 0
        m.memory.totalCache = raw["total_cache"] ?? 0
        m.memory.mappedFile = raw["mapped_file"] ?? 0
        m.memory.pgFault = raw["pgfault"] ?? 0
        m.memory.pgMajFault = raw["pgmajfault"] ?? 0
        m.memory.hierarchicalMemoryLimit = raw["hierarchical_memory_limit"] ?? 0
        return m
    }
}

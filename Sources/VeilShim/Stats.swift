import Foundation
import SwiftProtobuf
import TTRPC
import VeilShimProtocol

/// containerd's cgroup metrics from runc's `events --stats` JSON (what veil prints):
/// io.containerd.cgroups.v1.Metrics on cgroup v1 hosts, io.containerd.cgroups.v2.Metrics on unified ones.
enum StatsConverter {
    private static func number(_ object: [String: Any]?, _ key: String) -> UInt64 {
        guard let value = object?[key] else { return 0 }
        if let n = value as? NSNumber { return n.uint64Value }
        return 0
    }

    private static func dict(_ object: [String: Any]?, _ key: String) -> [String: Any]? {
        object?[key] as? [String: Any]
    }

    static var unifiedHierarchy: Bool {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
    }

    static func metrics(fromEventsJSON output: String) throws -> Google_Protobuf_Any {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("\"stats\"") }),
              let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let data = event["data"] as? [String: Any] else {
            throw TTRPCError(.internal, "veil events --stats: unexpected output \(output.prefix(200))")
        }
        let cpu = dict(data, "cpu"), usage = dict(cpu, "usage"), throttling = dict(cpu, "throttling")
        let memory = dict(data, "memory"), memoryUsage = dict(memory, "usage"), raw = dict(memory, "raw")
        let pids = dict(data, "pids")
        if unifiedHierarchy {
            var m = Io_Containerd_Cgroups_V2_Metrics()
            m.pids.current = number(pids, "current")
            m.pids.limit = number(pids, "limit")
            m.cpu.usageUsec = number(usage, "total") / 1000
            m.cpu.userUsec = number(usage, "user") / 1000
            m.cpu.systemUsec = number(usage, "kernel") / 1000
            m.cpu.nrPeriods = number(throttling, "periods")
            m.cpu.nrThrottled = number(throttling, "throttled_periods")
            m.cpu.throttledUsec = number(throttling, "throttled_time") / 1000
            m.memory.usage = number(memoryUsage, "usage")
            m.memory.usageLimit = number(memoryUsage, "limit")
            m.memory.anon = number(raw, "anon")
            m.memory.file = number(raw, "file")
            return try Google_Protobuf_Any(containerdPacking: m)
        }
        var m = Io_Containerd_Cgroups_V1_Metrics()
        m.pids.current = number(pids, "current")
        m.pids.limit = number(pids, "limit")
        m.cpu.usage.total = number(usage, "total")
        m.cpu.usage.kernel = number(usage, "kernel")
        m.cpu.usage.user = number(usage, "user")
        m.cpu.usage.perCpu = (usage?["percpu"] as? [NSNumber])?.map(\.uint64Value) ?? []
        m.cpu.throttling.periods = number(throttling, "periods")
        m.cpu.throttling.throttledPeriods = number(throttling, "throttled_periods")
        m.cpu.throttling.throttledTime = number(throttling, "throttled_time")
        m.memory.cache = number(memory, "cache")
        m.memory.usage.usage = number(memoryUsage, "usage")
        m.memory.usage.limit = number(memoryUsage, "limit")
        m.memory.usage.max = number(memoryUsage, "max")
        m.memory.usage.failcnt = number(memoryUsage, "failcnt")
        let swap = dict(memory, "swap")
        m.memory.swap.usage = number(swap, "usage")
        m.memory.swap.limit = number(swap, "limit")
        m.memory.rss = number(raw, "rss")
        m.memory.totalRss = number(raw, "total_rss")
        m.memory.totalCache = number(raw, "total_cache")
        m.memory.mappedFile = number(raw, "mapped_file")
        m.memory.pgFault = number(raw, "pgfault")
        m.memory.pgMajFault = number(raw, "pgmajfault")
        m.memory.hierarchicalMemoryLimit = number(raw, "hierarchical_memory_limit")
        return try Google_Protobuf_Any(containerdPacking: m)
    }
}

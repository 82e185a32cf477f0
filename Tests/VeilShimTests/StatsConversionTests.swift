import Foundation
import SwiftProtobuf
import TTRPC
import Testing
import VeilExchange
import VeilShimProtocol
import VeilSpec
@testable import VeilShim

/// `veil events --stats` as veil prints it, read back by the shim and turned into containerd's
/// cgroups v1 and v2 metrics.
@Suite struct StatsConversionTests {
    /// Counters of a busy container (CPU in nanoseconds, as runc's stats event has them).
    static var sample: CgroupStats {
        var s = CgroupStats()
        s.cpu.usage.total = 5_000_000_000
        s.cpu.usage.user = 3_000_000_000
        s.cpu.usage.kernel = 2_000_000_000
        s.cpu.usage.percpu = [2_500_000_000, 2_500_000_000]
        s.cpu.throttling.periods = 100
        s.cpu.throttling.throttledPeriods = 7
        s.cpu.throttling.throttledTime = 9_000_000
        s.memory.cache = 4096
        s.memory.usage.usage = 10 << 20
        s.memory.usage.limit = 64 << 20
        s.memory.usage.max = 12 << 20
        s.memory.usage.failcnt = 3
        s.memory.swap.usage = 11 << 20
        s.memory.swap.limit = 128 << 20
        s.memory.raw = ["anon": 6 << 20, "file": 4 << 20, "rss": 5 << 20, "total_rss": 5 << 20, "total_cache": 8192,
                        "mapped_file": 1024, "pgfault": 900, "pgmajfault": 2, "hierarchical_memory_limit": 64 << 20]
        s.pids.current = 4
        s.pids.limit = 32
        return s
    }

    /// The line `veil events --stats ID` prints (VeilSpec's OrderedJSONEncoder, one line).
    static func eventsOutput(_ stats: CgroupStats, id: String = "c1") throws -> String {
        String(decoding: try OrderedJSONEncoder.encode(StatsEvent(type: StatsEvent.statsType, id: id, data: stats), layout: .compact),
               as: UTF8.self)
    }

    @Test("what veil prints decodes to the same counters, runc's key names included")
    func roundTrip() throws {
        let output = try Self.eventsOutput(Self.sample)
        #expect(output.hasPrefix("{\"type\":\"stats\",\"id\":\"c1\",\"data\":{\"cpu\":"))
        // runc's Throttling keys (types/events.go) are camelCase, unlike the cgroup files'.
        #expect(output.contains("\"throttling\":{\"periods\":100,\"throttledPeriods\":7,\"throttledTime\":9000000}"))
        #expect(output.contains("\"intel_rdt\":{}") && output.contains("\"network_interfaces\":null"))
        #expect(try StatsConverter.stats(fromEventsOutput: output) == Self.sample)
    }

    @Test("cgroup v2 metrics: microseconds for CPU, memory from usage and memory.stat")
    func v2() throws {
        let m = StatsConverter.v2Metrics(Self.sample)
        #expect(m.pids.current == 4 && m.pids.limit == 32)
        #expect(m.cpu.usageUsec == 5_000_000 && m.cpu.userUsec == 3_000_000 && m.cpu.systemUsec == 2_000_000)
        #expect(m.cpu.nrPeriods == 100 && m.cpu.nrThrottled == 7 && m.cpu.throttledUsec == 9000)
        #expect(m.memory.usage == 10 << 20 && m.memory.usageLimit == 64 << 20)
        #expect(m.memory.anon == 6 << 20 && m.memory.file == 4 << 20)

        let packed = try StatsConverter.metrics(Self.sample, unified: true)
        #expect(packed.typeURL == "io.containerd.cgroups.v2.Metrics")
        #expect(try Io_Containerd_Cgroups_V2_Metrics(serializedBytes: [UInt8](packed.value)) == m)
    }

    @Test("cgroup v1 metrics: nanoseconds as given, per-CPU usage, memory and swap entries, memory.stat")
    func v1() throws {
        let m = StatsConverter.v1Metrics(Self.sample)
        #expect(m.pids.current == 4 && m.pids.limit == 32)
        #expect(m.cpu.usage.total == 5_000_000_000 && m.cpu.usage.user == 3_000_000_000 && m.cpu.usage.kernel == 2_000_000_000)
        #expect(m.cpu.usage.perCpu == [2_500_000_000, 2_500_000_000])
        #expect(m.cpu.throttling.periods == 100 && m.cpu.throttling.throttledPeriods == 7 && m.cpu.throttling.throttledTime == 9_000_000)
        #expect(m.memory.cache == 4096)
        #expect(m.memory.usage.usage == 10 << 20 && m.memory.usage.limit == 64 << 20)
        #expect(m.memory.usage.max == 12 << 20 && m.memory.usage.failcnt == 3)
        #expect(m.memory.swap.usage == 11 << 20 && m.memory.swap.limit == 128 << 20)
        #expect(m.memory.rss == 5 << 20 && m.memory.totalRss == 5 << 20 && m.memory.totalCache == 8192)
        #expect(m.memory.mappedFile == 1024 && m.memory.pgFault == 900 && m.memory.pgMajFault == 2)
        #expect(m.memory.hierarchicalMemoryLimit == 64 << 20)

        let packed = try StatsConverter.metrics(Self.sample, unified: false)
        #expect(packed.typeURL == "io.containerd.cgroups.v1.Metrics")
        #expect(try Io_Containerd_Cgroups_V1_Metrics(serializedBytes: [UInt8](packed.value)) == m)
    }

    @Test("an idle container's zero counters (left out of veil's JSON) read as zero")
    func emptyStats() throws {
        let output = try Self.eventsOutput(CgroupStats())
        #expect(try StatsConverter.stats(fromEventsOutput: output) == CgroupStats())
        #expect(StatsConverter.v2Metrics(CgroupStats()) == Io_Containerd_Cgroups_V2_Metrics.with {
            $0.pids = .init()
            $0.cpu = .init()
            $0.memory = .init()
        })
    }

    @Test("the stats event is found among other lines; output without one is an error that quotes it")
    func findsTheStatsEvent() throws {
        let oom = String(decoding: try OrderedJSONEncoder.encode(StatsEvent(type: StatsEvent.oomType, id: "c1", data: nil), layout: .compact),
                         as: UTF8.self)
        #expect(oom == "{\"type\":\"oom\",\"id\":\"c1\"}\n")
        let stats = try StatsConverter.stats(fromEventsOutput: oom + (try Self.eventsOutput(Self.sample)))
        #expect(stats.pids.current == 4)
        for output in ["", oom, "veil: container \"c1\" does not exist\n", "{\"type\":\"stats\",\"id\":\"c1\",\"data\":{\"pids\":{\"current\":-1}}}\n"] {
            do {
                _ = try StatsConverter.stats(fromEventsOutput: output)
                Issue.record("no error for \(output)")
            } catch {
                #expect(error.code == .internal)
                #expect(error.message.contains("veil events --stats: no stats event"))
            }
        }
    }

    @Test("`veil ps --format json` is one array of pids, as runc prints it")
    func processList() throws {
        let printed = String(decoding: try OrderedJSONEncoder.encode(ProcessList(pids: [1, 42, 4_194_304]), layout: .compact), as: UTF8.self)
        #expect(printed == "[1,42,4194304]\n")
        #expect(String(decoding: try OrderedJSONEncoder.encode(ProcessList(pids: []), layout: .compact), as: UTF8.self) == "[]\n")
        #expect(try JSONDecoder().decode(ProcessList.self, from: Data(printed.utf8)).pids == [1, 42, 4_194_304])
    }

    @Test("veil's JSON log lines give the shim the last error's message")
    func logEntry() throws {
        let line = #"{"level":"error","msg":"container \"c1\": exec: \"nope\": not found","time":"2026-12-03T22:00:00Z"}"#
        let entry = try JSONDecoder().decode(LogEntry.self, from: Data(line.utf8))
        #expect(entry.level == LogEntry.errorLevel && entry.msg == "container \"c1\": exec: \"nope\": not found")
    }
}

import CVeilLinux
import Glibc
import Testing
import VeilSandbox
import VeilSeccomp
import VeilSpec
import VeilWarden

@Suite struct WardenTests {
    @Test("the warden's filter compiles, kills on anything unlisted, and narrows ioctl to the listener's requests")
    func wardenPolicy() throws {
        let profile = WardenPolicy.profile
        #expect(profile.defaultAction == "SCMP_ACT_KILL_PROCESS")
        let program = try SeccompProgram.compile(profile, field: "warden policy")
        #expect(!program.usesNotify && program.instructionCount > 20 && program.instructionCount < 400)
        let names = Set((profile.syscalls ?? []).flatMap(\.names))
        for risky in ["execve", "ptrace", "process_vm_writev", "mount", "setns", "unshare", "bpf", "socket", "connect"] {
            #expect(!names.contains(risky), "\(risky) is allowed")
        }
        #expect((profile.syscalls ?? []).filter { $0.names == ["ioctl"] }.allSatisfy { $0.args?.first?.index == 1 })
    }

    @Test("the guard table takes more entries than the old 256 limit, across pages, each once and in order")
    func guardTableGrows() {
        var table = veil_guard_table()
        let count = Int(VEIL_GUARD_CHUNK_FDS) * 2 + 17
        for fd in 0..<count { #expect(veil_guard_table_add(&table, Int32(fd)) == 0) }
        var entries: UInt64 = 0, sum: Int64 = 0, chunks: UInt32 = 0
        veil_guard_table_census(&table, &entries, &sum, &chunks)
        #expect(entries == UInt64(count) && sum == Int64(count * (count - 1) / 2) && chunks == 3)
        #expect(count > 256)
    }

    @Test("/proc/stat's text: a cpu line and one per sandbox CPU, idle as the rest of the uptime, btime and processes")
    func procStat() {
        let sample = ProcStat.Sample(cpus: 2, userNanoseconds: 3_000_000_000, systemNanoseconds: 1_000_000_000, perCPU: [],
                                     uptimeNanoseconds: 10_000_000_000, bootTime: 1_700_000_000, processes: 4, running: 0, blocked: 1)
        let lines = ProcStat.text(sample).split(separator: "\n").map(String.init)
        #expect(lines[0] == "cpu  300 0 100 1600 0 0 0 0 0 0")
        #expect(lines[1] == "cpu0 150 0 50 800 0 0 0 0 0 0" && lines[2] == "cpu1 150 0 50 800 0 0 0 0 0 0")
        #expect(!lines.contains { $0.hasPrefix("cpu2") })
        #expect(lines.contains("btime 1700000000") && lines.contains("processes 4"))
        #expect(lines.contains("procs_running 1") && lines.contains("procs_blocked 1"))
    }
}

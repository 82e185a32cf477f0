import Glibc
import Testing
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec
import VeilWarden

@Suite struct PolicyTests {
    @Test func compilesWithLibseccomp() throws {
        let program = try SeccompProgram.compile(SandboxPolicy.profile, field: "sandbox policy")
        #expect(program.usesNotify)
        #expect(program.instructionCount > 100 && program.instructionCount < SeccompProgram.maxInstructions)
    }

    @Test func everyCallHasOneKindOfTreatment() {
        var kinds: [String: Set<String>] = [:]
        for entry in SandboxPolicy.entries {
            let kind: String
            switch entry.treatment {
            case .direct: kind = "direct"
            case .emulated: kind = "emulated"
            case .observed: kind = "observed"
            case .refused: kind = "refused"
            }
            if entry.args.isEmpty { kinds[entry.name, default: []].insert(kind) }
        }
        for (name, set) in kinds { #expect(set.count == 1, "\(name) is listed unconditionally as \(set)") }
    }

    @Test func riskyCallsAreRefusedWithGVisorsErrno() {
        func treatment(_ name: String) -> SyscallTreatment? {
            SandboxPolicy.entries.first { $0.name == name && $0.args.isEmpty }?.treatment
        }
        #expect(treatment("mount") == .refused(errno: EPERM))
        #expect(treatment("keyctl") == .refused(errno: EACCES))
        #expect(treatment("perf_event_open") == .refused(errno: ENODEV))
        #expect(treatment("userfaultfd") == .refused(errno: ENOSYS))
        #expect(treatment("io_uring_setup") == .refused(errno: ENOSYS))
        #expect(treatment("open_by_handle_at") == .refused(errno: EOPNOTSUPP))
        #expect(treatment("bpf") == .refused(errno: EPERM))
        #expect(treatment("uname") == .emulated)
        #expect(treatment("syslog") == .emulated)
        #expect(treatment("getppid") == .direct)
        // execve: seen by the warden unless it carries the init's marks in its unused arguments.
        #expect(treatment("execveat") == .observed && treatment("execve") == nil)
        let execve = SandboxPolicy.entries.filter { $0.name == "execve" }
        #expect(execve.filter { $0.treatment == .direct }.map { $0.args.map(\.index) } == [[3, 4, 5]])
        #expect(execve.filter { $0.treatment == .observed }.map { $0.args.map(\.op) } == Array(repeating: ["SCMP_CMP_NE"], count: 3))
        #expect(SandboxPolicy.summary.observed == 2)
        #expect(treatment("clone") == nil, "clone is only allowed with an argument filter")
    }
}

@Suite struct KernelIdentityTests {
    @Test func releaseKeepsHostNumbersAndNamesVeil() {
        let identity = KernelIdentity.current()
        #expect(identity.release.hasSuffix("-veil"))
        #expect(identity.release.first?.isNumber == true)
        #expect(identity.procVersion.contains(identity.release))
    }

    @Test func bootLogStartsWithTheMarker() {
        let log = KernelIdentity.current().bootLog(sandboxID: "x", policy: (1, 2, 3))
        #expect(log.split(separator: "\n").first?.hasSuffix("Starting veil...") == true)
        #expect(log.hasPrefix("[    0.000000] "))
    }

    @Test func meminfoShowsTheLimit() {
        let text = MemInfo.text(totalBytes: 256 << 20, usedBytes: 16 << 20, cachedBytes: 4 << 20)
        #expect(text.contains("MemTotal:         262144 kB"))
        #expect(text.contains("MemFree:          245760 kB"))
        #expect(text.contains("MemAvailable:     249856 kB"))
        #expect(text.contains("Cached:             4096 kB"))
    }

    @Test func cpuinfoIsCut() {
        let host = "processor\t: 0\nmodel\t: a\n\nprocessor\t: 1\nmodel\t: a\n\n"
        #expect(ProcViews.cpuinfo(host: host, count: 1) == "processor\t: 0\nmodel\t: a\n\n")
        #expect(ProcViews.cpus(quota: 150_000, period: 100_000) == 2)
        #expect(ProcViews.cpus(quota: -1, period: 100_000) == nil)
    }
}

@Suite struct IDPoolTests {
    @Test func allocatesDistinctRangesAndReclaimsStaleOnes() throws {
        let dir = "/tmp/veil-idpool-test-\(getpid())"
        defer { _ = try? VeilSandboxTestSupport.removeAll(dir) }
        let pool = IDPool(directory: dir, start: 1 << 30, blockSize: 65536, slots: 3)
        let ownerA = dir + "-a", ownerB = dir + "-b"
        mkdir(ownerA, 0o700); mkdir(ownerB, 0o700)
        defer { rmdir(ownerA); rmdir(ownerB) }
        let a = try pool.allocate(owner: ownerA)
        let b = try pool.allocate(owner: ownerB)
        #expect(a != b)
        #expect(pool.hostID(slot: b) - pool.hostID(slot: a) == 65536 * (b - a))
        pool.release(slot: a, owner: ownerA)
        #expect(try pool.allocate(owner: ownerA) == a)
        // An owner that vanished without releasing leaves a stale slot, which is reused first.
        rmdir(ownerB)
        let c = try pool.allocate(owner: ownerA)
        #expect(c == b)
        let d = try pool.allocate(owner: ownerA)
        #expect(d == 2)
        #expect(throws: LinuxError.self) { try pool.allocate(owner: ownerA) }
    }

    @Test func parsesStartAndSlots() {
        #expect(IDPool.parse("100000:10")?.start == 100000)
        #expect(IDPool.parse("100000") == nil)
        #expect(IDPool.parse("4294000000:100") == nil)
    }
}

enum VeilSandboxTestSupport {
    static func removeAll(_ path: String) throws {
        guard let dir = opendir(path) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(dir)
        rmdir(path)
    }
}

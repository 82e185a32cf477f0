import CVeilLinux
import Glibc
import Testing
import VeilLinux
@testable import VeilWarden

/// The warden's decisions for the calls a sandbox's filter sends it, without a seccomp listener:
/// each answer's bytes go to a buffer instead of the caller's memory.
@Suite struct ResponderTests {
    /// What one answered call wrote, and where.
    final class Capture {
        var writes: [(address: UInt64, bytes: [UInt8])] = []
        /// The errno the "caller's memory" fails with (0: the write lands).
        var failure: Int32 = 0

        func write(_ bytes: UnsafeRawBufferPointer, _ address: UInt64) -> Int32 {
            if failure != 0 { return failure }
            writes.append((address, Array(bytes)))
            return 0
        }
    }

    static func config(bootLog: String = "", memoryDirectory: String? = nil, bootedSecondsAgo: UInt64 = 0) -> WardenConfig {
        WardenConfig(release: "6.1.0-veil", version: "#1 SMP veil", machine: "x86_64",
                     bootedAt: BootClock.now() - bootedSecondsAgo * 1_000_000_000,
                     memoryDirectory: memoryDirectory, memoryUnified: true, bootLog: bootLog)
    }

    static func call(_ nr: Int32, _ args: UInt64...) -> veil_notification {
        var n = veil_notification()
        n.id = 7
        n.pid = UInt32(getpid())
        n.nr = nr
        withUnsafeMutableBytes(of: &n.args) { raw in
            for (index, value) in args.enumerated() { raw.storeBytes(of: value, toByteOffset: index * 8, as: UInt64.self) }
        }
        return n
    }

    static func text<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    @Test("uname: the sandbox's kernel identity, written to the caller's buffer")
    func unameAnswer() throws {
        let responder = Responder(config: Self.config())
        let capture = Capture()
        let (value, error) = responder.answer(Self.call(Int32(VEIL_NR_UNAME), 0x1000), writing: capture.write)
        #expect(value == 0 && error == 0)
        let write = try #require(capture.writes.first)
        #expect(write.address == 0x1000 && write.bytes.count == MemoryLayout<utsname>.size)
        let name = write.bytes.withUnsafeBytes { $0.loadUnaligned(as: utsname.self) }
        #expect(Self.text(name.sysname) == "Linux")
        #expect(Self.text(name.release) == "6.1.0-veil")
        #expect(Self.text(name.version) == "#1 SMP veil")
        #expect(Self.text(name.machine) == "x86_64")
    }

    @Test("sysinfo: memory and processes of the sandbox's cgroup, uptime since the sandbox booted")
    func sysinfoAnswer() throws {
        let directory = try TemporaryDirectory()
        try directory.write("memory.max", "1073741824\n")
        try directory.write("memory.current", "104857600\n")
        try directory.write("cgroup.procs", "1\n20\n33\n")
        var hostTotal: UInt64 = 0, hostFree: UInt64 = 0
        veil_host_memory(&hostTotal, &hostFree)
        let responder = Responder(config: Self.config(memoryDirectory: directory.path, bootedSecondsAgo: 42))
        let capture = Capture()
        let (value, error) = responder.answer(Self.call(Int32(VEIL_NR_SYSINFO), 0x2000), writing: capture.write)
        #expect(value == 0 && error == 0)
        let write = try #require(capture.writes.first)
        #expect(write.address == 0x2000 && write.bytes.count == 112)
        // struct sysinfo on 64-bit Linux: uptime at 0, totalram 32, freeram 40, procs 80, mem_unit 104.
        func field<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
            write.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        }
        let total = min(1 << 30, hostTotal)
        #expect(field(104, UInt32.self) == 1 && field(32, UInt64.self) == total)
        #expect(field(40, UInt64.self) == total - min(100 << 20, total))
        #expect(field(80, UInt16.self) == 3)
        let uptime = field(0, Int64.self)
        #expect(uptime >= 42 && uptime < 60)
    }

    @Test("syslog: reads the boot log's tail, reports its size, and refuses console levels")
    func syslogAnswers() throws {
        let log = "veil: sandbox booted\nsecond line\n"
        let responder = Responder(config: Self.config(bootLog: log))
        let capture = Capture()
        // SYSLOG_ACTION_READ_ALL with a 12-byte buffer: the last 12 bytes.
        let (read, readError) = responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 3, 0x3000, 12), writing: capture.write)
        #expect(read == 12 && readError == 0)
        #expect(capture.writes.first.map { String(decoding: $0.bytes, as: UTF8.self) } == "second line\n")
        #expect(capture.writes.first?.address == 0x3000)
        // Open, close and clear succeed and change nothing; sizes are the log's.
        for action: UInt64 in [0, 1, 5] {
            #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), action), writing: capture.write) == (0, 0))
        }
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 9), writing: capture.write) == (Int64(log.utf8.count), 0))
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 10), writing: capture.write) == (4096, 0))
        // Console levels belong to the host; a negative length is invalid; a zero one reads nothing.
        for action: UInt64 in [6, 7, 8] {
            #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), action), writing: capture.write) == (-1, EPERM))
        }
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 2, 0x3000, UInt64(bitPattern: -1)), writing: capture.write) == (-1, EINVAL))
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 2, 0x3000, 0), writing: capture.write) == (0, 0))
        #expect(capture.writes.count == 1)
    }

    @Test("a call the warden does not emulate is failed with ENOSYS, never let through")
    func refusesOtherCalls() {
        let responder = Responder(config: Self.config())
        let capture = Capture()
        for nr: Int32 in [0, 59 /* execve */, 101 /* ptrace */, 165 /* mount */] {
            #expect(responder.answer(Self.call(nr, 0x1000), writing: capture.write) == (-1, ENOSYS))
        }
        #expect(capture.writes.isEmpty)
    }

    @Test("an answer that cannot reach the caller fails the call with the write's errno")
    func failedDelivery() {
        let responder = Responder(config: Self.config(bootLog: "boot\n"))
        let capture = Capture()
        capture.failure = EFAULT
        #expect(responder.answer(Self.call(Int32(VEIL_NR_UNAME), 0x1000), writing: capture.write) == (-1, EFAULT))
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSLOG), 3, 0x3000, 5), writing: capture.write) == (-1, EFAULT))
        #expect(responder.answer(Self.call(Int32(VEIL_NR_SYSINFO), 0x2000), writing: capture.write) == (-1, EFAULT))
    }

    @Test("a caller that is gone is answered ESRCH: nothing is written to a pid that may be reused")
    func vanishedCaller() {
        let responder = Responder(config: Self.config())
        var n = Self.call(Int32(VEIL_NR_UNAME), 0x1000)
        n.pid = UInt32(Int32.max)  // above pid_max: no such task
        let bytes: [UInt8] = [1, 2, 3]
        let error = bytes.withUnsafeBytes { responder.memory.write($0, to: 0x1000, for: n, listener: -1) }
        #expect(error == ESRCH)
    }

    @Test("warden.conf round-trips every field")
    func configRoundTrip() throws {
        let directory = try TemporaryDirectory()
        var config = Self.config(bootLog: "boot log\n", memoryDirectory: "/sys/fs/cgroup/pod")
        config.cpuDirectory = "/sys/fs/cgroup/pod/cpu"
        config.cpuUnified = true
        config.cpus = 2
        config.cgroups = ["/sys/fs/cgroup/a", "/sys/fs/cgroup/b"]
        try config.save(directory: directory.path)
        #expect(try WardenConfig.load(directory: directory.path) == config)
    }
}

/// A directory under /tmp removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/veil-warden-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TemporaryDirectoryError(errno: errno) }
        path = String(cString: made)
    }

    func write(_ name: String, _ text: String) throws {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TemporaryDirectoryError(errno: errno) }
        defer { close(fd) }
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else { throw TemporaryDirectoryError(errno: errno) }
    }

    deinit {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

struct TemporaryDirectoryError: Error { let errno: Int32 }

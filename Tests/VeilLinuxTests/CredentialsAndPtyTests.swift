import Glibc
import Testing
@testable import VeilLinux

@Suite("CapabilitySet")
struct CapabilitySetTests {
    @Test func membership() {
        let set = CapabilitySet([0, 5, 21, 40])
        for n: Int32 in [0, 5, 21, 40] { #expect(set.contains(n)) }
        for n: Int32 in [1, 4, 6, 20, 22, 39, 41, 63] { #expect(!set.contains(n)) }
        #expect(!set.contains(-1))
        #expect(!set.contains(64))
        #expect(CapabilitySet().bits == 0)
    }

    @Test func outOfRangeNumbersAreIgnored() {
        #expect(CapabilitySet([-1, 64, 100]) == CapabilitySet())
        #expect(CapabilitySet([3, 3, 3]) == CapabilitySet([3]))
    }

    @Test func wordsSplitLowAndHigh() {
        let set = CapabilitySet([0, 31, 32, 40])
        #expect(set.words == [0x8000_0001, 0x0000_0101])
        #expect(CapabilitySet().words == [0, 0])
    }

    @Test func lastCapabilityMatchesKernel() throws {
        let text = try FS.readString("/proc/sys/kernel/cap_last_cap")
        #expect(Credentials.lastCapability == Int32(text.trimmingCharacters()))
        #expect(Credentials.lastCapability >= 36)
        #expect("  \t40\n".trimmingCharacters() == "40")
        #expect("".trimmingCharacters() == "")
    }
}

@Suite("Pty")
struct PtyTests {
    @Test func openGivesAnExistingSlaveAndWindowSizeRoundTrips() throws {
        let (master, slavePath) = try Pty.open()
        #expect(slavePath.hasPrefix("/dev/pts/"))
        #expect(Int(slavePath.dropFirst("/dev/pts/".count)) != nil)
        #expect(FS.exists(slavePath))

        Pty.setWindowSize(master.raw, rows: 43, columns: 132)
        let size = try #require(Pty.windowSize(master.raw))
        #expect(size.rows == 43)
        #expect(size.columns == 132)

        let slave = try FileDescriptor.open(slavePath, O_RDWR | O_NOCTTY)
        let seen = try #require(Pty.windowSize(slave.raw))
        #expect(seen.rows == 43 && seen.columns == 132)

        // Bytes written on the slave come out of the master.
        try slave.write(Array("ok".utf8))
        var p = pollfd(fd: master.raw, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 1000) == 1)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = read(master.raw, &buffer, buffer.count)
        #expect(n == 2)
        #expect(Array(buffer.prefix(max(0, n))) == Array("ok".utf8))
    }

    @Test func windowSizeOfANonTerminalIsNil() throws {
        let fd = try FileDescriptor.open("/dev/null", O_RDONLY)
        #expect(Pty.windowSize(fd.raw) == nil)
    }

    @Test func openOfMissingPtmxThrows() {
        #expect(throws: LinuxError.self) { _ = try Pty.open(ptmx: "/tmp/veil-unit-no-ptmx") }
    }
}

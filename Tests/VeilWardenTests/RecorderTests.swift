import CVeilLinux
import Testing
@testable import VeilWarden

/// Record mode: which notified calls the recorder answers as the warden (never continues to the host).
@Suite struct RecorderTests {
    func notification(arch: UInt32, nr: Int32) -> veil_notification {
        var n = veil_notification()
        n.arch = arch
        n.nr = nr
        return n
    }

    @Test("uname, syslog and sysinfo of x86_64 are answered as the warden; other calls and other ABIs continue")
    func emulatedCalls() {
        let x86_64: UInt32 = 0xC000_003E, i386: UInt32 = 0x4000_0003
        for nr in [Int32(VEIL_NR_UNAME), Int32(VEIL_NR_SYSLOG), Int32(VEIL_NR_SYSINFO)] {
            #expect(CallRecorder.emulated(notification(arch: x86_64, nr: nr)))
            // x32's numbers carry bit 30; i386's 63 is dup2, not uname.
            #expect(!CallRecorder.emulated(notification(arch: x86_64, nr: 0x4000_0000 | nr)))
            #expect(!CallRecorder.emulated(notification(arch: i386, nr: nr)))
        }
        #expect(!CallRecorder.emulated(notification(arch: x86_64, nr: 0)))  // read
        #expect(!CallRecorder.emulated(notification(arch: x86_64, nr: 59)))  // execve
    }
}

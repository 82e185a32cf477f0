import Foundation
import Glibc
import TTRPC
import VeilLinux

/// A pty master received from the runtime, copied to and from the process's fifos.
final class Console: @unchecked Sendable {
    let master: Int32
    private let outputDone = DispatchSemaphore(value: 0)
    private let stdinFD = Locked<Int32>(-1)

    init(master: Int32, stdin: String, stdout: String) {
        self.master = master
        let out: Int32 = stdout.isEmpty ? -1 : open(stdout, O_RDWR | O_CLOEXEC)
        let done = outputDone
        let outThread = Thread {
            var buffer = [UInt8](repeating: 0, count: 32768)
            while true {
                let n = read(master, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if out >= 0 { _ = buffer.withUnsafeBytes { writeAll(out, UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            }
            if out >= 0 { close(out) }
            done.signal()
        }
        outThread.start()
        if !stdin.isEmpty {
            let stdinFD = self.stdinFD
            let inThread = Thread {
                // Blocks until containerd's client opens the writing side.
                let fd = open(stdin, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { return }
                stdinFD.withLock { $0 = fd }
                var buffer = [UInt8](repeating: 0, count: 32768)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    if !buffer.withUnsafeBytes({ writeAll(master, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { break }
                }
                stdinFD.withLock { current in
                    if current == fd { close(fd) }
                    current = -1
                }
            }
            inThread.start()
        }
    }

    /// Waits until the output has been drained (the slave side closed), at most `seconds`.
    func waitForOutput(seconds: Double) {
        if outputDone.wait(timeout: .now() + seconds) == .success { outputDone.signal() }
    }

    func closeStdin() {
        stdinFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    func resize(width: UInt32, height: UInt32) {
        Pty.setWindowSize(master, rows: UInt16(truncatingIfNeeded: height), columns: UInt16(truncatingIfNeeded: width))
    }
}

import Foundation
import Glibc
import Testing
@testable import VeilShim

/// The shim's copy of a process's output into containerd's fifos, on real pipes and fifos.
@Suite struct ProcessIOTests {
    /// A fifo in a fresh directory, and that directory (removed by the caller).
    static func makeFifo() throws -> (path: String, directory: String) {
        let directory = NSTemporaryDirectory() + "veil-pipeio-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/stdout"
        try #require(mkfifo(path, 0o600) == 0, "mkfifo: \(errno)")
        return (path, directory)
    }

    /// What the fifo delivers to a reader that opens it now, until its writer closes it or nothing
    /// comes for `seconds` (the open does not wait for a writer, as ctr's does not).
    static func readFifo(_ path: String, seconds: Int32 = 3) -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return "open failed: \(errno)" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var sawWriter = false
        while true {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, seconds * 1000) == 1 else { break }
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n > 0 { bytes += buffer[0..<n]; sawWriter = true; continue }
            // EOF: the writer closed (before any writer came, a fifo reports hang-up at once: wait on).
            if sawWriter || entry.revents & Int16(POLLIN) != 0 { break }
            usleep(10_000)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("a client that opens its stdout fifo after the process wrote still gets the output (ctr opens it from a goroutine that may run late)")
    func lateReaderGetsOutput() throws {
        let (path, directory) = try Self.makeFifo()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let io = try PipeIO(stdin: "", stdout: path, stderr: "")
        let message = "written before anyone read\n"
        #expect(message.withCString { write(io.childStdout, $0, strlen($0)) } == message.utf8.count)
        io.releaseChildEnds()
        // The reader comes 300 ms late: the process has written and closed its end by then.
        Thread.sleep(forTimeInterval: 0.3)
        #expect(Self.readFifo(path) == message)
        #expect(io.waitForOutput(seconds: 5))
    }

    @Test("with no reader at all, a process that wrote nothing is done at once, and one that wrote is given up on after the grace")
    func noReader() throws {
        let (path, directory) = try Self.makeFifo()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let silent = try PipeIO(stdin: "", stdout: path, stderr: "")
        silent.releaseChildEnds()
        #expect(silent.waitForOutput(seconds: 1))

        let talkative = try PipeIO(stdin: "", stdout: path, stderr: "")
        _ = "nobody reads this\n".withCString { write(talkative.childStdout, $0, strlen($0)) }
        talkative.releaseChildEnds()
        #expect(!talkative.waitForOutput(seconds: 0.5), "the copy waits for a reader for a while")
        #expect(talkative.waitForOutput(seconds: PipeIO.readerGrace + 2), "and then discards the output")
    }
}

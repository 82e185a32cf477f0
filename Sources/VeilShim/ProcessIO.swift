import VeilLinux
import TTRPC
import CVeilLinux
import Foundation
import Glibc

/// A process's stdio without a terminal, as containerd's runc shim does it: the process gets pipes,
/// and the shim copies stdout/stderr pipe → fifo and stdin fifo → pipe.
///
/// The process never writes to containerd's fifos itself, so a client that went away (`ctr run -d`
/// exited) can neither block it (a full fifo nobody reads) nor hand it EPIPE: the shim keeps
/// reading the pipes and, while the fifo has no reader, discards what it reads (retrying the fifo
/// now and then, so a reader that comes back gets the output from then on). While a reader is
/// there the copy blocks on it, so nothing is lost to a slow reader.
final class PipeIO: @unchecked Sendable {
    /// The child's ends, handed to `veil create`/`veil exec` (closed by `releaseChildEnds`).
    private(set) var childStdin: Int32 = -1
    private(set) var childStdout: Int32 = -1
    private(set) var childStderr: Int32 = -1
    /// The shim's end of the stdin pipe (-1 without stdin).
    /// fd: the shim's end of the stdin pipe; copying: the copy owns it; fifo: the fifo it reads.
    private let stdinWriter = Locked<(fd: Int32, copying: Bool, fifo: Int32)>((-1, false, -1))
    private let stdinPath: String
    private let outputs = DispatchGroup()
    private var stdinStarted = false

    init(stdin: String, stdout: String, stderr: String) throws {
        stdinPath = stdin
        var opened: [Int32] = []
        do {
            if stdin.isEmpty {
                childStdin = try openFD("/dev/null", O_RDONLY)
                opened.append(childStdin)
            } else {
                let (reader, writer) = try makePipe()
                opened += [reader, writer]
                childStdin = reader
                stdinWriter.withLock { $0.fd = writer }
            }
            for (path, isStdout) in [(stdout, true), (stderr, false)] {
                let childEnd: Int32
                if path.isEmpty {
                    childEnd = try openFD("/dev/null", O_WRONLY)
                    opened.append(childEnd)
                } else {
                    let (reader, writer) = try makePipe()
                    opened += [reader, writer]
                    childEnd = writer
                    startOutputCopy(from: reader, to: path)
                }
                if isStdout { childStdout = childEnd } else { childStderr = childEnd }
            }
        } catch {
            // Copies already started end at EOF once their writers are closed.
            for fd in opened { close(fd) }
            stdinWriter.withLock { $0.fd = -1 }
            throw error
        }
    }

    /// Closes the shim's copies of the child's ends (after the runtime handed them to the process):
    /// from then on the output copies end when the process (and its children) close theirs.
    func releaseChildEnds() {
        for fd in [childStdin, childStdout, childStderr] where fd >= 0 { close(fd) }
        childStdin = -1
        childStdout = -1
        childStderr = -1
    }

    /// Starts copying the stdin fifo into the pipe (after the process exists: until then nothing reads it).
    func startStdinCopy() {
        guard !stdinPath.isEmpty, !stdinStarted else { return }
        let writer = stdinWriter
        // The copy owns the pipe's number from here on: only it closes it (CloseIO swaps in /dev/null).
        guard let fd: Int32 = writer.withLock({ state in
            guard state.fd >= 0 else { return nil }
            state.copying = true
            return state.fd
        }) else { return }
        stdinStarted = true
        let path = stdinPath
        let thread = Thread {
            // Blocks until a client opens the writing side (CloseIO/cleanup unblock it).
            let fifo = open(path, O_RDONLY | O_CLOEXEC)
            if fifo >= 0 {
                writer.withLock { $0.fifo = fifo }
                var buffer = [UInt8](repeating: 0, count: 32768)
                while true {
                    let n = read(fifo, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }  // EOF, or (after CloseIO) nothing more buffered
                    if !buffer.withUnsafeBytes({ writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { break }
                }
            }
            // The client closed stdin: so does the process's.
            writer.withLock { state in
                if fifo >= 0 { close(fifo) }
                state.fifo = -1
                close(state.fd)
                state.fd = -1
                state.copying = false
            }
        }
        thread.name = "stdin-copy"
        thread.start()
    }

    /// CloseIO: the process reads EOF from stdin once what the client wrote before is copied.
    /// The client has closed its end by then, but the fifo may still hold data: the copy drains it
    /// (its reads no longer wait) and closes the pipe; if it does not within a second (another
    /// writer holds the fifo, or a read was already waiting), the pipe is closed under it.
    func closeStdin() {
        let copying: Bool = stdinWriter.withLock { state in
            guard state.copying, state.fifo >= 0 else { return false }
            let flags = fcntl(state.fifo, F_GETFL)
            if flags >= 0 { _ = fcntl(state.fifo, F_SETFL, flags | O_NONBLOCK) }
            return true
        }
        if copying {
            Thread.detachNewThread { [self] in
                for _ in 0..<100 {
                    if stdinWriter.withLock({ $0.fd < 0 }) { return }
                    usleep(10_000)
                }
                closeStdinNow()
            }
            return
        }
        closeStdinNow()
    }

    private func closeStdinNow() {
        stdinWriter.withLock { state in
            guard state.fd >= 0 else { return }
            if state.copying {
                // Swap /dev/null in under the same number rather than closing it: the copy still
                // uses that number (and closes it), and the pipe's writing end is released (EOF).
                let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
                if null >= 0 {
                    dup2(null, state.fd)
                    _ = fcntl(state.fd, F_SETFD, FD_CLOEXEC)
                    close(null)
                }
            } else {
                close(state.fd)
                state.fd = -1
            }
        }
        unblockStdinOpen()
    }

    /// The stdin copy may still be blocked opening a fifo no client ever opened for writing:
    /// opening it for writing ourselves (it has a reader then) lets that open return.
    private func unblockStdinOpen() {
        guard !stdinPath.isEmpty, stdinStarted else { return }
        let fd = open(stdinPath, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { close(fd) }
    }

    /// Waits until the stdout/stderr copies have finished (every writer of the pipes closed), at
    /// most `seconds`; true when they did.
    @discardableResult
    func waitForOutput(seconds: Double) -> Bool {
        outputs.wait(timeout: .now() + seconds) == .success
    }

    /// Releases everything once the process is gone (delete).
    func cleanup() {
        releaseChildEnds()
        closeStdinNow()
    }

    private func startOutputCopy(from reader: Int32, to path: String) {
        outputs.enter()
        let group = outputs
        let thread = Thread {
            var fifo = PipeIO.awaitFifoReader(path, whileOutputPending: reader)
            var buffer = [UInt8](repeating: 0, count: 32768)
            var discarded = 0
            while true {
                let n = read(reader, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if fifo < 0 {
                    // Nobody reads: try again every 1 MiB discarded or so (cheap, and a client that
                    // attaches again gets the output from then on).
                    discarded += n
                    if discarded < 1 << 20 { continue }
                    discarded = 0
                    fifo = PipeIO.openFifoForWriting(path)
                    if fifo < 0 { continue }
                }
                let written = buffer.withUnsafeBytes { writeAll(fifo, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                if !written {
                    // EPIPE: the last reader went away (SIGPIPE is ignored in the shim).
                    close(fifo)
                    fifo = -1
                }
            }
            if fifo >= 0 { close(fifo) }
            close(reader)
            group.leave()
        }
        thread.name = "output-copy"
        thread.start()
    }

    /// The fifo opened for writing once its client opened it for reading, or -1 when none did within
    /// `readerGrace` (or the process closed its output without writing anything).
    ///
    /// containerd's clients (ctr, the CRI plugin) open their fifos for reading from a goroutine that
    /// may run only after they sent Create/Exec: on a busy node the shim's first open can come
    /// first and find no reader (ENXIO), and the process's first output would be discarded.
    /// containerd's own shim blocks on that open; this one waits a bounded time, while the pipe
    /// buffers what the process writes meanwhile.
    private static func awaitFifoReader(_ path: String, whileOutputPending reader: Int32) -> Int32 {
        let deadline = Date().addingTimeInterval(readerGrace)
        var pause: useconds_t = 1_000
        while true {
            let fifo = openFifoForWriting(path)
            if fifo >= 0 || Date() >= deadline { return fifo }
            // Writers all gone and nothing buffered: there is nothing to deliver, so no reason to wait.
            var entry = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 0) == 1, entry.revents & Int16(POLLIN) == 0, entry.revents & Int16(POLLHUP) != 0 { return -1 }
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
    }

    /// How long a fifo's client has to open it for reading before the output starts being discarded.
    /// Generous: a client's reader (ctr opens its fifos from a goroutine) can be held off for
    /// seconds on a loaded node (a fresh-clone run once lost a `ctr task exec`'s whole output, the
    /// exec reporting 0), and only a client that never comes pays the wait (its exit is reported
    /// once the output is given up).
    static let readerGrace: TimeInterval = 10

    /// The fifo opened write-only (blocking writes), or -1 when it has no reader now (ENXIO).
    private static func openFifoForWriting(_ path: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { setBlocking(fd) }
        return fd
    }
}

/// A close-on-exec pipe: (read end, write end).
func makePipe() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    let result = veil_pipe_cloexec(&fds)
    guard result == 0 else { throw ShimError("pipe2: \(String(cString: strerror(-result)))") }
    return (fds[0], fds[1])
}

import CVeilLinux
import Glibc
import Testing
import VeilLinux

@Suite("SyncSocket")
struct SyncSocketTests {
    @Test func messagesWithAndWithoutPayload() throws {
        let (a, b) = try SyncSocket.pair()
        try a.send(type: 42, payload: Array("hello".utf8))
        try a.send(type: 7)
        let big = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try a.send(type: 9, payload: big)

        let first = try #require(try b.receive())
        #expect(first.type == 42)
        #expect(first.payload == Array("hello".utf8))
        let second = try #require(try b.receive())
        #expect(second.type == 7)
        #expect(second.payload.isEmpty)
        let third = try #require(try b.receive())
        #expect(third.type == 9)
        #expect(third.payload == big)
    }

    @Test func bothDirections() throws {
        let (a, b) = try SyncSocket.pair()
        try a.send(type: UInt32(VEIL_SYNC_STAGE1_READY))
        #expect(try b.receive()?.type == UInt32(VEIL_SYNC_STAGE1_READY))
        try b.send(type: UInt32(VEIL_SYNC_ACK), payload: [1, 2, 3])
        let reply = try #require(try a.receive())
        #expect(reply.type == UInt32(VEIL_SYNC_ACK))
        #expect(reply.payload == [1, 2, 3])
    }

    @Test func endOfStreamIsNil() throws {
        let (a, b) = try SyncSocket.pair()
        try a.send(type: 1, payload: [9])
        a.fd.close()
        #expect(try b.receive()?.payload == [9])
        #expect(try b.receive() == nil)
        #expect(try b.receive() == nil)
    }

    @Test func truncatedPayloadIsNil() throws {
        let (a, b) = try SyncSocket.pair()
        // A header promising 10 bytes, then only 3 and EOF.
        var header = veil_sync_header(type: 5, length: 10)
        let raw = withUnsafeBytes(of: &header) { Array($0) } + [1, 2, 3]
        try a.fd.write(raw)
        a.fd.close()
        #expect(try b.receive() == nil)
    }

    @Test func truncatedHeaderIsNil() throws {
        let (a, b) = try SyncSocket.pair()
        try a.fd.write([1, 0, 0])
        a.fd.close()
        #expect(try b.receive() == nil)
    }

    @Test func sendToClosedPeerThrowsEPIPEWithoutSignal() throws {
        let (a, b) = try SyncSocket.pair()
        b.fd.close()
        do {
            try a.send(type: 1, payload: [1])
            Issue.record("send to a closed peer succeeded")
        } catch {
            #expect(error.errno == EPIPE)
        }
    }

    @Test func pairIsCloexec() throws {
        let (a, b) = try SyncSocket.pair()
        for fd in [a.fd.raw, b.fd.raw] {
            let flags = try #require(fdFlags(fd))
            #expect(flags & Int(O_CLOEXEC) != 0)
        }
    }
}

/// A listening unix socket at `path`, made with plain Glibc calls.
private func listenUnix(_ path: String) throws -> FileDescriptor {
    let server = FileDescriptor(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
    guard server.raw >= 0 else { throw LinuxError("socket") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw LinuxError("bind", path, errno: ENAMETOOLONG) }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server.raw, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0 else { throw LinuxError("bind", path) }
    guard listen(server.raw, 4) == 0 else { throw LinuxError("listen", path) }
    return server
}

private func acceptOne(_ server: FileDescriptor) throws -> FileDescriptor {
    let fd = accept(server.raw, nil, nil)
    guard fd >= 0 else { throw LinuxError("accept") }
    _ = veil_set_cloexec(fd, 1)
    return FileDescriptor(fd)
}

@Suite("UnixSocket")
struct UnixSocketTests {
    @Test func passesAPipeThroughSCMRights() throws {
        let dir = try makeTempDir("sock")
        defer { removeTree(dir) }
        let path = dir + "/console.sock"
        let server = try listenUnix(path)
        let client = try UnixSocket.connect(path: path)
        let connection = try acceptOne(server)

        let (pipeRead, pipeWrite) = try makePipe()
        try UnixSocket.sendFD(socket: client.raw, fd: pipeRead.raw, message: "/dev/pts/77")
        pipeRead.close()  // the receiver's copy must keep the pipe's read end open

        let (received, message) = try UnixSocket.receiveFD(socket: connection.raw)
        #expect(message == "/dev/pts/77")
        #expect(received.raw >= 0)
        #expect(received.raw != pipeWrite.raw)
        let flags = try #require(fdFlags(received.raw))
        #expect(flags & Int(O_CLOEXEC) != 0)

        try pipeWrite.write(Array("through the socket".utf8))
        pipeWrite.close()
        #expect(try received.readAll() == Array("through the socket".utf8))
    }

    @Test func receiveWithoutAnFDIsAnError() throws {
        let dir = try makeTempDir("sock")
        defer { removeTree(dir) }
        let path = dir + "/s"
        let server = try listenUnix(path)
        let client = try UnixSocket.connect(path: path)
        let connection = try acceptOne(server)
        try client.write(Array("no fd here".utf8))
        do {
            _ = try UnixSocket.receiveFD(socket: connection.raw)
            Issue.record("receiveFD without SCM_RIGHTS succeeded")
        } catch {
            #expect(error.errno == EBADMSG)
        }
    }

    @Test func connectToMissingSocketNamesThePath() throws {
        let dir = try makeTempDir("sock")
        defer { removeTree(dir) }
        do {
            _ = try UnixSocket.connect(path: dir + "/missing.sock")
            Issue.record("connect succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.description.hasPrefix("connect \(dir)/missing.sock: "))
        }
    }

    @Test func connectRejectsOverlongPath() {
        let long = "/tmp/" + String(repeating: "x", count: 200)
        do {
            _ = try UnixSocket.connect(path: long)
            Issue.record("connect succeeded")
        } catch {
            #expect(error.errno == ENAMETOOLONG)
        }
    }
}

@Suite("NetworkInterface")
struct NetworkInterfaceTests {
    @Test func hostLoopbackIsUpAndBringingItUpAgainIsANoOp() throws {
        #expect(try NetworkInterface.isUp("lo"))
        try NetworkInterface.bringUp("lo")
        #expect(try NetworkInterface.isUp("lo"))
    }

    @Test func badNamesNameTheInterface() {
        #expect { try NetworkInterface.bringUp("veil-none0") } throws: { error in
            let error = error as? LinuxError
            return error?.errno == ENODEV && error?.description.contains("veil-none0") == true
        }
        #expect { try NetworkInterface.bringUp(String(repeating: "x", count: 32)) } throws: { error in
            (error as? LinuxError)?.errno == EINVAL
        }
    }
}

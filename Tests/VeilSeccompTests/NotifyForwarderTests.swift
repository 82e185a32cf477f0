import FoundationEssentials
import Glibc
import Testing
import VeilLinux
import VeilSeccomp

@Suite struct NotifyForwarderTests {
    let state = #"{"ociVersion":"1.1.0","id":"c1","status":"creating","pid":4242,"bundle":"/b","annotations":{"k":"v"}}"#

    @Test func processStateFormat() throws {
        let bytes = try SeccompNotifyForwarder.processState(stateJSON: Array(state.utf8), metadata: "MKNOD=/dev/null;\"x\"")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"{"ociVersion":"1.1.0","fds":["seccompFd"],"pid":4242,"metadata":"MKNOD=/dev/null;\"x\"","state":"# + state + "}")
        let none = try SeccompNotifyForwarder.processState(stateJSON: Array(state.utf8), metadata: nil)
        #expect(!String(decoding: none, as: UTF8.self).contains("metadata"))
        #expect(throws: LinuxError.self) { _ = try SeccompNotifyForwarder.processState(stateJSON: Array("nope".utf8), metadata: nil) }
    }

    @Test func sendsStateAndFD() throws {
        let path = "/tmp/veil-seccomp-agent-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(server >= 0)
        defer { close(server) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(server, 1) == 0)

        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        try SeccompNotifyForwarder.send(listener: fds[0], to: path, stateJSON: Array(state.utf8), metadata: "m")

        let conn = accept(server, nil, nil)
        #expect(conn >= 0)
        defer { close(conn) }
        let (received, message) = try UnixSocket.receiveFD(socket: conn)
        #expect(message == #"{"ociVersion":"1.1.0","fds":["seccompFd"],"pid":4242,"metadata":"m","state":"# + state + "}")
        var a = stat(), b = stat()
        #expect(fstat(received.raw, &a) == 0 && fstat(fds[0], &b) == 0)
        #expect(a.st_ino == b.st_ino)
    }

    @Test func missingAgentIsAnError() {
        #expect(throws: LinuxError.self) {
            try SeccompNotifyForwarder.send(listener: 0, to: "/nonexistent/agent.sock", stateJSON: Array(state.utf8), metadata: nil)
        }
    }
}

import CVeilLinux
import FoundationEssentials
import Glibc
import VeilLinux
import VeilSpec

/// Hands a seccomp listener fd to the agent at `linux.seccomp.listenerPath`.
public enum SeccompNotifyForwarder {
    /// Connects to the unix stream socket at `path` and sends, in one message, the
    /// runtime-spec's container process state with the listener fd in SCM_RIGHTS:
    /// `{"ociVersion":…,"fds":["seccompFd"],"pid":…,"metadata":…,"state":<state>}`.
    /// `ociVersion` and `pid` are those of `stateJSON` (the container's state, as `veil state`
    /// prints it); `metadata` is `linux.seccomp.listenerMetadata`, left out when nil.
    public static func send(listener: Int32, to path: String, stateJSON: [UInt8], metadata: String?) throws(LinuxError) {
        let message = try processState(stateJSON: stateJSON, metadata: metadata)
        let socket = try UnixSocket.connect(path: path)
        try sysNeg("sendmsg", path) {
            message.withUnsafeBytes { raw in
                veilSendFD(socket.raw, listener, raw)
            }
        }
    }

    /// The containerProcessState JSON sent to the agent.
    public static func processState(stateJSON: [UInt8], metadata: String?) throws(LinuxError) -> [UInt8] {
        struct StateHead: Decodable { var ociVersion: String; var pid: Int? }
        let head: StateHead
        do {
            head = try JSONDecoder().decode(StateHead.self, from: Data(stateJSON))
        } catch {
            throw LinuxError("seccomp notify", "container state is not valid JSON", errno: EINVAL)
        }
        var text = "{\"ociVersion\":\(quoted(head.ociVersion)),\"fds\":[\"seccompFd\"],\"pid\":\(head.pid ?? 0)"
        if let metadata { text += ",\"metadata\":\(quoted(metadata))" }
        text += ",\"state\":"
        return Array(text.utf8) + stateJSON + Array("}".utf8)
    }
}

private func veilSendFD(_ socket: Int32, _ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    guard let base = bytes.baseAddress else { return -EINVAL }
    return veil_send_fd(socket, fd, base.assumingMemoryBound(to: CChar.self), bytes.count)
}

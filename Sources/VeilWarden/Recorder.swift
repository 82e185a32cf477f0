import CVeilLinux
import Glibc

/// One system call a recorded container made: the audit architecture the kernel reported and the
/// number (x32 calls keep their 0x40000000 bit, as the kernel reports them).
public struct RecordedCall: Hashable, Sendable {
    public let arch: UInt32
    public let nr: Int32

    public init(arch: UInt32, nr: Int32) {
        self.arch = arch
        self.nr = nr
    }
}

/// Record mode's notification loop (`veil seccomp record`): the listener of the record filter, the
/// newest filter of a container, whose default action notifies. Every notified call is noted and
/// let continue to the kernel (SECCOMP_USER_NOTIF_FLAG_CONTINUE), except, at the sandbox level, the
/// calls the sandbox policy routes to the warden: when two filters notify, the kernel tells only
/// the newest (this one), so those are answered here exactly as the warden answers them (the same
/// `Responder`, the sandbox's own `WardenConfig`), never let through to the host's kernel.
/// Calls an older filter refuses (ERRNO, KILL outrank NOTIFY) never arrive, so recording lowers nothing.
public enum CallRecorder {
    static let nativeArch: UInt32 = 0xC000_003E  // AUDIT_ARCH_X86_64
    static let x32Bit: Int32 = 0x4000_0000

    /// Serves `listener` until no task uses its filter any more (POLLHUP), and returns the calls
    /// seen. `warden`: the sandbox's configuration when the container runs at the sandbox level;
    /// the caller must have joined the sandbox's UTS namespace (uname's nodename).
    public static func record(listener: Int32, warden: WardenConfig?) -> Set<RecordedCall> {
        _ = veil_notify_sync_wakeup(listener)
        let responder = warden.map { Responder(config: $0) }
        var seen = Set<RecordedCall>()
        while true {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if entry.revents & Int16(POLLIN) != 0 {
                var notification = veil_notification()
                // ENOENT: the caller died (or was interrupted) before we took its call.
                guard veil_notify_receive(listener, &notification) == 0 else { continue }
                seen.insert(RecordedCall(arch: notification.arch, nr: notification.nr))
                if let responder, emulated(notification) || Responder.isExec(notification) {
                    _ = Responder.send(responder.reply(to: notification, listener: listener), for: notification, listener: listener)
                } else {
                    _ = veil_notify_continue(listener, notification.id)
                }
                continue
            }
            if entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { break }
        }
        return seen
    }

    /// The calls the sandbox policy sends to the warden (native architecture only: the policy
    /// kills 32-bit entry points before any filter could notify).
    static func emulated(_ n: veil_notification) -> Bool {
        guard n.arch == nativeArch, n.nr & x32Bit == 0 else { return false }
        return n.nr == Int32(VEIL_NR_UNAME) || n.nr == Int32(VEIL_NR_SYSLOG) || n.nr == Int32(VEIL_NR_SYSINFO)
    }
}

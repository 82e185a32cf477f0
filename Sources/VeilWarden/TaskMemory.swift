import CVeilLinux
import Glibc

/// Writes answers into callers' memory through handles bound to their address spaces, kept between
/// answers for the processes that call again (a program calling uname in a loop would otherwise pay
/// an open and a close of /proc/<tid>/mem, about a fifth of the round trip, on every call).
///
/// A fresh handle: /proc/<tid>/mem is opened first (bound to the address space the tid has now),
/// and only then is the notification checked to be still pending. A valid id after the open proves
/// the tid was the waiting caller when the handle was made, so the write cannot land in a process
/// that took over a reused tid (a write by pid after the check could).
///
/// A kept handle: only for a thread-group leader, together with a pidfd taken before the same
/// check, so the pidfd names the caller's process. It is used again only while that pidfd names a
/// live process, checked after the new notification was received: a pid number is not reused
/// while its process lives, so the new caller with that tid is the same process. Its address
/// space is the one the handle was opened on unless it exec'd since, and every exec in the sandbox
/// is notified to the warden (`SandboxPolicy.observations`) before it happens, but veil's init's
/// own, which comes before any call of that process the warden answers:
/// `forgetOnExec` drops the exec'ing leader's handle (the leader is blocked in execve, so no new
/// handle for it can be made before its exec is done), and an exec by another thread of a process,
/// which hands that thread the leader's pid with a new address space, stops the keeping for the
/// listener altogether (rare: programs exec from single-threaded children).
final class TaskMemory {
    struct Handle {
        let memory: Int32
        let process: Int32

        func close() {
            Glibc.close(memory)
            Glibc.close(process)
        }
    }

    /// Kept handles by tid; two descriptors each, so the table stays small (cleared when full, and
    /// when the warden runs out of descriptors: a pod's listeners share one table of them).
    private var handles: [UInt32: Handle] = [:]
    private var keeping = true
    static let capacity = 16

    deinit { clear() }

    /// Copies `bytes` to `address` in the caller of `n`: 0 or the errno its call fails with.
    func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64, for n: veil_notification, listener: Int32) -> Int32 {
        guard let base = bytes.baseAddress else { return 0 }
        if let handle = handles[n.pid] {
            // EPERM: alive but not ours to signal (a caller with another uid); ESRCH: gone.
            let alive = veil_pidfd_send_signal(handle.process, 0)
            if alive == 0 || alive == -EPERM {
                let written = veil_write_task_memory(handle.memory, address, base, bytes.count)
                if written == bytes.count { return 0 }
                if written < 0 { return Self.callerError(written) }
                // Nothing written: the address space is gone, whatever the reasoning above says.
            }
            forget(n.pid)
        }
        var memory = veil_open_task_memory(pid_t(n.pid))
        if memory == -EMFILE && !handles.isEmpty {
            clear()
            memory = veil_open_task_memory(pid_t(n.pid))
        }
        guard memory >= 0 else { return memory == -ENOENT || memory == -ESRCH ? ESRCH : EFAULT }
        // Only leaders have a process pidfd (other threads get EINVAL or ENOENT: their handles are not kept).
        let process = keeping ? veil_pidfd_open(pid_t(n.pid), 0) : -1
        var kept = false
        defer {
            if !kept {
                close(memory)
                if process >= 0 { close(process) }
            }
        }
        guard veil_notify_id_valid(listener, n.id) == 0 else { return ESRCH }
        let written = veil_write_task_memory(memory, address, base, bytes.count)
        // An unmapped or read-only destination: what the kernel's own copy_to_user would say.
        if written < 0 { return Self.callerError(written) }
        guard written == bytes.count else { return EFAULT }
        if process >= 0 {
            if handles.count >= Self.capacity { clear() }
            handles[n.pid] = Handle(memory: memory, process: process)
            kept = true
        }
        return 0
    }

    /// An execve or execveat from `tid`, told before the kernel runs it.
    func forgetOnExec(of tid: UInt32) {
        forget(tid)
        guard keeping else { return }
        let process = veil_pidfd_open(pid_t(tid), 0)
        if process >= 0 {
            close(process)  // a leader: its own handle is gone, and it waits in execve
        } else if process != -ESRCH {
            // Not a leader (EINVAL before Linux 6.9's pidfs, ENOENT since), or not known to be
            // one: its exec will take over the leader's pid.
            keeping = false
            clear()
        }
        // ESRCH: the caller is gone, and its exec with it.
    }

    private func forget(_ tid: UInt32) {
        handles.removeValue(forKey: tid)?.close()
    }

    private func clear() {
        for handle in handles.values { handle.close() }
        handles.removeAll(keepingCapacity: true)
    }

    /// pwrite's -EIO (an unmapped address) as copy_to_user's EFAULT.
    static func callerError(_ written: Int) -> Int32 { written == -Int(EIO) ? EFAULT : Int32(-written) }
}

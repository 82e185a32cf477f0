import CVeilLinux
import Glibc
import VeilLinux

/// What keeps the warden from being turned against the host (issue #11, point 5): once it has read
/// what it needs from the host's side, it moves itself and its sentinel into its cgroup (a child
/// of the sandbox's, so its memory and CPU are the pod's), becomes the sandbox's own root inside
/// the sandbox's user namespace (host ids: the sandbox's range, no host group), keeps only the
/// capabilities it uses there, turns non-dumpable with no_new_privs, and installs the filter veil
/// compiled for it (`WardenPolicy`). The sandbox cannot see it at all (its own pid namespace).
enum Confinement {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func apply(inputDirectory: String, initPid: Int32?, config: WardenConfig?) throws(Failure) {
        let filterPath = inputDirectory + "/" + WardenConfig.filterName
        let filter: [UInt8]
        do { filter = try FS.readFile(filterPath) } catch { throw Failure(description: "reading its seccomp filter: \(error)") }
        guard !filter.isEmpty, filter.count % 8 == 0, filter.count / 8 <= Int(UInt16.max) else {
            throw Failure(description: "\(filterPath) is not a classic BPF program")
        }
        // The warden moves itself, single-threaded, by writing "0" to v1's `tasks`: the kernel then
        // skips the threadgroup lock whose write side (any move by pid, or through cgroup.procs)
        // waits for an RCU grace period and stalls every fork and exec on the machine meanwhile,
        // the container's own included (it cost `run` ~15 ms). The sentinel (0.1 MiB, no work of
        // its own) stays where it was started for the same reason. v2 has no per-thread file.
        for directory in config?.cgroups ?? [] {
            let tasks = directory + "/tasks"
            let file = FS.exists(tasks) ? tasks : directory + "/cgroup.procs"
            do { try FS.writeString(file, "0", flags: O_WRONLY) } catch {
                throw Failure(description: "joining its cgroup \(directory): \(error)")
            }
        }
        guard let initPid else { throw Failure(description: "no sandbox init pid to take the user namespace from") }
        let userns = open("/proc/\(initPid)/ns/user", O_RDONLY | O_CLOEXEC)
        guard userns >= 0 else {
            throw Failure(description: "opening /proc/\(initPid)/ns/user: \(String(cString: strerror(errno)))")
        }
        defer { close(userns) }
        // Its descriptors up to the hard limit (no privilege needed): it keeps two per caller it
        // answers often (TaskMemory) for every container of a pod.
        let descriptors = __rlimit_resource_t(UInt32(RLIMIT_NOFILE.rawValue))
        var files = rlimit()
        if getrlimit(descriptors, &files) == 0, files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            _ = setrlimit(descriptors, &files)
        }
        var step: UnsafePointer<CChar>?
        let confined = veil_warden_confine(userns, &step)
        guard confined == 0 else {
            throw Failure(description: "entering the sandbox's user namespace as its root: \(step.map { String(cString: $0) } ?? "?"): \(String(cString: strerror(-confined)))")
        }
        let installed = filter.withUnsafeBytes { veil_seccomp_install($0.baseAddress, UInt16(filter.count / 8), 0) }
        guard installed == 0 else {
            throw Failure(description: "installing its seccomp filter: \(String(cString: strerror(-installed)))")
        }
    }
}

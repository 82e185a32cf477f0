import CVeilLinux
import FoundationEssentials
import Glibc
import VeilCgroups
import VeilLinux
import VeilSandbox
import VeilSeccomp
import VeilSpec

/// The sandbox level's part of checkpoint and restore (README, "Checkpoint and restore"). CRIU
/// saves the processes, their user, mount, PID, IPC, UTS and time namespaces; what the sandbox
/// built around them is made anew at restore and given to CRIU:
/// - CRIU runs in the container's network namespace (owned by the host's user namespace, which
///   CRIU 3.17 cannot save from inside the sandbox's); a restore makes a fresh one as stage 1
///   does (`veil_spawn_namespace_holder`) and runs CRIU in it;
/// - the mounts of the sandbox's public tmpfs and FUSE views are external, mapped to the new
///   sandbox's; the rootfs and bind sources are id-mapped for the new id range;
/// - the policy's filter is restored with a listener (`veil-checkpoint sandbox-images` marks it
///   in seccomp.img and moves the user namespace to the new range): each restored process holds
///   its listener, veil takes it and closes it there before anything runs, and a new warden
///   answers for them.
struct SandboxCheckpointFile: Codable {
    static let name = "veil-sandbox.json"

    /// One mount of the sandbox's own, external to CRIU.
    struct External: Codable {
        /// CRIU's key for it.
        var key: String
        /// Where the container sees it.
        var mountpoint: String
        /// "public" (the sandbox's tmpfs: fixed views, device nodes, masks) or "procfs" (the FUSE views).
        var source: String
        /// The path within that source.
        var path: String
    }

    var externals: [External]

    static func nativeCheckpoint(id: String, imagePath: String) -> String {
        "cannot restore container \"\(id)\" at the sandbox level: \(imagePath) holds no readable \(name), so it was checkpointed at the native level, "
            + "and veil never restores a sandbox without its policy (restore it at the native level: veil --isolation native)"
    }
}

extension Runtime {
    /// The sandbox's own mounts in the init's mount namespace, as CRIU externals.
    func sandboxExternals(initPid: Int32) throws(ContainerError) -> SandboxCheckpointFile {
        let entries = Mounts.entries(pid: String(initPid))
        guard !entries.isEmpty else { throw .initFailed("checkpoint: cannot read the mounts of process \(initPid)") }
        var externals: [SandboxCheckpointFile.External] = []
        for entry in entries {
            let source: String
            if entry.fileSystemType == "fuse.veil" { source = "procfs" } else if entry.source == "veil-sandbox" { source = "public" } else { continue }
            externals.append(.init(key: "veil-sandbox-\(externals.count)", mountpoint: entry.mountPoint, source: source, path: entry.root))
        }
        return SandboxCheckpointFile(externals: externals)
    }

    /// util-linux's nsenter, to run CRIU in a network namespace (CRIU must share it to save or
    /// restore a tree whose namespace its user namespace does not own).
    static func nsenter() throws(ContainerError) -> String {
        let candidates = ["/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter"]
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw .unsupported("checkpoint and restore at the sandbox level need nsenter (util-linux)")
        }
        return found
    }

    /// `restore` at the sandbox level; see the type's comment. `target` is the new container's cgroup,
    /// `cleanup` undoes everything made so far.
    func restoreSandbox(id: String, spec inputSpec: Spec, bundle: String, rootfs: String, directory: String, target: RestoreTarget,
                        cleanup: inout Cleanup, options: RestoreOptions, criu: CRIU.RestoreRun) throws(ContainerError) -> ContainerRecord {
        let cgroup = target.cgroup
        let file = options.imagePath + "/" + SandboxCheckpointFile.name
        guard let bytes = try? FS.readFile(file), let saved = try? JSONDecoder().decode(SandboxCheckpointFile.self, from: Data(bytes)) else {
            throw .unsupported(SandboxCheckpointFile.nativeCheckpoint(id: id, imagePath: options.imagePath))
        }
        var spec = inputSpec
        if PodAnnotations(spec.annotations)?.kind == .container {
            throw .unsupported("cannot restore container \"\(id)\" into a pod's sandbox: a sandbox is restored whole, as its own")
        }
        var context: SandboxContext
        do throws(SandboxError) {
            context = try sandboxBuilder.prepare(id: id, stateDirectory: directory, spec: &spec, pod: nil)
            _ = try sandboxBuilder.allocate(&context, id: id, spec: &spec, cgroup: cgroup, undo: &cleanup.sandbox)
        } catch { throw .sandbox(error) }
        log.debug("restore \(id): sandbox allocated")
        guard let hostID = spec.linux?.uidMappings?.first(where: { $0.containerID == 0 })?.hostID, let slot = context.slot else {
            throw .unsupported("cannot restore container \"\(id)\" at the sandbox level: its config.json brings its own user namespace")
        }

        // The network namespace (the host's) and a user namespace with the new range's maps.
        let holder = try spawnNamespaceHolder(spec)
        defer { Glibc.kill(holder, SIGKILL); _ = try? Wait.waitpid(holder) }
        for (kind, maps) in [("uid", spec.linux?.uidMappings ?? []), ("gid", spec.linux?.gidMappings ?? [])] {
            let text = maps.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
            try wrap("writing the restored sandbox's \(kind)_map") { try FS.writeString("/proc/\(holder)/\(kind)_map", text, flags: O_WRONLY) }
        }

        log.debug("restore \(id): namespace holder ready")
        // The rootfs and bind sources id-mapped for the new range, where CRIU finds them.
        let mapped: (rootfs: FileDescriptor, mounts: [(Int, FileDescriptor)])
        do { mapped = try sandboxBuilder.idmappedMounts(context, memberPid: holder, rootfs: rootfs, spec: spec, bundle: bundle) } catch { throw .sandbox(error) }
        defer { mapped.rootfs.close(); mapped.mounts.forEach { $0.1.close() } }
        let criuRoot = directory + "/criu-root"
        try attach(mapped.rootfs, at: criuRoot, isFile: false)
        defer { _ = umount2(criuRoot, Int32(MNT_DETACH)); rmdir(criuRoot) }
        var bindTargets: [String: String] = [:]
        // In the sandbox's public directory, which its root can reach by path: CRIU opens the binds
        // from the restored tasks.
        let bindDirectory = context.publicDirectory + "/criu-binds"
        defer { for target in bindTargets.values { _ = umount2(target, Int32(MNT_DETACH)); unlink(target); rmdir(target) }; rmdir(bindDirectory) }
        for (index, fd) in mapped.mounts {
            guard let mount = spec.mounts?[index] else { continue }
            var st = stat()
            let isFile = fstat(fd.raw, &st) == 0 && (st.st_mode & S_IFMT) != S_IFDIR
            let target = bindDirectory + "/\(index)"
            try wrap("creating \(bindDirectory)") { try FS.mkdirAll(bindDirectory, mode: 0o711) }
            try attach(fd, at: target, isFile: isFile)
            bindTargets[mount.destination] = target
        }

        // The images staged for the restored tasks, then the policy given a listener and the user
        // namespace moved in the staged ones (the caller's images stay as they were).
        let images = directory + "/criu-images"
        var staged = StagedImages()
        defer { staged.remove() }
        let userns = try wrap("opening the restore's user namespace") { try FileDescriptor.open("/proc/\(holder)/ns/user", O_RDONLY) }
        defer { userns.close() }
        try staged.stage(from: options.imagePath, to: images, owner: hostID, userns: options.autoDedup ? nil : userns)
        log.debug("restore \(id): images staged (\(staged.viewed ? "memory through an id-mapped view" : "copied"))")
        let policy = directory + "/veil-sandbox-policy.bpf"
        try wrap("writing the sandbox policy for the images' check") { try FS.writeFile(policy, context.program.filter, mode: 0o600) }
        defer { unlink(policy) }
        try runImageTool(["checkpoint", "sandbox-images", images, "--host-id", String(hostID), "--id-count", String(idPool.blockSize), "--policy", policy])
        log.debug("restore \(id): images given the policy and the new range")

        var args = [criu.binary, "restore", "--images-dir", images, "--work-dir", options.workPath ?? options.imagePath,
                    "-v4", "--root", criuRoot, "--restore-detached", "--leave-stopped",
                    "--pidfile", directory + "/restored.pid", "--manage-cgroups=ignore"] + criu.arguments(options)
        // Mount sources, checked to stay in the new sandbox's directories.
        let own = Set(saved.externals.map(\.mountpoint))
        for external in saved.externals {
            let base = external.source == "procfs" ? context.liveViews : context.publicDirectory
            let components = external.path.split(separator: "/")
            guard external.path.hasPrefix("/"), !components.contains(".."), !components.contains("."),
                  external.key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw .invalidConfig(file: file, field: "externals", reason: "\(external.key) names \(external.path): not a path within the sandbox's mounts")
            }
            args += ["--external", "mnt[\(external.key)]:\(base)\(external.path)"]
        }
        // config.json's binds come from their id-mapped copies.
        let pairs = CRIU.externalMounts(spec, bundle: bundle, cgroup: cgroup, restoring: cgroup)
            .filter { !own.contains($0.destination) }
            .map { (destination: $0.destination, source: bindTargets[$0.destination] ?? $0.source) }
        args += CRIU.mountMapFlags(pairs)
        let terminal = try criu.terminal(options)
        defer { terminal?.slave.close() }
        args += terminal?.arguments ?? []
        // The new pty owned by the sandbox's root, so CRIU (in the sandbox's user namespace) may
        // give it the saved owner and group, both mapped into the range.
        if let terminal, fchown(terminal.slave.raw, hostID, spec.linux?.gidMappings?.first(where: { $0.containerID == 0 })?.hostID ?? hostID) != 0 {
            throw LinuxError("fchown", "the restored sandbox's pty").context("restoring a terminal")
        }
        do throws(SandboxError) { try context.startServingViews() } catch { throw .sandbox(error) }
        log.debug("restore \(id): \(args.joined(separator: " "))")
        let pid = try CRIU.restore([try Self.nsenter(), "--net=/proc/\(holder)/ns/net"] + args,
                                   log: criu.log(options), pidFile: directory + "/restored.pid", id: id,
                                   stdio: terminal?.slave) { (pid) throws(ContainerError) in
            try place(restoring: pid, in: target, id: id, sandbox: true, cleanup: &cleanup)
        }
        cleanup.initPid = pid
        log.debug("restore \(id): CRIU restored init pid \(pid)")

        // Every restored process: in the sandbox's namespaces, holding its listener, which we take.
        let listeners = try takeListeners(cgroup: cgroup, holder: holder, hostID: hostID)
        defer { listeners.forEach { $0.close() } }
        log.debug("restore \(id): \(listeners.count) listener(s) taken")
        var record = ContainerRecord(id: id, ociVersion: spec.ociVersion, pid: pid, pidStartTime: ProcessInfo.startTime(pid),
                                     bundle: bundle, rootfs: rootfs, created: Clock.rfc3339Now(), owner: "",
                                     annotations: spec.annotations, cgroup: cgroup, hooks: spec.hooks)
        record.isolation = .sandbox
        record.sandboxOwner = id
        record.sandboxSlot = slot
        record.sandboxDirectory = context.publicDirectory
        do throws(SandboxError) {
            let warden = try sandboxBuilder.startWarden(context, initPid: pid, undo: &cleanup.sandbox)
            record.wardenPid = warden.pid
            record.wardenStartTime = warden.startTime
            try SandboxBuilder.handToWarden(context, listener: listeners[0])
            for listener in listeners.dropFirst() { try SandboxBuilder.sendToWarden(directory: context.ownerDirectory, listener: listener) }
        } catch { throw .sandbox(error) }
        try store.saveConfig(spec, id: id)
        try store.save(record)
        for process in (try? cgroup.processes()) ?? [] { Glibc.kill(process, SIGCONT) }
        log.debug("restore \(id): restored at the sandbox level, init pid \(pid), \(listeners.count) listener(s) to warden \(record.wardenPid ?? 0)")
        return record
    }

    /// A network namespace owned by the host (lo up, the sandbox's sysctls) holding a fresh user namespace.
    private func spawnNamespaceHolder(_ spec: Spec) throws(ContainerError) -> Int32 {
        let report = try wrap("a pipe for the namespace holder") { try FileDescriptor.pipe() }
        defer { report.reader.close(); report.writer.close() }
        let pairs = HostOwnedNetwork.plan(for: spec)?.cPairs ?? []
        let pid = pairs.withUnsafeBufferPointer { veil_spawn_namespace_holder(report.writer.raw, $0.isEmpty ? nil : $0.baseAddress, $0.count) }
        if pid < 0 { throw LinuxError("clone", "namespace holder", errno: -pid).context("restoring a sandbox") }
        var status: UInt8 = 0
        let got = read(report.reader.raw, &status, 1)
        guard got == 1, status == UInt8(ascii: "k") else {
            Glibc.kill(pid, SIGKILL)
            _ = try? Wait.waitpid(pid)
            let step = ["n": "making the network namespace", "s": "writing its sysctls", "u": "making the user namespace"][String(UnicodeScalar(status))] ?? "starting"
            throw .initFailed("restoring a sandbox: the namespace holder failed \(step)")
        }
        return pid
    }

    private func attach(_ fd: FileDescriptor, at path: String, isFile: Bool) throws(ContainerError) {
        if isFile {
            let made = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            guard made >= 0 else { throw LinuxError("open", path).context("making a mount point for CRIU") }
            close(made)
        } else {
            try wrap("making a mount point for CRIU") { try FS.mkdirAll(path, mode: 0o700) }
        }
        let target = try wrap("opening \(path)") { try FileDescriptor.open(path, O_PATH | (isFile ? 0 : O_DIRECTORY)) }
        defer { target.close() }
        _ = try wrap("attaching an id-mapped mount at \(path)") { try sysNeg("move_mount", path) { veil_attach_mount_at(fd.raw, target.raw) } }
    }

    /// `veil-checkpoint ARGS` beside this binary (it holds CRIU's protobuf images), run to its end.
    private func runImageTool(_ arguments: [String]) throws(ContainerError) {
        let exe = FS.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
        let tool = String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/veil-checkpoint"
        guard access(tool, X_OK) == 0 else { throw .unsupported("restoring a sandbox needs veil-checkpoint beside \(exe)") }
        let child: Spawner.Child
        do { child = try Spawner.spawn(path: tool, args: [tool] + arguments, env: [], withStdinPipe: false) } catch { throw error.context("running \(tool)") }
        let status = try wrap("waiting for veil-checkpoint") { try Wait.waitpid(child.pid) }
        guard status == 0 else { throw .failed(context: "preparing the sandbox's images (veil-checkpoint exited with status \(status))", cause: CRIU.CRIUFailure(lastLines: "see its error above")) }
    }

    /// The listeners CRIU's restorer left in each restored process, taken and closed there. Each
    /// process must be in the holder's network namespace, in one user namespace mapped to the new
    /// range, and hold a listener (the policy's filter, given one by the images' rewrite): else
    /// the images were not a sandbox's, and nothing of it runs.
    private func takeListeners(cgroup: Cgroup, holder: Int32, hostID: UInt32) throws(ContainerError) -> [FileDescriptor] {
        let processes = (try? cgroup.processes()) ?? []
        guard !processes.isEmpty else { throw .initFailed("restore: CRIU left no process in the container's cgroup") }
        let network = FS.readLink("/proc/\(holder)/ns/net")
        let hostUser = FS.readLink("/proc/self/ns/user")
        var user: String?
        var taken: [FileDescriptor] = []
        do throws(ContainerError) {
            for pid in processes {
                guard FS.readLink("/proc/\(pid)/ns/net") == network else {
                    throw .initFailed("restore: process \(pid) is not in the sandbox's network namespace")
                }
                let ns = FS.readLink("/proc/\(pid)/ns/user")
                guard ns != nil, ns != hostUser, user == nil || ns == user,
                      let map = try? FS.readString("/proc/\(pid)/uid_map"),
                      map.split(whereSeparator: \.isWhitespace).prefix(2) == ["0", Substring(String(hostID))] else {
                    throw .initFailed("restore: process \(pid) is not in the sandbox's user namespace")
                }
                user = ns
                let found = ForeignDescriptors.find("anon_inode:seccomp notify", in: pid)
                guard !found.isEmpty else { throw .initFailed("restore: process \(pid) came back without the sandbox policy's listener") }
                for fd in found {
                    taken.append(try wrap("taking process \(pid)'s listener") { try ForeignDescriptors.take(fd, from: pid) })
                    try wrap("closing the listener in process \(pid)") { try ForeignDescriptors.close(fd, in: pid) }
                }
            }
        } catch {
            taken.forEach { $0.close() }
            throw error
        }
        return taken
    }
}

/// The images a sandbox's restore hands CRIU, in the state directory, where the restored tasks can
/// read them: CRIU opens some images from its own process (host root) and some from the tasks,
/// before they take the sandbox's ids (host root's ids, capabilities only in the new user
/// namespace: the group reads) and after (the sandbox's root owns them). The small images are
/// copies (the rewrite never touches the caller's). The memory images (`pages-*.img`, nearly all of
/// a checkpoint's size) are links into a read-only id-mapped view of the caller's directory, where
/// host root's files appear the sandbox root's, when its filesystem can be id-mapped (ext4, xfs,
/// tmpfs from Linux 6.3); else, and for `--auto-dedup` (which punches the images it reads), copies
/// too. A pre-dump chain's parents are staged the same way at `TARGET.parent`, linked relatively as
/// CRIU writes it: CRIU follows the link from tasks in the container's root too.
struct StagedImages {
    /// The view's mount point in each staged directory.
    static let viewName = "veil-source"
    private var directories: [String] = []
    private var views: [String] = []
    /// Whether any memory image came through a view.
    var viewed: Bool { !views.isEmpty }

    /// Stages `source` (and its parents) at `target`; `userns` nil copies the memory images too.
    mutating func stage(from source: String, to target: String, owner: UInt32, userns: FileDescriptor?, depth: Int = 0) throws(ContainerError) {
        guard depth < 16 else { throw .invalidConfig(file: source, field: "parent", reason: "a chain of more than 16 pre-dumps") }
        try wrap("creating \(target)") { try FS.mkdirAll(target, mode: 0o750) }
        directories.append(target)
        chown(target, owner, 0)
        chmod(target, 0o750)
        let view = userns.flatMap { attachView(of: source, in: target, userns: $0) }
        for name in FS.listDirectory(source) where name != Self.viewName {
            let path = source + "/" + name
            if name == "parent", let link = FS.readLink(path) {
                try stage(from: link.hasPrefix("/") ? link : source + "/" + link, to: target + ".parent", owner: owner, userns: userns, depth: depth + 1)
                let copy = String((target + ".parent").split(separator: "/").last ?? "")
                guard symlink("../" + copy, target + "/parent") == 0 else { throw LinuxError("symlink", target + "/parent").context("staging the images") }
                continue
            }
            guard !FS.isDirectory(path) else { continue }
            if view != nil, name.hasPrefix("pages-") {
                guard symlink(Self.viewName + "/" + name, target + "/" + name) == 0 else { throw LinuxError("symlink", target + "/" + name).context("staging the images") }
            } else {
                try Self.copy(path, to: target + "/" + name, owner: owner)
            }
        }
    }

    /// `source` id-mapped read-only at TARGET/veil-source; nil where its filesystem cannot be.
    private mutating func attachView(of source: String, in target: String, userns: FileDescriptor) -> String? {
        let tree = veil_idmapped_tree(source, userns.raw, 0)
        guard tree >= 0 else { return nil }
        let mount = FileDescriptor(tree)
        defer { mount.close() }
        let point = target + "/" + Self.viewName
        guard mkdir(point, 0o700) == 0 else { return nil }
        guard veil_attach_mount(mount.raw, point) == 0 else { rmdir(point); return nil }
        guard veil_mount_setattr_path(point, 0, UInt64(MOUNT_ATTR_RDONLY), 0) == 0 else {
            _ = umount2(point, Int32(MNT_DETACH))
            rmdir(point)
            return nil
        }
        views.append(point)
        return point
    }

    private static func copy(_ path: String, to target: String, owner: UInt32) throws(ContainerError) {
        let from = open(path, O_RDONLY | O_CLOEXEC)
        let to = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        defer { if from >= 0 { close(from) }; if to >= 0 { close(to) } }
        guard from >= 0, to >= 0 else { throw LinuxError("open", from < 0 ? path : target).context("copying the images for the sandbox's restore") }
        while true {
            let copied = sendfile(to, from, nil, 1 << 30)
            if copied == 0 { break }
            if copied < 0 { throw LinuxError("sendfile", path).context("copying the images for the sandbox's restore") }
        }
        fchown(to, owner, 0)
        fchmod(to, 0o640)
    }

    /// Unmounts the views and removes what was staged.
    func remove() {
        for view in views { _ = umount2(view, Int32(MNT_DETACH)); rmdir(view) }
        for directory in directories.reversed() {
            for name in FS.listDirectory(directory) { unlink(directory + "/" + name) }
            rmdir(directory)
        }
    }
}

import CVeilLinux
import Glibc
import VeilLinux
import VeilSpec

private let RESOLVE_NO_MAGICLINKS: UInt64 = 0x02
private let RESOLVE_NO_SYMLINKS: UInt64 = 0x04
private let RESOLVE_BENEATH: UInt64 = 0x08
/// How every path inside the container's root is opened: beneath the starting directory, no
/// symlink (magic or not) followed.
private let confined = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

/// Paths inside the container's root, resolved the way the container will see them.
enum RootPath {
    struct Escape: Error { let symlink: String }

    /// Resolves `path` under `root` following symlinks as if `root` were `/`. An absolute link
    /// restarts at the root (that is where the container sees it); a `..` that would climb
    /// above the root is refused rather than clamped, since only a hostile rootfs does that.
    /// Returns the components, which may name things that do not exist yet.
    static func resolve(root: String, path: String) throws(Escape) -> [String] {
        var resolved: [String] = []
        var pending = Array(path.split(separator: "/").map(String.init).reversed())
        var links = 0
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." {
                if resolved.isEmpty { throw Escape(symlink: path) }
                resolved.removeLast()
                continue
            }
            let candidate = root + "/" + (resolved + [part]).joined(separator: "/")
            var st = stat()
            if lstat(candidate, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                guard links <= 40, let target = FS.readLink(candidate) else { throw Escape(symlink: candidate) }
                if target.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            resolved.append(part)
        }
        return resolved
    }

    /// `path` under `root` when it exists and no symlink lies on the way (most mount targets):
    /// one openat2 confined beneath the root, which `resolve` and `create` would come to.
    static func openExisting(root: String, path: String, directory: Bool) -> FileDescriptor? {
        let relative = path.split(separator: "/").joined(separator: "/")
        guard !relative.isEmpty, let top = try? FileDescriptor.open(root, O_PATH | O_DIRECTORY) else { return nil }
        defer { top.close() }
        let flags = UInt64(O_PATH | O_CLOEXEC) | (directory ? UInt64(O_DIRECTORY) : 0)
        let fd = veil_openat2(top.raw, relative, flags, 0, confined)
        return fd >= 0 ? FileDescriptor(fd) : nil
    }

    /// The directory `name` (one component) in `parent`, made first when asked, opened
    /// `confined`; errors name it as `shown`.
    static func subdirectory(_ name: String, of parent: FileDescriptor, creating: Bool, shown: String? = nil) throws(LinuxError) -> FileDescriptor {
        if creating && mkdirat(parent.raw, name, 0o755) != 0 && errno != EEXIST { throw LinuxError("mkdir", shown ?? name) }
        let flags = UInt64(O_PATH | O_CLOEXEC | O_DIRECTORY)
        return FileDescriptor(try sysNeg("openat2", shown ?? name) { veil_openat2(parent.raw, name, flags, 0, confined) })
    }

    /// Creates `components` under `root` (directories, and a file as the last one when asked)
    /// and returns an O_PATH fd of the result. Every step is taken relative to the fd of the
    /// level above, opened with no symlink allowed: a symlink swapped in after resolving makes
    /// the call fail instead of creating or mounting anything outside the root.
    static func create(root: String, components: [String], lastIsFile: Bool) throws(LinuxError) -> FileDescriptor {
        var current = try FileDescriptor.open(root, O_PATH | O_DIRECTORY)
        var shown = root
        for (index, part) in components.enumerated() {
            shown += "/" + part
            guard index == components.count - 1 && lastIsFile else {
                current = try subdirectory(part, of: current, creating: true, shown: shown)
                continue
            }
            // The last component, a file. Only a missing file is created: opening an existing one for
            // writing fails with EROFS on a read-only rootfs (containerd mounts one for readOnlyRootFilesystem).
            var existing = stat()
            if fstatat(current.raw, part, &existing, AT_SYMLINK_NOFOLLOW) != 0 {
                let fd = openat(current.raw, part, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o755)
                if fd >= 0 { close(fd) } else if errno != EEXIST && errno != EISDIR && errno != ETXTBSY && errno != EACCES {
                    throw LinuxError("create", shown)
                }
            }
            let next = try sysNeg("openat2", shown) { veil_openat2(current.raw, part, UInt64(O_PATH | O_CLOEXEC), 0, confined) }
            current = FileDescriptor(next)
        }
        return current
    }
}

/// Mount sources the runtime opened for the init. Sandbox level: detached id-mapped mounts,
/// attached by the init. In a user namespace without them: bind sources opened (O_PATH) in the
/// init's mount namespace by host root, which container root may not be able to reach by path.
struct IDMappedMountFDs {
    var rootfs: FileDescriptor?
    /// By index in spec.mounts.
    var mounts: [Int: FileDescriptor] = [:]
    /// By index in spec.mounts.
    var sources: [Int: FileDescriptor] = [:]
}

/// Sets up the container's root filesystem inside its mount namespace.
struct RootfsBuilder {
    let plan: InitPlan
    let late: InitPlan.Late
    var idmapped = IDMappedMountFDs()
    var spec: Spec { plan.spec }
    var rootfs: String { late.rootfs }

    func configError(_ field: String, _ reason: String) -> ContainerError {
        .invalidConfig(file: "config.json", field: field, reason: reason)
    }

    /// Before pivot_root: propagation, the root bind, config mounts, /dev.
    func prepare() throws(ContainerError) {
        var propagation: UInt = UInt(MS_SLAVE) | UInt(MS_REC)
        if let name = spec.linux?.rootfsPropagation, !name.isEmpty {
            guard let flags = MountOptions.propagationFlags(name) else {
                throw configError("linux.rootfsPropagation", "unknown propagation \"\(name)\"")
            }
            propagation = flags
        }
        if plan.sandboxed && propagation & UInt(MS_SHARED) != 0 {
            // A sandbox's mount namespace belongs to its user namespace: it receives the host's
            // mounts, never sends its own (and nothing inside it may mount).
            propagation = UInt(MS_SLAVE) | (propagation & UInt(MS_REC))
        }
        try wrap("making / \(spec.linux?.rootfsPropagation ?? "rslave")") {
            try Mounts.mount(nil, "/", type: nil, flags: propagation)
        }
        if let mapped = idmapped.rootfs {
            _ = try wrap("attaching the id-mapped rootfs") { try sysNeg("move_mount", rootfs) { veil_attach_mount(mapped.raw, rootfs) } }
        } else {
            try wrap("making the rootfs's parent mount private") { try Self.makeParentMountPrivate(of: rootfs) }
            try wrap("binding the rootfs") { try Mounts.mount(rootfs, rootfs, type: "bind", flags: UInt(MS_BIND) | UInt(MS_REC)) }
        }
        let mounts = spec.mounts ?? []
        for (index, mount) in mounts.enumerated() {
            try mountOne(mount, field: "mounts[\(index)]", idmapped: idmapped.mounts[index], openedSource: idmapped.sources[index])
        }
        // The sandbox's /sys turns read-only once the mounts under it (cgroups) are in place.
        for (index, mount) in mounts.enumerated() where mount.type == "sysfs" && plan.syntheticSys {
            let field = "mounts[\(index)]"
            let mounted = try target(mount.destination, field: field + ".destination", isFile: false)
            let path = "/proc/self/fd/\(mounted.raw)"
            do {
                try Mounts.mount(nil, path, type: nil, flags: UInt(MS_REMOUNT) | UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), data: SyntheticSys.options)
            } catch {
                throw configError(field, "making the sandbox's \(mount.destination) read-only: \(error)")
            }
        }
        if mounts.contains(where: { $0.destination == "/dev" }) {
            try createDefaultDevices()
        }
        let devLinks = FS.isDirectory(rootfs + "/dev")
        for (index, device) in (spec.linux?.devices ?? []).enumerated() {
            // As runc: /dev/ptmx becomes the link to pts/ptmx (the container's own devpts) whatever the config lists.
            if devLinks && (try? RootPath.resolve(root: rootfs, path: device.path)) == ["dev", "ptmx"] { continue }
            try createDevice(device, field: "linux.devices[\(index)]")
        }
        try createDevLinks()
        if spec.process?.terminal == true && devLinks {
            // The console's mount point, made now: /dev may turn read-only before the pty exists.
            _ = try target("/dev/console", field: "/dev/console", isFile: true)
        }
        // The cwd is created now: after pivot_root the root may already be read-only.
        if let cwd = spec.process?.cwd, cwd.hasPrefix("/") {
            _ = try target(cwd, field: "process.cwd", isFile: false)
        }
    }

    private func target(_ destination: String, field: String, isFile: Bool) throws(ContainerError) -> FileDescriptor {
        if let existing = RootPath.openExisting(root: rootfs, path: destination, directory: !isFile) { return existing }
        let components: [String]
        do { components = try RootPath.resolve(root: rootfs, path: destination) } catch {
            throw configError(field, "\"\(destination)\" escapes the container root through symlink \(error.symlink)")
        }
        do { return try RootPath.create(root: rootfs, components: components, lastIsFile: isFile) } catch {
            throw configError(field, "\(error)")
        }
    }

    /// A read-only /dev is mounted writable and made read-only in `finish`, once the
    /// submounts, devices and links under it exist (as runc does).
    private static func isDev(_ mount: Mount) -> Bool {
        mount.destination.split(separator: "/") == ["dev"]
    }

    /// pivot_root refuses a new root whose parent mount is shared, and a bind of the rootfs
    /// under a shared parent would propagate back out: the parent turns private in this
    /// mount namespace (runc does the same).
    static func makeParentMountPrivate(of path: String) throws(LinuxError) {
        let parent = Mounts.entries().filter { entry in
            entry.mountPoint == "/" || path == entry.mountPoint || path.hasPrefix(entry.mountPoint + "/")
        }.max { $0.mountPoint.count < $1.mountPoint.count }
        guard let parent, parent.isShared else { return }
        try Mounts.mount(nil, parent.mountPoint, type: nil, flags: UInt(MS_PRIVATE))
    }

    private func mountOne(_ mount: Mount, field: String, idmapped: FileDescriptor?, openedSource: FileDescriptor?) throws(ContainerError) {
        guard mount.destination.hasPrefix("/") else { throw configError(field + ".destination", "must be an absolute path") }
        var options = MountOptions.parse(mount.options ?? [])
        let type = mount.type ?? ""
        if type == "cgroup" || type == "cgroup2" {
            return try mountCgroups(mount, options: options, field: field)
        }
        if type == "sysfs" && plan.syntheticSys {
            let dest = try target(mount.destination, field: field + ".destination", isFile: false)
            do {
                try Mounts.mount("sysfs", "/proc/self/fd/\(dest.raw)", type: "tmpfs", flags: UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), data: SyntheticSys.options)
                // The fd names the directory under the new mount: fill the tmpfs through a fresh one.
                let mounted = try target(mount.destination, field: field + ".destination", isFile: false)
                try SyntheticSys.populate("/proc/self/fd/\(mounted.raw)", cpus: late.cpus)
            } catch {
                throw configError(field, "mounting the sandbox's \(mount.destination): \(error)")
            }
            return
        }
        let isBind = options.isBind || type == "bind"
        var source = mount.source ?? type
        var isFile = false
        if isBind {
            if !source.hasPrefix("/") { source = plan.bundle + "/" + source }
            var st = stat()
            // An id-mapped or opened source came as an fd: its path may lie under a directory container root cannot traverse.
            let found = (idmapped ?? openedSource).map { fstat($0.raw, &st) == 0 } ?? (stat(source, &st) == 0)
            guard found else { throw configError(field + ".source", "\(LinuxError("stat", source))") }
            isFile = (st.st_mode & S_IFMT) != S_IFDIR
        } else if Self.isDev(mount) {
            options.flags &= ~UInt(MS_RDONLY)
        }
        let dest = try target(mount.destination, field: field + ".destination", isFile: isFile)
        let path = "/proc/self/fd/\(dest.raw)"
        let shown = "\(source) on \(mount.destination)"
        do {
            if isBind {
                if let idmapped {
                    try sysNeg("move_mount", shown) { veil_attach_mount_at(idmapped.raw, dest.raw) }
                } else {
                    let from = openedSource.map { "/proc/self/fd/\($0.raw)" } ?? source
                    try Mounts.mount(from, path, type: nil, flags: UInt(MS_BIND) | (options.isRecursiveBind ? UInt(MS_REC) : 0))
                }
                let extra = options.flags & ~UInt(MS_BIND) & ~UInt(MS_REC)
                if extra != 0 {
                    // The fd names the directory under the new mount; remount through a fresh one.
                    let mounted = try target(mount.destination, field: field + ".destination", isFile: isFile)
                    let mountedPath = "/proc/self/fd/\(mounted.raw)"
                    try Mounts.mount(nil, mountedPath, type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | extra | lockedFlags(mountedPath, besides: extra))
                }
            } else {
                let data = options.data.isEmpty ? nil : options.data.joined(separator: ",")
                if Glibc.mount(source, path, type, options.flags, data) != 0 {
                    let code = errno
                    // Without its own network namespace a user-namespaced sysfs mount is refused; reuse the host's, read-only.
                    guard type == "sysfs" && code == EPERM && plan.newUserNamespace else {
                        throw LinuxError("mount", shown, errno: code)
                    }
                    try Mounts.mount("/sys", path, type: nil, flags: UInt(MS_BIND) | UInt(MS_REC))
                    let mounted = try target(mount.destination, field: field + ".destination", isFile: false)
                    let mountedPath = "/proc/self/fd/\(mounted.raw)"
                    try Mounts.mount(nil, mountedPath, type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY) | lockedFlags(mountedPath))
                }
            }
            if !options.propagation.isEmpty {
                let mounted = try target(mount.destination, field: field + ".destination", isFile: isFile)
                for flag in options.propagation {
                    try Mounts.mount(nil, "/proc/self/fd/\(mounted.raw)", type: nil, flags: flag)
                }
            }
            if let attributes = options.recursive {
                // rro, rnosuid...: this mount and every one under it (mount_setattr AT_RECURSIVE).
                let mounted = try target(mount.destination, field: field + ".destination", isFile: isFile)
                let mountedPath = "/proc/self/fd/\(mounted.raw)"
                try sysNeg("mount_setattr", mountedPath) { veil_mount_setattr_path(mountedPath, 1, attributes.set, attributes.clear) }
            }
        } catch {
            throw .invalidConfig(file: "config.json", field: field, reason: "mounting \(shown): \(error)")
        }
    }

    /// cgroup v1 (and hybrid): a tmpfs with the container's own hierarchy directories bound in,
    /// so the container sees its cgroups and nothing else; cgroup v2: the container's directory.
    private func mountCgroups(_ mount: Mount, options: MountOptions, field: String) throws(ContainerError) {
        let readOnly = options.flags & UInt(MS_RDONLY) != 0
        let dest = try target(mount.destination, field: field + ".destination", isFile: false)
        let base = "/proc/self/fd/\(dest.raw)"
        do {
            if plan.cgroupUnifiedOnly, let dir = plan.cgroupPaths["unified"] ?? plan.cgroupPaths.values.first {
                try Mounts.mount(dir, base, type: nil, flags: UInt(MS_BIND) | UInt(MS_REC))
                if readOnly {
                    let mounted = try target(mount.destination, field: field + ".destination", isFile: false)
                    let path = "/proc/self/fd/\(mounted.raw)"
                    try Mounts.mount(nil, path, type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY) | lockedFlags(path))
                }
                return
            }
            try Mounts.mount("tmpfs", base, type: "tmpfs", flags: UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), data: "mode=755")
            // The fresh tmpfs is ours: a directory per hierarchy made and opened right in it.
            let tmpfs = try target(mount.destination, field: field + ".destination", isFile: false)
            for (name, dir) in plan.cgroupPaths.sorted(by: { $0.key < $1.key }) {
                let sub = try RootPath.subdirectory(name, of: tmpfs, creating: true)
                let path = "/proc/self/fd/\(sub.raw)"
                try Mounts.mount(dir, path, type: nil, flags: UInt(MS_BIND))
                let mounted = try RootPath.subdirectory(name, of: tmpfs, creating: false)
                let mountedPath = "/proc/self/fd/\(mounted.raw)"
                let flags = UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC) | (readOnly ? UInt(MS_RDONLY) : 0)
                try Mounts.mount(nil, mountedPath, type: nil, flags: flags | lockedFlags(mountedPath))
            }
            if readOnly {
                let mounted = try target(mount.destination, field: field + ".destination", isFile: false)
                try Mounts.mount(nil, "/proc/self/fd/\(mounted.raw)", type: nil, flags: UInt(MS_REMOUNT) | UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), data: "mode=755")
            }
        } catch let error as LinuxError {
            throw .invalidConfig(file: "config.json", field: field, reason: "mounting cgroups on \(mount.destination): \(error)")
        } catch {
            throw .invalidConfig(file: "config.json", field: field, reason: "\(error)")
        }
    }

    private static let defaultDevices: [(String, UInt32, UInt32)] = [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ]

    private func createDefaultDevices() throws(ContainerError) {
        let configured = Set((spec.linux?.devices ?? []).map(\.path))
        for (path, major, minor) in Self.defaultDevices where !configured.contains(path) {
            try createDevice(LinuxDevice(path: path, type: "c", major: Int64(major), minor: Int64(minor), fileMode: 0o666, uid: 0, gid: 0), field: "default device \(path)")
        }
    }

    /// mknod, or in a user namespace (where mknod is refused) a bind mount of the host's node.
    private func createDevice(_ device: LinuxDevice, field: String) throws(ContainerError) {
        let kind: mode_t
        switch device.type {
        case "c", "u": kind = S_IFCHR
        case "b": kind = S_IFBLK
        case "p": kind = S_IFIFO
        default: throw configError(field + ".type", "unknown device type \"\(device.type)\"")
        }
        let components: [String]
        do { components = try RootPath.resolve(root: rootfs, path: device.path) } catch {
            throw configError(field + ".path", "\"\(device.path)\" escapes the container root")
        }
        guard let name = components.last else { throw configError(field + ".path", "empty device path") }
        let parent = try target("/" + components.dropLast().joined(separator: "/"), field: field + ".path", isFile: false)
        let path = "/proc/self/fd/\(parent.raw)/\(name)"
        if plan.newUserNamespace && kind != S_IFIFO {  // a fifo needs no privilege to make
            // Sandbox level: the node host root made, owned by the sandbox's ids.
            guard let host = late.sandboxDeviceNodes[device.path]
                ?? hostNode(kind: kind, major: UInt64(device.major ?? 0), minor: UInt64(device.minor ?? 0), path: device.path) else {
                throw configError(field, "in a user namespace a device is a bind mount of the host's node, and the host has no \(device.type) \(device.major ?? 0):\(device.minor ?? 0)")
            }
            let node = try target(device.path, field: field + ".path", isFile: true)
            do { try Mounts.mount(host, "/proc/self/fd/\(node.raw)", type: nil, flags: UInt(MS_BIND)) } catch {
                throw configError(field, "binding \(host) on \(device.path): \(error)")
            }
            return
        }
        let number = FS.deviceNumber(major: UInt64(device.major ?? 0), minor: UInt64(device.minor ?? 0))
        unlink(path)
        let mode = kind | mode_t(device.fileMode ?? 0o666)
        do {
            try sys("mknod", device.path) { mknod(path, mode, kind == S_IFIFO ? 0 : number) }
            try sys("chown", device.path) { chown(path, device.uid ?? 0, device.gid ?? 0) }
            try sys("chmod", device.path) { chmod(path, mode_t(device.fileMode ?? 0o666) & 0o7777) }
        } catch {
            throw configError(field, "\(error)")
        }
    }

    /// The host's node for a device: at the same path when its numbers match, else /dev/char or
    /// /dev/block's M:m link, else any node directly under /dev with those numbers.
    private func hostNode(kind: mode_t, major: UInt64, minor: UInt64, path: String) -> String? {
        let wanted = FS.deviceNumber(major: major, minor: minor)
        func matches(_ candidate: String) -> Bool {
            var st = stat()
            return stat(candidate, &st) == 0 && (st.st_mode & S_IFMT) == kind && st.st_rdev == wanted
        }
        let link = (kind == S_IFBLK ? "/dev/block/" : "/dev/char/") + "\(major):\(minor)"
        if let found = [path, link].first(where: matches) { return found }
        return FS.listDirectory("/dev").map { "/dev/" + $0 }.first(where: matches)
    }

    private func createDevLinks() throws(ContainerError) {
        guard FS.isDirectory(rootfs + "/dev") else { return }
        let links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                     ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx")]
        let dev = try target("/dev", field: "/dev", isFile: false)
        for (source, name) in links {
            let path = "/proc/self/fd/\(dev.raw)/\(name)"
            if name == "ptmx" { unlink(path) }
            if symlink(source, path) != 0 && errno != EEXIST {
                throw LinuxError("symlink", "/dev/" + name).context("creating /dev links")
            }
        }
    }

    /// Moves into the rootfs: pivot_root(".", ".") then detaching the old root, or with --no-pivot
    /// a move mount and chroot.
    func enterRoot() throws(ContainerError) {
        do {
            if plan.noPivot {
                try hideHostKernelFileSystems()
                try sys("chdir", rootfs) { chdir(rootfs) }
                try Mounts.mount(rootfs, "/", type: nil, flags: UInt(MS_MOVE))
                try sys("chroot", rootfs) { chroot(".") }
            } else {
                let oldRoot = try FileDescriptor.open("/", O_DIRECTORY | O_RDONLY)
                let newRoot = try FileDescriptor.open(rootfs, O_DIRECTORY | O_RDONLY)
                try sys("fchdir", rootfs) { fchdir(newRoot.raw) }
                try Mounts.pivotRoot(".", ".")
                try sys("fchdir", "old root") { fchdir(oldRoot.raw) }
                try Mounts.mount(nil, ".", type: nil, flags: UInt(MS_SLAVE) | UInt(MS_REC))
                try Mounts.unmount(".", flags: Int32(MNT_DETACH))
            }
            try sys("chdir", "/") { chdir("/") }
        } catch {
            throw error.context("entering the container root")
        }
    }

    /// --no-pivot keeps the host's root under the container's: a whole, unmasked proc or sysfs
    /// there would let a process that makes its own user namespace mount a fresh, bare one (the
    /// kernel allows that when one is fully visible in the mount namespace). Each is detached,
    /// or covered by an empty tmpfs where a user namespace may not detach it (as runc does).
    private func hideHostKernelFileSystems() throws(LinuxError) {
        let prefix = rootfs.hasSuffix("/") ? rootfs : rootfs + "/"
        let exposed = Mounts.entries().filter { entry in
            entry.root == "/" && (entry.fileSystemType == "proc" || entry.fileSystemType == "sysfs")
                && entry.mountPoint != rootfs && !entry.mountPoint.hasPrefix(prefix)
        }
        for entry in exposed {
            let point = entry.mountPoint
            // Slave first, so the detach never reaches the host; gone already (under an earlier one): skip.
            if Glibc.mount(nil, point, nil, UInt(MS_SLAVE) | UInt(MS_REC), nil) != 0 {
                if errno == ENOENT || errno == EINVAL { continue }
                throw LinuxError("mount", "make-rslave \(point)")
            }
            if umount2(point, Int32(MNT_DETACH)) == 0 { continue }
            guard errno == EINVAL || errno == EPERM else { throw LinuxError("umount", point) }
            try Mounts.mount("tmpfs", point, type: "tmpfs", flags: UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), data: "size=0k,mode=555")
        }
    }

    /// After pivot_root, in runc's order: sysctls (before /proc/sys turns read-only), read-only
    /// paths, masked paths, then a read-only root.
    func finish() throws(ContainerError) {
        for (key, value) in (spec.linux?.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            if plan.networkPrepared && key.hasPrefix("net.") { continue }  // written by stage 1
            let path = "/proc/sys/" + key.split(separator: ".").joined(separator: "/")
            do { try FS.writeString(path, value, flags: O_WRONLY) } catch {
                throw configError("linux.sysctl[\"\(key)\"]", "\(error)")
            }
        }
        for (index, path) in (spec.linux?.readonlyPaths ?? []).enumerated() {
            guard FS.exists(path) else { continue }
            do {
                try Mounts.mount(path, path, type: nil, flags: UInt(MS_BIND) | UInt(MS_REC))
                try Mounts.mount(nil, path, type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY) | lockedFlags(path))
            } catch {
                throw configError("linux.readonlyPaths[\(index)]", "\(error)")
            }
        }
        for (index, path) in (spec.linux?.maskedPaths ?? []).enumerated() {
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            do {
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    try Mounts.mount("tmpfs", path, type: "tmpfs", flags: UInt(MS_RDONLY), data: "size=0k")
                } else {
                    try Mounts.mount("/dev/null", path, type: nil, flags: UInt(MS_BIND))
                }
            } catch {
                throw configError("linux.maskedPaths[\(index)]", "\(error)")
            }
        }
        for (index, mount) in (spec.mounts ?? []).enumerated() where Self.isDev(mount) && mount.type != "bind" {
            let options = MountOptions.parse(mount.options ?? [])
            guard options.flags & UInt(MS_RDONLY) != 0, !options.isBind else { continue }
            do { try Mounts.mount(nil, "/dev", type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY) | lockedFlags("/dev")) } catch {
                throw configError("mounts[\(index)]", "making /dev read-only: \(error)")
            }
        }
        if spec.root.readonly == true {
            do { try Mounts.mount(nil, "/", type: nil, flags: UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY) | lockedFlags("/")) } catch {
                throw configError("root.readonly", "\(error)")
            }
        }
    }
}

/// The sandbox's /sys: a small tmpfs, never the host's sysfs (which names the host's devices,
/// firmware and kernel, and whose network view a sandbox no longer owns). It holds what C
/// libraries and runtimes read: the CPU lists glibc's get_nprocs reads (the CPUs the sandbox
/// is confined to), a directory per CPU (get_nprocs_conf), and the cgroup mount point.
enum SyntheticSys {
    static let options = "mode=755,size=64k"

    static func populate(_ path: String, cpus: Int?) throws(LinuxError) {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = veil_affinity_list(&buffer, buffer.count, Int32(cpus ?? 0))
        guard length > 0 else { throw LinuxError("sched_getaffinity", "the sandbox's CPUs", errno: length < 0 ? -length : EINVAL) }
        let list = String(decoding: buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cpuDirectory = path + "/devices/system/cpu"
        try FS.mkdirAll(path + "/fs/cgroup")
        try FS.mkdirAll(cpuDirectory)
        for name in ["online", "possible", "present"] {
            try FS.writeFile(cpuDirectory + "/" + name, Array((list + "\n").utf8), mode: 0o444)
        }
        for cpu in numbers(in: list) { try FS.mkdirAll(cpuDirectory + "/cpu\(cpu)") }
    }

    /// The CPU numbers of a kernel cpu list ("0-2,5").
    static func numbers(in list: String) -> [Int] {
        list.split(separator: ",").flatMap { part -> [Int] in
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            guard let first = bounds.first else { return [] }
            return Array(first...(bounds.count > 1 ? max(first, bounds[1]) : first))
        }
    }
}

/// Flags a remount must keep: in a user namespace the kernel refuses to drop nosuid/nodev/noexec
/// (and atime settings) that the parent namespace locked.
/// `besides`: flags the remount sets anyway; when they hold all four, the statvfs (a request to the
/// filesystem: a round trip to the server for FUSE, such as the sandbox's /proc views) is skipped.
func lockedFlags(_ path: String, besides: UInt = 0) -> UInt {
    let lockable = UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC)
    if besides & lockable == lockable { return 0 }
    var st = statvfs()
    guard statvfs(path, &st) == 0 else { return 0 }
    var flags: UInt = 0
    let f = UInt(st.f_flag)
    // statvfs's ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC (Glibc does not export them to Swift).
    if f & 1 != 0 { flags |= UInt(MS_RDONLY) }
    if f & 2 != 0 { flags |= UInt(MS_NOSUID) }
    if f & 4 != 0 { flags |= UInt(MS_NODEV) }
    if f & 8 != 0 { flags |= UInt(MS_NOEXEC) }
    return flags
}

/// glibc's makedev encoding (a macro, so not visible to Swift).

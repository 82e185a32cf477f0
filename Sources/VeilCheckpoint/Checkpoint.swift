import Foundation
import VeilCRIUProtocol
import VeilContainer

/// What a checkpoint says about the container it saved: its processes with their open files,
/// sockets and memory, its mounts and hostname, read from CRIU's images.
public struct SavedProcess: Sendable {
    public let pid: UInt32
    public let ppid: UInt32
    public let pgid: UInt32
    public let sid: UInt32
    public let threads: [UInt32]
    public let comm: String
    /// A zombie: dead, not yet reaped (CRIU saves it without memory or files).
    public let isZombie: Bool
    /// argv from the saved memory (nil when those pages were not dumped).
    public var commandLine: [String]?
    public var environment: [String]?
    public var files: [OpenFile] = []
    public var sockets: [SavedSocket] = []
}

public struct OpenFile: Sendable {
    public let fd: UInt32
    public let type: String
    public let path: String
}

public struct SavedSocket: Sendable {
    public var fd: UInt32 = 0
    /// TCP, UDP, TCP6, UNIX ...
    public let protocolName: String
    public let state: String
    /// An IP address, or a unix socket's name.
    public let localAddress: String
    public let localPort: UInt32?
    public let peerAddress: String?
    public let peerPort: UInt32?

    /// address:port, [v6]:port, or the unix name.
    public var local: String { Self.endpoint(localAddress, localPort) }
    public var peer: String { peerAddress.map { Self.endpoint($0, peerPort) } ?? "-" }

    static func endpoint(_ address: String, _ port: UInt32?) -> String {
        guard let port else { return address }
        return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

public struct SavedMount: Sendable {
    public let mountpoint: String
    public let type: String
    public let source: String
    public let root: String
    public let options: String
    public let external: String?
}

/// Reads a checkpoint's images into the model above.
public struct CheckpointReader {
    public let images: ImageDirectory

    public init(images: ImageDirectory) { self.images = images }

    /// task_core_entry.task_state of a zombie (CRIU's TASK_DEAD).
    static let taskDead: UInt32 = 2

    /// The process tree in pstree.img order (parents before children).
    public func processes(withMemory: Bool = true, withFiles: Bool = true) throws(CheckpointError) -> [SavedProcess] {
        let tree = try images.image("pstree.img").messages(pstree_entry.self)
        guard !tree.isEmpty else { throw .badImage(file: images.path + "/pstree.img", reason: "no process in the tree") }
        let fileTable = withFiles ? try fileDescriptions() : [:]
        var result: [SavedProcess] = []
        for entry in tree {
            let core = try images.image("core-\(entry.pid).img").messages(core_entry.self).first
            // A zombie's thread list holds no real tid: it has no threads left.
            var process = SavedProcess(pid: entry.pid, ppid: entry.ppid, pgid: entry.pgid, sid: entry.sid,
                                       threads: entry.threads, comm: core?.tc.comm ?? "",
                                       isZombie: core?.tc.taskState == Self.taskDead)
            if withMemory, let mm = try images.optionalImage("mm-\(entry.pid).img")?.messages(mm_entry.self).first,
               let memory = try ProcessMemory.load(pid: entry.pid, in: images) {
                process.commandLine = try memory.strings(from: mm.mmArgStart, to: mm.mmArgEnd)
                process.environment = try memory.strings(from: mm.mmEnvStart, to: mm.mmEnvEnd)
            }
            if withFiles, let core {
                let filesID = core.hasIds ? core.ids.filesID : try legacyIDs(entry.pid)?.filesID
                if let filesID, let fdinfo = try images.optionalImage("fdinfo-\(filesID).img") {
                    for fd in fdinfo.messages(fdinfo_entry.self).sorted(by: { $0.fd < $1.fd }) {
                        let described = fileTable[fd.id] ?? Described(type: "\(fd.type)".uppercased(), path: "?", socket: nil)
                        process.files.append(OpenFile(fd: fd.fd, type: described.type, path: described.path))
                        if var socket = described.socket {
                            socket.fd = fd.fd
                            process.sockets.append(socket)
                        }
                    }
                }
            }
            result.append(process)
        }
        return result
    }

    private func legacyIDs(_ pid: UInt32) throws(CheckpointError) -> task_kobj_ids_entry? {
        try images.optionalImage("ids-\(pid).img")?.messages(task_kobj_ids_entry.self).first
    }

    /// The root task's namespace ids (inventory's root_ids, else the first task's core).
    public func rootIDs() throws(CheckpointError) -> task_kobj_ids_entry? {
        let inventory = try images.image("inventory.img").messages(inventory_entry.self).first
        if let inventory, inventory.hasRootIds { return inventory.rootIds }
        guard let first = try images.image("pstree.img").messages(pstree_entry.self).first else { return nil }
        return try images.optionalImage("core-\(first.pid).img")?.messages(core_entry.self).first?.ids
    }

    /// The saved UTS namespace's hostname and domain name.
    public func hostname() throws(CheckpointError) -> (nodename: String, domainname: String)? {
        var candidates: [String] = []
        if let id = try rootIDs(), id.hasUtsNsID { candidates.append("utsns-\(id.utsNsID).img") }
        candidates += images.fileNames.filter { $0.hasPrefix("utsns-") && $0.hasSuffix(".img") }
        for name in candidates where images.exists(name) {
            if let uts = try images.image(name).messages(utsns_entry.self).first { return (uts.nodename, uts.domainname) }
        }
        return nil
    }

    /// The root task's mount table (mountpoints-<mnt ns id>.img).
    public func mounts() throws(CheckpointError) -> [SavedMount] {
        var name: String?
        if let id = try rootIDs(), id.hasMntNsID, images.exists("mountpoints-\(id.mntNsID).img") { name = "mountpoints-\(id.mntNsID).img" }
        if name == nil { name = images.fileNames.first { $0.hasPrefix("mountpoints-") && $0.hasSuffix(".img") } }
        guard let name else { return [] }
        return try images.image(name).messages(mnt_entry.self).map { entry in
            SavedMount(mountpoint: entry.mountpoint, type: entry.hasFsname && !entry.fsname.isEmpty ? entry.fsname : Self.filesystemName(entry.fstype),
                       source: entry.source, root: entry.root, options: entry.options,
                       external: entry.hasExtKey && !entry.extKey.isEmpty ? entry.extKey : nil)
        }
    }

    static func filesystemName(_ type: UInt32) -> String {
        switch Int(type) {
        case fstype.proc.rawValue: return "proc"
        case fstype.sysfs.rawValue: return "sysfs"
        case fstype.devtmpfs.rawValue: return "devtmpfs"
        case fstype.binfmtMisc.rawValue: return "binfmt_misc"
        case fstype.tmpfs.rawValue: return "tmpfs"
        case fstype.devpts.rawValue: return "devpts"
        case fstype.mqueue.rawValue: return "mqueue"
        case fstype.cgroup.rawValue: return "cgroup"
        case fstype.cgroup2.rawValue: return "cgroup2"
        case fstype.overlayfs.rawValue: return "overlay"
        case fstype.fuse.rawValue: return "fuse"
        case fstype.securityfs.rawValue: return "securityfs"
        case fstype.debugfs.rawValue: return "debugfs"
        case fstype.tracefs.rawValue: return "tracefs"
        case fstype.autofs.rawValue: return "autofs"
        default: return type == fstype.unsupported.rawValue ? "-" : "type \(type)"
        }
    }

    /// CRIU's dump statistics (stats-dump), if the dump wrote them.
    public func dumpStatistics() throws(CheckpointError) -> dump_stats_entry? {
        guard let stats = try images.optionalImage(ArchiveLayout.statsDump)?.messages(stats_entry.self).first, stats.hasDump else { return nil }
        return stats.dump
    }

    // MARK: - open files

    struct Described {
        let type: String
        let path: String
        let socket: SavedSocket?
    }

    /// Every file object of the dump by id, described as /proc/<pid>/fd would show it.
    func fileDescriptions() throws(CheckpointError) -> [UInt32: Described] {
        var table: [UInt32: Described] = [:]
        if let files = try images.optionalImage("files.img") {
            for file in files.messages(file_entry.self) { table[file.id] = describe(file) }
        }
        // Images from before files.img (CRIU < 3.12 wrote one image per file type).
        if let regular = try images.optionalImage("reg-files.img") {
            for file in regular.messages(reg_file_entry.self) where table[file.id] == nil {
                table[file.id] = Described(type: "REG", path: file.name, socket: nil)
            }
        }
        return table
    }

    private func describe(_ file: file_entry) -> Described {
        switch file.type {
        case .reg: return Described(type: "REG", path: file.reg.name, socket: nil)
        case .pipe: return Described(type: "PIPE", path: "pipe:[\(file.pipe.pipeID)]", socket: nil)
        case .fifo: return Described(type: "FIFO", path: "fifo:[\(file.fifo.pipeID)]", socket: nil)
        case .inetsk:
            let socket = Self.describe(file.isk)
            return Described(type: "INETSK", path: "socket:[\(file.isk.ino)]", socket: socket)
        case .unixsk:
            let name = String(decoding: file.usk.name.map { $0 == 0 ? UInt8(ascii: "@") : $0 }, as: UTF8.self)
            let type = file.usk.type == 2 ? "UNIX (DGRAM)" : file.usk.type == 5 ? "UNIX (SEQPACKET)" : "UNIX (STREAM)"
            let state = file.usk.state == 10 ? "LISTEN" : file.usk.state == 1 ? "ESTABLISHED" : "UNCONNECTED"
            return Described(type: "UNIXSK", path: "socket:[\(file.usk.ino)]",
                             socket: SavedSocket(protocolName: type, state: state, localAddress: name.isEmpty ? "-" : name, localPort: nil,
                                                 peerAddress: file.usk.peer == 0 ? nil : "socket:[\(file.usk.peer)]", peerPort: nil))
        case .eventfd: return Described(type: "EVENTFD", path: "anon_inode:[eventfd]", socket: nil)
        case .eventpoll: return Described(type: "EVENTPOLL", path: "anon_inode:[eventpoll]", socket: nil)
        case .inotify: return Described(type: "INOTIFY", path: "anon_inode:inotify", socket: nil)
        case .fanotify: return Described(type: "FANOTIFY", path: "anon_inode:[fanotify]", socket: nil)
        case .signalfd: return Described(type: "SIGNALFD", path: "anon_inode:[signalfd]", socket: nil)
        case .timerfd: return Described(type: "TIMERFD", path: "anon_inode:[timerfd]", socket: nil)
        case .packetsk: return Described(type: "PACKETSK", path: "socket:[packet]", socket: nil)
        case .netlinksk: return Described(type: "NETLINKSK", path: "socket:[netlink]", socket: nil)
        case .tty: return Described(type: "TTY", path: "tty (info \(file.tty.ttyInfoID))", socket: nil)
        case .ns: return Described(type: "NS", path: "ns:[\(file.nsf.nsID)]", socket: nil)
        case .tunf: return Described(type: "TUNF", path: "/dev/net/tun", socket: nil)
        case .memfd: return Described(type: "MEMFD", path: "memfd (inode \(file.memfd.inodeID))", socket: nil)
        case .bpfmap: return Described(type: "BPFMAP", path: "anon_inode:bpf-map", socket: nil)
        default: return Described(type: "\(file.type)".uppercased(), path: "?", socket: nil)
        }
    }

    static func describe(_ socket: inet_sk_entry) -> SavedSocket {
        let v6 = socket.family == 10
        let transport: String
        switch (socket.type, socket.proto) {
        case (1, _): transport = "TCP"
        case (2, 17), (2, 0): transport = "UDP"
        case (2, 1), (2, 58), (3, _): transport = "ICMP"
        default: transport = "proto \(socket.proto)"
        }
        let connected = socket.dstPort != 0 || socket.dstAddr.contains { $0 != 0 }
        return SavedSocket(protocolName: transport + (v6 ? "6" : ""), state: tcpStateName(socket.state),
                           localAddress: address(socket.srcAddr, v6: v6), localPort: socket.srcPort,
                           peerAddress: connected ? address(socket.dstAddr, v6: v6) : nil, peerPort: connected ? socket.dstPort : nil)
    }

    static func tcpStateName(_ state: UInt32) -> String {
        let names = ["", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
                     "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]
        return Int(state) < names.count && state > 0 ? names[Int(state)] : "state \(state)"
    }

    /// CRIU keeps addresses as network-order words: IPv4 in one, IPv6 in four.
    static func address(_ words: [UInt32], v6: Bool) -> String {
        let bytes = words.flatMap { word in [UInt8(word & 0xff), UInt8(word >> 8 & 0xff), UInt8(word >> 16 & 0xff), UInt8(word >> 24)] }
        if !v6 {
            return bytes.count >= 4 ? bytes[0..<4].map(String.init).joined(separator: ".") : "0.0.0.0"
        }
        var groups: [String] = []
        var index = 0
        while index + 1 < bytes.count && groups.count < 8 {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
            index += 2
        }
        while groups.count < 8 { groups.append("0") }
        return compressIPv6(groups)
    }

    /// RFC 5952: the longest run of zero groups becomes "::".
    static func compressIPv6(_ groups: [String]) -> String {
        var best = (start: -1, length: 0)
        var current = (start: -1, length: 0)
        for (index, group) in groups.enumerated() {
            if group == "0" {
                current = current.start < 0 ? (index, 1) : (current.start, current.length + 1)
                if current.length > best.length { best = current }
            } else {
                current = (-1, 0)
            }
        }
        guard best.length > 1 else { return groups.joined(separator: ":") }
        let head = groups[..<best.start].joined(separator: ":")
        let tail = groups[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

import Foundation
import SwiftProtobuf
import VeilCRIUProtocol

/// One of CRIU's image kinds: the magic number in its header, its name (as crit prints it) and how
/// its entries are read. The numbers are CRIU's (criu/include/magic.h), the wire format the images
/// are written in.
public struct ImageKind: Sendable {
    public let name: String
    public let magic: UInt32
    let layout: EntryLayout

    /// How entries follow each other. Most images are a sequence of (u32 size, message); a few
    /// carry raw bytes after an entry, whose length the entry itself gives.
    enum EntryLayout: Sendable {
        case entries(any Message.Type, extra: ExtraBytes = .none)
        /// pagemap: a pagemap_head, then pagemap_entry records.
        case pagemap
        /// ghost files: a ghost_file_entry, then either chunks (entry + data) or the file's data.
        case ghostFile
        /// IPC message queues: an ipc_msg_entry, then qnum (u32 size, ipc_msg, data padded to 8).
        case ipcMessageQueues
    }

    /// Raw bytes after an entry, by the entry's own fields.
    enum ExtraBytes: Sendable {
        case none
        case pipeData        // pipe_data_entry.bytes
        case socketQueue     // sk_packet_entry.length
        case tcpStream       // tcp_stream_entry.inq_len + outq_len
        case bpfMapData      // bpfmap_data_entry.keys_bytes + values_bytes
        case sharedMemory    // ipc_shm_entry.size, padded to 4
        case semaphores      // ipc_sem_entry.nsems u16 values, padded to 8
    }

    /// The magics that precede an image's own in its first word (v1.1 images); inventory has none.
    static let commonMagic: UInt32 = 0x5456_4319
    static let serviceMagic: UInt32 = 0x5510_5940

    public static let all: [ImageKind] = [
        ImageKind(name: "INVENTORY", magic: 0x5831_3116, layout: .entries(inventory_entry.self)),
        ImageKind(name: "PSTREE", magic: 0x5027_3030, layout: .entries(pstree_entry.self)),
        ImageKind(name: "FDINFO", magic: 0x5621_3732, layout: .entries(fdinfo_entry.self)),
        ImageKind(name: "PAGEMAP", magic: 0x5608_4025, layout: .pagemap),
        ImageKind(name: "CORE", magic: 0x5505_3847, layout: .entries(core_entry.self)),
        ImageKind(name: "IDS", magic: 0x5443_2030, layout: .entries(task_kobj_ids_entry.self)),
        ImageKind(name: "VMAS", magic: 0x5412_3737, layout: .entries(vma_entry.self)),
        ImageKind(name: "PIPES", magic: 0x5651_3555, layout: .entries(pipe_entry.self)),
        ImageKind(name: "PIPES_DATA", magic: 0x5645_3709, layout: .entries(pipe_data_entry.self, extra: .pipeData)),
        ImageKind(name: "FIFO", magic: 0x5836_4939, layout: .entries(fifo_entry.self)),
        ImageKind(name: "FIFO_DATA", magic: 0x5933_3054, layout: .entries(pipe_data_entry.self, extra: .pipeData)),
        ImageKind(name: "SIGACT", magic: 0x5534_4201, layout: .entries(sa_entry.self)),
        ImageKind(name: "UNIXSK", magic: 0x5437_3943, layout: .entries(unix_sk_entry.self)),
        ImageKind(name: "INETSK", magic: 0x5644_3851, layout: .entries(inet_sk_entry.self)),
        ImageKind(name: "PACKETSK", magic: 0x6045_4618, layout: .entries(packet_sock_entry.self)),
        ImageKind(name: "ITIMERS", magic: 0x5746_4056, layout: .entries(itimer_entry.self)),
        ImageKind(name: "POSIX_TIMERS", magic: 0x5260_3957, layout: .entries(posix_timer_entry.self)),
        ImageKind(name: "SK_QUEUES", magic: 0x5626_4026, layout: .entries(sk_packet_entry.self, extra: .socketQueue)),
        ImageKind(name: "UTSNS", magic: 0x5447_3203, layout: .entries(utsns_entry.self)),
        ImageKind(name: "CREDS", magic: 0x5402_3547, layout: .entries(creds_entry.self)),
        ImageKind(name: "IPC_VAR", magic: 0x5311_5007, layout: .entries(ipc_var_entry.self)),
        ImageKind(name: "IPCNS_SHM", magic: 0x4628_3044, layout: .entries(ipc_shm_entry.self, extra: .sharedMemory)),
        ImageKind(name: "IPCNS_MSG", magic: 0x5545_3737, layout: .ipcMessageQueues),
        ImageKind(name: "IPCNS_SEM", magic: 0x5957_3019, layout: .entries(ipc_sem_entry.self, extra: .semaphores)),
        ImageKind(name: "REG_FILES", magic: 0x5036_3636, layout: .entries(reg_file_entry.self)),
        ImageKind(name: "EXT_FILES", magic: 0x5925_5641, layout: .entries(ext_file_entry.self)),
        ImageKind(name: "FS", magic: 0x5140_3912, layout: .entries(fs_entry.self)),
        ImageKind(name: "MM", magic: 0x5749_2820, layout: .entries(mm_entry.self)),
        ImageKind(name: "REMAP_FPATH", magic: 0x5913_3954, layout: .entries(remap_file_path_entry.self)),
        ImageKind(name: "GHOST_FILE", magic: 0x5258_3605, layout: .ghostFile),
        ImageKind(name: "TCP_STREAM", magic: 0x5146_5506, layout: .entries(tcp_stream_entry.self, extra: .tcpStream)),
        ImageKind(name: "EVENTFD_FILE", magic: 0x4452_3722, layout: .entries(eventfd_file_entry.self)),
        ImageKind(name: "EVENTPOLL_FILE", magic: 0x4502_3858, layout: .entries(eventpoll_file_entry.self)),
        ImageKind(name: "EVENTPOLL_TFD", magic: 0x4443_3746, layout: .entries(eventpoll_tfd_entry.self)),
        ImageKind(name: "SIGNALFD", magic: 0x5732_3820, layout: .entries(signalfd_entry.self)),
        ImageKind(name: "INOTIFY_FILE", magic: 0x4842_4431, layout: .entries(inotify_file_entry.self)),
        ImageKind(name: "INOTIFY_WD", magic: 0x5456_2009, layout: .entries(inotify_wd_entry.self)),
        ImageKind(name: "MNTS", magic: 0x5556_3928, layout: .entries(mnt_entry.self)),
        ImageKind(name: "NETDEV", magic: 0x5737_3951, layout: .entries(net_device_entry.self)),
        ImageKind(name: "NETNS", magic: 0x5593_3752, layout: .entries(netns_entry.self)),
        ImageKind(name: "TTY_FILES", magic: 0x5943_3025, layout: .entries(tty_file_entry.self)),
        ImageKind(name: "TTY_INFO", magic: 0x5945_3036, layout: .entries(tty_info_entry.self)),
        ImageKind(name: "TTY_DATA", magic: 0x5941_3026, layout: .entries(tty_data_entry.self)),
        ImageKind(name: "FILE_LOCKS", magic: 0x5432_3616, layout: .entries(file_lock_entry.self)),
        ImageKind(name: "RLIMIT", magic: 0x5711_3925, layout: .entries(rlimit_entry.self)),
        ImageKind(name: "FANOTIFY_FILE", magic: 0x5509_6122, layout: .entries(fanotify_file_entry.self)),
        ImageKind(name: "FANOTIFY_MARK", magic: 0x5650_6035, layout: .entries(fanotify_mark_entry.self)),
        ImageKind(name: "SIGNAL", magic: 0x5925_5647, layout: .entries(siginfo_entry.self)),
        ImageKind(name: "NETLINK_SK", magic: 0x5800_5614, layout: .entries(netlink_sk_entry.self)),
        ImageKind(name: "NS_FILES", magic: 0x6139_4011, layout: .entries(ns_file_entry.self)),
        ImageKind(name: "TUNFILE", magic: 0x5714_3751, layout: .entries(tunfile_entry.self)),
        ImageKind(name: "CGROUP", magic: 0x5938_3330, layout: .entries(cgroup_entry.self)),
        ImageKind(name: "TIMERFD", magic: 0x5049_3712, layout: .entries(timerfd_entry.self)),
        ImageKind(name: "CPUINFO", magic: 0x6140_4013, layout: .entries(cpuinfo_entry.self)),
        ImageKind(name: "USERNS", magic: 0x5547_4906, layout: .entries(userns_entry.self)),
        ImageKind(name: "SECCOMP", magic: 0x6441_3049, layout: .entries(seccomp_entry.self)),
        ImageKind(name: "BINFMT_MISC", magic: 0x6734_3323, layout: .entries(binfmt_misc_entry.self)),
        ImageKind(name: "AUTOFS", magic: 0x4935_3943, layout: .entries(autofs_entry.self)),
        ImageKind(name: "FILES", magic: 0x5630_3138, layout: .entries(file_entry.self)),
        ImageKind(name: "MEMFD_INODE", magic: 0x4845_3499, layout: .entries(memfd_inode_entry.self)),
        ImageKind(name: "TIMENS", magic: 0x4311_4433, layout: .entries(timens_entry.self)),
        ImageKind(name: "PIDNS", magic: 0x6115_7326, layout: .entries(pidns_entry.self)),
        ImageKind(name: "BPFMAP_FILE", magic: 0x5750_6142, layout: .entries(bpfmap_file_entry.self)),
        ImageKind(name: "BPFMAP_DATA", magic: 0x6432_4033, layout: .entries(bpfmap_data_entry.self, extra: .bpfMapData)),
        ImageKind(name: "APPARMOR", magic: 0x5942_3047, layout: .entries(apparmor_entry.self)),
        ImageKind(name: "STATS", magic: 0x5709_3306, layout: .entries(stats_entry.self)),
        ImageKind(name: "IRMAP_CACHE", magic: 0x5700_4059, layout: .entries(irmap_cache_entry.self)),
    ]

    static let byMagic: [UInt32: ImageKind] = Dictionary(all.map { ($0.magic, $0) }, uniquingKeysWith: { first, _ in first })
}

/// A decoded image: its kind and its entries, each a protobuf message with the raw bytes that
/// followed it, if its kind has any.
public struct ImageFile: Sendable {
    public struct Entry: Sendable {
        public let message: any Message
        /// Raw bytes after the entry (pipe data, socket queues, ghost file contents, ...).
        public var extra: [UInt8]?
        /// Named raw parts (tcp_stream: inq and outq), in crit's order.
        public var namedExtra: [(String, [UInt8])] = []
    }

    public let kind: ImageKind
    public let entries: [Entry]

    /// Decodes an image from its bytes; `file` names it in errors.
    public static func decode(_ bytes: [UInt8], file: String) throws(CheckpointError) -> ImageFile {
        var reader = ByteReader(bytes: bytes, file: file)
        guard bytes.count >= 4 else {
            throw .badImage(file: file, reason: bytes.isEmpty ? "empty file" : "only \(bytes.count) bytes, too short for a magic number")
        }
        var magic = try reader.u32()
        if magic == ImageKind.commonMagic || magic == ImageKind.serviceMagic {
            guard reader.remaining >= 4 else { throw .badImage(file: file, reason: "ends after its first magic number") }
            magic = try reader.u32()
        }
        guard let kind = ImageKind.byMagic[magic] else {
            throw .badImage(file: file, reason: "unknown magic 0x\(String(magic, radix: 16)): not a CRIU image (pages-*.img hold raw memory, no magic)")
        }
        var entries: [Entry] = []
        switch kind.layout {
        case .entries(let type, let extra):
            while reader.remaining > 0 {
                var entry = Entry(message: try reader.anyMessage(type))
                try readExtra(extra, of: &entry, reader: &reader)
                entries.append(entry)
            }
        case .pagemap:
            if reader.remaining > 0 { entries.append(Entry(message: try reader.message(pagemap_head.self))) }
            while reader.remaining > 0 { entries.append(Entry(message: try reader.message(pagemap_entry.self))) }
        case .ghostFile:
            let ghost = try reader.message(ghost_file_entry.self)
            if ghost.chunks {
                entries.append(Entry(message: ghost))
                while reader.remaining > 0 {
                    let chunk = try reader.message(ghost_chunk_entry.self)
                    entries.append(Entry(message: chunk, extra: try reader.bytes(Int(chunk.len), what: "ghost file chunk data")))
                }
            } else {
                entries.append(Entry(message: ghost, extra: try reader.bytes(reader.remaining, what: "ghost file data")))
            }
        case .ipcMessageQueues:
            while reader.remaining > 0 {
                let queue = try reader.message(ipc_msg_entry.self)
                entries.append(Entry(message: queue))
                for _ in 0..<queue.qnum {
                    let message = try reader.message(ipc_msg.self)
                    let data = try reader.bytes(Int(message.msize), what: "message data")
                    try reader.skip(padding(Int(message.msize), to: 8))
                    entries.append(Entry(message: message, extra: data))
                }
            }
        }
        return ImageFile(kind: kind, entries: entries)
    }

    private static func readExtra(_ extra: ImageKind.ExtraBytes, of entry: inout Entry, reader: inout ByteReader) throws(CheckpointError) {
        switch extra {
        case .none:
            return
        case .pipeData:
            guard let pipe = entry.message as? pipe_data_entry else { return }
            entry.extra = try reader.bytes(Int(pipe.bytes), what: "pipe data")
        case .socketQueue:
            guard let packet = entry.message as? sk_packet_entry else { return }
            entry.extra = try reader.bytes(Int(packet.length), what: "socket queue data")
        case .tcpStream:
            guard let stream = entry.message as? tcp_stream_entry else { return }
            entry.namedExtra = [("inq", try reader.bytes(Int(stream.inqLen), what: "TCP input queue")),
                                ("outq", try reader.bytes(Int(stream.outqLen), what: "TCP output queue"))]
        case .bpfMapData:
            guard let map = entry.message as? bpfmap_data_entry else { return }
            entry.extra = try reader.bytes(Int(map.keysBytes) + Int(map.valuesBytes), what: "BPF map data")
        case .sharedMemory:
            guard let shm = entry.message as? ipc_shm_entry else { return }
            entry.extra = try reader.bytes(Int(shm.size), what: "shared memory contents")
            try reader.skip(padding(Int(shm.size), to: 4))
        case .semaphores:
            guard let sem = entry.message as? ipc_sem_entry else { return }
            let size = 2 * Int(sem.nsems)
            entry.extra = try reader.bytes(size, what: "semaphore values")
            try reader.skip(padding(size, to: 8))
        }
    }

    private static func padding(_ size: Int, to alignment: Int) -> Int { (alignment - size % alignment) % alignment }

    /// The entries' messages of one type (pstree_entry, mnt_entry, ...).
    public func messages<M: Message>(_ type: M.Type) -> [M] { entries.compactMap { $0.message as? M } }
}

/// Little-endian reads over an image's bytes, with errors naming the file and offset.
struct ByteReader {
    let bytes: [UInt8]
    let file: String
    var offset = 0

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - offset }

    mutating func u32() throws(CheckpointError) -> UInt32 {
        guard remaining >= 4 else { throw .badImage(file: file, reason: "truncated at byte \(offset): a 4-byte field needs \(4 - remaining) more") }
        let value = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
        offset += 4
        return value
    }

    mutating func bytes(_ count: Int, what: String) throws(CheckpointError) -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw .badImage(file: file, reason: "truncated at byte \(offset): \(what) of \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func skip(_ count: Int) throws(CheckpointError) {
        guard count <= remaining else { throw .badImage(file: file, reason: "truncated at byte \(offset): \(count) bytes of padding, \(remaining) left") }
        offset += count
    }

    /// One (u32 size, message) record.
    mutating func message<M: Message>(_ type: M.Type) throws(CheckpointError) -> M {
        let start = offset
        let size = Int(try u32())
        let body = try bytes(size, what: "\(M.protoMessageName) entry")
        do { return try M(serializedBytes: body) } catch {
            throw .badImage(file: file, reason: "the \(M.protoMessageName) entry at byte \(start) does not decode: \(error)")
        }
    }

    /// A message of a type known only at run time (the kind's entry type).
    mutating func anyMessage(_ type: any Message.Type) throws(CheckpointError) -> any Message {
        let start = offset
        let size = Int(try u32())
        let body = try bytes(size, what: "\(type.protoMessageName) entry")
        do { return try type.init(serializedBytes: body) } catch {
            throw .badImage(file: file, reason: "the \(type.protoMessageName) entry at byte \(start) does not decode: \(error)")
        }
    }
}

extension ImageFile {
    /// The image as crit decodes it: {"magic": NAME, "entries": [...]}, each entry a message in
    /// protobuf's JSON mapping with the .proto field names, raw bytes after an entry under
    /// "extra" (base64), one entry per line.
    public func json() throws(CheckpointError) -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        var lines: [String] = []
        for entry in entries {
            var text: String
            do { text = try entry.message.jsonString(options: options) } catch {
                throw .badImage(file: kind.name, reason: "an entry does not encode as JSON: \(error)")
            }
            var extras: [(String, [UInt8])] = entry.namedExtra
            if let extra = entry.extra { extras.append(("extra", extra)) }
            for (key, bytes) in extras {
                let field = "\"\(key)\":\"\(base64(bytes))\""
                text = text == "{}" ? "{\(field)}" : String(text.dropLast()) + ",\(field)}"
            }
            lines.append("        " + text)
        }
        return "{\n    \"magic\": \"\(kind.name)\",\n    \"entries\": [\n" + lines.joined(separator: ",\n") + (lines.isEmpty ? "" : "\n") + "    ]\n}\n"
    }
}

func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

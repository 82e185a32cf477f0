import Glibc
import VeilCRIUProtocol
import VeilLinux

/// ELF core files from a checkpoint (x86_64): per process, one NT_PRSTATUS note per thread with
/// its saved registers, NT_PRPSINFO, NT_AUXV and NT_FILE, and a PT_LOAD segment for each stretch
/// of every mapping, with the saved pages as its contents (pages CRIU did not save, such as
/// unmodified file mappings, as segments without contents, for gdb to take from the files).
public enum CoreDump {
    static let pageSize = ProcessMemory.pageSize

    /// Writes core.<pid> for every process (or `pid`) of the checkpoint into `directory`; returns the paths.
    public static func write(_ archive: CheckpointArchive, to directory: String, pid: UInt32? = nil) throws(CheckpointError) -> [String] {
        let reader = CheckpointReader(images: archive.images)
        // Memory is loaded once per core written (writeCore reads the command line from it).
        let processes = try reader.processes(withMemory: false, withFiles: false)
        if let pid, !processes.contains(where: { $0.pid == pid }) {
            throw .invalidRequest("no process with pid \(pid) in \(archive.source)")
        }
        let files = try reader.fileDescriptions()
        if !FS.isDirectory(directory) && mkdir(directory, 0o755) != 0 { throw .io(directory, operation: "mkdir", errno: errno) }
        var written: [String] = []
        for process in processes where pid == nil || process.pid == pid {
            let path = directory + "/core.\(process.pid)"
            try writeCore(process, images: archive.images, files: files, to: path)
            written.append(path)
        }
        return written
    }

    static func writeCore(_ saved: SavedProcess, images: ImageDirectory, files: [UInt32: CheckpointReader.Described], to path: String) throws(CheckpointError) {
        guard let mm = try images.optionalImage("mm-\(saved.pid).img")?.messages(mm_entry.self).first else {
            throw .missingFile("mm-\(saved.pid).img", in: images.path, reason: "process \(saved.pid) has no saved address space (a zombie?)")
        }
        let memory = try ProcessMemory.load(pid: saved.pid, in: images)
        var process = saved
        process.commandLine = try memory?.strings(from: mm.mmArgStart, to: mm.mmArgEnd)
        let mappings = try SavedMapping.load(pid: process.pid, images: images, files: files)

        // Threads, the process's own first.
        var threads: [(tid: UInt32, core: core_entry)] = []
        for tid in [process.pid] + process.threads.filter({ $0 != process.pid }) {
            guard let core = try images.optionalImage("core-\(tid).img")?.messages(core_entry.self).first else { continue }
            guard core.hasThreadInfo else {
                throw .badImage(file: images.path + "/core-\(tid).img", reason: "no x86_64 registers (thread_info): coredump writes x86_64 cores only")
            }
            threads.append((tid, core))
        }

        var notes = ELFWriter()
        for thread in threads { notes.note(type: 1, descriptor: prstatus(thread.tid, thread.core, process)) }
        notes.note(type: 3, descriptor: prpsinfo(process))
        var auxv = ELFWriter()
        for word in mm.mmSavedAuxv { auxv.u64(word) }
        notes.note(type: 6, descriptor: auxv.bytes)
        let fileMappings = mappings.filter { $0.isFile }
        if !fileMappings.isEmpty {
            var table = ELFWriter()
            table.u64(UInt64(fileMappings.count))
            table.u64(pageSize)
            for mapping in fileMappings { table.u64(mapping.start); table.u64(mapping.end); table.u64(mapping.offset) }
            for mapping in fileMappings { table.append(Array(mapping.name.utf8) + [0]) }
            notes.note(type: 0x4649_4c45, descriptor: table.bytes)
        }

        // Segments: each mapping cut where saved pages start and stop.
        struct Segment { let start: UInt64; let end: UInt64; let flags: UInt32; let saved: Bool }
        var segments: [Segment] = []
        for mapping in mappings {
            let flags = (mapping.protection & 1 != 0 ? UInt32(4) : 0) | (mapping.protection & 2 != 0 ? 2 : 0) | (mapping.protection & 4 != 0 ? 1 : 0)
            var cursor = mapping.start
            let runs = (memory?.runs ?? []).filter { run in
                if case .absent = run.source { return false }
                return run.end > mapping.start && run.start < mapping.end
            }
            for run in runs {
                let from = max(run.start, mapping.start), to = min(run.end, mapping.end)
                if from > cursor { segments.append(Segment(start: cursor, end: from, flags: flags, saved: false)) }
                if let last = segments.last, last.saved, last.end == from, last.flags == flags {
                    segments[segments.count - 1] = Segment(start: last.start, end: to, flags: flags, saved: true)
                } else {
                    segments.append(Segment(start: from, end: to, flags: flags, saved: true))
                }
                cursor = to
            }
            if cursor < mapping.end { segments.append(Segment(start: cursor, end: mapping.end, flags: flags, saved: false)) }
        }

        let headerSize: UInt64 = 64, programHeaderSize: UInt64 = 56
        let phnum = 1 + segments.count
        let notesOffset = headerSize + programHeaderSize * UInt64(phnum)
        var dataOffset = align(notesOffset + UInt64(notes.bytes.count), to: pageSize)

        var head = ELFWriter()
        head.append([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8))  // ELF64, LSB, current, SYSV
        head.u16(4)       // ET_CORE
        head.u16(62)      // EM_X86_64
        head.u32(1)       // EV_CURRENT
        head.u64(0)       // e_entry
        head.u64(headerSize)  // e_phoff
        head.u64(0)       // e_shoff
        head.u32(0)       // e_flags
        head.u16(UInt16(headerSize))
        head.u16(UInt16(programHeaderSize))
        head.u16(UInt16(phnum))
        head.u16(64)      // e_shentsize
        head.u16(0)       // e_shnum
        head.u16(0)       // e_shstrndx
        // PT_NOTE
        head.u32(4); head.u32(0); head.u64(notesOffset); head.u64(0); head.u64(0)
        head.u64(UInt64(notes.bytes.count)); head.u64(0); head.u64(4)
        var contents: [(offset: UInt64, segment: Segment)] = []
        for segment in segments {
            let size = segment.end - segment.start
            head.u32(1)  // PT_LOAD
            head.u32(segment.flags)
            head.u64(segment.saved ? dataOffset : 0)
            head.u64(segment.start)
            head.u64(0)
            head.u64(segment.saved ? size : 0)
            head.u64(size)
            head.u64(pageSize)
            if segment.saved {
                contents.append((dataOffset, segment))
                dataOffset += size
            }
        }

        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path, operation: "creating", errno: errno) }
        defer { close(fd) }
        try writeAll(fd, head.bytes + notes.bytes, at: 0, path: path)
        for (offset, segment) in contents {
            let bytes = try memory?.read(segment.start, count: Int(segment.end - segment.start)) ?? []
            try writeAll(fd, bytes, at: offset, path: path)
        }
        if ftruncate(fd, off_t(dataOffset)) != 0 { throw .io(path, operation: "ftruncate", errno: errno) }
    }

    /// struct elf_prstatus (x86_64, 336 bytes) with user_regs_struct in pr_reg.
    static func prstatus(_ tid: UInt32, _ core: core_entry, _ process: SavedProcess) -> [UInt8] {
        var out = ELFWriter()
        out.u32(0); out.u32(0); out.u32(0)        // si_signo, si_code, si_errno
        out.u16(0); out.u16(0)                     // pr_cursig, padding
        out.u64(0); out.u64(core.tc.blkSigset)    // pr_sigpend, pr_sighold
        out.u32(tid); out.u32(process.ppid); out.u32(process.pgid); out.u32(process.sid)
        out.append([UInt8](repeating: 0, count: 64))  // pr_utime, pr_stime, pr_cutime, pr_cstime
        let r = core.threadInfo.gpregs
        for value in [r.r15, r.r14, r.r13, r.r12, r.bp, r.bx, r.r11, r.r10, r.r9, r.r8, r.ax, r.cx, r.dx, r.si, r.di,
                      r.origAx, r.ip, r.cs, r.flags, r.sp, r.ss, r.fsBase, r.gsBase, r.ds, r.es, r.fs, r.gs] {
            out.u64(value)
        }
        out.u32(0); out.u32(0)                     // pr_fpvalid, padding
        return out.bytes
    }

    /// struct elf_prpsinfo (x86_64, 136 bytes).
    static func prpsinfo(_ process: SavedProcess) -> [UInt8] {
        var out = ELFWriter()
        out.append([0, UInt8(ascii: "S"), 0, 0, 0, 0, 0, 0])  // state, sname, zomb, nice, padding
        out.u64(0)                                           // pr_flag
        out.u32(0); out.u32(0)                               // uid, gid
        out.u32(process.pid); out.u32(process.ppid); out.u32(process.pgid); out.u32(process.sid)
        out.append(fixed(Array(process.comm.utf8), 16))
        out.append(fixed(Array((process.commandLine ?? [process.comm]).joined(separator: " ").utf8), 80))
        return out.bytes
    }

    static func fixed(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        Array(bytes.prefix(size - 1)) + [UInt8](repeating: 0, count: size - min(bytes.count, size - 1))
    }

    static func align(_ value: UInt64, to alignment: UInt64) -> UInt64 { (value + alignment - 1) / alignment * alignment }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(CheckpointError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io(path, operation: "write", errno: errno) }
            done += n
        }
    }
}

/// Little-endian ELF structures.
struct ELFWriter {
    var bytes: [UInt8] = []

    mutating func append(_ more: [UInt8]) { bytes += more }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value & 0xff), UInt8(value >> 8)] }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(value >> UInt32(shift) & 0xff)) } }
    mutating func u64(_ value: UInt64) { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(value >> UInt64(shift) & 0xff)) } }

    /// An ELF note named "CORE": namesz, descsz, type, name and descriptor each padded to 4.
    mutating func note(type: UInt32, descriptor: [UInt8]) {
        let name: [UInt8] = Array("CORE".utf8) + [0]
        u32(UInt32(name.count)); u32(UInt32(descriptor.count)); u32(type)
        append(name + [UInt8](repeating: 0, count: (4 - name.count % 4) % 4))
        append(descriptor + [UInt8](repeating: 0, count: (4 - descriptor.count % 4) % 4))
    }
}

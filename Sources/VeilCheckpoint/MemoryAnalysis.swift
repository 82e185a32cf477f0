import Foundation
import VeilCRIUProtocol

/// A process's mappings from mm-<pid>.img, named as /proc/<pid>/maps names them.
public struct SavedMapping: Sendable {
    public let start: UInt64
    public let end: UInt64
    public let protection: UInt32
    public let flags: UInt32
    public let status: UInt32
    public let offset: UInt64
    public let name: String

    // CRIU's VMA status bits (criu/include/image.h).
    static let stack: UInt32 = 1 << 1
    static let vsyscall: UInt32 = 1 << 2
    static let vdso: UInt32 = 1 << 3
    static let heap: UInt32 = 1 << 5
    static let filePrivate: UInt32 = 1 << 6
    static let fileShared: UInt32 = 1 << 7
    static let anonShared: UInt32 = 1 << 8
    static let sysvipc: UInt32 = 1 << 10
    static let vvar: UInt32 = 1 << 12

    public var isFile: Bool { status & (Self.filePrivate | Self.fileShared) != 0 }
    public var isShared: Bool { status & (Self.fileShared | Self.anonShared | Self.sysvipc) != 0 }

    /// "r-xp" as in /proc/<pid>/maps.
    public var permissions: String {
        (protection & 1 != 0 ? "r" : "-") + (protection & 2 != 0 ? "w" : "-") + (protection & 4 != 0 ? "x" : "-") + (isShared ? "s" : "p")
    }

    static func load(pid: UInt32, images: ImageDirectory, files: [UInt32: CheckpointReader.Described]) throws(CheckpointError) -> [SavedMapping] {
        guard let mm = try images.optionalImage("mm-\(pid).img")?.messages(mm_entry.self).first else { return [] }
        return mm.vmas.map { vma in
            var name = ""
            if vma.status & Self.stack != 0 { name = "[stack]" }
            else if vma.status & Self.heap != 0 { name = "[heap]" }
            else if vma.status & Self.vdso != 0 { name = "[vdso]" }
            else if vma.status & Self.vvar != 0 { name = "[vvar]" }
            else if vma.status & Self.vsyscall != 0 { name = "[vsyscall]" }
            else if vma.status & (Self.filePrivate | Self.fileShared) != 0 { name = files[UInt32(truncatingIfNeeded: vma.shmid)]?.path ?? "file id \(vma.shmid)" }
            else if vma.status & Self.anonShared != 0 { name = "/dev/zero (deleted)" }
            else if vma.status & Self.sysvipc != 0 { name = "SYSV\(String(vma.shmid, radix: 16))" }
            return SavedMapping(start: vma.start, end: vma.end, protection: vma.prot, flags: vma.flags, status: vma.status,
                                offset: vma.pgoff, name: name)
        }
    }
}

/// `veil checkpoint memparse`: what each process saved, and where a string lies in it.
public struct MemorySearch {
    public struct Match: Sendable {
        public let pid: UInt32
        public let comm: String
        public let address: UInt64
        public let length: Int
        public let mapping: SavedMapping?
        /// The bytes around the match: `context` before, the match, `context` after (within the dump).
        public let surrounding: [UInt8]
        public let surroundingStart: UInt64
    }

    public enum Pattern {
        case string(String)
        case regex(String)
    }

    let archive: CheckpointArchive
    let processes: [SavedProcess]
    let files: [UInt32: CheckpointReader.Described]

    public init(_ archive: CheckpointArchive) throws(CheckpointError) {
        self.archive = archive
        let reader = CheckpointReader(images: archive.images)
        processes = try reader.processes(withMemory: false, withFiles: false)
        files = try reader.fileDescriptions()
    }

    func selected(_ pid: UInt32?) throws(CheckpointError) -> [SavedProcess] {
        guard let pid else { return processes }
        guard let process = processes.first(where: { $0.pid == pid }) else {
            throw .invalidRequest("no process with pid \(pid) in \(archive.source) (pids: \(processes.map { String($0.pid) }.joined(separator: ", ")))")
        }
        return [process]
    }

    /// Per process: saved memory and the part of it in shared mappings.
    public func overview() throws(CheckpointError) -> [(pid: UInt32, comm: String, saved: UInt64, shared: UInt64)] {
        var rows: [(UInt32, String, UInt64, UInt64)] = []
        for process in processes {
            guard let memory = try ProcessMemory.load(pid: process.pid, in: archive.images) else { continue }
            let mappings = try SavedMapping.load(pid: process.pid, images: archive.images, files: files)
            var shared: UInt64 = 0
            for run in memory.runs {
                if case .absent = run.source { continue }
                if let mapping = mappings.first(where: { $0.start <= run.start && run.start < $0.end }), mapping.isShared {
                    shared += run.pages * ProcessMemory.pageSize
                }
            }
            rows.append((process.pid, process.comm, memory.savedBytes, shared))
        }
        return rows
    }

    /// Every occurrence of the pattern in the saved pages of `pid` (or of every process).
    public func search(_ pattern: Pattern, pid: UInt32?, context: Int) throws(CheckpointError) -> [Match] {
        let regex: NSRegularExpression?
        let needle: [UInt8]
        switch pattern {
        case .string(let text):
            guard !text.isEmpty else { throw .invalidRequest("--search: empty string") }
            needle = Array(text.utf8)
            regex = nil
        case .regex(let expression):
            do { regex = try NSRegularExpression(pattern: expression) } catch {
                throw .invalidRequest("--search-regex: \(expression) is not a valid regular expression")
            }
            needle = []
        }
        var matches: [Match] = []
        for process in try selected(pid) {
            guard let memory = try ProcessMemory.load(pid: process.pid, in: archive.images) else { continue }
            let mappings = try SavedMapping.load(pid: process.pid, images: archive.images, files: files)
            for region in Self.contiguousRegions(memory.runs) {
                let bytes = try memory.read(region.start, count: Int(region.end - region.start)) ?? []
                var found: [(Int, Int)] = []
                if let regex {
                    // Latin-1 maps each byte to one UTF-16 unit, so match offsets are byte offsets.
                    let text = String(decoding: bytes.map { UInt16($0) }, as: UTF16.self)
                    for result in regex.matches(in: text, range: NSRange(location: 0, length: bytes.count)) where result.range.length > 0 {
                        found.append((result.range.location, result.range.length))
                    }
                } else {
                    found = Self.occurrences(of: needle, in: bytes).map { ($0, needle.count) }
                }
                for (offset, length) in found {
                    let address = region.start + UInt64(offset)
                    let from = max(0, offset - context)
                    let to = min(bytes.count, offset + length + context)
                    matches.append(Match(pid: process.pid, comm: process.comm, address: address, length: length,
                                         mapping: mappings.first { $0.start <= address && address < $0.end },
                                         surrounding: Array(bytes[from..<to]), surroundingStart: region.start + UInt64(from)))
                }
            }
        }
        return matches
    }

    /// The saved pages of one process, as address-ordered regions of contiguous dumped memory.
    public func regions(pid: UInt32) throws(CheckpointError) -> [(start: UInt64, bytes: [UInt8])] {
        _ = try selected(pid)
        guard let memory = try ProcessMemory.load(pid: pid, in: archive.images) else { return [] }
        var out: [(UInt64, [UInt8])] = []
        for region in Self.contiguousRegions(memory.runs) {
            out.append((region.start, try memory.read(region.start, count: Int(region.end - region.start)) ?? []))
        }
        return out
    }

    /// Runs that were saved, merged where one ends where the next begins (a string may cross them).
    static func contiguousRegions(_ runs: [ProcessMemory.Run]) -> [(start: UInt64, end: UInt64)] {
        var regions: [(start: UInt64, end: UInt64)] = []
        for run in runs {
            if case .absent = run.source { continue }
            if let last = regions.last, last.end == run.start { regions[regions.count - 1].end = run.end } else { regions.append((run.start, run.end)) }
        }
        return regions
    }

    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        guard !needle.isEmpty, haystack.count >= needle.count else { return [] }
        var found: [Int] = []
        let first = needle[0]
        haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in
                var index = 0
                let last = hay.count - pin.count
                while index <= last {
                    if hay[index] == first && memcmp(hay.baseAddress! + index, pin.baseAddress!, pin.count) == 0 { found.append(index) }
                    index += 1
                }
            }
        }
        return found
    }
}

/// hexdump -C style lines: address, 16 bytes in hex, the printable ones; repeated lines as "*".
public func hexDump(_ bytes: [UInt8], start: UInt64, collapse: Bool = true) -> String {
    var out = ""
    var previous: ArraySlice<UInt8>?
    var starred = false
    var offset = 0
    while offset < bytes.count {
        let line = bytes[offset..<min(offset + 16, bytes.count)]
        if collapse, let previous, previous.elementsEqual(line), line.count == 16 {
            if !starred { out += "*\n"; starred = true }
        } else {
            starred = false
            let address = String(start + UInt64(offset), radix: 16)
            var hex = line.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined(separator: " ")
            hex = hex.padding(toLength: 47, withPad: " ", startingAt: 0)
            let ascii = String(line.map { $0 >= 0x20 && $0 < 0x7f ? Character(UnicodeScalar($0)) : "." })
            out += String(repeating: "0", count: max(0, 16 - address.count)) + address + "  " + hex + "  |" + ascii + "|\n"
        }
        previous = line
        offset += 16
    }
    return out
}

import Glibc
import VeilCRIUProtocol

/// A process's saved memory: where each dumped page of its address space is, from
/// pagemap-<pid>.img, read out of pages-<id>.img (or the parent pre-dump's, for pages CRIU marked
/// as unchanged since it).
public final class ProcessMemory {
    public static let pageSize: UInt64 = 4096

    /// A run of consecutive pages and where their bytes are.
    public struct Run: Sendable {
        public enum Source: Sendable {
            /// In this dump's pages file, at a byte offset.
            case file(offset: UInt64)
            /// In the parent pre-dump's images.
            case parent
            /// Not saved: lazy pages served by a page server at restore, read as zeros here.
            case absent
        }

        public let start: UInt64
        public let pages: UInt64
        public let source: Source
        public var end: UInt64 { start + pages * ProcessMemory.pageSize }
    }

    // pagemap_entry.flags (CRIU's PE_* bits).
    static let flagParent: UInt32 = 1 << 0
    static let flagLazy: UInt32 = 1 << 1
    static let flagPresent: UInt32 = 1 << 2

    public let pid: UInt32
    public let runs: [Run]
    let pagesFile: String
    private let fd: Int32
    private let parent: ProcessMemory?

    /// The memory of `pid` in `directory`; nil when the dump has no pagemap for it (a zombie, or a
    /// thread rather than a process).
    public static func load(pid: UInt32, in directory: ImageDirectory) throws(CheckpointError) -> ProcessMemory? {
        guard let pagemap = try directory.optionalImage("pagemap-\(pid).img") else { return nil }
        return try ProcessMemory(pid: pid, pagemap: pagemap, directory: directory)
    }

    init(pid: UInt32, pagemap: ImageFile, directory: ImageDirectory) throws(CheckpointError) {
        self.pid = pid
        let file = directory.path + "/pagemap-\(pid).img"
        guard let head = pagemap.messages(pagemap_head.self).first else {
            throw .badImage(file: file, reason: "no pagemap_head entry")
        }
        var runs: [Run] = []
        var offset: UInt64 = 0
        var needsParent = false
        for entry in pagemap.messages(pagemap_entry.self) {
            let source: Run.Source
            if entry.hasFlags {
                if entry.flags & Self.flagPresent != 0 {
                    source = .file(offset: offset)
                    offset += UInt64(entry.nrPages) * Self.pageSize
                } else if entry.flags & Self.flagParent != 0 {
                    source = .parent
                } else {
                    source = .absent
                }
            } else if entry.inParent {
                source = .parent
            } else {
                source = .file(offset: offset)
                offset += UInt64(entry.nrPages) * Self.pageSize
            }
            if case .parent = source { needsParent = true }
            runs.append(Run(start: entry.vaddr, pages: UInt64(entry.nrPages), source: source))
        }
        self.runs = runs.sorted { $0.start < $1.start }
        pagesFile = directory.path + "/pages-\(head.pagesID).img"
        let opened = open(pagesFile, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else {
            if offset == 0 && errno == ENOENT { fd = -1; parent = nil; return }
            throw .io(pagesFile, operation: "open", errno: errno)
        }
        var st = stat()
        if fstat(opened, &st) == 0, UInt64(st.st_size) < offset {
            close(opened)
            throw .badImage(file: pagesFile, reason: "holds \(st.st_size) bytes, pagemap-\(pid).img describes \(offset)")
        }
        fd = opened
        if needsParent, let parentDirectory = directory.parent {
            parent = try ProcessMemory.load(pid: pid, in: parentDirectory)
        } else {
            parent = nil
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Bytes saved for the pages of this run (zeros where the dump has none).
    public func bytes(of run: Run) throws(CheckpointError) -> [UInt8] {
        try read(run.start, count: Int(run.end - run.start)) ?? [UInt8](repeating: 0, count: Int(run.end - run.start))
    }

    /// `count` bytes at `address`, or nil if any of them lies outside every dumped page.
    public func read(_ address: UInt64, count: Int) throws(CheckpointError) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var cursor = address
        let end = address + UInt64(count)
        while cursor < end {
            guard let run = runs.last(where: { $0.start <= cursor }), cursor < run.end else { return nil }
            let chunk = Int(min(end, run.end) - cursor)
            switch run.source {
            case .file(let offset):
                var buffer = [UInt8](repeating: 0, count: chunk)
                let position = off_t(offset + (cursor - run.start))
                var done = 0
                while done < chunk {
                    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, chunk - done, position + off_t(done)) }
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw n == 0 ? .badImage(file: pagesFile, reason: "ends before offset \(position + off_t(done))") : .io(pagesFile, operation: "read", errno: errno) }
                    done += n
                }
                out += buffer
            case .parent:
                guard let bytes = try parent?.read(cursor, count: chunk) else { return nil }
                out += bytes
            case .absent:
                out += [UInt8](repeating: 0, count: chunk)
            }
            cursor += UInt64(chunk)
        }
        return out
    }

    /// The NUL-separated strings between two addresses (argv, environ), as the kernel lays them out.
    public func strings(from start: UInt64, to end: UInt64) throws(CheckpointError) -> [String]? {
        guard end > start, end - start < 1 << 24, let bytes = try read(start, count: Int(end - start)) else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        while parts.last?.isEmpty == true { parts.removeLast() }
        return parts
    }

    /// Bytes saved in total (what a `memparse` overview reports).
    public var savedBytes: UInt64 {
        runs.reduce(0) { total, run in
            if case .absent = run.source { return total }
            return total + run.pages * Self.pageSize
        }
    }
}

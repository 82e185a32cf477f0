import CVeilLinux
import Glibc

/// A long-lived process's clean file pages (the shim's, the warden's). A Swift binary is large and
/// the code one request runs is scattered across it, so every page fault maps a whole
/// fault-around window (or large folio) of file-backed pages; loading the shared libraries reads
/// their symbol tables the same way. Dropping the pages of a mapping nothing can write and no
/// one has written loses nothing: the kernel maps them again from the page cache on the next
/// use. A read-only mapping the loader wrote before protecting it (RELRO) holds private
/// anonymous copies, which dropping would lose: smaps' `Anonymous:` tells them apart.
public enum Residency {
    /// File-backed mappings that are not writable and hold no private copy: (start, length).
    public static func cleanFileMappings() -> [(start: UInt, length: Int)] {
        guard let smaps = try? FS.readString("/proc/self/smaps") else { return [] }
        var result: [(UInt, Int)] = []
        var candidate: (UInt, Int)?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                if first == "Anonymous:", let mapping = candidate {
                    if fields.count >= 2 && fields[1] == "0" { result.append(mapping) }
                    candidate = nil
                }
                continue
            }
            // A mapping's header: "start-end perms offset dev inode path".
            candidate = nil
            guard fields.count >= 6, fields[5].hasPrefix("/"), fields[1].hasPrefix("r"), !fields[1].contains("w") else { continue }
            let range = first.split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            candidate = (start, Int(end - start))
        }
        return result
    }

    /// Gives back what a quiet process holds: its clean file pages (the page cache keeps them)
    /// and malloc's free memory.
    public static func trim() {
        _ = veil_malloc_trim()
        for mapping in cleanFileMappings() {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), mapping.length, MADV_DONTNEED)
        }
    }
}

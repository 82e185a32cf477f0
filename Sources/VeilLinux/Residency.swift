import CVeilLinux
import Glibc

/// A long-lived process's code pages (the shim's, the warden's). A static Swift binary is large
/// and the code one request runs is scattered across it, so every page fault maps a
/// whole fault-around window of clean, file-backed pages. These helpers act on code mappings
/// (r-xp of the executable and its shared libraries) only, which nothing ever writes: dropping
/// them loses nothing, the kernel maps them again from the page cache on the next use. (Not the
/// r--p ones: RELRO data is written by the loader before it is made read-only, and dropping those
/// private copies would lose it.)
public enum Residency {
    /// File-backed code mappings: (start, length).
    public static func codeMappings() -> [(start: UInt, length: Int)] {
        guard let maps = try? FS.readString("/proc/self/maps") else { return [] }
        var result: [(UInt, Int)] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/"), fields[1] == "r-xp" else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            result.append((start, Int(end - start)))
        }
        return result
    }

    /// madvise(2) on the executable's code.
    public static func adviseCode(_ advice: Int32) {
        for mapping in codeMappings() {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), mapping.length, advice)
        }
    }

    /// Gives back what a quiet process holds: its clean code pages (the page cache keeps them)
    /// and malloc's free memory.
    public static func trim() {
        _ = veil_malloc_trim()
        adviseCode(MADV_DONTNEED)
    }
}

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
    /// Gives back what a quiet process holds: its clean file pages (the page cache keeps them)
    /// and malloc's free memory.
    public static func trim() {
        _ = veil_trim_clean_file_mappings()
        _ = veil_malloc_trim()
    }
}

import Glibc
import CVeilLinux

/// An owned file descriptor, closed on deinit unless released.
public final class FileDescriptor {
    public private(set) var raw: Int32

    public init(_ raw: Int32) { self.raw = raw }
    deinit { if raw >= 0 { Glibc.close(raw) } }

    /// Gives up ownership; the caller closes it.
    public func release() -> Int32 {
        let fd = raw
        raw = -1
        return fd
    }

    public func close() {
        if raw >= 0 { Glibc.close(raw) }
        raw = -1
    }

    /// A close-on-exec pipe: (read end, write end).
    public static func pipe() throws(LinuxError) -> (reader: FileDescriptor, writer: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        try sysNeg("pipe2") { veil_pipe_cloexec(&fds) }
        return (FileDescriptor(fds[0]), FileDescriptor(fds[1]))
    }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(LinuxError) -> FileDescriptor {
        FileDescriptor(try sys("open", path) { Glibc.open(path, flags | O_CLOEXEC, mode) })
    }

    public func write(_ bytes: [UInt8]) throws(LinuxError) {
        var offset = 0
        while offset < bytes.count {
            let n = try sys("write") { bytes.withUnsafeBytes { Glibc.write(raw, $0.baseAddress.map { $0 + offset }, $0.count - offset) } }
            offset += n
        }
    }

    public func readAll(limit: Int = 64 << 20) throws(LinuxError) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = try sys("read") { buffer.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }
}

public enum FS {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func readFile(_ path: String) throws(LinuxError) -> [UInt8] {
        try FileDescriptor.open(path, O_RDONLY).readAll()
    }

    public static func readString(_ path: String) throws(LinuxError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    public static func writeFile(_ path: String, _ bytes: [UInt8], flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC, mode: mode_t = 0o644) throws(LinuxError) {
        try FileDescriptor.open(path, flags, mode: mode).write(bytes)
    }

    public static func writeString(_ path: String, _ text: String, flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC) throws(LinuxError) {
        try writeFile(path, Array(text.utf8), flags: flags)
    }

    /// Writes through a temporary file and rename, so readers never see half a file.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(LinuxError) {
        let tmp = path + ".tmp\(getpid())"
        do {
            try writeFile(tmp, bytes, mode: mode)
            try sys("rename", path) { rename(tmp, path) }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws(LinuxError) {
        if isDirectory(path) { return }
        // Only the missing levels are made, from the deepest existing one down (not a mkdir of
        // every level from the root).
        if mkdir(path, mode) != 0 {
            let failure = errno
            guard failure == ENOENT || failure == EEXIST else { throw LinuxError("mkdir", path, errno: failure) }
            if failure == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try mkdirAll(String(path[..<slash]), mode: mode)
                if mkdir(path, mode) != 0 && errno != EEXIST { throw LinuxError("mkdir", path) }
            }
        }
        if !isDirectory(path) { throw LinuxError("mkdir", path, errno: ENOTDIR) }
    }

    /// Removes a directory tree without following symlinks or crossing into mounts' contents
    /// other than by unlinking names.
    public static func removeAll(_ path: String) throws(LinuxError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw LinuxError("lstat", path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { try removeAll(path + "/" + name) }
            }
            try sys("rmdir", path) { rmdir(path) }
        } else {
            try sys("unlink", path) { unlink(path) }
        }
    }

    public static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// makedev(3), which Swift's Glibc does not offer (a macro).
    public static func deviceNumber(major: UInt64, minor: UInt64) -> dev_t {
        dev_t(((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff))
    }

    /// The target of a symbolic link (or a /proc magic link), nil when `path` is not one.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = Glibc.readlink(path, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(cString: buffer)
    }

    /// `path` against the current directory when it is relative (nothing resolved).
    public static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : currentDirectory() + "/" + path
    }

    /// `path` against `base` (default: the current directory) by name: "." and empty parts
    /// dropped, ".." removing the part before it, without asking the file system (a part may
    /// not exist yet).
    public static func lexicallyAbsolute(_ path: String, base: String? = nil) -> String {
        let full = path.hasPrefix("/") ? path : (base ?? currentDirectory()) + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") where part != "." {
            if part == ".." { if !parts.isEmpty { parts.removeLast() } } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }
}

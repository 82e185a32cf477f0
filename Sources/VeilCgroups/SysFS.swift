import FoundationEssentials
import Glibc

/// Minimal file helpers for cgroupfs. cgroup files must be written with a single write(2)
/// and report kernel refusals through errno, so Foundation's file APIs are not a good fit.
enum SysFS {
    static func read(_ path: String) throws(CgroupError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CgroupError.io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CgroupError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readTrimmed(_ path: String) throws(CgroupError) -> String {
        trimmed(try read(path))
    }

    static func write(_ path: String, _ value: String) throws(CgroupError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            if err == ENOENT { throw CgroupError.controllerUnavailable(file: path) }
            throw CgroupError.writeFailed(path: path, value: value, errno: err)
        }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CgroupError.writeFailed(path: path, value: value, errno: errno) }
            // cgroupfs consumes the whole buffer or fails; a short write would be a kernel oddity.
            if n != bytes.count { throw CgroupError.writeFailed(path: path, value: value, errno: EIO) }
            return
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Returns true when this call created the directory, false when it already existed.
    static func mkdirIfMissing(_ path: String) throws(CgroupError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        let err = errno
        if err == EEXIST && isDirectory(path) { return false }
        throw CgroupError.io(operation: "mkdir", path: path, errno: err)
    }

    /// Names of the regular files (cgroup knobs) in `path`, sorted.
    static func files(_ path: String) throws(CgroupError) -> [String] {
        guard let dir = opendir(path) else { throw CgroupError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name == "." || name == ".." { continue }
            if entry.pointee.d_type == UInt8(DT_REG) || entry.pointee.d_type == UInt8(DT_UNKNOWN) { names.append(name) }
        }
        return names.sorted()
    }

    /// Names of the child directories (child cgroups) of `path`.
    static func subdirectories(_ path: String) throws(CgroupError) -> [String] {
        guard let dir = opendir(path) else { throw CgroupError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name == "." || name == ".." { continue }
            let isDir = entry.pointee.d_type == UInt8(DT_DIR)
                || (entry.pointee.d_type == UInt8(DT_UNKNOWN) && isDirectory(path + "/" + name))
            if isDir { names.append(name) }
        }
        return names.sorted()
    }
}

/// Lexically normalises a path the way runc's CleanPath does: "." and ".." are resolved
/// without touching the filesystem, and ".." never climbs above the start, so a relative
/// cgroups path cannot escape the caller's cgroup.
func cleanComponents(_ path: String) -> [String] {
    var out: [String] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        if part == "." { continue }
        if part == ".." { _ = out.popLast(); continue }
        out.append(String(part))
    }
    return out
}

func joinPath(_ base: String, _ components: [String]) -> String {
    var result = base
    while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
    for c in components {
        result += (result.hasSuffix("/") ? "" : "/") + c
    }
    return result
}

/// `s` without leading and trailing white space. On the concrete String's scalars: building the
/// result from reversed Character sequences ran the standard library's unspecialized generic
/// code, whose type metadata the runtime looks up by scanning every conformance record of the
/// binary (~50 µs each, five of them in the first `delete` of a process).
func trimmed<S: StringProtocol>(_ s: S) -> String {
    let scalars = String(s).unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
          let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
    return String(scalars[first...last])
}

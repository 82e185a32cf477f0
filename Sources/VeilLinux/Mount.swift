import Glibc
import CVeilLinux

public enum Mounts {
    public static func mount(_ source: String?, _ target: String, type: String?, flags: UInt, data: String? = nil) throws(LinuxError) {
        let shown = "\(source ?? type ?? "none") on \(target)"
        try sys("mount", shown) { Glibc.mount(source, target, type, flags, data) }
    }

    public static func unmount(_ target: String, flags: Int32 = 0) throws(LinuxError) {
        try sys("umount", target) { umount2(target, flags) }
    }

    public static func pivotRoot(_ newRoot: String, _ putOld: String) throws(LinuxError) {
        try sysNeg("pivot_root", newRoot) { veil_pivot_root(newRoot, putOld) }
    }

    /// Mount points of the calling process's mount namespace (field 5 of mountinfo).
    public static func mountPoints(pid: String = "self") -> [String] {
        guard let text = try? FS.readString("/proc/\(pid)/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 ? unescapeOctal(String(fields[4])) : nil
        }
    }

    /// One line of /proc/PID/mountinfo.
    public struct Entry: Sendable {
        /// The directory of the filesystem that is mounted (field 4): "/" for a whole filesystem.
        public var root: String
        public var mountPoint: String
        /// Propagation tags ("shared:2", "master:3", ...).
        public var optionalFields: [String]
        public var fileSystemType: String
        /// The mount's source (the field after the type: a device, "tmpfs", "overlay", ...).
        public var source: String = ""

        public var isShared: Bool { optionalFields.contains { $0.hasPrefix("shared:") } }
    }

    /// The mounts of the calling process's mount namespace, in mountinfo's order.
    public static func entries(pid: String = "self") -> [Entry] {
        guard let text = try? FS.readString("/proc/\(pid)/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > 7, let dash = fields.firstIndex(of: "-"), dash >= 6, dash + 1 < fields.count else { return nil }
            return Entry(root: unescapeOctal(fields[3]), mountPoint: unescapeOctal(fields[4]),
                         optionalFields: Array(fields[6..<dash]), fileSystemType: fields[dash + 1],
                         source: dash + 2 < fields.count ? unescapeOctal(fields[dash + 2]) : "")
        }
    }

    /// The superblock options (mountinfo's last field) of the mount at `mountPoint`, e.g. an
    /// overlay's lowerdir/upperdir/workdir. The last mount there wins, as the kernel resolves it.
    public static func superOptions(mountPoint: String, pid: String = "self") -> [String: String]? {
        guard let text = try? FS.readString("/proc/\(pid)/mountinfo") else { return nil }
        var found: [String: String]?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, unescapeOctal(String(fields[4])) == mountPoint,
                  let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count else { continue }
            var options: [String: String] = [:]
            for option in fields[dash + 3].split(separator: ",") {
                let pair = option.split(separator: "=", maxSplits: 1)
                options[String(pair[0])] = pair.count > 1 ? unescapeOctal(String(pair[1])) : ""
            }
            found = options
        }
        return found
    }

    /// Undoes mountinfo's \ooo escapes (space, tab, newline, backslash in paths).
    public static func unescapeOctal(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

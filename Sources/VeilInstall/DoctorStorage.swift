import Glibc
import VeilLinux
import VeilSpec

/// Space and inode numbers of one filesystem (statvfs).
public struct FilesystemStats: Equatable, Sendable {
    public var totalBytes: UInt64
    /// Available to unprivileged users (f_bavail), what kubelet compares.
    public var availableBytes: UInt64
    /// 0 when the filesystem does not count inodes (btrfs, some network filesystems).
    public var totalInodes: UInt64
    public var freeInodes: UInt64

    public init(totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, freeInodes: UInt64) {
        self.totalBytes = totalBytes
        self.availableBytes = availableBytes
        self.totalInodes = totalInodes
        self.freeInodes = freeInodes
    }
}

/// A kubelet eviction threshold: a percentage or a quantity (bytes, or a count for inodes).
public enum EvictionThreshold: Equatable, Sendable {
    case percent(Double)
    case quantity(Double)

    /// "10%", "1Gi", "500Mi", "100k", "2e3": nil when unreadable.
    public static func parse(_ text: String) -> EvictionThreshold? {
        let t = text.trimmingWhitespace
        if t.hasSuffix("%") {
            guard let value = Double(String(t.dropLast()).trimmingWhitespace), value >= 0 else { return nil }
            return .percent(value)
        }
        let suffixes: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
            ("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18), ("m", 1e-3),
        ]
        for (suffix, factor) in suffixes where t.hasSuffix(suffix) {
            guard let value = Double(t.dropLast(suffix.count)), value >= 0 else { return nil }
            return .quantity(value * factor)
        }
        guard let value = Double(t), value >= 0 else { return nil }
        return .quantity(value)
    }

    /// As a percentage of `total`.
    public func percent(of total: UInt64) -> Double {
        switch self {
        case .percent(let p): return p
        case .quantity(let q): return total == 0 ? 0 : q / Double(total) * 100
        }
    }

    var text: String {
        switch self {
        case .percent(let p): return DoctorStorage.format(p) + "%"
        case .quantity(let q): return DoctorStorage.formatQuantity(q)
        }
    }
}

/// kubelet's hard eviction thresholds as `veil doctor` uses them.
public struct EvictionSettings: Equatable, Sendable {
    public static let defaults: [String: String] = ["nodefs.available": "10%", "imagefs.available": "15%", "nodefs.inodesFree": "5%"]

    /// Signal name → threshold text as written.
    public var thresholds: [String: String]
    /// Where they came from, for the detail line.
    public var source: String

    /// From the kubelet config text (nil: no file). kubelet takes `evictionHard` as given: signals it
    /// leaves out are off, unless `mergeDefaultEvictionSettings: true` fills them from the defaults.
    public static func from(kubeletConfig text: String?, path: String) -> EvictionSettings {
        guard let text else { return EvictionSettings(thresholds: defaults, source: "kubelet defaults (no \(path))") }
        let parsed = KubeletConfigReader.read(text)
        guard let hard = parsed.evictionHard else { return EvictionSettings(thresholds: defaults, source: "kubelet defaults (\(path) sets no evictionHard)") }
        if parsed.mergeDefaults {
            return EvictionSettings(thresholds: defaults.merging(hard) { $1 }, source: "\(path) evictionHard merged with the defaults")
        }
        return EvictionSettings(thresholds: hard, source: "\(path) evictionHard")
    }
}

/// The few keys of a KubeletConfiguration (YAML, or JSON, which is YAML) that doctor needs:
/// `evictionHard` as a block or flow mapping, and `mergeDefaultEvictionSettings`.
public enum KubeletConfigReader {
    public struct Result: Equatable {
        public var evictionHard: [String: String]?
        public var mergeDefaults = false
    }

    public static func read(_ text: String) -> Result {
        var result = Result()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { stripComment(String($0)) }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            i += 1
            guard let (indent, key, value) = keyValue(line) else { continue }
            if key == "mergeDefaultEvictionSettings" {
                result.mergeDefaults = unquote(value.trimmingWhitespace.trimmingTrailingComma()) == "true"
            }
            guard key == "evictionHard" else { continue }
            var map: [String: String] = [:]
            let rest = value.trimmingWhitespace
            if rest.hasPrefix("{") {
                // Flow mapping, possibly over several lines, up to the closing brace.
                var flow = rest
                while !flow.contains("}") && i < lines.count {
                    flow += " " + lines[i]
                    i += 1
                }
                let inner = flow.dropFirst().prefix { $0 != "}" }
                for pair in splitOutsideQuotes(String(inner), by: ",") {
                    if let (_, k, v) = keyValue(pair), !k.isEmpty { map[k] = unquote(v.trimmingWhitespace) }
                }
            } else if rest.isEmpty {
                // Block mapping: the following lines indented deeper.
                while i < lines.count {
                    let next = lines[i]
                    if next.trimmingWhitespace.isEmpty { i += 1; continue }
                    guard let (childIndent, k, v) = keyValue(next), childIndent > indent else { break }
                    map[k] = unquote(v.trimmingWhitespace.trimmingTrailingComma())
                    i += 1
                }
            }
            result.evictionHard = map
        }
        return result
    }

    /// (indent, key, value after the colon) for a `key: value` line; nil for anything else.
    static func keyValue(_ line: String) -> (Int, String, String)? {
        let indent = line.prefix { $0 == " " || $0 == "\t" }.count
        let body = line.dropFirst(indent)
        guard let first = body.first, first != "-" else { return nil }
        // The colon ending the key: outside quotes, followed by a space or the end.
        var quote: Character?
        var index = body.startIndex
        while index < body.endIndex {
            let c = body[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == ":" {
                let after = body.index(after: index)
                if after == body.endIndex || body[after] == " " || body[after] == "\t" {
                    let key = unquote(String(body[..<index]).trimmingWhitespace)
                    return (indent, key, String(body[after...]))
                }
            }
            index = body.index(after: index)
        }
        return nil
    }

    static func unquote(_ s: String) -> String {
        if s.count >= 2, let f = s.first, (f == "\"" || f == "'"), s.last == f { return String(s.dropFirst().dropLast()) }
        return s
    }

    /// The line without a `#` comment (one at the start or after a blank, outside quotes).
    static func stripComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, c) in line.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || previous == "\t") {
                return String(line.prefix(offset))
            }
            previous = c
        }
        return line
    }

    static func splitOutsideQuotes(_ s: String, by separator: Character) -> [String] {
        var parts: [String] = [], current = ""
        var quote: Character?
        for c in s {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == separator {
                parts.append(current)
                current = ""
                continue
            }
            current.append(c)
        }
        parts.append(current)
        return parts
    }
}

extension String {
    func trimmingTrailingComma() -> String { hasSuffix(",") ? String(dropLast()).trimmingWhitespace : self }
}

/// Container storage placement and free space against kubelet's eviction thresholds.
public enum DoctorStorage {
    /// How close above a threshold counts as a warning, in percentage points.
    public static let warningMargin = 5.0

    static func checks(containerd: RuntimeStorage?, crio: RuntimeStorage?, options: DoctorOptions) -> [DoctorCheck] {
        let rootDevice = device("/")
        let mounts = MountTable(DoctorFiles.read("/proc/self/mountinfo") ?? "")
        func placement(_ name: String, _ label: String, _ path: String?, runtime: String) -> DoctorCheck {
            guard let path else { return DoctorCheck(name, .pass, "\(runtime) is not installed: nothing to check") }
            let existing = nearestExisting(path)
            return shared(name: name, label: label, path: path, existing: existing,
                          device: device(existing), rootDevice: rootDevice, mount: mounts.mount(containing: FS.realPath(existing) ?? existing))
        }
        var checks = [
            placement("storage.containerd-root", "containerd root", containerd?.root, runtime: "containerd"),
            placement("storage.containerd-state", "containerd state", containerd?.state, runtime: "containerd"),
            placement("storage.crio-graphroot", "CRI-O graphroot", crio?.root, runtime: "CRI-O"),
            placement("storage.crio-runroot", "CRI-O runroot", crio?.state, runtime: "CRI-O"),
        ]

        let settings = EvictionSettings.from(kubeletConfig: DoctorFiles.read(options.kubeletConfig), path: options.kubeletConfig)
        let nodefs = nearestExisting(options.kubeletRoot)
        checks.append(eviction(name: "eviction.nodefs", kind: "nodefs",
                               filesystems: [(label: "kubelet root \(options.kubeletRoot)" + (nodefs == options.kubeletRoot ? "" : " (not created yet)"), mount: mounts.mount(containing: FS.realPath(nodefs) ?? nodefs), stats: stats(nodefs))],
                               settings: settings))
        // The image filesystem: each runtime's root, once per filesystem; kubelet's when there is no runtime.
        var images: [(label: String, mount: String, stats: FilesystemStats?)] = []
        var devices: Set<UInt64> = []
        let roots = [("containerd root", containerd?.root), ("CRI-O graphroot", crio?.root)].compactMap { label, path in path.map { (label, $0) } }
        for (label, path) in roots.isEmpty ? [("kubelet root (no container runtime found)", options.kubeletRoot)] : roots {
            let existing = nearestExisting(path)
            if let dev = device(existing), !devices.insert(dev).inserted { continue }
            images.append((label: "\(label) \(path)", mount: mounts.mount(containing: FS.realPath(existing) ?? existing), stats: stats(existing)))
        }
        checks.append(eviction(name: "eviction.imagefs", kind: "imagefs", filesystems: images, settings: settings))
        return checks
    }

    // MARK: placement

    public static func shared(name: String, label: String, path: String, existing: String, device: UInt64?, rootDevice: UInt64?, mount: String) -> DoctorCheck {
        let note = existing == path ? "" : " (not created yet; \(existing) is)"
        guard let device, let rootDevice else {
            return DoctorCheck(name, .warn, "\(label) \(path)\(note): cannot stat it", fix: "check that \(existing) is readable (run veil doctor as root)")
        }
        if device == rootDevice {
            return DoctorCheck(name, .warn, "\(label) \(path)\(note) shares the root filesystem: filling it fills / (informational)",
                               fix: "optional: mount a dedicated filesystem at \(path)")
        }
        return DoctorCheck(name, .pass, "\(label) \(path)\(note) is on its own filesystem (\(mount))")
    }

    // MARK: eviction

    /// pass/warn/fail for one signal: fail below the threshold, warn within `warningMargin` points above it.
    /// A threshold of 0% or 100% (or more) turns the signal off, as in kubelet.
    public static func decide(freePercent: Double, thresholdPercent: Double) -> DoctorStatus {
        if thresholdPercent <= 0 || thresholdPercent >= 100 { return .pass }
        if freePercent < thresholdPercent { return .fail }
        if freePercent < thresholdPercent + warningMargin { return .warn }
        return .pass
    }

    /// Evaluates the `kind` (nodefs or imagefs) signals on each filesystem; the worst decides.
    public static func eviction(name: String, kind: String, filesystems: [(label: String, mount: String, stats: FilesystemStats?)],
                                settings: EvictionSettings) -> DoctorCheck {
        var status = DoctorStatus.pass
        var parts: [String] = []
        var fixes: [String] = []
        var bad: [String] = []
        for fs in filesystems {
            guard let stats = fs.stats, stats.totalBytes > 0 else {
                parts.append("\(fs.label): no filesystem numbers")
                status = max(status, .warn)
                fixes.append("check \(fs.label)")
                continue
            }
            var signals: [String] = []
            for (signal, resource) in [("\(kind).available", "space"), ("\(kind).inodesFree", "inodes")] {
                let isInodes = resource == "inodes"
                let total = isInodes ? stats.totalInodes : stats.totalBytes
                let free = isInodes ? stats.freeInodes : stats.availableBytes
                let freeText = isInodes ? "\(free) inodes" : formatQuantity(Double(free))
                let raw = settings.thresholds[signal]
                if isInodes && total == 0 {
                    if raw != nil { signals.append("inodes not counted by this filesystem") }
                    continue
                }
                let freePercent = Double(free) / Double(total) * 100
                guard let raw else {
                    signals.append("\(resource) \(format(freePercent))% free (\(freeText); no \(signal) threshold)")
                    continue
                }
                guard let threshold = EvictionThreshold.parse(raw) else {
                    signals.append("\(signal) \"\(raw)\" is unreadable")
                    status = max(status, .warn)
                    fixes.append("correct \(signal) in the kubelet config")
                    continue
                }
                let thresholdPercent = threshold.percent(of: total)
                let decision = decide(freePercent: freePercent, thresholdPercent: thresholdPercent)
                var text = "\(resource) \(format(freePercent))% free (\(freeText)) vs \(signal)<\(threshold.text)"
                if case .quantity = threshold { text += " (\(format(thresholdPercent))%)" }
                if thresholdPercent <= 0 || thresholdPercent >= 100 { text += " (off)" }
                if decision != .pass {
                    text += decision == .fail ? " BELOW: kubelet evicts pods" : " within \(format(warningMargin)) points"
                    bad.append(signal)
                    fixes.append(isInodes ? "delete many small files on \(fs.mount) (or unused images: crictl rmi --prune)"
                                          : "free space on \(fs.mount): crictl rmi --prune, remove old logs, or grow the filesystem")
                }
                status = max(status, decision)
                signals.append(text)
            }
            parts.append("\(fs.label) on \(fs.mount): " + signals.joined(separator: ", "))
        }
        let detail = parts.joined(separator: "; ") + " [\(settings.source)]"
        var unique: [String] = []
        for fix in fixes where !unique.contains(fix) { unique.append(fix) }
        return DoctorCheck(name, status, detail, fix: unique.joined(separator: "; "))
    }

    // MARK: system

    static func stats(_ path: String) -> FilesystemStats? {
        var buffer = statvfs()
        guard statvfs(path, &buffer) == 0 else { return nil }
        let unit = UInt64(buffer.f_frsize != 0 ? buffer.f_frsize : buffer.f_bsize)
        return FilesystemStats(totalBytes: UInt64(buffer.f_blocks) * unit, availableBytes: UInt64(buffer.f_bavail) * unit,
                               totalInodes: UInt64(buffer.f_files), freeInodes: UInt64(buffer.f_ffree))
    }

    static func device(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_dev)
    }

    /// `path` or its closest existing parent.
    static func nearestExisting(_ path: String) -> String {
        var current = Paths.absolute(path)
        while current != "/" && !FS.exists(current) { current = Paths.parent(current) }
        return current
    }

    static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(rounded)
    }

    static func formatQuantity(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = bytes, unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return format(value) + units[unit]
    }
}

/// Mount points from /proc/self/mountinfo, to name the filesystem a path is on.
struct MountTable {
    var mounts: [(point: String, type: String)] = []

    init(_ mountinfo: String) {
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count > dash + 1 else { continue }
            mounts.append((point: Mounts.unescapeOctal(fields[4]), type: fields[dash + 1]))
        }
    }

    /// "MOUNTPOINT TYPE" of the last-mounted longest mount point containing `path`.
    func mount(containing path: String) -> String {
        var best: (point: String, type: String)?
        for m in mounts where path == m.point || m.point == "/" || path.hasPrefix(m.point + "/") {
            if best == nil || m.point.count >= (best?.point.count ?? 0) { best = m }
        }
        guard let best else { return "?" }
        return "\(best.point) \(best.type)"
    }
}

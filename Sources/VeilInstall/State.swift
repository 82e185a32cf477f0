import FoundationEssentials
import Glibc
import VeilLinux

/// What `veil install` changed, so `uninstall` can undo exactly that. Kept as JSON
/// (default /var/lib/veil/install.json, or $VEIL_INSTALL_STATE).
public struct InstallState: Codable, Equatable {
    /// shimConfig: the veil TOML at ConfigPath, when `--isolation` made veil write it.
    public enum Kind: String, Codable { case containerd, crio, docker, binary, shimConfig }

    public struct Entry: Codable, Equatable {
        public var kind: Kind
        /// The absolute path of the file veil wrote.
        public var path: String
        /// A copy of the file as it was before the first install (nil if there was none).
        public var backup: String?
        /// The file did not exist before.
        public var createdFile: Bool
        /// Directories veil created for it, deepest last.
        public var createdDirectories: [String]
        /// How to recognise the file as veil last wrote it: `sha256:HEX` for configs, `stat:SIZE:INODE:MTIME`
        /// for copied binaries, `link:TARGET` for links.
        public var written: String
        /// For configs: the runtime name; for binaries: the file name.
        public var name: String
        /// containerd: index in the table path of the first table veil created; docker: 1 if it created `runtimes`.
        public var createdDepth: Int?
        /// Binaries: installed as a symbolic link to this path.
        public var linkTarget: String?
    }

    public var version = 1
    public var entries: [Entry] = []

    public init() {}

    public func entry(_ kind: Kind, path: String) -> Entry? { entries.first { $0.kind == kind && $0.path == path } }

    public mutating func put(_ entry: Entry) {
        entries.removeAll { $0.kind == entry.kind && $0.path == entry.path }
        entries.append(entry)
    }

    public mutating func drop(_ kind: Kind, path: String) { entries.removeAll { $0.kind == kind && $0.path == path } }

    public static func load(_ path: String) throws(InstallError) -> InstallState {
        guard FS.exists(path) else { return InstallState() }
        let bytes: [UInt8]
        do { bytes = try FS.readFile(path) } catch { throw .state(file: path, message: error.description) }
        do { return try JSONDecoder().decode(InstallState.self, from: Data(bytes)) } catch {
            throw .state(file: path, message: "not a veil install record: \(error)")
        }
    }

    public func save(_ path: String) throws(InstallError) {
        if entries.isEmpty {
            if FS.exists(path) && unlink(path) != 0 { throw .io(LinuxError("unlink", path), file: path) }
            // Its directory too, when nothing else is in it.
            rmdir(Paths.parent(path))
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(self) } catch { throw .state(file: path, message: "\(error)") }
        let directory = Paths.parent(path)
        do {
            try FS.mkdirAll(directory, mode: 0o755)
            try FS.writeAtomically(path, Array(data) + [0x0a], mode: 0o644)
        } catch { throw .io(error, file: path) }
    }
}

enum Paths {
    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    static func base(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `path` made absolute against the current directory, with `.` and empty parts removed.
    static func absolute(_ path: String) -> String { FS.lexicallyAbsolute(path) }

    /// The directories of `path`'s parent chain that do not exist yet, outermost first.
    static func missingDirectories(for file: String) -> [String] {
        var missing: [String] = []
        var dir = parent(file)
        while dir != "/" && !FS.exists(dir) {
            missing.insert(dir, at: 0)
            dir = parent(dir)
        }
        return missing
    }
}

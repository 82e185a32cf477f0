import Glibc
import VeilLinux

/// `veil` and `containerd-shim-veil-v1`: on PATH, in the install prefix, executable, one version.
public enum DoctorBinaries {
    /// Where one binary was found.
    public struct Located: Equatable {
        public var name: String
        /// The first match on PATH (executable or not).
        public var onPath: String?
        /// prefix/name when it exists.
        public var inPrefix: String?
        /// Found files that are not executable regular files.
        public var notExecutable: [String]
    }

    static func checks(searchPath: String, prefix: String, shimRequired: Bool, host: InstallHost) -> [DoctorCheck] {
        let veil = locate("veil", searchPath: searchPath, prefix: prefix)
        let shim = locate(InstallOptions.shimName, searchPath: searchPath, prefix: prefix)
        var versions: [(path: String, version: String?)] = []
        var seen: Set<String> = []
        for located in [veil, shim] {
            for path in [located.onPath, located.inPrefix].compactMap({ $0 }) where !located.notExecutable.contains(path) {
                let key = FS.realPath(path) ?? path
                guard seen.insert(key).inserted else { continue }
                versions.append((path, version(of: path, name: located.name, host: host)))
            }
        }
        return [
            binary(veil, prefix: prefix, required: true),
            binary(shim, prefix: prefix, required: shimRequired),
            sameVersion(versions),
            warden(beside: veil, searchPath: searchPath, prefix: prefix),
        ]
    }

    /// The sandbox level (the default) starts veil-warden from beside veil, else from PATH.
    static func warden(beside veil: Located, searchPath: String, prefix: String) -> DoctorCheck {
        let directories = [veil.onPath, veil.inPrefix].compactMap { $0 }.map(Paths.parent)
        if let found = directories.map({ $0 + "/" + InstallOptions.wardenName }).first(where: { access($0, X_OK) == 0 })
            ?? find(InstallOptions.wardenName, in: searchPath) {
            return DoctorCheck("binary.warden", .pass, "\(found)")
        }
        return DoctorCheck("binary.warden", .fail, "\(InstallOptions.wardenName) is neither beside veil nor on PATH: sandboxed containers (the default level) cannot start",
                           fix: "veil install --containerd (or --crio) copies it into \(prefix); or make install")
    }

    /// The first executable regular file called `name` in the directories of `path`.
    static func find(_ name: String, in path: String) -> String? {
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = String(dir) + "/" + name
            if access(candidate, X_OK) == 0 && !FS.isDirectory(candidate) { return candidate }
        }
        return nil
    }

    /// Looks `name` up on `searchPath` (first existing file, as a shell would report it) and in `prefix`.
    public static func locate(_ name: String, searchPath: String, prefix: String) -> Located {
        var located = Located(name: name, onPath: nil, inPrefix: nil, notExecutable: [])
        for dir in searchPath.split(separator: ":") where !dir.isEmpty {
            let candidate = String(dir) + "/" + name
            if FS.exists(candidate) && !FS.isDirectory(candidate) {
                located.onPath = candidate
                break
            }
        }
        let inPrefix = prefix + "/" + name
        if FS.exists(inPrefix) { located.inPrefix = inPrefix }
        for path in Set([located.onPath, located.inPrefix].compactMap { $0 }) where access(path, X_OK) != 0 || FS.isDirectory(path) {
            located.notExecutable.append(path)
        }
        located.notExecutable.sort()
        return located
    }

    public static func binary(_ located: Located, prefix: String, required: Bool) -> DoctorCheck {
        let name = located.name == "veil" ? "binary.veil" : "binary.shim"
        let install = "veil install --containerd (or --crio) copies veil and \(InstallOptions.shimName) into \(prefix)"
        if let bad = located.notExecutable.first {
            return DoctorCheck(name, .fail, "\(bad) is not an executable file", fix: "chmod 755 \(bad)")
        }
        switch (located.onPath, located.inPrefix) {
        case (nil, nil):
            let role = located.name == "veil" ? "CRI-O and the shim run it" : "containerd runs it for runtime_type \(ContainerdConfig.runtimeType)"
            return DoctorCheck(name, required ? .fail : .warn, "\(located.name) is neither on PATH nor in \(prefix) (\(role))", fix: install)
        case (let path?, nil):
            return DoctorCheck(name, .warn, "\(path) is on PATH, but not in \(prefix), where veil install's configs point", fix: install)
        case (nil, let path?):
            return DoctorCheck(name, .warn, "\(path) exists but \(prefix) is not on PATH (containerd finds its shims on its PATH)",
                               fix: "add \(prefix) to PATH (for containerd: Environment=PATH=… in its systemd unit)")
        case (let onPath?, let inPrefix?):
            let detail = onPath == inPrefix ? "\(onPath) (on PATH)" : "\(onPath) on PATH, and \(inPrefix)"
            return DoctorCheck(name, .pass, detail)
        }
    }

    /// `veil --version` / `containerd-shim-veil-v1 -v` (either flag, whichever answers).
    static func version(of path: String, name: String, host: InstallHost) -> String? {
        let flags = name == "veil" ? ["--version", "-v"] : ["-v", "--version"]
        for flag in flags {
            if let result = host.run([path, flag]), result.status == 0, let version = parseVersion(result.output) {
                return version
            }
        }
        return nil
    }

    /// The first MAJOR.MINOR[.PATCH…] token (an optional leading "v"): "veil version 0.1.0" → "0.1.0".
    public static func parseVersion(_ output: String) -> String? {
        for token in output.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," }) {
            let t = token.hasPrefix("v") ? token.dropFirst() : token[...]
            let parts = t.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count >= 2, parts[0].allSatisfy(\.isNumber), !parts[0].isEmpty, parts[1].first?.isNumber == true {
                return String(t)
            }
        }
        return nil
    }

    public static func sameVersion(_ versions: [(path: String, version: String?)]) -> DoctorCheck {
        let name = "binary.versions"
        guard !versions.isEmpty else {
            return DoctorCheck(name, .warn, "no veil binaries found to compare", fix: "veil install --containerd (or --crio)")
        }
        let unknown = versions.filter { $0.version == nil }.map(\.path)
        let listed = versions.map { "\($0.path) \($0.version ?? "?")" }.joined(separator: ", ")
        let distinct = Set(versions.compactMap(\.version))
        if distinct.count > 1 {
            return DoctorCheck(name, .fail, "different versions: \(listed)",
                               fix: "reinstall both from one build: veil install --containerd (or --crio)")
        }
        if !unknown.isEmpty {
            return DoctorCheck(name, .warn, "no version from \(unknown.joined(separator: ", ")) (\(listed))",
                               fix: "reinstall both from one build: veil install --containerd (or --crio)")
        }
        return DoctorCheck(name, .pass, "all \(distinct.first ?? "?"): " + versions.map(\.path).joined(separator: ", "))
    }
}

import FoundationEssentials
import TOMLKit

/// The parts of containers-registries.conf(5) (v2 format) that matter for fully qualified
/// references: `[[registry]]` prefix/location rewrites, `insecure`, `blocked`, and mirrors for pulls.
/// Search registries and short-name aliases are ignored: veil refuses short names.
public struct RegistriesConf: Sendable, Equatable {
    public struct Mirror: Sendable, Equatable {
        public var location: String
        public var insecure: Bool
        /// "all" (default), "digest-only" or "tag-only".
        public var pullFromMirror: String
    }

    public struct Registry: Sendable, Equatable {
        public var prefix: String
        public var location: String
        public var insecure: Bool
        public var blocked: Bool
        public var mirrorByDigestOnly: Bool
        public var mirrors: [Mirror]
    }

    /// Where to send requests for one reference: the repository on `host` (after rewriting).
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var repository: String
        public var insecure: Bool
        public var isMirror: Bool
        public var description: String { host + "/" + repository }
    }

    public var registries: [Registry] = []

    public init(registries: [Registry] = []) { self.registries = registries }

    /// Reads `path` (missing is fine: no rewrites) and then `<path>.d/*.conf` in name order; a
    /// drop-in's `[[registry]]` replaces an earlier one with the same prefix.
    public static func load(path: String) throws(RegistryError) -> RegistriesConf {
        var conf = RegistriesConf()
        var files: [String] = []
        if FileManager.default.fileExists(atPath: path) { files.append(path) }
        let dropIns = path.hasSuffix(".conf") ? String(path.dropLast(5)) + ".conf.d" : path + ".d"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropIns) {
            files += names.filter { $0.hasSuffix(".conf") }.sorted().map { dropIns + "/" + $0 }
        }
        for file in files {
            guard let bytes = readSmallFile(file, limit: 1 << 20) else {
                throw RegistryError(file, .configuration, "cannot read the registries configuration (or it is over 1 MiB)")
            }
            let parsed = try parse(String(decoding: bytes, as: UTF8.self), source: file)
            for registry in parsed.registries {
                conf.registries.removeAll { $0.prefix == registry.prefix }
                conf.registries.append(registry)
            }
        }
        return conf
    }

    public static func parse(_ text: String, source: String) throws(RegistryError) -> RegistriesConf {
        func fail(_ reason: String) -> RegistryError { RegistryError(source, .configuration, reason) }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw fail("line \(error.source.begin.line): \(error.description)")
        } catch {
            throw fail("\(error)")
        }
        var conf = RegistriesConf()
        guard let entries = table["registry"] else { return conf }
        guard let list = entries.array else { throw fail("\"registry\" must be an array of tables ([[registry]])") }
        for (index, entry) in list.enumerated() {
            let at = "[[registry]] #\(index + 1)"
            guard let item = entry.table else { throw fail("\(at) is not a table") }
            func string(_ key: String, in table: TOMLTable, _ place: String) throws(RegistryError) -> String? {
                guard let value = table[key] else { return nil }
                guard let text = value.string else { throw fail("\(place): \"\(key)\" must be a string") }
                return text
            }
            func bool(_ key: String, in table: TOMLTable, _ place: String) throws(RegistryError) -> Bool {
                guard let value = table[key] else { return false }
                guard let flag = value.bool else { throw fail("\(place): \"\(key)\" must be true or false") }
                return flag
            }
            let location = try string("location", in: item, at) ?? ""
            let prefix = try string("prefix", in: item, at) ?? location
            guard !prefix.isEmpty else { throw fail("\(at) has neither prefix nor location") }
            if prefix.hasPrefix("*.") && !location.isEmpty {
                throw fail("\(at): a wildcard prefix \"\(prefix)\" cannot have a location")
            }
            var mirrors: [Mirror] = []
            if let mirrorList = item["mirror"] {
                guard let array = mirrorList.array else { throw fail("\(at): \"mirror\" must be an array of tables") }
                for (mirrorIndex, mirrorEntry) in array.enumerated() {
                    let place = "\(at) mirror #\(mirrorIndex + 1)"
                    guard let mirror = mirrorEntry.table, let mirrorLocation = try string("location", in: mirror, place), !mirrorLocation.isEmpty else {
                        throw fail("\(place) needs a location")
                    }
                    let mode = try string("pull-from-mirror", in: mirror, place) ?? "all"
                    guard ["all", "digest-only", "tag-only"].contains(mode) else {
                        throw fail("\(place): pull-from-mirror \"\(mode)\" is not all, digest-only or tag-only")
                    }
                    mirrors.append(Mirror(location: mirrorLocation, insecure: try bool("insecure", in: mirror, place), pullFromMirror: mode))
                }
            }
            conf.registries.append(Registry(
                prefix: prefix, location: location.isEmpty ? prefix : location,
                insecure: try bool("insecure", in: item, at), blocked: try bool("blocked", in: item, at),
                mirrorByDigestOnly: try bool("mirror-by-digest-only", in: item, at), mirrors: mirrors))
        }
        return conf
    }

    /// The registry entry whose prefix matches the reference most specifically (longest prefix).
    public func match(_ reference: ImageReference) -> Registry? {
        let name = reference.name
        var best: Registry?
        var bestLength = -1
        for registry in registries {
            let prefix = registry.prefix
            let matches: Bool
            if prefix.hasPrefix("*.") {
                let suffix = String(prefix.dropFirst(1))  // ".example.com"
                let host = reference.registry.split(separator: ":").first.map(String.init) ?? reference.registry
                matches = host.hasSuffix(suffix)
            } else {
                matches = name == prefix || name.hasPrefix(prefix + "/")
            }
            if matches && prefix.count > bestLength {
                best = registry
                bestLength = prefix.count
            }
        }
        return best
    }

    /// Endpoints to try in order: for pulls the mirrors that apply, then the primary location;
    /// for pushes the primary only. `insecure` forces plain HTTP / unverified TLS everywhere.
    public func endpoints(for reference: ImageReference, pull: Bool, insecure: Bool) throws(RegistryError) -> [Endpoint] {
        guard let registry = match(reference) else {
            return [Endpoint(host: reference.registry, repository: reference.repository, insecure: insecure, isMirror: false)]
        }
        if registry.blocked {
            throw RegistryError(reference.description, .blocked, "registries.conf blocks prefix \"\(registry.prefix)\"")
        }
        func rewrite(_ location: String, mirror: Bool, insecure entryInsecure: Bool) throws(RegistryError) -> Endpoint {
            var rewritten: String
            if registry.prefix.hasPrefix("*.") {
                rewritten = reference.name
            } else {
                rewritten = location + String(reference.name.dropFirst(registry.prefix.count))
            }
            while rewritten.hasSuffix("/") { rewritten.removeLast() }
            guard let slash = rewritten.firstIndex(of: "/") else {
                throw RegistryError(reference.description, .configuration,
                                    "registries.conf location \"\(location)\" leaves no repository for \(reference.name)")
            }
            return Endpoint(host: String(rewritten[..<slash]), repository: String(rewritten[rewritten.index(after: slash)...]),
                            insecure: insecure || entryInsecure, isMirror: mirror)
        }
        var result: [Endpoint] = []
        if pull {
            let byDigest = reference.digest != nil
            for mirror in registry.mirrors {
                if registry.mirrorByDigestOnly && !byDigest { continue }
                if mirror.pullFromMirror == "digest-only" && !byDigest { continue }
                if mirror.pullFromMirror == "tag-only" && byDigest { continue }
                result.append(try rewrite(mirror.location, mirror: true, insecure: mirror.insecure))
            }
        }
        result.append(try rewrite(registry.location, mirror: false, insecure: registry.insecure))
        return result
    }
}

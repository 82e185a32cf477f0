import TOMLKit

/// TOML helpers over TOMLKit: parsing with errors that name the file, walking and pruning table paths,
/// and writing keys and strings the way TOML wants them.
enum TOMLDoc {
    static func parse(_ text: String, file: String) throws(InstallError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .tomlSyntax(file: file, message: error.description, line: error.source.begin.line, column: error.source.begin.column)
        } catch {
            throw .tomlSyntax(file: file, message: "\(error)", line: 0, column: 0)
        }
    }

    /// The dotted name of `path`, as a TOML table header would spell it.
    static func dotted(_ path: [String]) -> String { path.map(key).joined(separator: ".") }

    /// A key, bare when TOML allows it, else a basic string.
    static func key(_ name: String) -> String {
        let bare = !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        return bare ? name : quote(name)
    }

    /// A TOML basic string.
    static func quote(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func typeName(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .table: return "a table"
        case .array: return "an array"
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a float"
        case .bool: return "a boolean"
        case .date, .time, .dateTime: return "a date or time"
        }
    }

    /// The table at `path`, or nil if some part is missing; a part that exists but is no table is an error.
    static func table(at path: [String], in root: TOMLTable, file: String) throws(InstallError) -> TOMLTable? {
        var current = root
        for (i, part) in path.enumerated() {
            guard let value = current[part] else { return nil }
            guard let next = value.table else {
                throw .badValue(file: file, key: dotted(Array(path[0...i])), message: "expected a table, found \(typeName(value))")
            }
            current = next
        }
        return current
    }

    /// Creates the tables of `path` that are missing and returns the deepest one and the depth of the
    /// first table created (nil when all existed).
    static func ensureTable(at path: [String], in root: TOMLTable, file: String) throws(InstallError) -> (TOMLTable, Int?) {
        var current = root
        var created: Int?
        for (i, part) in path.enumerated() {
            if current[part] == nil {
                current[part] = TOMLTable()
                if created == nil { created = i }
            }
            guard let value = current[part], let next = value.table else {
                let found = current[part].map(typeName) ?? "nothing"
                throw .badValue(file: file, key: dotted(Array(path[0...i])), message: "expected a table, found \(found)")
            }
            current = next
        }
        return (current, created)
    }

    /// Removes the table at `path`, then the parents from `path[0..<pruneFrom+1]` down that are left empty.
    /// Returns false when there was nothing at `path`.
    @discardableResult
    static func removeTable(at path: [String], in root: TOMLTable, pruneFrom: Int?, file: String) throws(InstallError) -> Bool {
        guard let last = path.last, let parent = try table(at: Array(path.dropLast()), in: root, file: file),
              parent[last] != nil else { return false }
        parent.remove(at: last)
        guard let pruneFrom else { return true }
        var depth = path.count - 1
        while depth > pruneFrom {
            guard let t = try table(at: Array(path[0..<depth]), in: root, file: file), t.isEmpty,
                  let grand = try table(at: Array(path[0..<(depth - 1)]), in: root, file: file) else { break }
            grand.remove(at: path[depth - 1])
            depth -= 1
        }
        return true
    }

    /// TOMLKit's serialization of a document.
    static func render(_ table: TOMLTable) -> String {
        var text = table.convert(to: .toml)
        if !text.hasSuffix("\n") { text += "\n" }
        return text
    }

    /// True if the document contains nothing but (possibly empty) tables.
    static func hasNoValues(_ table: TOMLTable) -> Bool {
        for key in table.keys {
            guard let value = table[key], let sub = value.table else { return false }
            if !hasNoValues(sub) { return false }
        }
        return true
    }
}

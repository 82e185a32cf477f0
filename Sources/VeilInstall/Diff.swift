/// A unified-style line diff (`---`/`+++` headers, `@@` hunks with three lines of context), for `--dry-run`.
public enum LineDiff {
    enum Op: Equatable { case same(String), removed(String), added(String) }

    public static func unified(old: String, new: String, oldName: String, newName: String, context: Int = 3) -> String {
        let a = lines(old), b = lines(new)
        if a == b { return "" }
        let ops = edit(a, b)
        var out = "--- \(oldName)\n+++ \(newName)\n"
        // Group changes into hunks with `context` lines around them.
        var changeIndexes: [Int] = []
        for (i, op) in ops.enumerated() where op != .same(op.text) { changeIndexes.append(i) }
        var hunks: [(Int, Int)] = []
        for i in changeIndexes {
            let start = max(0, i - context), end = min(ops.count, i + context + 1)
            if let last = hunks.last, start <= last.1 { hunks[hunks.count - 1].1 = max(last.1, end) } else { hunks.append((start, end)) }
        }
        for (start, end) in hunks {
            var oldLine = 1, newLine = 1
            for op in ops[0..<start] {
                switch op {
                case .same: oldLine += 1; newLine += 1
                case .removed: oldLine += 1
                case .added: newLine += 1
                }
            }
            var oldCount = 0, newCount = 0, body = ""
            for op in ops[start..<end] {
                switch op {
                case .same(let t): oldCount += 1; newCount += 1; body += " \(t)\n"
                case .removed(let t): oldCount += 1; body += "-\(t)\n"
                case .added(let t): newCount += 1; body += "+\(t)\n"
                }
            }
            out += "@@ -\(oldCount == 0 ? oldLine - 1 : oldLine),\(oldCount) +\(newCount == 0 ? newLine - 1 : newLine),\(newCount) @@\n" + body
        }
        return out
    }

    static func lines(_ text: String) -> [String] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// Longest-common-subsequence edit script, after trimming the common prefix and suffix.
    static func edit(_ a: [String], _ b: [String]) -> [Op] {
        var prefix = 0
        while prefix < a.count && prefix < b.count && a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix && suffix < b.count - prefix && a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let x = Array(a[prefix..<(a.count - suffix)]), y = Array(b[prefix..<(b.count - suffix)])
        var middle: [Op] = []
        if x.count * y.count > 4_000_000 {
            // Too large for the table: show it as a replacement.
            middle = x.map { .removed($0) } + y.map { .added($0) }
        } else {
            let width = y.count + 1
            var table = [Int32](repeating: 0, count: (x.count + 1) * width)
            for i in stride(from: x.count - 1, through: 0, by: -1) {
                for j in stride(from: y.count - 1, through: 0, by: -1) {
                    table[i * width + j] = x[i] == y[j] ? table[(i + 1) * width + j + 1] + 1
                        : max(table[(i + 1) * width + j], table[i * width + j + 1])
                }
            }
            var i = 0, j = 0
            while i < x.count || j < y.count {
                if i < x.count && j < y.count && x[i] == y[j] {
                    middle.append(.same(x[i])); i += 1; j += 1
                } else if i < x.count && (j == y.count || table[(i + 1) * width + j] >= table[i * width + j + 1]) {
                    middle.append(.removed(x[i])); i += 1
                } else {
                    middle.append(.added(y[j])); j += 1
                }
            }
        }
        return a[0..<prefix].map { .same($0) } + middle + a[(a.count - suffix)...].map { .same($0) }
    }
}

extension LineDiff.Op {
    var text: String {
        switch self { case .same(let t), .removed(let t), .added(let t): return t }
    }
}

import VeilSpec

/// The outcome of one `veil verify` check.
public enum VerifyStatus: String, Sendable, Equatable, CaseIterable {
    case pass, fail, skip
}

/// One line of `veil verify`.
public struct VerifyCheck: Sendable, Equatable {
    public var name: String
    public var status: VerifyStatus
    public var detail: String

    public init(_ name: String, _ status: VerifyStatus, _ detail: String) {
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// The checks in the order they ran, and how to print them.
public struct VerifyReport: Sendable, Equatable {
    public var checks: [VerifyCheck] = []

    public init(checks: [VerifyCheck] = []) { self.checks = checks }

    /// Every check that was not skipped passed.
    public var ok: Bool { !checks.contains { $0.status == .fail } }

    public var exitStatus: Int32 { ok ? 0 : 1 }

    /// CHECK, STATUS, DETAIL, then a summary line.
    public func renderTable() -> String {
        let nameWidth = max(5, checks.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var out = pad("CHECK", nameWidth) + "  STATUS  DETAIL\n"
        for check in checks {
            out += pad(check.name, nameWidth) + "  " + pad(check.status.rawValue, 6) + "  " + check.detail + "\n"
        }
        let count = { (status: VerifyStatus) in checks.filter { $0.status == status }.count }
        out += "\n\(checks.count) checks: \(count(.pass)) pass, \(count(.fail)) fail, \(count(.skip)) skip\n"
        return out
    }

    /// `{"checks":[{"name","status","detail"}],"ok":bool}` (the shape of `veil doctor --format json`).
    public func renderJSON() -> String {
        let items = checks.map { check in
            "{\"name\":\(quoted(check.name)),\"status\":\(quoted(check.status.rawValue)),\"detail\":\(quoted(check.detail))}"
        }
        return "{\"checks\":[" + items.joined(separator: ",") + "],\"ok\":\(ok)}\n"
    }
}

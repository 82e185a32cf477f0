// Application test suites run inside containers (tests/apps/cpython-tests.sh), and the comparison of
// a veil run with runc's: where runc passes, veil must pass, except for differences listed with a
// reason (the sandbox doing its job).
//
// API:
//   SuiteRun.parse(text): the MODULE/CASE lines cpython-tests.sh prints (other lines are the modules'
//       own logs and are ignored).
//   SuiteRun.differences(from: runc, expected:): what this run fails that runc does not — a module
//       runc finished with SUCCESS that did not succeed here, a failing case runc did not fail, a
//       module that is missing — minus the expected ones. Also `extraSkips(from:)`, for the log.
//   ExpectedDifference(caseSuffix, reason): a failing or skipped case (matched by the end of its id)
//       allowed at one level, and why.

import Foundation

struct SuiteRun: Sendable {
    struct Module: Sendable, Equatable {
        let name: String
        let result: String
        let seconds: Int
    }

    /// Module name, in the order they ran.
    private(set) var modules: [Module] = []
    /// Failing (FAIL or ERROR) case id -> the exception's last line, per module.
    private(set) var failures: [String: [String: String]] = [:]
    /// Skipped case ids per module.
    private(set) var skips: [String: Set<String>] = [:]

    func module(_ name: String) -> Module? { modules.first { $0.name == name } }

    static func parse(_ text: String) -> SuiteRun {
        var run = SuiteRun()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true).map(String.init)
            if fields.first == "MODULE", fields.count >= 4 {
                run.modules.append(Module(name: fields[1], result: fields[2], seconds: Int(fields[3]) ?? 0))
            } else if fields.first == "CASE", fields.count >= 4 {
                let module = fields[1], kind = fields[2], id = fields[3]
                let why = fields.count > 4 && fields[4].hasPrefix(":: ") ? String(fields[4].dropFirst(3)) : ""
                if kind == "SKIP" {
                    run.skips[module, default: []].insert(id)
                } else {
                    run.failures[module, default: [:]][id] = why
                }
            }
        }
        return run
    }

    /// One line per difference that is not expected; empty when this run is as good as runc's.
    func differences(from baseline: SuiteRun, expected: [ExpectedDifference]) -> [String] {
        var found: [String] = []
        for reference in baseline.modules {
            guard let mine = module(reference.name) else {
                found.append("\(reference.name): missing (runc: \(reference.result))")
                continue
            }
            let runcFailures = baseline.failures[reference.name] ?? [:]
            let newFailures = (failures[reference.name] ?? [:])
                .filter { runcFailures[$0.key] == nil }
                .filter { id, _ in !expected.contains { id.hasSuffix($0.caseSuffix) } }
            for (id, why) in newFailures.sorted(by: { $0.key < $1.key }) {
                found.append("\(reference.name): \(id) fails (runc passes it): \(why)")
            }
            // A module that timed out or crashed (no case to blame), or failed only in ways the
            // cases do not show (an uncaught exception at import, a changed environment).
            let ownFailuresExpected = !(failures[reference.name] ?? [:]).isEmpty && newFailures.isEmpty
            if reference.result == "SUCCESS", mine.result != "SUCCESS", newFailures.isEmpty, !ownFailuresExpected {
                found.append("\(reference.name): \(mine.result) (runc: SUCCESS)")
            }
        }
        return found
    }

    /// Cases runc ran that this run skipped (a probe answered differently), for the log.
    func extraSkips(from baseline: SuiteRun) -> [String] {
        skips.flatMap { module, ids in
            ids.subtracting(baseline.skips[module] ?? []).map { "\(module): \($0)" }
        }.sorted()
    }
}

struct ExpectedDifference: Sendable {
    /// The end of the case's id, e.g. "test_posix.PosixTester.test_chown".
    let caseSuffix: String
    let reason: String
}

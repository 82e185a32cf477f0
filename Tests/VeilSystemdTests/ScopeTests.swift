import Testing
@testable import VeilSystemd

/// A systemd manager that answers from a script: the scope's rules, without a systemd.
final class ScriptedManager: SystemdManager {
    var calls: [String] = []
    var startErrors: [SystemdError] = []
    var jobResults: [String] = []
    var stopError: SystemdError?

    func startTransientUnit(_ unit: String, mode: String, properties: [UnitProperty]) throws(SystemdError) -> String {
        calls.append("start \(unit) \(properties.map(\.name).joined(separator: ","))")
        if !startErrors.isEmpty { throw startErrors.removeFirst() }
        return "/org/freedesktop/systemd1/job/1"
    }
    func stopUnit(_ unit: String, mode: String) throws(SystemdError) -> String {
        calls.append("stop \(unit)")
        if let stopError { throw stopError }
        return "/org/freedesktop/systemd1/job/2"
    }
    func resetFailedUnit(_ unit: String) throws(SystemdError) { calls.append("reset \(unit)") }
    func setUnitProperties(_ unit: String, runtime: Bool, properties: [UnitProperty]) throws(SystemdError) {
        calls.append("set \(unit) \(runtime) \(properties.map(\.name).joined(separator: ","))")
    }
    func waitForJob(_ job: String, unit: String, method: String, seconds: Double) throws(SystemdError) -> String {
        calls.append("wait \(job)")
        return jobResults.isEmpty ? "done" : jobResults.removeFirst()
    }
}

@Suite("scope rules")
struct ScopeTests {
    let exists = SystemdError.call(method: "StartTransientUnit", unit: "veil-c.scope", name: "org.freedesktop.systemd1.UnitExists", message: "Unit veil-c.scope already exists.")

    @Test func startsAndWaits() throws {
        let manager = ScriptedManager()
        let scope = SystemdScope(unit: "veil-c.scope", slice: "system.slice", manager: manager)
        try scope.start(scope.baseProperties(id: "c", pid: 42))
        #expect(manager.calls == ["start veil-c.scope Description,Slice,Delegate,PIDs,MemoryAccounting,CPUAccounting,TasksAccounting,IOAccounting,DefaultDependencies",
                                  "wait /org/freedesktop/systemd1/job/1"])
        #expect(scope.baseProperties(id: "c", pid: 42).contains(UnitProperty("PIDs", .uint32s([42]))))
    }

    @Test func leftoverFailedUnitIsResetOnce() throws {
        let manager = ScriptedManager()
        manager.startErrors = [exists]
        try SystemdScope(unit: "veil-c.scope", slice: "system.slice", manager: manager).start([])
        #expect(manager.calls == ["start veil-c.scope ", "reset veil-c.scope", "start veil-c.scope ", "wait /org/freedesktop/systemd1/job/1"])
        let live = ScriptedManager()
        live.startErrors = [exists, exists]
        #expect(throws: SystemdError.self) { try SystemdScope(unit: "veil-c.scope", slice: "system.slice", manager: live).start([]) }
    }

    @Test func failedJobIsResetAndNamed() {
        let manager = ScriptedManager()
        manager.jobResults = ["failed"]
        do {
            try SystemdScope(unit: "veil-c.scope", slice: "system.slice", manager: manager).start([])
            Issue.record("a failed job succeeded")
        } catch {
            #expect(error == .job(unit: "veil-c.scope", method: "StartTransientUnit", result: "failed"))
            #expect(manager.calls.last == "reset veil-c.scope")
        }
    }

    @Test func unknownPropertyIsDroppedAndRetried() throws {
        let manager = ScriptedManager()
        manager.startErrors = [.call(method: "StartTransientUnit", unit: "u", name: "org.freedesktop.DBus.Error.PropertyReadOnly",
                                     message: "Cannot set property AllowedCPUs, or unknown property.")]
        try SystemdScope(unit: "u", slice: "s.slice", manager: manager).start([UnitProperty("AllowedCPUs", .bytes([1])), UnitProperty("TasksMax", .uint64(5))])
        #expect(manager.calls.prefix(2) == ["start u AllowedCPUs,TasksMax", "start u TasksMax"])
    }

    @Test func stopToleratesAMissingUnit() throws {
        let manager = ScriptedManager()
        manager.stopError = .call(method: "StopUnit", unit: "u", name: "org.freedesktop.systemd1.NoSuchUnit", message: "Unit u not loaded.")
        try SystemdScope(unit: "u", slice: "s.slice", manager: manager).stop()
        #expect(manager.calls == ["stop u", "reset u"])
        let other = ScriptedManager()
        other.stopError = .call(method: "StopUnit", unit: "u", name: "org.freedesktop.DBus.Error.AccessDenied", message: "no")
        #expect(throws: SystemdError.self) { try SystemdScope(unit: "u", slice: "s.slice", manager: other).stop() }
    }
}

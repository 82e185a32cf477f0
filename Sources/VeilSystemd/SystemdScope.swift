/// A container's scope unit: started around a pid, stopped with the container, its properties
/// changed by `update`. The rules follow runc's driver: wait for every job, reset a failed unit,
/// a live unit of the same name is an error.
public struct SystemdScope {
    public let unit: String
    public let slice: String
    let manager: SystemdManager
    /// How long a job may take before the call gives up (runc: 30 s).
    var jobSeconds: Double

    public init(unit: String, slice: String, manager: SystemdManager, jobSeconds: Double = 30) {
        self.unit = unit
        self.slice = slice
        self.manager = manager
        self.jobSeconds = jobSeconds
    }

    /// The properties every container scope starts with; `extra` (resources, then annotations, so
    /// these win as in runc) follow.
    public func baseProperties(id: String, pid: Int32) -> [UnitProperty] {
        [UnitProperty("Description", .string("veil container \(id)")),
         UnitProperty("Slice", .string(slice)),
         UnitProperty("Delegate", .bool(true)),
         UnitProperty("PIDs", .uint32s([UInt32(bitPattern: pid)])),
         UnitProperty("MemoryAccounting", .bool(true)),
         UnitProperty("CPUAccounting", .bool(true)),
         UnitProperty("TasksAccounting", .bool(true)),
         UnitProperty("IOAccounting", .bool(true)),
         UnitProperty("DefaultDependencies", .bool(false))]
    }

    /// StartTransientUnit and wait for its job (`beginStart`, then `finishStart`).
    public func start(_ properties: [UnitProperty]) throws(SystemdError) {
        try finishStart(job: try beginStart(properties))
    }

    /// StartTransientUnit's call; returns the job's path, which `finishStart` waits for, so the
    /// caller can work while systemd makes the scope (the bus keeps the job's end until asked).
    /// A leftover *failed* unit of that name (a container that died before `delete`) is reset once
    /// and the call retried; a running one is an error. A property this systemd does not know is
    /// dropped and the call retried (the files veil writes afterwards still apply it), so older
    /// systemds work.
    public func beginStart(_ properties: [UnitProperty]) throws(SystemdError) -> String {
        var properties = properties
        var resetOnce = false
        while true {
            do throws(SystemdError) {
                return try manager.startTransientUnit(unit, mode: "replace", properties: properties)
            } catch .call(let method, let unit, let name, let message) where name == "org.freedesktop.systemd1.UnitExists" && !resetOnce {
                resetOnce = true
                do { try manager.resetFailedUnit(unit) } catch {
                    throw SystemdError.call(method: method, unit: unit, name: name, message: message + " (a unit of that name is running)")
                }
            } catch .call(let method, let unit, let name, let message) where name == "org.freedesktop.systemd1.UnitExists" {
                throw SystemdError.call(method: method, unit: unit, name: name, message: message + " (a unit of that name is running)")
            } catch .call(_, _, let name, let message) where name == "org.freedesktop.DBus.Error.PropertyReadOnly" || SystemdScope.unknownProperty(in: message) != nil {
                guard let unknown = SystemdScope.unknownProperty(in: message), properties.contains(where: { $0.name == unknown }),
                      !["PIDs", "Slice", "Delegate"].contains(unknown) else {
                    throw SystemdError.call(method: "StartTransientUnit", unit: unit, name: name, message: message)
                }
                properties.removeAll { $0.name == unknown }
            }
        }
    }

    /// Waits for the start's job; a job that did not end "done" leaves no failed unit behind.
    public func finishStart(job: String) throws(SystemdError) {
        let result = try manager.waitForJob(job, unit: unit, method: "StartTransientUnit", seconds: jobSeconds)
        guard result == "done" else {
            try? manager.resetFailedUnit(unit)
            throw SystemdError.job(unit: unit, method: "StartTransientUnit", result: result)
        }
    }

    /// `update`: the properties for the running unit (runtime only, as runc: a reload keeps them, a reboot does not).
    public func set(_ properties: [UnitProperty]) throws(SystemdError) {
        guard !properties.isEmpty else { return }
        try manager.setUnitProperties(unit, runtime: true, properties: properties)
    }

    /// `delete`: stop the unit (gone already is fine) and forget a failed state.
    public func stop() throws(SystemdError) {
        do throws(SystemdError) {
            let job = try manager.stopUnit(unit, mode: "replace")
            _ = try manager.waitForJob(job, unit: unit, method: "StopUnit", seconds: jobSeconds)
        } catch .call(_, _, let name, _) where name == "org.freedesktop.systemd1.NoSuchUnit" {
        }
        try? manager.resetFailedUnit(unit)
    }

    /// "Cannot set property X, or unknown property." -> X.
    static func unknownProperty(in message: String) -> String? {
        let marker = "Cannot set property "
        var rest = Substring(message)
        while !rest.isEmpty && !rest.hasPrefix(marker) { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        let name = rest.dropFirst(marker.count).prefix { $0.isLetter || $0.isNumber }
        return name.isEmpty ? nil : String(name)
    }
}

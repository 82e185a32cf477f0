import CVeilSystemd
import Glibc

/// What the driver asks of systemd's manager. SystemdBus is the real one (sd-bus); the scope
/// logic is written against this so its rules are tested without a systemd.
public protocol SystemdManager {
    /// Calls a Manager method that starts a job (StartTransientUnit, StopUnit) and returns the job's path.
    func startTransientUnit(_ unit: String, mode: String, properties: [UnitProperty]) throws(SystemdError) -> String
    func stopUnit(_ unit: String, mode: String) throws(SystemdError) -> String
    func resetFailedUnit(_ unit: String) throws(SystemdError)
    func setUnitProperties(_ unit: String, runtime: Bool, properties: [UnitProperty]) throws(SystemdError)
    /// The job's result ("done", "failed", ...) once it ends; `.job(result: "timeout")` after `seconds`.
    func waitForJob(_ job: String, unit: String, method: String, seconds: Double) throws(SystemdError) -> String
}

/// systemd's manager over sd-bus: root's private socket to systemd, else the system bus.
public final class SystemdBus: SystemdManager {
    private let bus: OpaquePointer

    /// `/run/systemd/system` is a directory exactly when systemd is PID 1 (sd_booted's test).
    public static var isSystemdRunning: Bool {
        var st = stat()
        return stat("/run/systemd/system", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public init() throws(SystemdError) {
        guard SystemdBus.isSystemdRunning else {
            throw .unavailable(reason: "systemd is not running as PID 1 here (/run/systemd/system is missing): use the cgroupfs driver")
        }
        var handle: OpaquePointer?
        var error = [CChar](repeating: 0, count: 512)
        let r = veil_sdbus_open(&handle, &error, error.count)
        guard r >= 0, let handle else {
            throw .unavailable(reason: cText(error))
        }
        bus = handle
    }

    deinit { veil_sdbus_close(bus) }

    public func startTransientUnit(_ unit: String, mode: String, properties: [UnitProperty]) throws(SystemdError) -> String {
        try call("StartTransientUnit", unit: unit) { (m) throws(SystemdError) in
            try append(m, .string(unit))
            try append(m, .string(mode))
            try appendProperties(m, properties)
            // No auxiliary units: a(sa(sv)), empty.
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "a")), "(sa(sv))"))
            try check(veil_sdbus_close_container(m))
        }
    }

    public func stopUnit(_ unit: String, mode: String) throws(SystemdError) -> String {
        try call("StopUnit", unit: unit) { (m) throws(SystemdError) in
            try append(m, .string(unit))
            try append(m, .string(mode))
        }
    }

    public func resetFailedUnit(_ unit: String) throws(SystemdError) {
        _ = try call("ResetFailedUnit", unit: unit) { (m) throws(SystemdError) in try append(m, .string(unit)) }
    }

    public func setUnitProperties(_ unit: String, runtime: Bool, properties: [UnitProperty]) throws(SystemdError) {
        _ = try call("SetUnitProperties", unit: unit) { (m) throws(SystemdError) in
            try append(m, .string(unit))
            try append(m, .bool(runtime))
            try appendProperties(m, properties)
        }
    }

    public func waitForJob(_ job: String, unit: String, method: String, seconds: Double) throws(SystemdError) -> String {
        var result = [CChar](repeating: 0, count: 64)
        let r = veil_sdbus_wait_job(bus, job, UInt64(seconds * 1_000_000), &result, result.count)
        if r == -ETIMEDOUT { throw .job(unit: unit, method: method, result: "no answer in \(Int(seconds)) s") }
        guard r >= 0 else { throw lastError(method, unit: unit, r) }
        return cText(result)
    }

    // MARK: messages

    private func call(_ method: String, unit: String, _ build: (OpaquePointer) throws(SystemdError) -> Void) throws(SystemdError) -> String {
        var message: OpaquePointer?
        let r = veil_sdbus_new_call(bus, "org.freedesktop.systemd1.Manager", method, &message)
        guard r >= 0, let message else { throw lastError(method, unit: unit, r) }
        defer { veil_sdbus_message_free(message) }
        do { try build(message) } catch { throw .call(method: method, unit: unit, name: "", message: "building the call: \(error)") }
        var path = [CChar](repeating: 0, count: 256)
        let sent = veil_sdbus_call(bus, message, 0, &path, path.count)
        guard sent >= 0 else { throw lastError(method, unit: unit, sent) }
        return cText(path)
    }

    private func lastError(_ method: String, unit: String, _ r: Int32) -> SystemdError {
        let name = String(cString: veil_sdbus_error_name(bus))
        var message = String(cString: veil_sdbus_error_message(bus))
        if message.isEmpty { message = String(cString: strerror(-r)) }
        return .call(method: method, unit: unit, name: name, message: message)
    }

    private func appendProperties(_ m: OpaquePointer, _ properties: [UnitProperty]) throws(SystemdError) {
        try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "a")), "(sv)"))
        for property in properties {
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "r")), "sv"))
            try append(m, .string(property.name))
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "v")), property.value.signature))
            try append(m, property.value)
            try check(veil_sdbus_close_container(m))
            try check(veil_sdbus_close_container(m))
        }
        try check(veil_sdbus_close_container(m))
    }

    private func check(_ r: Int32) throws(SystemdError) {
        if r < 0 { throw .call(method: "append", unit: "", name: "", message: String(cString: strerror(-r))) }
    }

    private func basic<T>(_ m: OpaquePointer, _ type: Character, _ value: T) throws(SystemdError) {
        var v = value
        try check(withUnsafePointer(to: &v) { veil_sdbus_append_basic(m, CChar(type.asciiValue ?? 0), $0) })
    }

    private func string(_ m: OpaquePointer, _ type: Character, _ value: String) throws(SystemdError) {
        let r = value.withCString { (text: UnsafePointer<CChar>) -> Int32 in
            var pointer: UnsafePointer<CChar>? = text
            return withUnsafePointer(to: &pointer) { veil_sdbus_append_basic(m, CChar(type.asciiValue ?? 0), $0) }
        }
        try check(r)
    }

    private func append(_ m: OpaquePointer, _ value: BusValue) throws(SystemdError) {
        switch value {
        case .bool(let v): try basic(m, "b", Int32(v ? 1 : 0))  // sd-bus reads a C int for 'b'
        case .string(let v): try string(m, "s", v)
        case .objectPath(let v): try string(m, "o", v)
        case .int32(let v): try basic(m, "i", v)
        case .uint32(let v): try basic(m, "u", v)
        case .int64(let v): try basic(m, "x", v)
        case .uint64(let v): try basic(m, "t", v)
        case .double(let v): try basic(m, "d", v)
        case .byte(let v): try basic(m, "y", v)
        case .int16(let v): try basic(m, "n", v)
        case .uint16(let v): try basic(m, "q", v)
        case .bytes(let v):
            try check(v.withUnsafeBytes { veil_sdbus_append_array(m, CChar(UInt8(ascii: "y")), $0.baseAddress, $0.count) })
        case .uint32s(let v):
            try check(v.withUnsafeBytes { veil_sdbus_append_array(m, CChar(UInt8(ascii: "u")), $0.baseAddress, $0.count) })
        case .strings(let v):
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "a")), "s"))
            for s in v { try string(m, "s", s) }
            try check(veil_sdbus_close_container(m))
        case .stringPairs(let v):
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "a")), "(ss)"))
            for (a, b) in v {
                try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "r")), "ss"))
                try string(m, "s", a)
                try string(m, "s", b)
                try check(veil_sdbus_close_container(m))
            }
            try check(veil_sdbus_close_container(m))
        case .stringUInt64Pairs(let v):
            try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "a")), "(st)"))
            for (a, b) in v {
                try check(veil_sdbus_open_container(m, CChar(UInt8(ascii: "r")), "st"))
                try string(m, "s", a)
                try basic(m, "t", b)
                try check(veil_sdbus_close_container(m))
            }
            try check(veil_sdbus_close_container(m))
        }
    }
}

/// A NUL-terminated C buffer's text.
func cText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { $0.baseAddress.map { String(cString: $0) } ?? "" }
}

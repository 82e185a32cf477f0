/// The fields of veil's per-container state record (`<root>/<id>/state.json`, VeilContainer's
/// `ContainerRecord`) that programs other than veil read: the shim logs the isolation level veil
/// chose. The record holds more (cgroup, hooks, sandbox); decoding ignores it. VeilContainerTests
/// checks that a saved record decodes as this.
public struct StateRecordSummary: Codable, Sendable, Equatable {
    public var id: String
    public var pid: Int32
    public var bundle: String
    /// "native" or "sandbox"; absent in records written before isolation levels existed (native).
    public var isolation: String?

    public init(id: String, pid: Int32, bundle: String, isolation: String?) {
        self.id = id
        self.pid = pid
        self.bundle = bundle
        self.isolation = isolation
    }

    /// The record's name in the container's directory under veil's --root.
    public static let fileName = "state.json"

    /// The level a container runs at: records without one predate the levels and are native.
    public var isolationLevel: String { isolation ?? "native" }
}

/// `veil ps --format json`: the container's pids as one JSON array, as runc prints them.
public struct ProcessList: Codable, Sendable, Equatable {
    public var pids: [Int32]

    public init(pids: [Int32]) { self.pids = pids }

    public init(from decoder: Decoder) throws {
        pids = try decoder.singleValueContainer().decode([Int32].self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(pids)
    }
}

/// One line of veil's `--log FILE --log-format json` (logrus's JSON layout, as runc writes it):
/// containerd's shims report the last error line's `msg` when a command fails. veil's Logger
/// writes these lines by hand (it runs on every command and escapes like logrus).
public struct LogEntry: Codable, Sendable, Equatable {
    public var level: String
    public var msg: String
    public var time: String?

    public init(level: String, msg: String, time: String?) {
        self.level = level
        self.msg = msg
        self.time = time
    }

    public static let errorLevel = "error"
}

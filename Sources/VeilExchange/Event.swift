/// One line of `veil events`: runc's `{"type": …, "id": …, "data": …}` (types/events.go), keys in
/// that order. `type` is "stats" (data: `CgroupStats`) or "oom" (no data: the key is left out).
/// veil prints it with VeilSpec's OrderedJSONEncoder; the shim decodes `events --stats` with it.
public struct Event<Payload: Codable & Sendable>: Codable, Sendable {
    public var type: String
    public var id: String
    public var data: Payload?

    public init(type: String, id: String, data: Payload?) {
        self.type = type
        self.id = id
        self.data = data
    }

    public static var statsType: String { "stats" }
    public static var oomType: String { "oom" }
}

/// The statistics event `veil events [--stats]` prints.
public typealias StatsEvent = Event<CgroupStats>

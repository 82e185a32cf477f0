import FoundationEssentials
import Glibc
import VeilCgroups
import VeilExchange
import VeilLinux
import VeilSpec

public enum ContainerStatus: String, Codable, Sendable {
    case creating, created, running, paused, stopped
}

/// What veil keeps about a container under `--root`/<id>/state.json. The fields other programs
/// read (the shim) are VeilExchange's `StateRecordSummary`; keep their names and types.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var ociVersion: String
    public var pid: Int32
    /// With `pid`, identifies the init for good (pids are reused).
    public var pidStartTime: UInt64?
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    public var cgroup: Cgroup?
    public var hooks: Hooks?
    /// nil in records written before isolation levels existed: native.
    public var isolation: IsolationLevel?
    /// The container owning this container's sandbox (itself, or its pod's sandbox container).
    public var sandboxOwner: String?
    /// The id-pool slot of a sandbox this container owns.
    public var sandboxSlot: UInt32?
    /// The sandbox's directory under /run/veil-sandbox (see `SandboxContext.publicDirectory`).
    public var sandboxDirectory: String?
    public var wardenPid: Int32?
    public var wardenStartTime: UInt64?
}

/// The state JSON as runc prints it and as hooks receive it on stdin.
public struct OCIState: Codable, Sendable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: ContainerStatus
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    /// veil's addition to runc's state: "native" or "sandbox".
    public var isolation: String?
}

/// The directory under --root that holds the containers' state.
public struct StateStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public func directory(_ id: String) -> String { root + "/" + id }
    func statePath(_ id: String) -> String { directory(id) + "/" + StateRecordSummary.fileName }
    func fifoPath(_ id: String) -> String { directory(id) + "/exec.fifo" }

    public static func validate(id: String) throws(ContainerError) {
        let allowed = id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
        }
        if id.isEmpty || !allowed || id == "." || id == ".." || id.utf8.count > 1024 { throw .invalidID(id: id) }
    }

    public func load(_ id: String) throws(ContainerError) -> ContainerRecord {
        try Self.validate(id: id)
        let bytes: [UInt8]
        do { bytes = try FS.readFile(statePath(id)) } catch {
            if error.errno == ENOENT { throw .notFound(id: id) }
            throw error.context("reading state of \(id)")
        }
        do { return try JSONDecoder().decode(ContainerRecord.self, from: Data(bytes)) } catch {
            throw .corruptState(path: statePath(id), reason: "\(error)")
        }
    }

    func save(_ record: ContainerRecord) throws(ContainerError) {
        do {
            let data = try JSONEncoder().encode(record)
            try FS.writeAtomically(statePath(record.id), Array(data), mode: 0o600)
        } catch let error as LinuxError {
            throw error.context("saving state of \(record.id)")
        } catch {
            throw .failed(context: "encoding state of \(record.id)", cause: error)
        }
    }

    /// The config as created (`exec` applies its namespaces, capabilities and seccomp), kept
    /// apart from state.json so that `state`, `kill` and friends don't pay for decoding it.
    func configPath(_ id: String) -> String { directory(id) + "/config.json" }

    public func loadConfig(_ id: String) throws(ContainerError) -> Spec { try loadConfigAndBytes(id).spec }

    /// The recorded config and its bytes as recorded (what a checkpoint archive keeps verbatim).
    func loadConfigAndBytes(_ id: String) throws(ContainerError) -> (spec: Spec, bytes: [UInt8]) {
        let bytes: [UInt8]
        do { bytes = try FS.readFile(configPath(id)) } catch { throw error.context("reading the recorded config of \(id)") }
        do { return (try JSONDecoder().decode(Spec.self, from: Data(bytes)), bytes) } catch {
            throw .corruptState(path: configPath(id), reason: "\(error)")
        }
    }

    /// The bundle's config.json as read at create (a byte copy: cheaper than encoding it again).
    func recordConfig(copying path: String, id: String) throws(ContainerError) {
        do { try FS.writeFile(configPath(id), try FS.readFile(path), mode: 0o600) } catch {
            throw error.context("recording the config of \(id)")
        }
    }

    func saveConfig(_ spec: Spec, id: String) throws(ContainerError) {
        do { try FS.writeAtomically(configPath(id), Array(try JSONEncoder().encode(spec)), mode: 0o600) } catch {
            throw error.context("saving the config of \(id)")
        }
    }

    public func ids() -> [String] {
        FS.listDirectory(root).filter { FS.exists(statePath($0)) }
    }

    public func status(of record: ContainerRecord) -> ContainerStatus {
        guard ProcessInfo.isAlive(record.pid, startTime: record.pidStartTime) else { return .stopped }
        if FS.exists(fifoPath(record.id)) { return .created }
        if record.cgroup?.isFrozen() == true { return .paused }
        return .running
    }

    public func ociState(of record: ContainerRecord, status override: ContainerStatus? = nil) -> OCIState {
        let status = override ?? status(of: record)
        return OCIState(ociVersion: record.ociVersion, id: record.id, pid: status == .stopped ? 0 : record.pid,
                        status: status, bundle: record.bundle, rootfs: record.rootfs, created: record.created,
                        owner: record.owner, annotations: record.annotations,
                        isolation: (record.isolation ?? .native).rawValue)
    }
}

enum JSON {
    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { Array($0) } ?? Array("{}".utf8)
    }
}

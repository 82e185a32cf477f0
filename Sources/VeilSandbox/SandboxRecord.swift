import FoundationEssentials
import Glibc
import VeilLinux

/// What a sandbox is, kept beside the owning container's state (`<state>/sandbox.json`): read by
/// the warden at start, by `veil exec` and by containers joining the same pod.
public struct SandboxRecord: Codable, Sendable, Equatable {
    /// The container that owns the sandbox (a pod's sandbox container).
    public var id: String
    public var slot: UInt32?
    /// Host uid and gid of the sandbox's root.
    public var hostID: UInt32
    public var idCount: UInt32
    public var identity: KernelIdentity
    public var bootLog: String
    /// CLOCK_BOOTTIME at create, in nanoseconds: the sandbox's uptime starts there.
    public var bootedAt: UInt64
    /// The cgroup directory whose memory and processes sysinfo(2) reports, and its version.
    public var memoryDirectory: String?
    public var memoryUnified: Bool
    /// CPUs the sandbox sees (cpu quota rounded up), nil for the host's.
    public var cpus: Int?
    /// The sandbox's directory every host uid can reach (its /proc views live in `proc`).
    public var publicDirectory: String?
    /// CRI-O pods: the pinned namespaces the sandbox stands for (see `PodNamespaces`).
    public var adoptedNamespaces: [AdoptedNamespace]? = nil

    public static let fileName = "sandbox.json"
    public static let wardenSocketName = "warden.sock"

    public init(id: String, slot: UInt32?, hostID: UInt32, idCount: UInt32, identity: KernelIdentity, bootLog: String,
                bootedAt: UInt64, memoryDirectory: String?, memoryUnified: Bool, cpus: Int?, publicDirectory: String?) {
        self.id = id
        self.slot = slot
        self.hostID = hostID
        self.idCount = idCount
        self.identity = identity
        self.bootLog = bootLog
        self.bootedAt = bootedAt
        self.memoryDirectory = memoryDirectory
        self.memoryUnified = memoryUnified
        self.cpus = cpus
        self.publicDirectory = publicDirectory
    }

    public static func load(directory: String) throws(SandboxError) -> SandboxRecord {
        let path = directory + "/" + fileName
        let bytes: [UInt8]
        do { bytes = try FS.readFile(path) } catch { throw .io("reading \(path)", error) }
        do { return try JSONDecoder().decode(SandboxRecord.self, from: Data(bytes)) } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
    }

    public func save(directory: String) throws(SandboxError) {
        let path = directory + "/" + Self.fileName
        do {
            let data = try JSONEncoder().encode(self)
            try FS.writeAtomically(path, Array(data), mode: 0o644)
        } catch let error as LinuxError {
            throw .io("writing \(path)", error)
        } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
    }

}

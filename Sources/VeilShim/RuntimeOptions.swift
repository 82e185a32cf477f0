import FoundationEssentials
import Glibc
import SwiftProtobuf
import TOMLKit
import VeilShimProtocol

/// How the shim runs veil for one container: the runtime's `options` table in containerd's
/// config.toml (`ConfigPath = "/etc/veil/runtime.toml"`), which containerd's CRI plugin (and
/// `ctr run --runtime-config-path FILE`) sends in CreateTaskRequest.options as a
/// `runtimeoptions.v1.Options`. The file (or `config_body`) is TOML:
///
///   isolation = "native"          # or "sandbox": veil --isolation, the operator's level (a floor)
///   allow_lower_isolation = true  # veil --allow-lower-isolation: a container's dev.veil.isolation
///                                 # annotation may lower the level too (default false: only raise)
///   sandbox_devices = ["/dev/fuse"] # veil --sandbox-device: host devices a sandbox may receive
///   log_level = "info"            # or "debug": veil --debug
///   root = "/run/veil-k8s"        # veil's state root; the containerd namespace is appended
///   binary = "/opt/veil/bin/veil" # the veil binary, instead of the one next to the shim
///   allow_seccomp_record = true   # veil --allow-seccomp-record: dev.veil.seccomp-record may record a container
///   seccomp_artifacts = false     # veil --seccomp-artifacts=false: ignore seccomp-profile annotations
///   seccomp_artifacts_from_images = true  # also read them from images' manifests
///   registries_conf = "/etc/containers/registries.conf"   # how registries are reached (and
///   registry_auth_file = "/etc/containers/auth.json"       # the shim's environment may lack
///   registry_cert_dir = "/etc/containers/certs.d"          # REGISTRY_AUTH_FILE)
///   systemd_cgroup = true         # veil --systemd-cgroup (absent: on when the cgroupsPath has the
///                                 # slice:prefix:name form a systemd-driver kubelet gives, and systemd runs)
///   allow_systemd_properties = true # veil --allow-systemd-properties
///
/// containerd's runc options (`containerd.runc.v1.Options`: SystemdCgroup, Root, BinaryName) are
/// honoured too, for clients that send those.
struct RuntimeSettings: Equatable, Sendable {
    var isolation: String?
    /// `allow_lower_isolation`: off unless the operator says so (pods' annotations are tenants').
    var allowLowerIsolation = false
    /// `sandbox_devices`: host device nodes a sandbox may receive beyond the default set.
    var sandboxDevices: [String] = []
    var debug = false
    /// veil's state root before the namespace is appended (nil: /run/containerd/veil).
    var root: String?
    var binary: String?
    /// `seccomp_artifacts`, `seccomp_artifacts_from_images`: profiles named by annotation, pulled from registries.
    var seccompArtifacts = true
    var seccompArtifactsFromImages = false
    /// `allow_seccomp_record`: a container's dev.veil.seccomp-record annotation may put it in record mode.
    var allowSeccompRecord = false
    /// `registries_conf`, `registry_auth_file`, `registry_cert_dir`: veil's flags of the same names.
    var registryPaths: [String: String] = [:]
    /// `systemd_cgroup`: nil until the operator says, or Create infers it from the cgroupsPath.
    var systemdCgroup: Bool?
    var allowSystemdProperties = false
    static let registryPathKeys = ["registries_conf", "registry_auth_file", "registry_cert_dir"]
    /// Where the settings came from, for error messages.
    var source = "defaults"
    /// The TOML they were read from ("" for the defaults): kept in the bundle, so a later
    /// `containerd-shim-veil-v1 delete` (after a crashed shim) uses the same root and binary.
    var text = ""

    static let defaultRoot = "/run/containerd/veil"
    static let isolationLevels = ["native", "sandbox"]
    static let logLevels = ["info", "debug"]
    /// The file in the bundle that records a container's settings.
    static let bundleFile = "veil-runtime.toml"
    static let optionsTypeName = "runtimeoptions.v1.Options"
    static let knownKeys = ["allow_lower_isolation", "allow_seccomp_record", "allow_systemd_properties", "binary", "isolation", "log_level",
                            "registries_conf", "registry_auth_file", "registry_cert_dir", "root", "sandbox_devices", "seccomp_artifacts",
                            "seccomp_artifacts_from_images", "systemd_cgroup"]
    static let runcOptionsTypeName = Containerd_Runc_V1_Options.protoMessageName

    /// veil's --root for containers of `namespace`.
    func runtimeRoot(namespace: String) -> String { (root ?? Self.defaultRoot) + "/" + namespace }

    /// veil's global flags these settings add (after --root and the log flags).
    var veilFlags: [String] {
        var flags: [String] = []
        if debug { flags.append("--debug") }
        // Every command, as containerd's runc shim does: delete and update need the driver too.
        if systemdCgroup == true { flags.append("--systemd-cgroup") }
        if allowSystemdProperties { flags.append("--allow-systemd-properties") }
        if let isolation { flags += ["--isolation", isolation] }
        if allowLowerIsolation { flags.append("--allow-lower-isolation") }
        for device in sandboxDevices { flags += ["--sandbox-device", device] }
        if allowSeccompRecord { flags.append("--allow-seccomp-record") }
        if !seccompArtifacts { flags.append("--seccomp-artifacts=false") }
        if seccompArtifactsFromImages { flags.append("--seccomp-artifacts-from-images") }
        for key in Self.registryPathKeys { if let path = registryPaths[key] { flags += ["--" + key.replacingUnderscores, path] } }
        return flags
    }

    /// The settings in CreateTaskRequest.options: none set → the defaults.
    static func from(options: Google_Protobuf_Any?) throws(ShimError) -> RuntimeSettings {
        guard let options, !(options.typeURL.isEmpty && options.value.isEmpty) else { return RuntimeSettings() }
        // containerd writes the bare message name; other clients may add a type.googleapis.com/ prefix.
        let name = options.typeURL.split(separator: "/").last.map(String.init) ?? ""
        if name == runcOptionsTypeName { return try fromRuncOptions([UInt8](options.value)) }
        guard name == optionsTypeName else {
            throw ShimError("runtime options of type \"\(options.typeURL)\" are not veil's: expected \(optionsTypeName) (ConfigPath in the runtime's options table)")
        }
        let message: Runtimeoptions_V1_Options
        do {
            message = try Runtimeoptions_V1_Options(serializedBytes: [UInt8](options.value))
        } catch {
            throw ShimError("runtime options: cannot decode \(optionsTypeName): \(error)")
        }
        if !message.configPath.isEmpty {
            let path = message.configPath
            guard path.hasPrefix("/") else { throw ShimError("runtime options: ConfigPath \"\(path)\" must be an absolute path") }
            let text: String
            do { text = try readTextFile(path) } catch {
                throw ShimError("runtime options: ConfigPath \(path): \(error)")
            }
            return try parse(text, source: path)
        }
        guard !message.configBody.isEmpty else { return RuntimeSettings() }
        return try parse(String(decoding: message.configBody, as: UTF8.self), source: "runtime options (config_body)")
    }

    /// containerd's runc options: the driver, the state root and the binary; the rest is runc's own.
    static func fromRuncOptions(_ bytes: [UInt8]) throws(ShimError) -> RuntimeSettings {
        let message: Containerd_Runc_V1_Options
        do { message = try Containerd_Runc_V1_Options(serializedBytes: bytes) } catch {
            throw ShimError("runtime options: cannot decode \(runcOptionsTypeName): \(error)")
        }
        var lines: [String] = []
        if message.systemdCgroup { lines.append("systemd_cgroup = true") }
        if !message.root.isEmpty { lines.append("root = \(tomlString(message.root))") }
        if !message.binaryName.isEmpty { lines.append("binary = \(tomlString(message.binaryName))") }
        return try parse(lines.map { $0 + "\n" }.joined(), source: "runtime options (\(runcOptionsTypeName))")
    }

    /// Create without `systemd_cgroup`: the driver a systemd-driver kubelet implies. Its
    /// cgroupsPath ("kubepods-…-pod<uid>.slice:cri-containerd:<id>") only has that form under
    /// systemd, and the choice is recorded with the other settings so `delete` agrees.
    mutating func inferSystemdCgroup(cgroupsPath: String?, systemdRunning: Bool) {
        guard systemdCgroup == nil else { return }
        let parts = (cgroupsPath ?? "").split(separator: ":", omittingEmptySubsequences: false)
        let systemdForm = parts.count == 3 && !parts[2].isEmpty && !parts.contains { $0.contains("/") }
        guard systemdForm && systemdRunning else { return }
        systemdCgroup = true
        text += (text.isEmpty || text.hasSuffix("\n") ? "" : "\n") + "systemd_cgroup = true\n"
    }

    /// Reads the settings veil's TOML holds; every key must be known and every value valid.
    static func parse(_ text: String, source: String) throws(ShimError) -> RuntimeSettings {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ShimError("\(source):\(error.source.begin.line):\(error.source.begin.column): \(error.description)")
        } catch {
            throw ShimError("\(source): \(error)")
        }
        var settings = RuntimeSettings(source: source, text: text)
        func string(_ key: String) throws(ShimError) -> String {
            guard let value = table[key]?.string else { throw ShimError("\(source): key \"\(key)\" must be a string") }
            return value
        }
        func oneOf(_ key: String, _ allowed: [String]) throws(ShimError) -> String {
            let value = try string(key)
            guard allowed.contains(value) else {
                throw ShimError("\(source): key \"\(key)\": unknown value \"\(value)\" (expected one of: \(allowed.joined(separator: ", ")))")
            }
            return value
        }
        func absolutePath(_ key: String) throws(ShimError) -> String {
            let value = try string(key)
            guard value.hasPrefix("/"), !value.contains("\n") else { throw ShimError("\(source): key \"\(key)\": \"\(value)\" is not an absolute path") }
            return value
        }
        func bool(_ key: String) throws(ShimError) -> Bool {
            guard let value = table[key]?.bool else { throw ShimError("\(source): key \"\(key)\" must be a boolean (true or false)") }
            return value
        }
        for key in table.keys.sorted() {
            switch key {
            case "isolation": settings.isolation = try oneOf(key, isolationLevels)
            case "allow_lower_isolation": settings.allowLowerIsolation = try bool(key)
            case "allow_seccomp_record": settings.allowSeccompRecord = try bool(key)
            case "systemd_cgroup": settings.systemdCgroup = try bool(key)
            case "allow_systemd_properties": settings.allowSystemdProperties = try bool(key)
            case "seccomp_artifacts": settings.seccompArtifacts = try bool(key)
            case "seccomp_artifacts_from_images": settings.seccompArtifactsFromImages = try bool(key)
            case _ where registryPathKeys.contains(key): settings.registryPaths[key] = try absolutePath(key)
            case "sandbox_devices":
                guard let list = table[key]?.array else { throw ShimError("\(source): key \"\(key)\" must be an array of paths under /dev/") }
                for item in list {
                    guard let path = item.string, path.hasPrefix("/dev/"), !path.contains("\n") else {
                        throw ShimError("\(source): key \"\(key)\": \(item) is not a path under /dev/")
                    }
                    settings.sandboxDevices.append(path)
                }
            case "log_level": settings.debug = try oneOf(key, logLevels) == "debug"
            case "root":
                var root = try absolutePath(key)
                while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
                settings.root = root
            case "binary":
                let binary = try absolutePath(key)
                guard access(binary, X_OK) == 0 else { throw ShimError("\(source): key \"binary\": \(binary) is not an executable file") }
                settings.binary = binary
            default:
                throw ShimError("\(source): unknown key \"\(key)\" (veil's runtime options are: \(knownKeys.joined(separator: ", ")))")
            }
        }
        return settings
    }

    /// The settings recorded in `bundle` at Create (the defaults when there are none).
    static func recorded(bundle: String) -> RuntimeSettings {
        let path = bundle + "/" + bundleFile
        guard let text = try? readTextFile(path), let settings = try? parse(text, source: path) else { return RuntimeSettings() }
        return settings
    }

    /// Records the settings in `bundle` (nothing for the defaults).
    func record(bundle: String) throws(ShimError) {
        guard !text.isEmpty else { return }
        let path = bundle + "/" + Self.bundleFile
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ShimError("write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = Array(text.utf8).withUnsafeBytes { writeAll(fd, $0) }
        guard written else { throw ShimError("write \(path): \(String(cString: strerror(errno)))") }
    }
}

/// A TOML basic string.
func tomlString(_ value: String) -> String {
    var out = "\""
    for c in value.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

private extension String {
    /// A TOML key as veil's flag: `registry_auth_file` → `registry-auth-file`.
    var replacingUnderscores: String { String(map { $0 == "_" ? "-" : $0 }) }
}

/// A whole (small) text file.
func readTextFile(_ path: String) throws(ShimError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ShimError(String(cString: strerror(errno))) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw ShimError(String(cString: strerror(errno))) }
        if n == 0 { break }
        bytes += buffer[0..<n]
        guard bytes.count <= 1 << 20 else { throw ShimError("larger than 1 MiB") }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// What the shim needs of config.json to pick the cgroup driver: linux.cgroupsPath.
enum BundleCgroupsPath {
    private struct Config: Decodable {
        struct Linux: Decodable { var cgroupsPath: String? }
        var linux: Linux?
    }

    static func read(bundle: String) -> String? {
        guard let text = try? readTextFile(bundle + "/config.json"),
              let config = try? JSONDecoder().decode(Config.self, from: Data(text.utf8)) else { return nil }
        return config.linux?.cgroupsPath
    }

    /// systemd is PID 1 (sd_booted's test).
    static var systemdRunning: Bool {
        var st = stat()
        return stat("/run/systemd/system", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}

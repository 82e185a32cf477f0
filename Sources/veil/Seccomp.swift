import ArgumentParser
import FoundationEssentials
import Glibc
import VeilLinux
import VeilRegistry
import VeilSeccomp
import VeilSpec

/// `veil seccomp …`: seccomp profiles as OCI artifacts, and `record` (SeccompRecord.swift).
struct SeccompCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seccomp", abstract: "Seccomp profiles as OCI artifacts in a registry, and recorded from a workload.",
        subcommands: [
            SeccompPull.self, SeccompPush.self, SeccompInspect.self, SeccompImageAnnotations.self, SeccompRecord.self,
        ])
}

/// Flags every registry subcommand shares: they fill `RegistrySettings`.
struct RegistryFlags: ParsableArguments {
    @Flag(help: "Plain HTTP or unverified TLS for every registry.") var insecure = false
    @Option(help: "auth.json with registry credentials (default: $REGISTRY_AUTH_FILE, /etc/containers/auth.json, /run/containers/0/auth.json).")
    var authfile: String?
    @Option(help: "registries.conf (drop-ins from <file>.d/).") var registriesConf: String = "/etc/containers/registries.conf"
    @Option(help: "Per-registry certificates: <dir>/<host:port>/*.crt.") var certDir: String = "/etc/containers/certs.d"
    @Option(help: "Deadline of the whole operation, in seconds.") var timeout: Double = 30
    @Option(help: "Largest profile accepted, in bytes.") var maxProfileBytes: Int = 1 << 20
    @Option(help: "Where pulled profiles are cached.") var cacheDir: String = "/run/veil-cache/seccomp"
    @Option(help: "Seconds a tag's digest is reused from the cache (0: ask the registry every time).") var tagTtl: Double = 600

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard maxProfileBytes > 0 else { throw ValidationError("--max-profile-bytes must be positive") }
        guard tagTtl >= 0 else { throw ValidationError("--tag-ttl cannot be negative") }
    }

    var settings: RegistrySettings {
        var settings = RegistrySettings()
        settings.insecure = insecure
        settings.authFile = authfile
        settings.registriesConf = registriesConf
        settings.certDirectory = certDir
        settings.timeoutSeconds = timeout
        settings.maxProfileBytes = maxProfileBytes
        settings.cacheDirectory = cacheDir
        settings.tagTTLSeconds = tagTtl
        return settings
    }
}

struct SeccompPull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Fetch a profile artifact, verify it, print its manifest digest.",
        discussion: "REF must be fully qualified (host[:port]/repository[:tag|@sha256:…]).")
    @Argument(help: "The artifact reference.") var reference: String
    @Option(name: [.short, .long], help: "Write the profile (the verified layer, byte for byte) to this file.") var output: String?
    @OptionGroup var registry: RegistryFlags

    func run() throws {
        let pulled = pullOrFail(reference, registry)
        if let output {
            do throws(Failure) {
                try writeWhole(output, pulled.bytes)
            } catch {
                Context.fail(error)
            }
        }
        writeOut(pulled.manifestDigest + "\n")
    }
}

struct SeccompPush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Publish a profile as an OCI artifact; print the manifest digest.",
        discussion: """
            The profile is checked and compiled first. The manifest is made as oras and the Security \
            Profiles Operator make it (config {} of type application/vnd.cncf.seccomp-profile.config.v1+json, \
            the same artifactType, one layer titled with the file's name, created at the epoch), so the \
            same profile always has the same digest.
            """)
    @Argument(help: "The artifact reference.") var reference: String
    @Argument(help: "The profile: an OCI linux.seccomp object (JSON).") var profile: String
    @OptionGroup var registry: RegistryFlags

    func run() throws {
        let bytes: [UInt8]
        do throws(Failure) {
            bytes = try readWhole(profile, limit: registry.maxProfileBytes)
        } catch {
            Context.fail(error)
        }
        // Decoded and compiled here too, so a bad file is named as a file, before any request.
        let decoded: LinuxSeccomp
        do {
            decoded = try JSONDecoder().decode(LinuxSeccomp.self, from: Data(bytes))
        } catch {
            Context.fail(Failure(message: "\(profile): not an OCI linux.seccomp profile: \(error)"))
        }
        do throws(SeccompError) {
            _ = try SeccompProgram.compile(decoded, field: "")
        } catch {
            let at = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
            Context.fail(Failure(message: "\(profile): does not compile: \(at.isEmpty ? "" : at + ": ")\(error.reason)"))
        }
        let title = profile.split(separator: "/").last.map(String.init) ?? "seccomp.json"
        do throws(RegistryError) {
            writeOut(try SeccompArtifact.push(reference, profile: bytes, title: title, settings: registry.settings) + "\n")
        } catch {
            Context.fail(error)
        }
    }
}

struct SeccompInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Pull a profile artifact and describe it.")
    @Argument(help: "The artifact reference.") var reference: String
    @Option(help: "Output format: text or json.") var format: String = "text"
    @OptionGroup var registry: RegistryFlags

    func validate() throws {
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json, not \(format)") }
    }

    struct Description: Encodable {
        var reference: String
        var manifestDigest: String
        var configMediaType: String
        var artifactType: String?
        var layerMediaType: String?
        var layerDigest: String
        var layerSize: Int
        var defaultAction: String
        var architectures: [String]
        var syscallRules: Int
        var syscallNames: Int
        var fromCache: Bool
    }

    func run() throws {
        let pulled = pullOrFail(reference, registry)
        let rules = pulled.profile.syscalls ?? []
        let description = Description(
            reference: pulled.reference, manifestDigest: pulled.manifestDigest, configMediaType: pulled.configMediaType,
            artifactType: pulled.artifactType, layerMediaType: pulled.layerMediaType, layerDigest: pulled.layerDigest,
            layerSize: pulled.bytes.count, defaultAction: pulled.profile.defaultAction,
            architectures: pulled.profile.architectures ?? [], syscallRules: rules.count,
            syscallNames: Set(rules.flatMap(\.names)).count, fromCache: pulled.fromCache)
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(description)) ?? Data("{}".utf8)
            writeOut(String(decoding: data, as: UTF8.self) + "\n")
            return
        }
        var lines = [
            "Reference:       \(description.reference)",
            "Manifest digest: \(description.manifestDigest)",
            "Config type:     \(description.configMediaType)",
        ]
        if let artifactType = description.artifactType { lines.append("Artifact type:   \(artifactType)") }
        lines += [
            "Layer:           \(description.layerDigest) (\(description.layerMediaType ?? "no media type"), \(description.layerSize) bytes)",
            "Default action:  \(description.defaultAction)",
            "Architectures:   \(description.architectures.isEmpty ? "(native)" : description.architectures.joined(separator: ", "))",
            "Syscall rules:   \(description.syscallRules) (\(description.syscallNames) distinct names)",
            "From cache:      \(description.fromCache ? "yes" : "no")",
        ]
        writeOut(lines.joined(separator: "\n") + "\n")
    }
}

struct SeccompImageAnnotations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-annotations",
        abstract: "Print an image manifest's annotations (JSON), as the image-side profile lookup reads them.",
        discussion: "An index is resolved to this machine's linux platform. Cached like profiles.")
    @Argument(help: "The image reference.") var reference: String
    @OptionGroup var registry: RegistryFlags

    func run() throws {
        let annotations: [String: String]
        do throws(RegistryError) {
            annotations = try SeccompArtifact.imageAnnotations(reference, settings: registry.settings)
        } catch {
            Context.fail(error)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(annotations)) ?? Data("{}".utf8)
        writeOut(String(decoding: data, as: UTF8.self) + "\n")
    }
}

private func readWhole(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
    let bytes: [UInt8]
    do { bytes = try FileDescriptor.open(path, O_RDONLY).readAll(limit: limit + 1) } catch { throw Failure(message: "\(error)") }
    guard bytes.count <= limit else { throw Failure(message: "\(path): the profile is over \(limit) bytes (--max-profile-bytes)") }
    return bytes
}

private func writeWhole(_ path: String, _ bytes: [UInt8]) throws(Failure) {
    do { try FS.writeFile(path, bytes) } catch { throw Failure(message: "\(error)") }
}

/// Pulls `reference` or ends the command with the registry's error.
private func pullOrFail(_ reference: String, _ registry: RegistryFlags) -> PulledProfile {
    do throws(RegistryError) {
        return try SeccompArtifact.pull(reference, settings: registry.settings)
    } catch {
        Context.fail(error)
    }
}

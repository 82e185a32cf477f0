import ArgumentParser
import FoundationEssentials
import Glibc
import VeilSeccomp
import VeilSpec

/// `features`: what this build of veil supports, in the runtime-spec's features.md format.
struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", abstract: "Show what this runtime supports (runtime-spec features.md JSON).")

    struct Document: Encodable {
        struct Linux: Encodable {
            struct Cgroup: Encodable { let v1: Bool, v2: Bool, systemd: Bool, systemdUser: Bool, rdma: Bool }
            struct Seccomp: Encodable {
                let enabled: Bool
                let actions, operators, archs, knownFlags, supportedFlags: [String]
            }
            struct Enabled: Encodable { let enabled: Bool }
            struct MountExtensions: Encodable { let idmap: Enabled }
            let namespaces: [String]
            let capabilities: [String]
            let cgroup: Cgroup
            let seccomp: Seccomp
            let apparmor: Enabled
            let selinux: Enabled
            let intelRdt: Enabled
            let mountExtensions: MountExtensions
        }
        let ociVersionMin: String
        let ociVersionMax: String
        let hooks: [String]
        let mountOptions: [String]
        let linux: Linux
        let annotations: [String: String]
        /// Annotations that change what the host grants (runtime-spec features.md): a container
        /// manager should not copy them from untrusted pods.
        let potentiallyUnsafeConfigAnnotations: [String]
    }

    static let mountOptions = [
        "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
        "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private",
        "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
        "shared", "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable",
    ]

    func run() throws {
        let version = SeccompFeatures.libseccompVersion
        let document = Document(
            ociVersionMin: "1.0.0",
            ociVersionMax: "1.1.0",
            hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            mountOptions: Self.mountOptions,
            linux: .init(
                namespaces: ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
                capabilities: CapabilityName.all,
                cgroup: .init(v1: true, v2: true, systemd: true, systemdUser: false, rdma: true),
                seccomp: .init(enabled: true, actions: SeccompFeatures.actions, operators: SeccompFeatures.operators,
                               archs: SeccompFeatures.archs, knownFlags: SeccompFeatures.knownFlags,
                               supportedFlags: SeccompFeatures.supportedFlags),
                apparmor: .init(enabled: false), selinux: .init(enabled: false), intelRdt: .init(enabled: false),
                mountExtensions: .init(idmap: .init(enabled: false))),
            annotations: [
                "io.github.seccomp.libseccomp.version": "\(version.major).\(version.minor).\(version.micro)",
                "io.github.seccomp.libseccomp.api": String(SeccompFeatures.apiLevel),
                // As runc built with CRIU support: checkpoint and restore through CRIU (the native level).
                "org.opencontainers.runc.checkpoint.enabled": "true",
                "dev.veil.version": "0.1.0",
            ],
            potentiallyUnsafeConfigAnnotations: ["bundle", "org.systemd.property.", "org.criu.config", "dev.veil.isolation", "dev.veil.seccomp-record"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { writeOut(String(decoding: try encoder.encode(document), as: UTF8.self) + "\n") } catch { Context.fail(error) }
    }
}

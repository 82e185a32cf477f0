// CRI-O pods at the sandbox level, without CRI-O: config.json shaped as CRI-O writes it (its
// ContainerType/SandboxID keys, the pod's IPC and UTS namespaces pinned by host root and named by
// path in every container, as its `pinns` does). The pod's sandbox container adopts the pins
// (fresh namespaces inside its user namespace), its members share them, nothing host-owned is
// entered; CRIOTests drives the same through a real CRI-O where one is built.

import Foundation
import Testing

@Suite("CRI-O pods: pinned namespaces", .serialized)
struct CRIOPodNamespaceTests {
    /// A pod's IPC and UTS namespaces pinned on files, as CRI-O's pinns does (host root, the host's user namespace).
    final class Pins {
        let dir: TempDir
        var ipc: String { dir.path + "/ipc" }
        var uts: String { dir.path + "/uts" }

        init() throws {
            dir = try TempDir(prefix: "veil-pins")
            for file in [ipc, uts] { FileManager.default.createFile(atPath: file, contents: nil) }
            let made = try runCommand("/usr/bin/unshare", ["--ipc=\(ipc)", "--uts=\(uts)", "/bin/true"])
            guard made.succeeded else { throw SupportError("pinning namespaces: \(made)") }
        }

        func remove() {
            for file in [ipc, uts] { _ = try? runCommand("/bin/umount", [file]) }
            dir.remove()
        }
    }

    static func inode(_ path: String) -> String? {
        guard let result = try? runCommand("/usr/bin/stat", ["-L", "-c", "%i", path]), result.succeeded else { return nil }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A bundle with CRI-O's pod keys and the given namespace paths.
    func podBundle(_ args: [String], type: String, sandboxID: String, paths: [String: String]) throws -> TestBundle {
        let bundle = try TestBundle(args, prefix: "crio")
        try bundle.edit { config in
            var annotations = config["annotations"] as? [String: String] ?? [:]
            annotations["io.kubernetes.cri-o.ContainerType"] = type
            annotations["io.kubernetes.cri-o.SandboxID"] = sandboxID
            config["annotations"] = annotations
            var linux = config["linux"] as? [String: Any] ?? [:]
            var namespaces = linux["namespaces"] as? [[String: Any]] ?? []
            for (type, path) in paths {
                namespaces.removeAll { $0["type"] as? String == type }
                namespaces.append(["type": type, "path": path])
            }
            linux["namespaces"] = namespaces
            config["linux"] = linux
            config["hostname"] = "crio-pod"
        }
        return bundle
    }

    func veil(_ root: String, _ args: [String], level: String = "sandbox") throws -> CommandResult {
        try runCommand(try requireVeil(), ["--root", root, "--isolation", level] + args, timeout: 60)
    }

    @Test(arguments: ["sandbox", "native"])
    func podSharesThePinnedNamespacesItsWay(level: String) throws {
        let pins = try Pins()
        defer { pins.remove() }
        let root = try TempDir(prefix: "veil-crio-root")
        defer { root.remove() }
        let infra = try podBundle(["sleep", "300"], type: "sandbox", sandboxID: "", paths: ["ipc": pins.ipc, "uts": pins.uts])
        defer { infra.remove() }
        try infra.edit { config in
            var annotations = config["annotations"] as? [String: String] ?? [:]
            annotations["io.kubernetes.cri-o.SandboxID"] = infra.id
            config["annotations"] = annotations
        }
        let created = try veil(root.path, ["run", "-d", "--bundle", infra.path, infra.id], level: level)
        #expect(created.succeeded, "\(created)")
        defer { _ = try? veil(root.path, ["delete", "-f", infra.id], level: level) }
        let state = try veil(root.path, ["state", infra.id], level: level)
        let pid = try #require((try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any])?["pid"] as? Int, "\(state)")

        let probe = "hostname; stat -L -c %i /proc/self/ns/ipc /proc/self/ns/uts"
        let member = try podBundle(["sh", "-c", probe], type: "container", sandboxID: infra.id,
                                   paths: ["ipc": pins.ipc, "uts": pins.uts, "pid": "/proc/\(pid)/ns/pid", "network": "/proc/\(pid)/ns/net"])
        defer { member.remove() }
        let ran = try veil(root.path, ["run", "--bundle", member.path, member.id], level: level)
        #expect(ran.succeeded, "\(ran)")
        let lines = ran.stdout.split(separator: "\n").map(String.init)
        let infraIPC = Self.inode("/proc/\(pid)/ns/ipc"), infraUTS = Self.inode("/proc/\(pid)/ns/uts")
        #expect(lines == ["crio-pod", infraIPC ?? "?", infraUTS ?? "?"], "the member is in its pod's IPC and UTS namespaces: \(ran)")
        if level == "sandbox" {
            // Adopted, not entered: the pod's namespaces are the sandbox's own, not the host-owned pins.
            #expect(infraIPC != Self.inode(pins.ipc) && infraUTS != Self.inode(pins.uts))
        } else {
            #expect(infraIPC == Self.inode(pins.ipc) && infraUTS == Self.inode(pins.uts), "native joins the pins, as runc")
        }
        #expect(member.leftovers().isEmpty, "\(member.leftovers())")
    }

    @Test func foreignPinsAndDroppedInfraAreRefused() throws {
        let pins = try Pins(), other = try Pins()
        defer { pins.remove(); other.remove() }
        let root = try TempDir(prefix: "veil-crio-root")
        defer { root.remove() }
        let infra = try podBundle(["sleep", "300"], type: "sandbox", sandboxID: "", paths: ["ipc": pins.ipc, "uts": pins.uts])
        defer { infra.remove() }
        let created = try veil(root.path, ["run", "-d", "--bundle", infra.path, infra.id])
        #expect(created.succeeded, "\(created)")
        defer { _ = try? veil(root.path, ["delete", "-f", infra.id]) }

        // Claims the pod but names another pod's pin.
        let intruder = try podBundle(["true"], type: "container", sandboxID: infra.id, paths: ["ipc": other.ipc])
        defer { intruder.remove() }
        let refused = try veil(root.path, ["run", "--bundle", intruder.path, intruder.id])
        #expect(!refused.succeeded && refused.stderr.contains("linux.namespaces[") && refused.stderr.contains("does not stand for"), "\(refused)")
        #expect(intruder.leftovers().isEmpty, "\(intruder.leftovers())")

        // CRI-O's default drop_infra_ctr = true: the runtime never saw the pod's sandbox.
        let orphan = try podBundle(["true"], type: "container", sandboxID: "nosuchpod", paths: ["ipc": pins.ipc, "uts": pins.uts])
        defer { orphan.remove() }
        let dropped = try veil(root.path, ["run", "--bundle", orphan.path, orphan.id])
        #expect(!dropped.succeeded && dropped.stderr.contains("drop_infra_ctr = false"), "\(dropped)")
        #expect(orphan.leftovers().isEmpty, "\(orphan.leftovers())")
    }
}

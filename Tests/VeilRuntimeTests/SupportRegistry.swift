// A real OCI registry for the tests: Debian's docker-registry (distribution 2.8) started on
// 127.0.0.1:<free port> with its own config and storage in a temp dir (never the packaged service
// or port 5000), optionally behind TLS with a test CA and/or htpasswd (Basic) auth.
//
// API (other test files rely on these names):
//
//   RegistryRig.start(tls: Bool = false, htpasswd: (user: String, password: String)? = nil) throws -> RegistryRig
//       Starts the registry and waits until it answers. When `tls`, a CA and a server certificate
//       for IP 127.0.0.1 are made with openssl. Always call `stop()` (usually in a `defer`).
//   host: "127.0.0.1:<port>"; reference(repo, tag) -> "127.0.0.1:<port>/<repo>:<tag>".
//   caFile: the CA certificate (PEM) when tls, else nil.
//   storageDirectory: the registry's storage root (blobs under docker/registry/v2/blobs/sha256/xx/<hex>/data).
//   blobPath(digest:) -> the file holding a blob in storage (to tamper with it).
//   What the rig writes for veil in its directory (the files exist after start):
//     registriesConf: a registries.conf with one [[registry]] for `host` (`insecure = true` when plain HTTP),
//     authFile: an auth.json with the htpasswd credentials for `host` (`{"auths":{}}` without htpasswd),
//     certDirectory: a certs.d with `<host>/ca.crt` when tls (empty otherwise).
//   settingsArguments: veil's CLI flags for these files:
//       ["--registries-conf", registriesConf, "--authfile", authFile, "--cert-dir", certDirectory].
//   requestCount(pathContaining:) -> Int: requests in the registry's access log whose request line
//       (method and path) contains the string, e.g. "/manifests/" or "GET /v2/profiles/".
//   pushProfile(repo:tag:json:) throws -> String: `veil seccomp push` of the JSON (as seccomp.json, the
//       layer's title); the manifest digest.
//   pushImage(repo:tag:annotations:) throws -> String: a small busybox-static OCI image (one
//       uncompressed layer, linux/amd64) whose *manifest* carries `annotations`, written as an OCI
//       layout and copied in with `skopeo copy --preserve-digests`; returns the reference.
//   skopeoFlags(prefix:): skopeo's TLS/credential flags for this registry ("dest" for copy's
//       destination, "src" for its source, "" for inspect).
//   copyLayout(_ layoutDirectory, tag:, repo:, destinationTag:) throws: `skopeo copy oci:… docker://…`.
//   writeContainerdHosts(to directory) throws: `<directory>/<host>/hosts.toml` for containerd's
//       registry config_path (CRI: [plugins."io.containerd.grpc.v1.cri".registry] config_path) or
//       `ctr images pull --hosts-dir`: the rig's scheme, and its CA when tls. Credentials are not part
//       of hosts.toml: pass them with `ctr images pull --user user:password` or CRI's auth.
//   stop(): SIGKILL the registry and remove the temp dir (idempotent).
//
//   OCILayout(directory:): writes an OCI image layout by hand: `addBlob(bytes) -> Descriptor`,
//       `addManifest(json, tag:)`, `write()`. Descriptor: mediaType, digest, size, json(annotations:).
//   sha256Hex(data) -> String: through sha256sum (this target links none of veil's modules).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class RegistryRig {
    let host: String
    let directory: TempDir
    let caFile: String?
    let storageDirectory: String
    let registriesConf: String
    let authFile: String
    let certDirectory: String
    let logPath: String
    let credentials: (user: String, password: String)?
    private let process: Process
    private let logHandle: FileHandle

    var settingsArguments: [String] {
        ["--registries-conf", registriesConf, "--authfile", authFile, "--cert-dir", certDirectory]
    }

    func reference(_ repo: String, _ tag: String) -> String { "\(host)/\(repo):\(tag)" }

    private init(host: String, directory: TempDir, caFile: String?, process: Process, logHandle: FileHandle,
                 credentials: (user: String, password: String)?) {
        self.host = host
        self.directory = directory
        self.caFile = caFile
        self.process = process
        self.logHandle = logHandle
        self.credentials = credentials
        storageDirectory = directory.file("storage")
        registriesConf = directory.file("registries.conf")
        authFile = directory.file("auth.json")
        certDirectory = directory.file("certs.d")
        logPath = directory.file("registry.log")
    }

    static func start(tls: Bool = false, htpasswd: (user: String, password: String)? = nil) throws -> RegistryRig {
        guard let registry = findExecutable("docker-registry") else {
            throw SupportError("docker-registry not installed (apt-get install docker-registry; `make deps`)")
        }
        let dir = try TempDir(prefix: "veil-registry")
        do {
            try FileManager.default.createDirectory(atPath: dir.file("storage"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir.file("certs.d"), withIntermediateDirectories: true)
            if tls { try makeCertificates(in: dir) }
            if let htpasswd {
                let made = try runCommand("htpasswd", ["-Bbn", htpasswd.user, htpasswd.password])
                guard made.succeeded else { throw SupportError("htpasswd failed:\n\(made)") }
                try write(made.stdout, to: dir.file("htpasswd"))
            }
            // A private port range; a port someone else holds makes the registry exit: try another.
            var lastLog = ""
            for _ in 0..<8 {
                let port = Int.random(in: 21000...29999)
                let host = "127.0.0.1:\(port)"
                var config = """
                    version: 0.1
                    log:
                      level: info
                      accesslog:
                        disabled: false
                    storage:
                      filesystem:
                        rootdirectory: \(dir.file("storage"))
                      delete:
                        enabled: true
                    http:
                      addr: \(host)
                      secret: veil-test-secret

                    """
                if tls {
                    config += "  tls:\n    certificate: \(dir.file("server.crt"))\n    key: \(dir.file("server.key"))\n"
                }
                if htpasswd != nil {
                    config += "auth:\n  htpasswd:\n    realm: veil-test\n    path: \(dir.file("htpasswd"))\n"
                }
                try write(config, to: dir.file("config.yml"))
                let logPath = dir.file("registry.log")
                _ = FileManager.default.createFile(atPath: logPath, contents: nil)
                guard let logHandle = FileHandle(forWritingAtPath: logPath) else { throw SupportError("cannot open \(logPath)") }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: registry)
                process.arguments = ["serve", dir.file("config.yml")]
                process.standardInput = FileHandle.nullDevice
                process.standardOutput = logHandle
                process.standardError = logHandle
                try process.run()
                let rig = RegistryRig(host: host, directory: dir, caFile: tls ? dir.file("ca.crt") : nil, process: process,
                                      logHandle: logHandle, credentials: htpasswd)
                let ready = waitUntil(timeout: 10) {
                    rig.log().contains("listening on \(host)") || exitStatus(of: process) != nil
                }
                if ready, exitStatus(of: process) == nil, rig.acceptsConnections(port: port) {
                    try rig.writeClientFiles(tls: tls)
                    return rig
                }
                lastLog = rig.log()
                kill(process.processIdentifier, SIGKILL)
                waitForExit(process, timeout: 5)
                try? logHandle.close()
            }
            throw SupportError("docker-registry did not start:\n\(lastLog)")
        } catch {
            dir.remove()
            throw error
        }
    }

    private var stopped = false

    /// Idempotent: a second call does nothing (the pid may belong to someone else by then).
    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(process.processIdentifier, SIGKILL)
        waitForExit(process, timeout: 5)
        try? logHandle.close()
        directory.remove()
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Access-log lines look like `127.0.0.1 - - [date] "GET /v2/x/manifests/y HTTP/1.1" 404 91 "" "ua"`.
    func requestCount(pathContaining needle: String) -> Int {
        log().split(separator: "\n").filter { line in
            guard let open = line.firstIndex(of: "\""), line.contains(" HTTP/1.") else { return false }
            let request = line[line.index(after: open)...].prefix { $0 != "\"" }
            return request.contains(needle)
        }.count
    }

    /// The storage file of a blob (distribution's filesystem layout).
    func blobPath(digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
        return "\(storageDirectory)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    func pushProfile(repo: String, tag: String, json: String) throws -> String {
        let veil = try requireVeil()
        // Always named seccomp.json: the file name is the layer's title, part of the digest.
        let scratch = try TempDir(prefix: "veil-push")
        defer { scratch.remove() }
        let file = scratch.file("seccomp.json")
        try Self.write(json, to: file)
        let pushed = try runCommand(veil, ["seccomp", "push", reference(repo, tag), file] + settingsArguments, timeout: 60)
        guard pushed.succeeded else { throw SupportError("veil seccomp push failed:\n\(pushed)") }
        guard let digest = pushed.stdout.split(separator: "\n").last.map(String.init), digest.hasPrefix("sha256:") else {
            throw SupportError("veil seccomp push printed no digest:\n\(pushed)")
        }
        return digest
    }

    func skopeoFlags(prefix: String) -> [String] {
        let dash = prefix.isEmpty ? "--" : "--\(prefix)-"
        var flags: [String] = caFile == nil ? ["\(dash)tls-verify=false"] : ["\(dash)cert-dir", certDirectory + "/" + host]
        if let credentials { flags += ["\(dash)creds", "\(credentials.user):\(credentials.password)"] }
        return flags
    }

    func copyLayout(_ layout: String, tag: String, repo: String, destinationTag: String) throws {
        let copied = try runCommand("skopeo", ["copy", "--preserve-digests"] + skopeoFlags(prefix: "dest")
                                    + ["oci:\(layout):\(tag)", "docker://\(reference(repo, destinationTag))"], timeout: 60)
        guard copied.succeeded else { throw SupportError("skopeo copy failed:\n\(copied)") }
    }

    func pushImage(repo: String, tag: String, annotations: [String: String]) throws -> String {
        let work = try TempDir(prefix: "veil-image")
        defer { work.remove() }
        let rootfs = work.file("rootfs")
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        for name in ["etc", "proc", "sys", "dev", "tmp"] {
            try FileManager.default.createDirectory(atPath: rootfs + "/" + name, withIntermediateDirectories: true)
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let busybox else { throw SupportError("busybox-static not installed") }
        try FileManager.default.copyItem(atPath: busybox, toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "ps", "grep", "mkdir", "touch", "env", "uname"] {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        let tarPath = work.file("layer.tar")
        let tarred = try runCommand("tar", ["--numeric-owner", "--owner=0", "--group=0", "--sort=name", "--mtime=@0",
                                            "-C", rootfs, "-cf", tarPath, "."])
        guard tarred.succeeded else { throw SupportError("tar failed:\n\(tarred)") }
        let layout = OCILayout(directory: work.file("layout"))
        let layer = try layout.addBlob(try Data(contentsOf: URL(fileURLWithPath: tarPath)),
                                       mediaType: "application/vnd.oci.image.layer.v1.tar")
        let config = """
            {"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},\
            "rootfs":{"type":"layers","diff_ids":["\(layer.digest)"]}}
            """
        let configDescriptor = try layout.addBlob(Data(config.utf8), mediaType: "application/vnd.oci.image.config.v1+json")
        let manifest: [String: Any] = [
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": configDescriptor.json(),
            "layers": [layer.json()],
            "annotations": annotations,
        ]
        try layout.addManifest(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .withoutEscapingSlashes]), tag: tag)
        try layout.write()
        try copyLayout(layout.directory, tag: tag, repo: repo, destinationTag: tag)
        return reference(repo, tag)
    }

    func writeContainerdHosts(to directory: String) throws {
        let hostDirectory = directory + "/" + host
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        let scheme = caFile == nil ? "http" : "https"
        var text = "server = \"\(scheme)://\(host)\"\n\n[host.\"\(scheme)://\(host)\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"
        if let caFile { text += "  ca = \"\(caFile)\"\n" }
        try Self.write(text, to: hostDirectory + "/hosts.toml")
    }

    // MARK: - set-up

    private func acceptsConnections(port: Int) -> Bool {
        waitUntil(timeout: 5) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
    }

    private func writeClientFiles(tls: Bool) throws {
        try Self.write("[[registry]]\nlocation = \"\(host)\"\ninsecure = \(tls ? "false" : "true")\n", to: registriesConf)
        var auths = "{\"auths\":{}}"
        if let credentials {
            let token = Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
            auths = "{\"auths\":{\"\(host)\":{\"auth\":\"\(token)\"}}}"
        }
        try Self.write(auths, to: authFile)
        if let caFile {
            let hostDirectory = certDirectory + "/" + host
            try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: caFile, toPath: hostDirectory + "/ca.crt")
        }
    }

    private static func makeCertificates(in dir: TempDir) throws {
        let ext = dir.file("server.ext")
        try write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n", to: ext)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=veil test CA", "-keyout", dir.file("ca.key"), "-out", dir.file("ca.crt")],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", dir.file("server.key"), "-out", dir.file("server.csr")],
            ["x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.crt"), "-CAkey", dir.file("ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", dir.file("server.crt")],
        ]
        for step in steps {
            let result = try runCommand("openssl", step)
            guard result.succeeded else { throw SupportError("openssl failed:\n\(result)") }
        }
    }

    static func write(_ text: String, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { throw SupportError("cannot write \(path)") }
    }
}

/// An OCI image layout written by hand (oci-layout, index.json, blobs/sha256/*).
final class OCILayout {
    struct Descriptor {
        let mediaType: String
        let digest: String
        let size: Int
        func json(annotations: [String: String]? = nil) -> [String: Any] {
            var value: [String: Any] = ["mediaType": mediaType, "digest": digest, "size": size]
            if let annotations { value["annotations"] = annotations }
            return value
        }
    }

    let directory: String
    private var manifests: [[String: Any]] = []

    init(directory: String) { self.directory = directory }

    @discardableResult
    func addBlob(_ data: Data, mediaType: String) throws -> Descriptor {
        let blobs = directory + "/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let hex = try sha256Hex(data)
        try data.write(to: URL(fileURLWithPath: blobs + "/" + hex))
        return Descriptor(mediaType: mediaType, digest: "sha256:" + hex, size: data.count)
    }

    /// Stores a manifest blob and lists it in index.json under `tag` (org.opencontainers.image.ref.name).
    @discardableResult
    func addManifest(_ data: Data, tag: String, mediaType: String = "application/vnd.oci.image.manifest.v1+json") throws -> Descriptor {
        let descriptor = try addBlob(data, mediaType: mediaType)
        manifests.append(descriptor.json(annotations: ["org.opencontainers.image.ref.name": tag]))
        return descriptor
    }

    func write() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("{\"imageLayoutVersion\":\"1.0.0\"}".utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
        let index: [String: Any] = ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .withoutEscapingSlashes]).write(to: URL(fileURLWithPath: directory + "/index.json"))
    }
}

/// sha256 in hex of some bytes, through sha256sum.
func sha256Hex(_ data: Data) throws -> String {
    let scratch = try TempDir(prefix: "veil-sha")
    defer { scratch.remove() }
    try data.write(to: URL(fileURLWithPath: scratch.file("data")))
    let result = try runCommand("sha256sum", [scratch.file("data")])
    guard result.succeeded, let hex = result.stdout.split(separator: " ").first, hex.count == 64 else {
        throw SupportError("sha256sum failed:\n\(result)")
    }
    return String(hex)
}

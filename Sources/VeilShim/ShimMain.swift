import CVeilLinux
import Foundation
import Glibc
import NIOCore
import NIOPosix
import SwiftProtobuf
import TTRPC
import VeilLinux
import VeilShimProtocol

/// containerd-shim-veil-v1's command line, as containerd's runtime v2 calls it:
///
///   containerd-shim-veil-v1 -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start
///   containerd-shim-veil-v1 -namespace NS -address ADDR -publish-binary BIN -id ID [-bundle B] delete
///
/// `start` (cwd = bundle) spawns the long-lived shim (this binary again, without a subcommand,
/// the listening socket as fd 3) and prints its address.
public enum ShimMain {
    struct Options {
        var namespace = ""
        var address = ""
        var publishBinary = ""
        var id = ""
        var bundle = ""
        var socket = ""
        var debug = false
        var action: String?
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var index = 0
        while index < arguments.count {
            var argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-") else {
                guard options.action == nil else { throw ShimError("unexpected argument \(argument)") }
                options.action = argument
                continue
            }
            while argument.hasPrefix("-") { argument.removeFirst() }
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                value = String(argument[argument.index(after: equals)...])
                argument = String(argument[..<equals])
            }
            if argument == "debug" || argument == "v" || argument == "version" {
                if argument == "v" || argument == "version" {
                    print("containerd-shim-veil-v1:\n  Version: 0.1.0\n  Runtime: io.containerd.veil.v1")
                    exit(0)
                }
                options.debug = value.map { $0 != "false" } ?? true
                continue
            }
            if value == nil {
                guard index < arguments.count else { throw ShimError("flag -\(argument) needs a value") }
                value = arguments[index]
                index += 1
            }
            let given = value ?? ""
            switch argument {
            case "namespace": options.namespace = given
            case "address": options.address = given
            case "publish-binary": options.publishBinary = given
            case "id": options.id = given
            case "bundle": options.bundle = given
            case "socket": options.socket = given
            default: break  // flags of newer containerds we do not need
            }
        }
        guard !options.namespace.isEmpty else { throw ShimError("shim namespace cannot be empty (-namespace)") }
        guard !options.id.isEmpty else { throw ShimError("shim id cannot be empty (-id)") }
        guard !options.address.isEmpty else { throw ShimError("containerd address cannot be empty (-address)") }
        return options
    }

    /// Runs the command line; returns the exit status.
    public static func main(_ arguments: [String]) async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        // One malloc arena for all threads: a shim makes few allocations, and per-thread arenas
        // each keep their own free memory.
        _ = veil_malloc_single_arena()
        let options: Options
        do {
            options = try parse(Array(arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("containerd-shim-veil-v1: \(error)\n".utf8))
            return 1
        }
        do {
            switch options.action {
            case "start": try start(options)
            case "delete": try delete(options)
            case nil: return await serve(options)
            case let other?: throw ShimError("unknown action \(other)")
            }
        } catch {
            FileHandle.standardError.write(Data("containerd-shim-veil-v1: \(error)\n".utf8))
            return 1
        }
        return 0
    }

    static func socketPath(_ options: Options, groupID: String? = nil) -> String {
        "/run/containerd/s/" + SHA256.hex(options.address + "/" + options.namespace + "/" + (groupID ?? options.id))
    }

    static let sandboxIDAnnotation = "io.kubernetes.cri.sandbox-id"

    /// The pod a container belongs to: the sandbox id its OCI annotations (config.json in
    /// `bundle`) name, or nil. Containers of one pod share one shim (as runsc's and kata's do).
    static func sandboxID(bundle: String) -> String? {
        guard let data = FileManager.default.contents(atPath: bundle + "/config.json"),
              let spec = try? JSONDecoder().decode(AnnotatedSpec.self, from: data),
              let id = spec.annotations?[sandboxIDAnnotation], !id.isEmpty else { return nil }
        return id
    }

    /// The one part of a bundle's config.json the shim reads (VeilSpec's full Spec would decode
    /// and check everything else too).
    struct AnnotatedSpec: Decodable {
        var annotations: [String: String]?
    }

    // MARK: start

    static func start(_ options: Options) throws {
        let path = socketPath(options, groupID: sandboxID(bundle: FS.currentDirectory()))
        let address = "unix://" + path
        try FS.mkdirAll("/run/containerd/s", mode: 0o711)
        // Serialize starts (two containers of one pod must not both spawn a shim): lock the
        // socket directory itself, which leaves nothing behind.
        let lockFD = open("/run/containerd/s", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if lockFD >= 0 { while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {} }
        defer { if lockFD >= 0 { close(lockFD) } }
        if let existing = try? UnixSocket.connect(path: path) {
            // A shim already serves this id (containerd retried) or this container's pod: hand out its address.
            existing.close()
        } else {
            unlink(path)
            let listener = try UnixSocket.listen(path: path, backlog: 256).release()
            defer { close(listener) }
            guard let exe = FS.realPath("/proc/self/exe") else { throw ShimError("cannot find my own executable") }
            let null = try openFD("/dev/null", O_RDWR)
            defer { close(null) }
            var argv = [exe, "-namespace", options.namespace, "-id", options.id, "-address", options.address,
                        "-publish-binary", options.publishBinary, "-socket", path]
            if options.debug { argv.append("-debug") }
            do {
                _ = try Spawner.spawn(exe, argv, placing: SpawnIO(stdin: null, stdout: null, stderr: null, extra: [3: listener]).placement, newSession: true)
            } catch {
                unlink(path)
                throw error
            }
        }
        try FS.writeString("address", address)
        print(address)
    }

    // MARK: delete (after a crashed shim)

    static func delete(_ options: Options) throws {
        let bundle = options.bundle.isEmpty ? FS.currentDirectory() : options.bundle
        // The root and binary this container was created with (its runtime options).
        let settings = RuntimeSettings.recorded(bundle: bundle)
        if let veil = settings.binary ?? findVeilBinary() {
            let null = try openFD("/dev/null", O_RDWR)
            defer { close(null) }
            let argv = [veil, "--root", settings.runtimeRoot(namespace: options.namespace), "--log", bundle + "/log.json",
                        "--log-format", "json"] + settings.veilFlags + ["delete", "--force", options.id]
            if let pid = try? Spawner.spawn(veil, argv, placing: SpawnIO(stdin: null, stdout: null, stderr: null).placement) {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            }
        }
        unmountAll(bundle + "/rootfs")
        var response = Containerd_Task_V2_DeleteResponse()
        response.exitStatus = 137
        response.exitedAt = Google_Protobuf_Timestamp(date: Date())
        let bytes: [UInt8] = try response.serializedBytes()
        _ = bytes.withUnsafeBytes { writeAll(1, $0) }
    }

    // MARK: the long-lived shim

    static func serve(_ options: Options) async -> Int32 {
        // Errors go to containerd's log through the bundle's `log` fifo, when containerd reads it.
        let log = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if log >= 0 {
            dup2(log, 2)
            close(log)
        }
        _ = veil_prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0)
        guard let veil = findVeilBinary() else {
            shimLog("cannot find the veil binary next to the shim or on PATH")
            return 1
        }
        Reaper.shared.start()
        let ttrpcAddress = ProcessInfo.processInfo.environment["TTRPC_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? options.address + ".ttrpc"
        // One event loop thread serves containerd's few connections (NIO's default is one per core).
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let events = EventPublisher(ttrpcAddress: ttrpcAddress, namespace: options.namespace, group: eventLoops)
        let server = TTRPCServer(group: eventLoops)
        let trimmer = IdleTrimmer()
        let socket = options.socket
        let service = TaskService(namespace: options.namespace, veil: veil, events: events) {
            await events.flush(timeout: .seconds(2))
            if !socket.isEmpty { unlink(socket) }
            await server.close()
            exit(0)
        }
        service.register(on: server, onRequest: trimmer.noteActivity)
        do {
            try await server.bind(fd: 3)
        } catch {
            shimLog("serve: \(error)")
            return 1
        }
        shimLog("serving \(options.namespace)/\(options.id) with \(veil)")
        trimmer.start()
        trimmer.noteActivity()
        await server.waitForClose()
        // The listener went away (not through Shutdown): keep the containers' state honest and exit.
        if !socket.isEmpty { unlink(socket) }
        return 0
    }
}

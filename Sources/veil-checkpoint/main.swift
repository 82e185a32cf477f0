import ArgumentParser
import Foundation
import VeilCheckpoint
import VeilContainer
import VeilLinux
import VeilSpec

// veil execs this binary for `veil checkpoint ...` and `veil restore ...`: argv is veil's global
// options (--root, --log, --log-format, --debug), then the command and its arguments.

/// veil's global options, as veil passed them on.
struct GlobalOptions {
    var root = "/run/veil"
    var logFile: String?
    var logFormat = "text"
    var debug = false
    var isolation: IsolationLevel?

    /// Takes the leading global options off `arguments`.
    static func take(_ arguments: inout [String]) -> GlobalOptions {
        var options = GlobalOptions()
        while let first = arguments.first, first.hasPrefix("--") {
            switch first {
            case "--root" where arguments.count > 1: options.root = arguments[1]; arguments.removeFirst(2)
            case "--log" where arguments.count > 1: options.logFile = arguments[1]; arguments.removeFirst(2)
            case "--log-format" where arguments.count > 1: options.logFormat = arguments[1]; arguments.removeFirst(2)
            case "--debug": options.debug = true; arguments.removeFirst()
            case "--isolation" where arguments.count > 1: options.isolation = IsolationLevel(rawValue: arguments[1]); arguments.removeFirst(2)
            default: return options
            }
        }
        return options
    }
}

var arguments = Array(CommandLine.arguments.dropFirst())
nonisolated(unsafe) let global = GlobalOptions.take(&arguments)
nonisolated(unsafe) let logger = Logger(file: global.logFile, format: Logger.Format(rawValue: global.logFormat) ?? .text, debug: global.debug)
nonisolated(unsafe) let runtime = Runtime(root: global.root, log: logger, isolation: global.isolation)

/// A container command's failure: logged (the shim reads --log) and on stderr, exit 1.
func failContainer(_ error: any Error) -> Never {
    logger.error("\(error)")
    exit(1)
}

/// Exits with the error's message on stderr as veil's other commands do.
func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("veil: \(message)\n".utf8))
    exit(status)
}

func writeOut(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

/// Every command opens its archive with `defer { archive.close() }` and throws: fail() exits
/// without running deinits, which would leave an unpacked archive behind.
func openArchive(_ path: String) throws -> CheckpointArchive { try CheckpointArchive(opening: path) }

func parsePID(_ text: String?) throws -> UInt32? {
    guard let text else { return nil }
    guard let pid = UInt32(text), pid > 0 else { throw ValidationError("--pid wants a process id (a positive number), got \(text)") }
    return pid
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct Veil: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "veil", subcommands: [CheckpointCommand.self, RestoreCommand.self])
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint a container, or read a checkpoint (inspect, memparse, dump, coredump).",
        subcommands: [Save.self, Inspect.self, Memparse.self, Dump.self, Coredump.self],
        defaultSubcommand: Save.self)
}

/// `veil checkpoint [options] <container-id>`: runc's command line.
struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Checkpoint a running container (runc's command line).",
                                                    shouldDisplay: false)
    @Option(name: .customLong("image-path")) var imagePath: String?
    @Option(name: .customLong("work-path")) var workPath: String?
    @Option(name: .customLong("parent-path")) var parentPath: String?
    @Flag(name: .customLong("leave-running")) var leaveRunning = false
    @Flag(name: .customLong("tcp-established")) var tcpEstablished = false
    @Flag(name: .customLong("ext-unix-sk")) var externalUnixSockets = false
    @Flag(name: .customLong("shell-job")) var shellJob = false
    @Flag(name: .customLong("file-locks")) var fileLocks = false
    @Flag(name: .customLong("pre-dump")) var preDump = false
    @Option(name: .customLong("manage-cgroups-mode")) var manageCgroupsMode: String?
    @Option(name: .customLong("empty-ns")) var emptyNamespaces: [String] = []
    @Flag(name: .customLong("auto-dedup")) var autoDedup = false
    @Flag(name: .customLong("lazy-pages")) var lazyPages = false
    @Option(name: .customLong("export")) var export: String?
    @Argument var containerID: String

    func run() throws {
        if lazyPages { fail("--lazy-pages is not supported: it needs CRIU's lazy-pages daemon and a page server, which veil does not run") }
        // --export without --image-path: CRIU writes into a temporary directory the archive is made of.
        var temporary: String?
        let images: String
        if let imagePath {
            images = imagePath.hasPrefix("/") ? imagePath : FS.currentDirectory() + "/" + imagePath
        } else if export != nil {
            let directory = try makeTemporaryDirectory("veil-checkpoint-images")
            temporary = directory
            images = directory
        } else {
            images = FS.currentDirectory() + "/checkpoint"
        }
        defer { if let temporary { try? FS.removeAll(temporary) } }
        var options = CheckpointOptions(imagePath: images)
        options.workPath = workPath
        options.parentPath = parentPath
        options.leaveRunning = leaveRunning
        options.tcpEstablished = tcpEstablished
        options.externalUnixSockets = externalUnixSockets
        options.shellJob = shellJob
        options.fileLocks = fileLocks
        options.preDump = preDump
        options.manageCgroupsMode = manageCgroupsMode
        options.emptyNamespaces = emptyNamespaces
        options.autoDedup = autoDedup
        if export != nil && preDump { fail("--export writes a whole checkpoint; a --pre-dump is only the first part of one") }
        let saved: CheckpointedContainer
        do { saved = try runtime.checkpoint(id: containerID, options: options) } catch { failContainer(error) }
        if let export {
            let annotations = saved.record.annotations ?? [:]
            let metadata = ArchiveWriter.Metadata(
                id: saved.record.id, created: saved.record.created,
                imageName: annotations["io.kubernetes.cri.image-name"] ?? annotations["org.opencontainers.image.ref.name"], spec: saved.configJSON)
            try ArchiveWriter.write(export, images: images, metadata: metadata, checkpointed: ISO8601DateFormatter().string(from: Date()))
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore a container from a checkpoint (runc's command line).")
    @Option(name: .customLong("image-path")) var imagePath: String?
    @Option(name: .shortAndLong) var bundle: String?
    @Flag(name: .shortAndLong) var detach = false
    @Option(name: .customLong("pid-file")) var pidFile: String?
    @Option(name: .customLong("console-socket")) var consoleSocket: String?
    @Flag(name: .customLong("no-subreaper")) var noSubreaper = false
    @Option(name: .customLong("import")) var importArchive: String?
    @Option(name: .customLong("work-path")) var workPath: String?
    @Flag(name: .customLong("tcp-established")) var tcpEstablished = false
    @Flag(name: .customLong("ext-unix-sk")) var externalUnixSockets = false
    @Flag(name: .customLong("shell-job")) var shellJob = false
    @Flag(name: .customLong("file-locks")) var fileLocks = false
    @Option(name: .customLong("manage-cgroups-mode")) var manageCgroupsMode: String?
    @Argument var containerID: String

    func run() throws {
        // runc restores in the foreground unless --detach; veil's restored init is CRIU's child, not
        // veil's, so there is no exit status to wait for: restore is detached only, said up front.
        guard detach else { fail("restore runs detached only: pass --detach (-d) (the restored init is not veil's child to wait for)") }
        if consoleSocket != nil { fail("--console-socket: a restored container keeps the terminal it was checkpointed with (use --shell-job at checkpoint and restore)") }
        var archive: CheckpointArchive?
        defer { archive?.close() }
        let images: String
        if let importArchive {
            if imagePath != nil { fail("--import and --image-path exclude each other") }
            archive = try openArchive(importArchive)
            images = archive?.images.path ?? ""
        } else {
            images = imagePath.map { $0.hasPrefix("/") ? $0 : FS.currentDirectory() + "/" + $0 } ?? FS.currentDirectory() + "/checkpoint"
        }
        var options = RestoreOptions(imagePath: images, bundle: bundle ?? FS.currentDirectory())
        options.workPath = workPath
        options.pidFile = pidFile
        options.tcpEstablished = tcpEstablished
        options.externalUnixSockets = externalUnixSockets
        options.shellJob = shellJob
        options.fileLocks = fileLocks
        options.manageCgroupsMode = manageCgroupsMode
        do { _ = try runtime.restore(id: containerID, options: options) } catch { failContainer(error) }
    }
}

/// checkpointctl show / inspect.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show what a checkpoint archive or directory saved (checkpointctl's show and inspect).", aliases: ["show"])
    @Argument(help: "A checkpoint archive (tar, compressed or not) or directory.") var checkpoint: String
    @Flag(name: [.customLong("print-stats"), .customLong("stats")], help: "CRIU's dump statistics.") var stats = false
    @Flag(name: .customLong("ps-tree"), help: "The process tree, with command lines from the saved memory.") var psTree = false
    @Flag(name: .customLong("ps-tree-cmd"), help: "Same as --ps-tree.") var psTreeCommand = false
    @Flag(name: [.customLong("env"), .customLong("ps-tree-env")], help: "Each process's environment, from the saved memory.") var environment = false
    @Flag(help: "Open files of each process.") var files = false
    @Flag(help: "Open sockets of each process.") var sockets = false
    @Flag(help: "The container's mounts.") var mounts = false
    @Flag(help: "Everything above.") var all = false
    @Option(name: .shortAndLong, help: "Only this process and its descendants.") var pid: String?
    @Option(help: "table or json.") var format: OutputFormat = .table

    func run() throws {
        var options = all ? InspectOptions.all : InspectOptions()
        options.stats = options.stats || stats
        options.processTree = options.processTree || psTree || psTreeCommand
        options.commandLines = options.commandLines || psTreeCommand
        options.environment = options.environment || environment
        options.files = options.files || files
        options.sockets = options.sockets || sockets
        options.mounts = options.mounts || mounts
        options.pid = try parsePID(pid)
        if options.pid != nil && !(options.processTree || options.files || options.sockets || options.environment) { options.processTree = true }
        let archive = try openArchive(checkpoint)
        defer { archive.close() }
        let inspection = try Inspection(archive, options: options)
        switch format {
        case .table: writeOut(inspection.table())
        case .json:
            let data = (try? JSONSerialization.data(withJSONObject: [inspection.jsonObject()], options: [.prettyPrinted, .sortedKeys])) ?? Data()
            writeOut(String(decoding: data, as: UTF8.self) + "\n")
        }
    }
}

/// checkpointctl memparse.
struct Memparse: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "memparse", abstract: "Search and print the memory a checkpoint saved.")
    @Argument var checkpoint: String
    @Option(name: .shortAndLong) var pid: String?
    @Option(name: .shortAndLong, help: "Find this string in the saved pages.") var search: String?
    @Option(name: [.customShort("r"), .customLong("search-regex")], help: "Find this regular expression in the saved pages.") var searchRegex: String?
    @Option(name: .shortAndLong, help: "Bytes to show around each match.") var context: Int = 32
    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.") var output: String?

    func validate() throws {
        if search != nil && searchRegex != nil { throw ValidationError("--search and --search-regex exclude each other") }
        if context < 0 || context > 1 << 20 { throw ValidationError("--context wants 0 to 1048576 bytes, got \(context)") }
    }

    func run() throws {
        let pid = try parsePID(self.pid)
        let archive = try openArchive(checkpoint)
        defer { archive.close() }
        var text = ""
        do {
            let memory = try MemorySearch(archive)
            if let pattern = search.map(MemorySearch.Pattern.string) ?? searchRegex.map(MemorySearch.Pattern.regex) {
                let matches = try memory.search(pattern, pid: pid, context: context)
                text += "Searching \(archive.source) for \(search.map { "\"\($0)\"" } ?? "/\(searchRegex ?? "")/"): \(matches.count) match\(matches.count == 1 ? "" : "es")\n"
                for match in matches {
                    let mapping = match.mapping.map { "\(String($0.start, radix: 16))-\(String($0.end, radix: 16)) \($0.permissions) \($0.name)" } ?? "outside every mapping"
                    text += "\npid \(match.pid) (\(match.comm)) address 0x\(String(match.address, radix: 16)) in \(mapping)\n"
                    text += hexDump(match.surrounding, start: match.surroundingStart, collapse: false)
                }
            } else if let pid {
                text += "Displaying memory pages content for process \(pid) from \(archive.source)\n"
                text += "ADDRESS           HEXADECIMAL                                       ASCII\n"
                for region in try memory.regions(pid: pid) { text += hexDump(region.bytes, start: region.start) }
            } else {
                text += "Displaying processes memory sizes from \(archive.source)\n\n"
                text += renderTable(["PID", "PROCESS NAME", "MEMORY SIZE", "SHARED MEMORY SIZE"],
                                    try memory.overview().map { ["\($0.pid)", $0.comm, humanSize(Int64($0.saved)), humanSize(Int64($0.shared))] })
            }
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else { throw CheckpointError.invalidRequest("cannot write \(output)") }
        } else {
            writeOut(text)
        }
    }
}

/// crit show.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dump", abstract: "Decode one of a checkpoint's CRIU images to JSON (as crit does).")
    @Argument var checkpoint: String
    @Argument(help: "The image's name in the checkpoint (pstree.img, core-1.img, ...), or a path to an image file.") var image: String

    func run() throws {
        let archive = try openArchive(checkpoint)
        defer { archive.close() }
        let name = image.split(separator: "/").last.map(String.init) ?? image
        guard archive.images.exists(name) else {
            throw CheckpointError.missingFile(name, in: archive.source,
                                              reason: "its images are: \(archive.images.fileNames.filter { $0.hasSuffix(".img") }.joined(separator: " "))")
        }
        writeOut(try archive.images.image(name).json())
    }
}

/// CRIU's coredump script.
struct Coredump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coredump", abstract: "Write an ELF core file per process of a checkpoint (for gdb -c).")
    @Argument var checkpoint: String
    @Option(name: .shortAndLong, help: "The directory to write core.<pid> files into.") var output: String
    @Option(name: .shortAndLong) var pid: String?

    func run() throws {
        let pid = try parsePID(self.pid)
        let archive = try openArchive(checkpoint)
        defer { archive.close() }
        for path in try CoreDump.write(archive, to: output, pid: pid) { writeOut(path + "\n") }
    }
}

do {
    var command = try Veil.parseAsRoot(arguments)
    try command.run()
} catch let error as CheckpointError {
    fail("\(error)")
} catch {
    Veil.exit(withError: error)
}

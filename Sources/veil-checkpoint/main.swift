import ArgumentParser
import Foundation
import VeilCheckpoint

// veil execs this binary for `veil checkpoint inspect|show|memparse|dump|coredump ...` (argv: the
// command, then its arguments); checkpoint and restore themselves run in veil.

/// Exits with the message as veil's other commands do.
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
    static let configuration = CommandConfiguration(commandName: "veil", subcommands: [CheckpointCommand.self])
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Read a checkpoint archive or directory (inspect, memparse, dump, coredump).",
        subcommands: [Inspect.self, Memparse.self, Dump.self, Coredump.self])
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
        // Command lines and environments are read from the saved memory; nothing else needs it.
        let archive = try CheckpointArchive(opening: checkpoint, withoutPages: !(options.processTree || options.commandLines || options.environment))
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

/// Internal to `veil restore` at the sandbox level: CRIU's images made ready for the new sandbox.
/// `checkpoint sandbox-images DIR --host-id N --id-count N --policy FILE`, rewritten in place.
/// Parsed by hand: veil waits for this run, and ArgumentParser's reflection costs more than the
/// rewrite itself (milliseconds; tenfold under emulation).
func rewriteSandboxImages(_ arguments: [String]) throws {
    guard let directory = arguments.first, !directory.hasPrefix("-") else { fail("sandbox-images: want the images' directory first") }
    var options: [String: String] = [:]
    var rest = arguments.dropFirst()
    while let name = rest.popFirst() {
        guard ["--host-id", "--id-count", "--policy"].contains(name), let value = rest.popFirst() else { fail("sandbox-images: unexpected \(name)") }
        options[name] = value
    }
    guard let policy = options["--policy"], let program = FileManager.default.contents(atPath: policy) else { fail("sandbox-images: --policy: cannot read \(options["--policy"] ?? "(not given)")") }
    guard let count = options["--id-count"].flatMap(UInt32.init) else { fail("sandbox-images: --id-count: want a number") }
    guard let first = options["--host-id"].flatMap(UInt32.init) else { fail("sandbox-images: --host-id: want a number") }
    // Silent: its output would be veil restore's (a shim reads that as the task's).
    _ = try SandboxImages.markPolicyFilters(directory: directory, program: [UInt8](program))
    _ = try SandboxImages.moveUserNamespace(directory: directory, hostID: first, count: count)
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
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.starts(with: ["checkpoint", "sandbox-images"]) {
        try rewriteSandboxImages(Array(arguments.dropFirst(2)))
        exit(0)
    }
    var command = try Veil.parseAsRoot(arguments)
    try command.run()
} catch let error as CheckpointError {
    fail("\(error)")
} catch {
    Veil.exit(withError: error)
}

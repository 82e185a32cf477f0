import Foundation
import VeilCRIUProtocol
import VeilContainer

/// The container a checkpoint archive saved, from its config.dump and spec.dump (checkpointctl's
/// columns: the engine is told by the annotations each engine writes).
public struct ContainerSummary: Sendable {
    public var name = "-"
    public var image = "-"
    public var id = "-"
    public var runtime = "-"
    public var created = "-"
    public var checkpointed: String?
    public var engine = "-"
    public var ip: String?
    public var checkpointSize: Int64 = 0
    public var memoryPagesSize: Int64 = 0
    public var rootfsDiffSize: Int64?

    public init(_ archive: CheckpointArchive) throws(CheckpointError) {
        let config = try archive.json(ArchiveLayout.configDump)
        let spec = try archive.json(ArchiveLayout.specDump)
        let annotations = (spec?["annotations"] as? [String: String]) ?? [:]
        func text(_ key: String) -> String? { (config?[key] as? String).flatMap { $0.isEmpty ? nil : $0 } }
        if let value = text("id") { id = value }
        if let value = text("name") { name = value }
        if let value = text("rootfsImageName") ?? text("rootfsImageRef") ?? text("rootfsImage") { image = value }
        if let value = text("runtime") { runtime = value }
        if let value = text("createdTime") { created = value }
        checkpointed = text("checkpointedTime")
        switch annotations["io.container.manager"] {
        case "libpod": engine = "Podman"
        case "cri-o": engine = "CRI-O"
        default:
            if let criName = annotations["io.kubernetes.cri.container-name"] {
                engine = "containerd"
                if name == "-" { name = criName }
            } else if annotations["io.kubernetes.cri-o.Metadata"] != nil || annotations["io.kubernetes.cri-o.ContainerID"] != nil {
                engine = "CRI-O"
            } else if let value = text("engine") {
                engine = value
            }
        }
        if engine == "CRI-O" {
            if name == "-", let metadata = annotations["io.kubernetes.cri-o.Metadata"],
               let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any], let value = object["name"] as? String {
                name = value
            }
            if image == "-", let value = annotations["io.kubernetes.cri-o.ImageName"] { image = value }
            if created == "-", let value = annotations["io.kubernetes.cri-o.Created"] { created = value }
        }
        ip = annotations["io.kubernetes.cri-o.IP.0"] ?? text("ip")
        (checkpointSize, memoryPagesSize) = archive.imageSizes()
        rootfsDiffSize = archive.size(ArchiveLayout.rootfsDiff)
    }

    /// The id as `docker ps` and checkpointctl show it.
    public var shortID: String { id == "-" ? id : String(id.prefix(12)) }
}

/// Sizes as checkpointctl prints them (binary units, one decimal).
public func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// Fixed-width columns, two spaces apart, with a dashed line under the header.
public func renderTable(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "   ")
    }
    var out = line(header) + "\n" + line(header.map { String(repeating: "-", count: $0.count) }) + "\n"
    for row in rows { out += line(row) + "\n" }
    return out
}

/// What `veil checkpoint inspect` shows beyond the summary.
public struct InspectOptions: Sendable {
    public var stats = false
    public var processTree = false
    public var commandLines = false
    public var environment = false
    public var files = false
    public var sockets = false
    public var mounts = false
    public var pid: UInt32?
    /// Set by `all`: a section the checkpoint lacks (a dump without statistics) is left out, not an error.
    public var everything = false

    public init() {}

    public static var all: InspectOptions {
        var options = InspectOptions()
        options.stats = true
        options.processTree = true
        options.commandLines = true
        options.environment = true
        options.files = true
        options.sockets = true
        options.mounts = true
        options.everything = true
        return options
    }
}

/// `veil checkpoint inspect`: the summary table, then each section asked for.
public struct Inspection {
    public let archive: CheckpointArchive
    public let summary: ContainerSummary
    public let options: InspectOptions
    public let processes: [SavedProcess]
    public let statistics: dump_stats_entry?
    public let mounts: [SavedMount]
    public let hostname: String?

    public init(_ archive: CheckpointArchive, options: InspectOptions) throws(CheckpointError) {
        self.archive = archive
        self.options = options
        summary = try ContainerSummary(archive)
        let reader = CheckpointReader(images: archive.images)
        let needsProcesses = options.processTree || options.files || options.sockets || options.environment || options.commandLines
        var processes = needsProcesses
            ? try reader.processes(withMemory: options.commandLines || options.environment || options.processTree,
                                   withFiles: options.files || options.sockets)
            : []
        if let pid = options.pid {
            guard processes.isEmpty || processes.contains(where: { $0.pid == pid }) else {
                throw .invalidRequest("no process with pid \(pid) in \(archive.source) (pids: \(processes.map { String($0.pid) }.joined(separator: ", ")))")
            }
            processes = Self.subtree(of: pid, in: processes)
        }
        self.processes = processes
        if options.stats {
            let stats = try reader.dumpStatistics()
            guard stats != nil || options.everything else {
                throw .missingFile(ArchiveLayout.statsDump, in: archive.source, reason: "CRIU writes its dump statistics there; --print-stats needs them")
            }
            statistics = stats
        } else {
            statistics = nil
        }
        mounts = options.mounts ? try reader.mounts() : []
        hostname = try reader.hostname()?.nodename
    }

    static func subtree(of pid: UInt32, in processes: [SavedProcess]) -> [SavedProcess] {
        var keep: Set<UInt32> = [pid]
        for process in processes where keep.contains(process.ppid) { keep.insert(process.pid) }
        return processes.filter { keep.contains($0.pid) }
    }

    // MARK: - table

    public func table() -> String {
        let s = summary
        var out = "Displaying container checkpoint data from \(archive.source)\n\n"
        out += renderTable(["CONTAINER", "IMAGE", "ID", "RUNTIME", "CREATED", "ENGINE", "IP", "CHKPT SIZE", "ROOT FS DIFF SIZE"],
                           [[s.name, s.image, s.shortID, s.runtime, s.created, s.engine, s.ip ?? "-", humanSize(s.checkpointSize),
                             s.rootfsDiffSize.map(humanSize) ?? "-"]])
        if let hostname { out += "\nHostname: \(hostname)\n" }
        if let stats = statistics {
            out += "\nCRIU dump statistics\n"
            out += renderTable(["FREEZING TIME", "FROZEN TIME", "MEMDUMP TIME", "MEMWRITE TIME", "PAGES SCANNED", "PAGES WRITTEN"],
                               [["\(stats.freezingTime) us", "\(stats.frozenTime) us", "\(stats.memdumpTime) us", "\(stats.memwriteTime) us",
                                 "\(stats.pagesScanned)", "\(stats.pagesWritten)"]])
        }
        if options.processTree || options.commandLines {
            out += "\nProcess tree\n"
            var rows: [[String]] = []
            for (process, depth) in treeOrder() {
                let command = process.isZombie ? "<defunct>"
                    : process.commandLine.map { $0.joined(separator: " ").replacingOccurrences(of: "\n", with: "\\n") } ?? "(not in the saved memory)"
                rows.append([String(repeating: "  ", count: depth) + "\(process.pid)", "\(process.ppid)", process.comm, command])
            }
            out += renderTable(["PID", "PPID", "COMM", "COMMAND"], rows)
        }
        if options.environment {
            out += "\nEnvironment\n"
            for process in processes {
                out += "[\(process.pid)] \(process.comm)\n"
                for variable in process.environment ?? [process.isZombie ? "<defunct>" : "(not in the saved memory)"] { out += "    \(variable)\n" }
            }
        }
        if options.files {
            out += "\nOpen files\n"
            out += renderTable(["PID", "COMM", "FD", "TYPE", "PATH"],
                               processes.flatMap { p in p.files.map { ["\(p.pid)", p.comm, "\($0.fd)", $0.type, $0.path] } })
        }
        if options.sockets {
            out += "\nSockets\n"
            out += renderTable(["PID", "COMM", "FD", "PROTOCOL", "STATE", "LOCAL", "PEER"],
                               processes.flatMap { p in p.sockets.map { ["\(p.pid)", p.comm, "\($0.fd)", $0.protocolName, $0.state, $0.local, $0.peer] } })
        }
        if options.mounts {
            out += "\nMounts\n"
            out += renderTable(["DESTINATION", "TYPE", "SOURCE"], mounts.map { [$0.mountpoint, $0.type, $0.external.map { "external: \($0)" } ?? $0.source] })
        }
        return out
    }

    /// The tree's edges: each pid's children, in pstree order.
    var childrenByParent: [UInt32: [SavedProcess]] { Dictionary(grouping: processes, by: \.ppid) }

    /// Processes depth-first from the root, with their depth.
    func treeOrder() -> [(SavedProcess, Int)] {
        let pids = Set(processes.map(\.pid))
        let children = childrenByParent
        var out: [(SavedProcess, Int)] = []
        func visit(_ process: SavedProcess, _ depth: Int) {
            out.append((process, depth))
            for child in children[process.pid] ?? [] where child.pid != process.pid { visit(child, depth + 1) }
        }
        for root in processes where !pids.contains(root.ppid) || root.ppid == root.pid { visit(root, 0) }
        return out
    }

    // MARK: - JSON (checkpointctl's keys)

    public func jsonObject() -> [String: Any] {
        let s = summary
        var node: [String: Any] = [
            "container_name": s.name, "image": s.image, "id": s.id, "runtime": s.runtime, "created": s.created, "engine": s.engine,
        ]
        if let checkpointed = s.checkpointed { node["checkpointed"] = checkpointed }
        if let ip = s.ip { node["ip"] = ip }
        if let hostname { node["hostname"] = hostname }
        var size: [String: Any] = ["total_size": s.checkpointSize, "memory_pages_size": s.memoryPagesSize]
        if let diff = s.rootfsDiffSize { size["root_fs_diff_size"] = diff }
        node["checkpoint_size"] = size
        if let stats = statistics {
            node["statistics"] = ["freezing_time": stats.freezingTime, "frozen_time": stats.frozenTime, "memdump_time": stats.memdumpTime,
                                  "memwrite_time": stats.memwriteTime, "pages_scanned": stats.pagesScanned, "pages_written": stats.pagesWritten]
        }
        if options.processTree || options.commandLines || options.environment {
            let children = childrenByParent
            func psNode(_ process: SavedProcess) -> [String: Any] {
                var node: [String: Any] = ["pid": process.pid, "command": process.comm]
                if options.commandLines || options.processTree, let line = process.commandLine { node["cmdline"] = line.joined(separator: " ") }
                if options.environment, let environment = process.environment {
                    var variables: [String: String] = [:]
                    for entry in environment {
                        let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                        variables[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
                    }
                    node["environment_variables"] = variables
                }
                let kids = (children[process.pid] ?? []).filter { $0.pid != process.pid }
                if !kids.isEmpty { node["children"] = kids.map(psNode) }
                return node
            }
            let pids = Set(processes.map(\.pid))
            if let root = processes.first(where: { !pids.contains($0.ppid) }) { node["process_tree"] = psNode(root) }
        }
        if options.files {
            node["file_descriptors"] = processes.map { process in
                ["pid": process.pid, "open_files": process.files.map { ["type": $0.type, "fd": "\($0.fd)", "path": $0.path] }] as [String: Any]
            }
        }
        if options.sockets {
            node["sockets"] = processes.map { process in
                ["pid": process.pid, "open_sockets": process.sockets.map { socket -> [String: Any] in
                    var data: [String: Any] = ["state": socket.state]
                    if let port = socket.localPort {
                        data["src"] = socket.localAddress
                        data["src_port"] = port
                        if let peer = socket.peerAddress { data["dst"] = peer }
                        if let port = socket.peerPort { data["dst_port"] = port }
                    } else {
                        data["address"] = socket.localAddress
                    }
                    return ["protocol": socket.protocolName, "fd": socket.fd, "data": data]
                }] as [String: Any]
            }
        }
        if options.mounts {
            node["mounts"] = mounts.map { ["destination": $0.mountpoint, "type": $0.type, "source": $0.external ?? $0.source] }
        }
        return node
    }
}

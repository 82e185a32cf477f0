import Foundation
import Testing
import VeilCRIUProtocol
import VeilContainer
import VeilSpec
@testable import VeilCheckpoint

/// The forensic readers on a real CRIU dump (Fixtures/raw-tree, made in the systemd guest by
/// tests/vm/make-checkpoint-fixture.sh: a static busybox loop and tests/vm/secret-holder.c), with
/// crit's own decoding of each image beside it as the reference, and on damaged copies of it.
@Suite struct FixtureTests {
    static let fixtures = Bundle.module.resourcePath! + "/Fixtures"
    static let fixture = fixtures + "/raw-tree"
    /// veil's archive of a native container running secret-holder (hostname ckpt-host), with crit's
    /// decoding of its images in container-crit/.
    static let containerArchive = fixtures + "/container.tar.gz"
    static let secret = "veil-secret-5eedc0ffee123456"

    /// crit's JSON of an image; its base64 broken into lines (Python's encodebytes) joined again.
    static func crit(_ image: String, in directory: String = fixture) throws -> [String: Any] {
        let text = try String(contentsOfFile: directory + "/" + image + ".crit.json", encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "\\n", with: "").utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func critEntries(_ image: String) throws -> [[String: Any]] {
        try #require(try crit(image)["entries"] as? [[String: Any]])
    }

    /// A private copy of the fixture to damage.
    static func copy() throws -> String {
        let directory = try makeTemporaryDirectory("veil-fixture-test")
        let (status, output) = try Subprocess.run(["cp", "-a", fixture + "/.", directory])
        #expect(status == 0, "cp: \(output)")
        return directory
    }

    @Test func everyImageDecodesAsCritDecodesIt() throws {
        try Self.expectCritEquality(images: ImageDirectory(path: Self.fixture), critDirectory: Self.fixture)
        let archive = try CheckpointArchive(opening: Self.containerArchive)
        defer { archive.close() }
        try Self.expectCritEquality(images: archive.images, critDirectory: Self.fixtures + "/container-crit")
    }

    static func expectCritEquality(images: ImageDirectory, critDirectory: String) throws {
        let critFiles = FS_list(critDirectory).filter { $0.hasSuffix(".crit.json") }
        #expect(critFiles.count >= 10, "the fixture carries crit's decoding of its images")
        for critFile in critFiles {
            let name = String(critFile.dropLast(".crit.json".count))
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(try images.image(name + ".img").json().utf8)) as? NSDictionary)
            let theirs = try Self.crit(name, in: critDirectory) as NSDictionary
            #expect(ours["magic"] as? String == theirs["magic"] as? String, "\(name).img: magic")
            #expect(ours.isEqual(theirs), "\(name).img: veil's decoding differs from crit's")
        }
    }

    @Test func summaryWithoutPagesCountsThemStillPacked() throws {
        let whole = try CheckpointArchive(opening: Self.containerArchive)
        defer { whole.close() }
        let light = try CheckpointArchive(opening: Self.containerArchive, withoutPages: true)
        defer { light.close() }
        #expect(!light.images.fileNames.contains { $0.hasPrefix("pages-") } && whole.images.fileNames.contains { $0.hasPrefix("pages-") })
        #expect(light.imageSizes() == whole.imageSizes())
        #expect(light.imageSizes().pages > 0)
        let summary = try ContainerSummary(light)
        #expect(summary.checkpointSize == whole.imageSizes().total)
    }

    @Test func containerArchiveShowsWhatTheContainerRan() throws {
        let archive = try CheckpointArchive(opening: Self.containerArchive)
        defer { archive.close() }
        let inspection = try Inspection(archive, options: .all)
        #expect(inspection.summary.name == "ck1" && inspection.summary.runtime == "veil" && inspection.summary.engine == "veil")
        #expect(inspection.hostname == "ckpt-host")
        #expect(inspection.statistics?.pagesWritten ?? 0 > 0)
        let process = try #require(inspection.processes.first)
        #expect(inspection.processes.count == 1 && process.pid == 1 && process.comm == "secret-holder" && process.threads.count == 2)
        #expect(process.commandLine == ["/secret-holder", "/counter"])
        #expect(process.environment?.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") == true)
        #expect(process.files.map(\.path) == ["/dev/null", "/dev/null", "/dev/null"], "the process reopened its stdio inside")
        let mounts = Dictionary(inspection.mounts.map { ($0.mountpoint, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(mounts["/proc"]?.type == "proc" && mounts["/dev/pts"]?.type == "devpts")
        #expect(mounts["/sys/fs/cgroup"]?.external == "/sys/fs/cgroup", "the cgroup bind is an external mount")
        let match = try #require(try MemorySearch(archive).search(.string(Self.secret), pid: nil, context: 0).first)
        #expect(match.pid == 1)
        let json = inspection.jsonObject()
        #expect(json["hostname"] as? String == "ckpt-host")
        #expect(((json["process_tree"] as? [String: Any])?["environment_variables"] as? [String: String])?["PWD"] == "/")
        #expect((json["mounts"] as? [[String: Any]])?.contains { $0["destination"] as? String == "/proc" } == true)
    }

    @Test func processTreeCommandLinesAndEnvironment() throws {
        let processes = try CheckpointReader(images: ImageDirectory(path: Self.fixture)).processes()
        let tree = try Self.critEntries("pstree")
        #expect(processes.map { Int($0.pid) } == tree.compactMap { $0["pid"] as? Int })
        for process in processes {
            let core = try Self.critEntries("core-\(process.pid)").first
            let comm = (core?["tc"] as? [String: Any])?["comm"] as? String
            #expect(process.comm == comm)
            if process.isZombie {
                // The loop's last `sleep`, exited and not yet reaped when the dump froze the tree.
                #expect(process.environment == nil && process.files.isEmpty)
            } else {
                #expect(process.environment?.contains("VEIL_FIXTURE_ENV=hello-from-the-guest") == true, "\(process.pid): \(process.environment ?? [])")
            }
        }
        let holder = try #require(processes.first { $0.comm == "secret-holder" })
        #expect(holder.commandLine?.first?.hasSuffix("/secret-holder") == true)
        #expect(holder.threads.count == 2, "secret-holder runs two threads")
        #expect(processes.first?.comm == "busybox" || processes.first?.comm == "sh")
        #expect(holder.ppid == processes.first?.pid)
        #expect(holder.files.first { $0.fd == 0 }?.path == "/dev/null")
    }

    @Test func memparseFindsTheSecretInTheHolderOnly() throws {
        let archive = try CheckpointArchive(opening: Self.fixture)
        let search = try MemorySearch(archive)
        let matches = try search.search(.string(Self.secret), pid: nil, context: 8)
        let match = try #require(matches.first)
        #expect(matches.count == 1, "the secret is built in the heap of one process: \(matches.map(\.pid))")
        #expect(match.comm == "secret-holder")
        #expect(match.mapping?.permissions.hasPrefix("rw") == true)
        let text = String(decoding: match.surrounding, as: UTF8.self)
        #expect(text.contains(Self.secret))
        // The same with a regular expression, and nothing for a string no process holds.
        #expect(try search.search(.regex("veil-secret-[0-9a-f]{16}"), pid: match.pid, context: 0).map(\.address) == [match.address])
        #expect(try search.search(.string("not-in-any-process-" + "\(UInt64.random(in: 1...UInt64.max))"), pid: nil, context: 0).isEmpty)
        // Its own pid only: the loop's sh holds no secret.
        let other = try #require(try CheckpointReader(images: archive.images).processes(withMemory: false, withFiles: false).first { $0.pid != match.pid })
        #expect(try search.search(.string(Self.secret), pid: other.pid, context: 0).isEmpty)
        #expect(throws: CheckpointError.self) { try search.search(.string("x"), pid: 999_999, context: 0) }
        #expect(throws: CheckpointError.self) { try search.search(.regex("("), pid: nil, context: 0) }
    }

    @Test func coreFilesCarryRegistersAndMemory() throws {
        let archive = try CheckpointArchive(opening: Self.fixture)
        let output = try makeTemporaryDirectory("veil-cores")
        defer { try? Subprocess.check(["rm", "-rf", output]) }
        let holder = try #require(try CheckpointReader(images: archive.images).processes(withMemory: false, withFiles: false).first { $0.comm == "secret-holder" })
        let paths = try CoreDump.write(archive, to: output, pid: holder.pid)
        let core = try readWhole(try #require(paths.first))
        #expect(Array(core[0..<4]) == [0x7f, 0x45, 0x4c, 0x46])
        #expect(core[16] == 4 && core[17] == 0, "ET_CORE")
        // The notes: one NT_PRSTATUS per thread, with the ip crit shows for that thread.
        let phoff = Int(core[32]) | Int(core[33]) << 8
        #expect(core[phoff] == 4, "the first program header is PT_NOTE")
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(core[at + $1]) << (8 * UInt64($1)) } }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(core[at + $1]) << (8 * UInt32($1)) } }
        let notesOffset = Int(u64(phoff + 8)), notesSize = Int(u64(phoff + 32))
        var offset = notesOffset
        var instructionPointers: [UInt64] = []
        var psargs = ""
        while offset < notesOffset + notesSize {
            let nameSize = Int(u32(offset)), descSize = Int(u32(offset + 4)), type = u32(offset + 8)
            let desc = offset + 12 + (nameSize + 3) / 4 * 4
            if type == 1 { instructionPointers.append(u64(desc + 112 + 16 * 8)) }  // pr_reg[16] is rip
            // NT_PRPSINFO: pr_psargs (80 bytes) after 8 bytes of state, pr_flag, 6 ids and pr_fname[16].
            if type == 3 { psargs = String(decoding: core[(desc + 56)..<(desc + 136)].prefix { $0 != 0 }, as: UTF8.self) }
            offset = desc + (descSize + 3) / 4 * 4
        }
        #expect(instructionPointers.count == holder.threads.count)
        // The command line, read from the saved memory as inspect reads it, is the core's psargs.
        let commandLine = try #require(try CheckpointReader(images: archive.images).processes(withMemory: true, withFiles: false)
            .first { $0.pid == holder.pid }?.commandLine)
        #expect(commandLine.count > 1 && psargs == String(commandLine.joined(separator: " ").prefix(79)), "psargs '\(psargs)', argv \(commandLine)")
        let critIP = ((try Self.critEntries("core-\(holder.pid)").first?["thread_info"] as? [String: Any])?["gpregs"] as? [String: Any])?["ip"] as? Int
        #expect(instructionPointers.first.map { Int($0) } == critIP)
        // gdb, where installed, reads the secret out of the core.
        if access("/usr/bin/gdb", X_OK) == 0 {
            let match = try #require(try MemorySearch(archive).search(.string(Self.secret), pid: holder.pid, context: 0).first)
            let (_, output) = try Subprocess.run(["gdb", "-nx", "-batch", "-ex", "x/s 0x\(String(match.address, radix: 16))", "-c", paths[0]])
            #expect(output.contains(Self.secret), "gdb: \(output)")
        }
    }

    @Test func archiveLayoutIsReadFromATarAndLeavesNothingBehind() throws {
        let top = try makeTemporaryDirectory("veil-archive-test")
        defer { try? Subprocess.check(["rm", "-rf", top]) }
        try Subprocess.check(["mkdir", "-p", top + "/layout/checkpoint"])
        try Subprocess.check(["cp", "-a", Self.fixture + "/.", top + "/layout/checkpoint/"])
        let config = #"{"id":"0123456789abcdef0123","name":"counter","rootfsImageName":"docker.io/library/busybox:latest","runtime":"veil","createdTime":"2026-12-05T08:00:00Z"}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: top + "/layout/config.dump"))
        try Data(#"{"annotations":{"io.container.manager":"libpod"}}"#.utf8).write(to: URL(fileURLWithPath: top + "/layout/spec.dump"))
        try Data(repeating: 7, count: 3000).write(to: URL(fileURLWithPath: top + "/layout/rootfs-diff.tar"))
        try Subprocess.check(["tar", "-czf", top + "/archive.tar.gz", "-C", top + "/layout", "."])
        let archive = try CheckpointArchive(opening: top + "/archive.tar.gz")
        let unpacked = archive.root
        #expect(unpacked != top + "/layout" && FileManager.default.fileExists(atPath: unpacked + "/checkpoint/inventory.img"), "unpacked while open")
        let inspection = try Inspection(archive, options: .all)
        #expect(inspection.summary.name == "counter")
        #expect(inspection.summary.shortID == "0123456789ab")
        #expect(inspection.summary.engine == "Podman")
        #expect(inspection.summary.rootfsDiffSize == 3000)
        #expect(inspection.table().contains("docker.io/library/busybox:latest"))
        let json = inspection.jsonObject()
        #expect(json["container_name"] as? String == "counter")
        #expect((json["process_tree"] as? [String: Any])?["children"] != nil)
        archive.close()
        #expect(!FileManager.default.fileExists(atPath: unpacked), "the unpacked archive is removed with the archive")
    }

    @Test func exportWritesTheLayoutCheckpointctlReads() throws {
        let top = try makeTemporaryDirectory("veil-export-test")
        defer { try? Subprocess.check(["rm", "-rf", top]) }
        let path = top + "/ck.tar.gz"
        // A bind mount of a directory and of a file (bind.mounts says which), and /proc (not a bind).
        let hostFile = top + "/resolv.conf"
        try Subprocess.check(["touch", hostFile])
        let spec = #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":["#
            + #"{"destination":"/data","type":"bind","source":"\#(top)","options":["rbind"]},"#
            + #"{"destination":"/etc/resolv.conf","type":"none","source":"\#(hostFile)","options":["bind","ro"]},"#
            + #"{"destination":"/proc","type":"proc","source":"proc"}]}"#
        try CheckpointArchiveFiles.export(path, images: Self.fixture, id: "exported", created: "2026-12-05T09:00:00Z",
                                          imageName: "docker.io/library/busybox:latest", spec: try Spec.decode(Array(spec.utf8), file: "spec"),
                                          specJSON: Array(spec.utf8), bundle: top)
        let listing = try Subprocess.check(["tar", "-tzf", path])
        for member in ["config.dump", "spec.dump", "bind.mounts", "stats-dump", "dump.log", "checkpoint/inventory.img", "checkpoint/pstree.img"] {
            #expect(listing.split(separator: "\n").contains { $0 == member || $0 == "./" + member }, "\(member) in \(listing)")
        }
        let bindMounts = try Subprocess.check(["tar", "-xzOf", path, "bind.mounts"])
        let entries = try JSONSerialization.jsonObject(with: Data(bindMounts.utf8)) as? [[String: Any]] ?? []
        #expect(entries.map { $0["destination"] as? String } == ["/data", "/etc/resolv.conf"], "\(bindMounts)")
        #expect(entries.map { $0["file_type"] as? String } == ["directory", "file"], "\(bindMounts)")
        #expect(entries.first?["source"] as? String == top, "\(bindMounts)")
        let archive = try CheckpointArchive(opening: path)
        defer { archive.close() }
        let summary = try ContainerSummary(archive)
        #expect(summary.name == "exported" && summary.runtime == "veil" && summary.engine == "veil")
        #expect(summary.image == "docker.io/library/busybox:latest" && summary.created == "2026-12-05T09:00:00Z")
        #expect(try CheckpointReader(images: archive.images).processes().count == 3)
        // A failed export leaves no file.
        #expect(throws: ContainerError.self) {
            try CheckpointArchiveFiles.export(top + "/no-such-dir/x.tar", images: Self.fixture, id: "x", created: "", imageName: nil, spec: nil, specJSON: [], bundle: top)
        }
        #expect(!FileManager.default.fileExists(atPath: top + "/no-such-dir/x.tar"))
    }

    @Test func damagedCopiesGetErrorsNamingTheFile() throws {
        let copy = try Self.copy()
        defer { try? Subprocess.check(["rm", "-rf", copy]) }
        // Truncated pstree.img.
        let pstree = try readWhole(copy + "/pstree.img")
        try Data(pstree.dropLast(5)).write(to: URL(fileURLWithPath: copy + "/pstree.img"))
        #expect { _ = try Inspection(try CheckpointArchive(opening: copy), options: .all) } throws: {
            "\($0)".contains(copy + "/pstree.img: truncated at byte")
        }
        try Data(pstree).write(to: URL(fileURLWithPath: copy + "/pstree.img"))
        // A core image with another image's magic.
        let coreName = try #require(ImageDirectory(path: copy).fileNames.first { $0.hasPrefix("core-") && $0.hasSuffix(".img") })
        var core = try readWhole(copy + "/" + coreName)
        core[4] ^= 0xff
        try Data(core).write(to: URL(fileURLWithPath: copy + "/" + coreName))
        #expect { _ = try CheckpointReader(images: ImageDirectory(path: copy)).processes() } throws: {
            "\($0)".contains(coreName + ": unknown magic")
        }
        // No inventory: not a checkpoint directory.
        try Subprocess.check(["rm", copy + "/inventory.img"])
        #expect { _ = try CheckpointArchive(opening: copy) } throws: { "\($0)".contains("no checkpoint/inventory.img") }
        // A file that is not an archive.
        try Data("not a tar".utf8).write(to: URL(fileURLWithPath: copy + "/plain.txt"))
        #expect { _ = try CheckpointArchive(opening: copy + "/plain.txt") } throws: { "\($0)".contains("not a tar archive") }
    }
}

func FS_list(_ path: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }

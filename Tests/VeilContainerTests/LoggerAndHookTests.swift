import FoundationEssentials
import Glibc
import Testing
import VeilLinux
import VeilSpec
@testable import VeilContainer

private struct JSONLine: Decodable {
    let level: String
    let msg: String
    let time: String
}

private func lines(_ path: String) throws -> [String] {
    try FS.readString(path).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
}

@Suite("Logger")
struct LoggerTests {
    @Test func jsonLinesParseAndEscape() throws {
        let dir = try makeTempDir("log")
        defer { removeTree(dir) }
        let file = dir + "/log.json"
        let log = Logger(file: file, format: .json, debug: true)
        let tricky = "say \"hi\"\nback\\slash\ttab \u{01} é ✓"
        log.warning(tricky)
        log.debug("second")
        let all = try lines(file)
        #expect(all.count == 3)  // two lines and the empty rest after the final newline
        #expect(all.last == "")
        let first = try JSONDecoder().decode(JSONLine.self, from: Data(all[0].utf8))
        #expect(first.level == "warning")
        #expect(first.msg == tricky)
        #expect(first.time.wholeMatch(of: try Regex(#"^[0-9-]{10}T[0-9:]{8}\.[0-9]{9}Z$"#)) != nil)
        #expect(!all[0].contains("\n"))
        #expect(all[0].contains("\\u0001"))
        let second = try JSONDecoder().decode(JSONLine.self, from: Data(all[1].utf8))
        #expect(second.level == "debug")
        // A debug line carries the milliseconds since the logger started (the --debug trace).
        #expect(second.msg.wholeMatch(of: try Regex(#"^second \(\+[0-9]+\.[0-9]{2} ms\)$"#)) != nil, "\(second.msg)")
    }

    @Test func debugIsDroppedUnlessEnabled() throws {
        let dir = try makeTempDir("log")
        defer { removeTree(dir) }
        let file = dir + "/log"
        let log = Logger(file: file, format: .json, debug: false)
        log.debug("hidden")
        #expect(!FS.exists(file))
        log.warning("shown")
        #expect(try lines(file).count == 2)
    }

    @Test func textFormat() throws {
        let dir = try makeTempDir("log")
        defer { removeTree(dir) }
        let file = dir + "/log.txt"
        Logger(file: file, format: .text, debug: false).warning("a \"quoted\" word")
        let line = try #require(try lines(file).first)
        let pattern = try Regex(#"^time="[^"]+" level=warning msg="a \\"quoted\\" word"$"#)
        #expect(line.wholeMatch(of: pattern) != nil, "\(line)")
    }

    @Test func appendsToAnExistingFile() throws {
        let dir = try makeTempDir("log")
        defer { removeTree(dir) }
        let file = dir + "/log"
        try FS.writeString(file, "earlier\n")
        Logger(file: file, format: .json, debug: true).debug("later")
        let all = try lines(file)
        #expect(all.first == "earlier")
        #expect(all.count == 3)
    }
}

private func sampleState() -> OCIState {
    OCIState(ociVersion: "1.1.0", id: "hooked", pid: 4242, status: .created, bundle: "/b/dir",
             rootfs: "/b/dir/rootfs", created: "2024-05-06T07:08:09.123456789Z", owner: "",
             annotations: ["org.example/key": "value with \"quotes\""])
}

@Suite("HookRunner")
struct HookRunnerTests {
    @Test func hookGetsStateOnStdinArgsAndEnv() throws {
        let dir = try makeTempDir("hook")
        defer { removeTree(dir) }
        let script = dir + "/hook.sh"
        try writeScript(script, """
            /bin/cat > '\(dir)/stdin.json'
            echo "$0|$*" > '\(dir)/args'
            echo "$FOO" > '\(dir)/foo'
            /usr/bin/env > '\(dir)/env'
            """)
        let hook = Hook(path: script, args: ["my-hook", "one", "two"], env: ["FOO=bar"])
        try HookRunner.run([hook], phase: "prestart", state: sampleState())
        let received = try JSONDecoder().decode(OCIState.self, from: Data(try FS.readFile(dir + "/stdin.json")))
        #expect(received.id == "hooked")
        #expect(received.pid == 4242)
        #expect(received.status == .created)
        #expect(received.bundle == "/b/dir")
        #expect(received.annotations == ["org.example/key": "value with \"quotes\""])
        // argv[0] of a script is the script path for sh; the rest are the hook's args.
        #expect(try FS.readString(dir + "/args").hasSuffix("|one two\n"))
        #expect(try FS.readString(dir + "/foo") == "bar\n")
        // Only the hook's env, not ours (the shell may add PWD and the like on its own).
        let env = try FS.readString(dir + "/env").split(separator: "\n").map(String.init)
        #expect(env.contains("FOO=bar"))
        #expect(!env.contains { $0.hasPrefix("HOME=") || $0.hasPrefix("USER=") || $0.hasPrefix("TERM=") })
    }

    @Test func hooksRunInOrderAndStopAtTheFirstFailure() throws {
        let dir = try makeTempDir("hook")
        defer { removeTree(dir) }
        try writeScript(dir + "/ok.sh", "echo ok >> '\(dir)/order'")
        try writeScript(dir + "/fail.sh", "echo fail >> '\(dir)/order'; exit 3")
        try writeScript(dir + "/never.sh", "echo never >> '\(dir)/order'")
        let hooks = [Hook(path: dir + "/ok.sh"), Hook(path: dir + "/fail.sh"), Hook(path: dir + "/never.sh")]
        do {
            try HookRunner.run(hooks, phase: "createRuntime", state: sampleState())
            Issue.record("a failing hook did not throw")
        } catch {
            guard case .hookFailed(let phase, let index, let path, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(phase == "createRuntime")
            #expect(index == 1)
            #expect(path == dir + "/fail.sh")
            #expect(reason == "exit status 3")
            #expect(error.description == "createRuntime hook #1 (\(dir)/fail.sh) failed: exit status 3")
        }
        #expect(try FS.readString(dir + "/order") == "ok\nfail\n")
    }

    @Test func hookKilledBySignalReportsShellStatus() throws {
        let dir = try makeTempDir("hook")
        defer { removeTree(dir) }
        try writeScript(dir + "/die.sh", "kill -KILL $$")
        do {
            try HookRunner.run([Hook(path: dir + "/die.sh")], phase: "poststop", state: sampleState())
            Issue.record("a killed hook did not throw")
        } catch {
            #expect(error.description.hasSuffix("failed: exit status 137"))
        }
    }

    @Test func timeoutKillsTheHookPromptly() throws {
        let dir = try makeTempDir("hook")
        defer { removeTree(dir) }
        try writeScript(dir + "/slow.sh", "exec /bin/sleep 5")
        let started = monotonicSeconds()
        do {
            try HookRunner.run([Hook(path: dir + "/slow.sh", timeout: 1)], phase: "startContainer", state: sampleState())
            Issue.record("a hook past its timeout did not throw")
        } catch {
            guard case .hookFailed(let phase, let index, _, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(phase == "startContainer")
            #expect(index == 0)
            #expect(reason.contains("timed out after 1s"))
        }
        let elapsed = monotonicSeconds() - started
        #expect(elapsed >= 0.9)
        #expect(elapsed < 1.5)
    }

    @Test func missingHookBinaryIsAHookFailure() throws {
        do {
            try HookRunner.run([Hook(path: "/tmp/veil-unit-no-such-hook")], phase: "prestart", state: sampleState())
            Issue.record("a missing hook did not throw")
        } catch {
            guard case .hookFailed(let phase, let index, let path, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(phase == "prestart" && index == 0 && path == "/tmp/veil-unit-no-such-hook")
            #expect(reason.contains("No such file or directory"))
        }
    }

    @Test func hookThatIgnoresStdinIsFine() throws {
        try HookRunner.run([Hook(path: "/bin/true")], phase: "prestart", state: sampleState())
        try HookRunner.run(nil, phase: "prestart", state: sampleState())
        try HookRunner.run([], phase: "prestart", state: sampleState())
    }

    @Test func runWarningLogsInsteadOfThrowing() throws {
        let dir = try makeTempDir("hook")
        defer { removeTree(dir) }
        let file = dir + "/log"
        HookRunner.runWarning([Hook(path: "/bin/false")], phase: "poststart", state: sampleState(),
                              log: Logger(file: file, format: .json, debug: false))
        let line = try FS.readString(file)
        #expect(line.contains("\"level\":\"warning\""))
        #expect(line.contains("poststart hook #0 (/bin/false) failed: exit status 1"))
    }
}

@Suite("Spawn and CStringArray")
struct SpawnTests {
    @Test func cStringArrayIsNullTerminated() {
        let array = CStringArray(["a", "", "ü b"])
        #expect(array.pointers.count == 4)
        #expect(array.pointers[3] == nil)
        let strings = array.pointers.prefix(3).map { $0.map { String(cString: $0) } }
        #expect(strings == ["a", "", "ü b"])
        #expect(CStringArray([]).pointers.count == 1)
    }

    @Test func spawnFeedsStdinAndUsesTheGivenEnvironment() throws {
        let dir = try makeTempDir("spawn")
        defer { removeTree(dir) }
        let child = try Spawner.spawn(path: "/bin/sh", args: ["sh", "-c", "/bin/cat > '\(dir)/in'; echo \"$X\" > '\(dir)/x'"],
                                    env: ["X=42"], withStdinPipe: true)
        let writer = try #require(child.stdinWriter)
        try writer.write(Array("piped".utf8))
        writer.close()
        #expect(try Wait.waitpid(child.pid) == 0)
        #expect(try FS.readString(dir + "/in") == "piped")
        #expect(try FS.readString(dir + "/x") == "42\n")
    }

    @Test func spawnOfMissingBinaryThrowsExec() {
        do {
            _ = try Spawner.spawn(path: "/tmp/veil-unit-nothing", args: [], env: [], withStdinPipe: false)
            Issue.record("spawn of a missing binary succeeded")
        } catch {
            #expect(error.call == "exec")
            #expect(error.errno == ENOENT)
        }
    }
}

// The runc command line end to end: run, create/start/state/kill/delete, detached run, and
// the container's view of itself. Each case runs against runc too, so a difference shows.

import Foundation
import Testing

@Suite("lifecycle")
struct LifecycleTests {
    @Test("run shows the container's own view", arguments: RuntimeUnderTest.all)
    func containerView(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let data = try TempDir(prefix: "veil-data")
        defer { data.remove() }
        try "from the host\n".write(toFile: data.file("hello"), atomically: true, encoding: .utf8)
        let script = """
            echo host=$(hostname); echo uid=$(id -u); echo pid=$$
            ls -l /proc/self/fd/ | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)/fd=\\1 \\2/p'
            cat /data/hello; touch /data/new 2>/dev/null && echo writable || echo readonly
            echo timer=$(cat /proc/timer_list | wc -c); echo firmware=$(ls /sys/firmware | wc -l)
            grep -c . /proc/self/mounts >/dev/null && echo mounts-ok
            """
        let bundle = try TestBundle(["sh", "-c", script])
        defer { bundle.remove() }
        try bundle.edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/data", "type": "bind", "source": data.path, "options": ["rbind", "ro"]])
            config["mounts"] = mounts
        }
        let result = try bundle.runtime(bin, ["run", bundle.id])
        #expect(result.succeeded, "\(result)")
        let out = result.stdout
        #expect(out.contains("host=veil-test-host"), "\(result)")
        #expect(out.contains("uid=0"))
        #expect(out.contains("pid=1\n"))
        #expect(out.contains("from the host"))
        #expect(out.contains("readonly"))
        #expect(out.contains("timer=0"), "masked /proc/timer_list must read empty: \(out)")
        #expect(out.contains("firmware=0"), "masked /sys/firmware must be empty: \(out)")
        // Only stdio, plus the descriptor ls itself opened to read the directory.
        let fds = out.split(separator: "\n").filter { $0.hasPrefix("fd=") }
        let extra = fds.filter { line in
            let number = line.dropFirst(3).prefix { $0 != " " }
            return !["0", "1", "2"].contains(String(number)) && !line.hasSuffix("/fd")
        }
        #expect(fds.count >= 3 && extra.isEmpty, "host fds leaked into the container: \(extra)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("exit status and signals pass through a foreground run", arguments: RuntimeUnderTest.all)
    func exitStatus(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "exit 7"])
        defer { bundle.remove() }
        let result = try bundle.runtime(bin, ["run", bundle.id])
        #expect(result.status == 7, "\(result)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("create, start, state, kill, delete", arguments: RuntimeUnderTest.all)
    func createStartKillDelete(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let out = try TempDir(prefix: "veil-out")
        defer { out.remove() }
        let bundle = try TestBundle(["sh", "-c", "echo started > /out/log; exec sleep 1000"])
        defer { bundle.remove() }
        try bundle.edit { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/out", "type": "bind", "source": out.path, "options": ["rbind", "rw"]])
            config["mounts"] = mounts
        }
        let pidFile = bundle.path + "/init.pid"
        let create = try bundle.runtime(bin, ["create", "--bundle", bundle.path, "--pid-file", pidFile, bundle.id])
        #expect(create.succeeded, "\(create)")
        let state = try bundle.state(bin)
        #expect(state?["status"] as? String == "created")
        #expect(state?["id"] as? String == bundle.id)
        #expect(state?["bundle"] as? String == bundle.path)
        let pid = (state?["pid"] as? Int) ?? 0
        #expect(pid > 0 && processIsAlive(Int32(pid)))
        let pidText = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        #expect(pidText.trimmingCharacters(in: .whitespacesAndNewlines) == String(pid))
        #expect(!FileManager.default.fileExists(atPath: out.file("log")), "the program ran before start")

        let start = try bundle.runtime(bin, ["start", bundle.id])
        #expect(start.succeeded, "\(start)")
        #expect(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: out.file("log")) })
        #expect(try bundle.status(bin) == "running")
        let refused = try bundle.runtime(bin, ["delete", bundle.id])
        #expect(!refused.succeeded, "delete of a running container must need --force")

        let kill = try bundle.runtime(bin, ["kill", bundle.id, "KILL"])
        #expect(kill.succeeded, "\(kill)")
        #expect(waitUntil(timeout: 5) { (try? bundle.status(bin)) == "stopped" })
        let delete = try bundle.runtime(bin, ["delete", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(try bundle.state(bin) == nil)
        #expect(!processIsAlive(Int32(pid)))
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("detached run, list, kill by number, delete --force", arguments: RuntimeUnderTest.all)
    func detachedRun(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sleep", "1000"])
        defer { bundle.remove() }
        let run = try bundle.runtime(bin, ["run", "-d", bundle.id])
        #expect(run.succeeded, "\(run)")
        #expect(try bundle.status(bin) == "running")
        let list = try bundle.runtime(bin, ["list", "--format", "json"])
        let entries = (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(entries.contains { $0["id"] as? String == bundle.id && $0["status"] as? String == "running" }, "\(list)")
        let quiet = try bundle.runtime(bin, ["list", "-q"])
        #expect(quiet.stdout.split(separator: "\n").contains(Substring(bundle.id)))
        // sleep as PID 1 has no SIGTERM handler, so the kernel ignores 15: send 9, by number.
        let kill = try bundle.runtime(bin, ["kill", bundle.id, "9"])
        #expect(kill.succeeded, "\(kill)")
        #expect(waitUntil(timeout: 5) { (try? bundle.status(bin)) == "stopped" })
        #expect(try bundle.runtime(bin, ["kill", bundle.id, "9"]).succeeded == false, "kill of a stopped container must fail")
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("delete --force of a running container kills it", arguments: RuntimeUnderTest.all)
    func forceDelete(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["sh", "-c", "sleep 1000 & sleep 1000"])
        defer { bundle.remove() }
        #expect(try bundle.runtime(bin, ["run", "-d", bundle.id]).succeeded)
        let pid = (try bundle.state(bin)?["pid"] as? Int) ?? 0
        let delete = try bundle.runtime(bin, ["delete", "--force", bundle.id])
        #expect(delete.succeeded, "\(delete)")
        #expect(waitUntil(timeout: 5) { !processIsAlive(Int32(pid)) })
        #expect(bundle.leftovers().isEmpty, "\(bundle.leftovers())")
    }

    @Test("spec writes a config.json that runs", arguments: RuntimeUnderTest.all)
    func specRuns(runtime: RuntimeUnderTest) throws {
        let bin = try runtime.binary()
        let bundle = try TestBundle(["true"])
        defer { bundle.remove() }
        try FileManager.default.removeItem(atPath: bundle.configPath)
        let spec = try bundle.runtime(bin, ["spec"])
        #expect(spec.succeeded, "\(spec)")
        let again = try bundle.runtime(bin, ["spec"])
        #expect(!again.succeeded, "spec must not overwrite an existing config.json")
        try bundle.edit { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["terminal"] = false
            process["args"] = ["sh", "-c", "echo spec-ok"]
            config["process"] = process
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = "/veil-test/\(bundle.id)"
            config["linux"] = linux
        }
        let run = try bundle.runtime(bin, ["run", bundle.id])
        #expect(run.succeeded && run.stdout.contains("spec-ok"), "\(run)")
    }
}

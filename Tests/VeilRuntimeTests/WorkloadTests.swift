// Real programs from a Debian rootfs (scripts/debian-rootfs.sh, `make rootfs`), unchanged, at both of
// veil's isolation levels and under runc for parity: python3 with its C extensions, nginx serving
// on 127.0.0.1 in the container's own network namespace, redis-server answering redis-cli, and
// programs with hundreds of threads. The rootfs is shared read-only; each daemon gets a tmpfs
// wherever it writes. Every container is a foreground `run` whose stdout the test checks.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

@Suite("workloads", .enabled(if: debianRootfsAvailable, "VEIL_DEBIAN_ROOTFS unset: run `make rootfs`"))
struct WorkloadTests {
    /// Runs `script` with /bin/sh (dash) in a fresh container; checks it succeeded and left nothing.
    private func runScript(_ script: String, on runtime: IsolatedRuntime, writable: [String] = ["/tmp", "/run"],
                           binds: [(String, String)] = [], workload: String = #function) throws -> CommandResult {
        let bundle = try DebianBundle(["/bin/sh", "-c", script], rootfs: try requireDebianRootfs(),
                                      writable: writable, binds: binds)
        defer {
            bundle.forceDelete(runtime)
            bundle.remove()
        }
        let started = Date()
        let result = try bundle.run(runtime)
        print("\(workload) on \(runtime): \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(result.succeeded, "\(runtime): \(result)")
        #expect(bundle.leftovers().isEmpty, "\(runtime) left: \(bundle.leftovers())")
        return result
    }

    private func lines(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test("python3: ssl, sqlite3, json, hashlib and threading work", arguments: IsolatedRuntime.all)
    func python(runtime: IsolatedRuntime) throws {
        let program = """
            import hashlib, json, sqlite3, ssl, threading
            db = sqlite3.connect(":memory:")
            db.execute("create table t (x integer)")
            db.executemany("insert into t values (?)", [(i,) for i in range(1, 101)])
            squares = db.execute("select sum(x * x) from t").fetchone()[0]
            context = ssl.create_default_context()
            print(json.dumps({
                "squares": squares,
                "sha256": hashlib.sha256(b"veil workload").hexdigest(),
                "tls_client": context.protocol == ssl.PROTOCOL_TLS_CLIENT,
                "openssl": ssl.OPENSSL_VERSION.split()[0],
                "thread": threading.current_thread().name,
            }, sort_keys=True))
            """
        let result = try runScript("exec python3 -c '\(program)'", on: runtime)
        let expected = #"{"openssl": "OpenSSL", "sha256": "efd39d66ed6d79b2b7ba9242e3af4d9794fcc2714fef791505615f6d33ff54df", "squares": 338350, "thread": "MainThread", "tls_client": true}"#
        #expect(lines(result.stdout) == [expected], "\(runtime): \(result)")
    }

    @Test("nginx serves a file on 127.0.0.1 inside the container's network namespace", arguments: IsolatedRuntime.all)
    func nginx(runtime: IsolatedRuntime) throws {
        let token = "veil-nginx-\(UInt32.random(in: 0...UInt32.max))"
        // Debian's own nginx.conf and default site (port 80, /var/www/html, worker as www-data).
        let script = """
            set -e
            echo '\(token)' > /var/www/html/index.html
            nginx
            python3 - <<'EOF'
            import time, urllib.request
            for attempt in range(50):
                try:
                    body = urllib.request.urlopen("http://127.0.0.1/", timeout=5).read().decode()
                    break
                except OSError as error:
                    failure = error
                    time.sleep(0.1)
            else:
                raise SystemExit(f"GET http://127.0.0.1/: {failure}")
            print("body: " + body.strip())
            EOF
            nginx -s quit
            """
        let result = try runScript(script, on: runtime,
                                   writable: ["/tmp", "/run", "/var/www/html", "/var/log/nginx", "/var/lib/nginx"])
        #expect(lines(result.stdout) == ["body: \(token)"], "\(runtime): \(result)")
    }

    @Test("redis-server answers redis-cli ping, set, get, incr", arguments: IsolatedRuntime.all)
    func redis(runtime: IsolatedRuntime) throws {
        let token = "veil-redis-\(UInt32.random(in: 0...UInt32.max))"
        // Debian's own redis.conf (127.0.0.1:6379, /var/lib/redis, a log file), daemonized.
        let script = """
            set -e
            redis-server /etc/redis/redis.conf --daemonize yes
            for i in $(seq 100); do
                [ "$(redis-cli ping 2>/dev/null)" = PONG ] && break
                sleep 0.1
            done
            redis-cli ping
            redis-cli set veil '\(token)'
            redis-cli get veil
            redis-cli incrby counter 41
            redis-cli incr counter
            redis-cli shutdown nosave || true
            """
        let result = try runScript(script, on: runtime,
                                   writable: ["/tmp", "/run", "/var/lib/redis", "/var/log/redis"])
        #expect(lines(result.stdout) == ["PONG", "OK", token, "41", "42"], "\(runtime): \(result)")
    }

    @Test("python3 with 200 threads alive at once", arguments: IsolatedRuntime.all)
    func pythonThreads(runtime: IsolatedRuntime) throws {
        let program = """
            import threading
            count = 200
            barrier = threading.Barrier(count)
            results = [None] * count
            ids = [None] * count
            def work(i):
                barrier.wait()
                ids[i] = threading.get_native_id()
                results[i] = sum(range(i * 1000))
            threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
            for t in threads: t.start()
            for t in threads: t.join()
            print(len(set(ids)), sum(results))
            """
        let result = try runScript("exec python3 -c '\(program)'", on: runtime)
        // sum over i < 200 of sum(range(1000 i)) = sum of n (n - 1) / 2 with n = 1000 i.
        let expected = (0..<200).reduce(0) { total, i in total + (1000 * i) * (1000 * i - 1) / 2 }
        #expect(lines(result.stdout) == ["200 \(expected)"], "\(runtime): \(result)")
    }

    @Test("a static C program with 256 pthreads", arguments: IsolatedRuntime.all)
    func cThreads(runtime: IsolatedRuntime) throws {
        let build = try TempDir(prefix: "veil-threads")
        defer { build.remove() }
        // Readable by a container root that is an unprivileged host uid (the sandbox level).
        chmod(build.path, 0o755)
        try Self.threadsProgram.write(toFile: build.file("threads.c"), atomically: true, encoding: .utf8)
        let compiled = try runCommand("gcc", ["-static", "-O2", "-pthread", "-o", build.file("threads"), build.file("threads.c")], timeout: 120)
        try #require(compiled.succeeded, "gcc: \(compiled)")
        // /mnt exists (empty) in every Debian rootfs.
        let result = try runScript("exec /mnt/threads 256", on: runtime, binds: [(build.path, "/mnt")])
        let expected = (0..<256).reduce(0) { total, i in total + (i + 1) * 100_000 }
        #expect(lines(result.stdout) == ["threads=256 distinct=256 total=\(expected)"], "\(runtime): \(result)")
    }

    /// Every thread waits on one barrier (so all run at once), records its kernel thread id and adds
    /// its share to a mutex-protected total.
    private static let threadsProgram = #"""
        #define _GNU_SOURCE
        #include <pthread.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <sys/syscall.h>
        #include <unistd.h>

        static pthread_barrier_t barrier;
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        static long total;
        static pid_t tids[4096];

        static void *work(void *arg) {
            long index = (long)arg, mine = 0;
            pthread_barrier_wait(&barrier);
            tids[index] = (pid_t)syscall(SYS_gettid);
            for (long step = 0; step < 100000; step++) mine += index + 1;
            pthread_mutex_lock(&lock);
            total += mine;
            pthread_mutex_unlock(&lock);
            return NULL;
        }

        int main(int argc, char **argv) {
            long count = argc > 1 ? atol(argv[1]) : 256;
            if (count < 1 || count > 4096) return 2;
            pthread_t threads[4096];
            pthread_barrier_init(&barrier, NULL, (unsigned)count);
            for (long i = 0; i < count; i++) {
                int error = pthread_create(&threads[i], NULL, work, (void *)i);
                if (error) { fprintf(stderr, "pthread_create %ld: error %d\n", i, error); return 1; }
            }
            for (long i = 0; i < count; i++) pthread_join(threads[i], NULL);
            long distinct = 0;
            for (long i = 0; i < count; i++) {
                int seen = 0;
                for (long j = 0; j < i; j++) if (tids[j] == tids[i]) seen = 1;
                if (!seen && tids[i] > 0) distinct++;
            }
            printf("threads=%ld distinct=%ld total=%ld\n", count, distinct, total);
            return 0;
        }
        """#
}

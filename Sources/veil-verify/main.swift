import ArgumentParser
import Dispatch
import Glibc
import Synchronization
import VeilCRI
import VeilSpec

// `veil verify` (veil execs this binary): a separate executable so that gRPC, SwiftNIO's HTTP/2 and
// BoringSSL stay out of the veil binary, whose start-up containerd's shim pays on every command.

struct VeilVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veil verify",
        abstract: "Run a throw-away pod through the node's CRI endpoint with veil's runtime handler and check it.",
        discussion: """
            Checks that the container runs under io.containerd.veil.v1, that containerd-shim-veil-v1 is \
            its parent on this host (through CRI-O: that the pod ran under the handler asked for and \
            that its conmon runs veil), that exec works, and that dmesg in the container shows the \
            sandbox's own kernel ("Starting veil"), or with --isolation native (handler veil-native) \
            the host's. The pod uses the host's network \
            (no CNI needed) and is removed afterwards, also when a check fails or on SIGINT/SIGTERM. \
            One line per check; exits 0 only when every check that ran passed.
            """)
    @Option(name: .customLong("cri-endpoint"), help: "The CRI endpoint (unix:///path or /path).") var criEndpoint: String = CRIEndpoint.containerdDefault
    @Option(help: "The runtime handler (RuntimeClass handler) the pod asks for (default: veil, or veil-native with --isolation native).") var handler: String?
    @Option(help: "The container image; pulled when the node does not have it.") var image: String = VerifyOptions.defaultImage
    @Option(help: "native or sandbox: the level the handler runs (native expects the host's dmesg, sandbox veil's).") var isolation: String = IsolationLevel.sandbox.rawValue
    @Option(name: .customLong("cgroup-parent"), help: "The pod's cgroup parent (cgroupfs syntax); the runtime's default when unset.") var cgroupParent: String?
    @Option(help: "Output format: table or json.") var format: String = "table"

    func validate() throws {
        guard format == "table" || format == "json" else { throw ValidationError("--format must be table or json, not \(format)") }
        do { _ = try IsolationLevel.parse(isolation, source: "--isolation") } catch { throw ValidationError(error.description) }
        do { _ = try CRIEndpoint(criEndpoint) } catch { throw ValidationError(error.description) }
        guard handler?.isEmpty != true else { throw ValidationError("--handler must not be empty") }
    }

    func run() throws {
        var options = VerifyOptions()
        options.endpoint = criEndpoint
        options.image = image
        options.isolation = (try? IsolationLevel.parse(isolation, source: "--isolation")) ?? .sandbox
        options.handler = handler ?? VerifyOptions.defaultHandler(for: options.isolation)
        options.cgroupParent = cgroupParent
        let report = VerifyRunner.run(options: options)
        let text = format == "json" ? report.renderJSON() : report.renderTable()
        _ = text.withCString { write(1, $0, strlen($0)) }
        Glibc.exit(report.exitStatus)
    }
}

/// Runs the async verifier from the synchronous command line. The first SIGINT or SIGTERM lets the
/// call in flight finish, skips the remaining checks and removes the pod; a second one cancels the
/// call too (a runtime that hangs), and the pod is still removed over a fresh connection.
enum VerifyRunner {
    private final class Outcome: @unchecked Sendable {
        // Written once before `done` is signalled, read after waiting on it.
        var report: VerifyReport?
        let done = DispatchSemaphore(value: 0)
    }

    private final class Signals: Sendable {
        let count = Atomic<Int>(0)
    }

    static func run(options: VerifyOptions) -> VerifyReport {
        let outcome = Outcome()
        let signals = Signals()
        let verifier = Verifier(options: options) { signals.count.load(ordering: .relaxed) > 0 }
        let task = Task {
            outcome.report = await verifier.run()
            outcome.done.signal()
        }
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if signals.count.add(1, ordering: .relaxed).newValue > 1 { task.cancel() }
            }
            source.resume()
            return source
        }
        outcome.done.wait()
        sources.forEach { $0.cancel() }
        return outcome.report ?? VerifyReport(checks: [VerifyCheck("verify", .fail, "the verifier ended without a report")])
    }
}

VeilVerify.main()

import FoundationEssentials
import VeilLinux
import VeilSpec

/// What `veil verify` runs against and how.
public struct VerifyOptions: Sendable, Equatable {
    public static let defaultImage = "docker.io/library/busybox:1.36"

    public var endpoint = CRIEndpoint.containerdDefault
    /// The CRI runtime handler (RuntimeClass handler) the pod asks for.
    public var handler = "veil"
    public var image = VerifyOptions.defaultImage
    /// The level the handler is expected to run (`veil` sandbox, `veil-native` native): the
    /// sandbox marker check expects veil's kernel log, or the host's. The pod carries no
    /// annotation: the level is the operator's, a tenant's pod does not pick it.
    public var isolation = IsolationLevel.sandbox

    /// The handler `veil install --containerd` registers for a level.
    public static func defaultHandler(for level: IsolationLevel) -> String {
        level == .native ? "veil-native" : "veil"
    }
    /// The pod's `linux.cgroup_parent` (cgroupfs syntax); nil leaves it to the runtime.
    public var cgroupParent: String?

    public init() {}
}

/// `veil verify`: runs a throw-away pod and container through a node's CRI endpoint with the given
/// runtime handler and checks what users check by hand (`crictl inspect` shows veil's runtime type,
/// the shim is the container's parent on the host, exec works, `dmesg` shows the sandbox's own
/// kernel), then removes the pod, also when a check failed or the run was interrupted.
public struct Verifier: Sendable {
    public static let runtimeType = "io.containerd.veil.v1"
    public static let shimName = "containerd-shim-veil-v1"
    /// What the sandbox level's own kernel log starts with (as gVisor's says "Starting gVisor...").
    public static let sandboxMarker = "Starting veil"
    /// Label on the pod and container: the run's id, so leftovers of this run can be found and removed.
    public static let runLabel = "dev.veil.verify"

    /// The checks, in the order they are printed.
    public enum Check: String, CaseIterable, Sendable {
        case endpoint, image, pod, container
        case runtimeType = "runtime-type"
        case shim, exec
        case sandboxMarker = "sandbox-marker"
        case cleanup
    }

    public let options: VerifyOptions
    /// Asked between steps: true once the user asked to stop (SIGINT). The call in flight is let
    /// finish, so the runtime never holds a half-made pod that the cleanup cannot see yet.
    let interrupted: @Sendable () -> Bool

    public init(options: VerifyOptions, interrupted: @escaping @Sendable () -> Bool = { false }) {
        self.options = options
        self.interrupted = interrupted
    }

    public func run() async -> VerifyReport {
        var report = VerifyReport()
        do {
            let endpoint = try CRIEndpoint(options.endpoint)
            report = try await CRIClient.with(endpoint: endpoint) { client in await session(client) }
        } catch {
            report.checks.append(VerifyCheck(Check.endpoint.rawValue, .fail, "\(error)"))
        }
        return completed(report)
    }

    /// Every check in the printed order; those that did not run are skipped, naming the first failure.
    func completed(_ report: VerifyReport) -> VerifyReport {
        let firstFailure = report.checks.first { $0.status == .fail }?.name ?? "an earlier check"
        return VerifyReport(checks: Check.allCases.map { check in
            report.checks.first { $0.name == check.rawValue }
                ?? VerifyCheck(check.rawValue, .skip, check == .cleanup ? "nothing was created" : "not run: \(firstFailure) failed")
        })
    }

    /// Everything after the connection is up. The pod and container are removed at the end in a
    /// task of their own, which an interrupted (cancelled) run does not cancel.
    private func session(_ client: CRIClient) async -> VerifyReport {
        var report = VerifyReport()
        func add(_ check: Check, _ status: VerifyStatus, _ detail: String) {
            report.checks.append(VerifyCheck(check.rawValue, status, detail))
        }

        var manager = Manager.containerd
        do {
            let version = try await client.version()
            add(.endpoint, .pass, "\(version.runtimeName) \(version.runtimeVersion) at \(client.endpoint), CRI \(version.runtimeApiVersion)")
            if version.runtimeName == "cri-o" { manager = .crio }
        } catch {
            add(.endpoint, .fail, "\(error)")
            return report
        }

        if stopped(before: .image, add) { return report }
        do {
            if let image = try await client.imageStatus(options.image) {
                add(.image, .pass, "\(options.image) is present (\(shortDigest(image.id)))")
            } else {
                do {
                    let reference = try await client.pullImage(options.image)
                    add(.image, .pass, "\(options.image) pulled (\(shortDigest(reference)))")
                } catch {
                    add(.image, .fail, "\(options.image) is not on the node and pulling it failed: \(error.runtimeMessage)")
                    return report
                }
            }
        } catch {
            add(.image, .fail, "\(error)")
            return report
        }

        let runID = randomHex(12)
        let sandbox = sandboxConfig(runID: runID)
        var created = Created()
        await exercise(client, sandbox: sandbox, runID: runID, manager: manager, created: &created, add: add)
        // Its own task and connection: an interrupted run cancels this task and with it the
        // client's connection, but what it created must still go.
        let (endpoint, ids, runLabel) = (client.endpoint, created, [Self.runLabel: runID])
        let cleanup = await Task {
            do {
                return try await CRIClient.with(endpoint: endpoint) { fresh in await Self.cleanUp(fresh, created: ids, labels: runLabel) }
            } catch {
                return VerifyCheck(Check.cleanup.rawValue, .fail, "\(error)")
            }
        }.value
        report.checks.append(cleanup)
        return report
    }

    /// What the run made, for cleanup.
    struct Created: Sendable {
        var pod: String?
        var container: String?
    }

    /// The pod, the container and the four checks on them.
    private func exercise(_ client: CRIClient, sandbox: Runtime_V1_PodSandboxConfig, runID: String, manager: Manager, created: inout Created,
                          add: (Check, VerifyStatus, String) -> Void) async {
        let clock = ContinuousClock()
        var start = clock.now
        if stopped(before: .pod, add) { return }
        let podID: String
        do {
            podID = try await client.runPodSandbox(sandbox, handler: options.handler)
            created.pod = podID
            add(.pod, .pass, "pod \(sandbox.metadata.name) (\(short(podID))) ready in \(milliseconds(clock.now - start)) with handler \(quoted(options.handler))")
        } catch {
            add(.pod, .fail, runPodFailure(error))
            return
        }

        if stopped(before: .container, add) { return }
        start = clock.now
        let containerID: String
        do {
            containerID = try await client.createContainer(pod: podID, containerConfig(runID: runID), sandboxConfig: sandbox)
            created.container = containerID
            try await client.startContainer(containerID)
        } catch {
            add(.container, .fail, "\(error)")
            return
        }
        let startTime = milliseconds(clock.now - start)

        let status: Runtime_V1_ContainerStatusResponse, podStatus: Runtime_V1_PodSandboxStatusResponse
        do {
            status = try await client.containerStatus(containerID, verbose: true)
            podStatus = try await client.podSandboxStatus(podID, verbose: true)
        } catch {
            add(.container, .fail, "\(error)")
            return
        }
        guard status.status.state == .containerRunning else {
            let state = status.status
            add(.container, .fail, "container \(short(containerID)) is \(state.state) after StartContainer (exit code \(state.exitCode), reason \(quoted(state.reason)) \(state.message))")
            return
        }
        add(.container, .pass, "container \(short(containerID)) running `\(Self.command.joined(separator: " "))` (created and started in \(startTime))")

        let containerInfo = RuntimeInfo(status.info["info"]), podInfo = RuntimeInfo(podStatus.info["info"])
        switch manager {
        case .containerd:
            add(.runtimeType, runtimeTypeStatus(containerInfo, podInfo), runtimeTypeDetail(containerInfo, podInfo))
            let (shimStatus, shimDetail) = shimCheck(containerPid: containerInfo?.pid, podPid: podInfo?.pid)
            add(.shim, shimStatus, shimDetail)
        case .crio:
            let (handlerStatus, handlerDetail) = crioHandlerCheck(podInfo)
            add(.runtimeType, handlerStatus, handlerDetail)
            let (monitorStatus, monitorDetail) = conmonCheck(containerPid: containerInfo?.pid)
            add(.shim, monitorStatus, monitorDetail)
        }

        if stopped(before: .exec, add) { return }
        let token = "veil-verify-" + randomHex(8)
        start = clock.now
        do {
            let result = try await client.execSync(containerID, ["echo", token])
            let elapsed = milliseconds(clock.now - start)
            let stdout = String(decoding: result.stdout, as: UTF8.self), stderr = String(decoding: result.stderr, as: UTF8.self)
            if result.exitCode == 0 && stdout == token + "\n" {
                add(.exec, .pass, "ExecSync `echo \(token)` answered in \(elapsed)")
            } else {
                add(.exec, .fail, "ExecSync `echo \(token)`: exit \(result.exitCode), stdout \(quoted(stdout)), stderr \(quoted(stderr))")
            }
        } catch {
            add(.exec, .fail, "\(error)")
        }

        if stopped(before: .sandboxMarker, add) { return }
        do {
            let result = try await client.execSync(containerID, ["dmesg"])
            let output = String(decoding: result.stdout + result.stderr, as: UTF8.self)
            let first = output.split(separator: "\n").first.map { String($0.prefix(100)) } ?? ""
            switch (options.isolation, output.contains(Self.sandboxMarker)) {
            case (.sandbox, true):
                add(.sandboxMarker, .pass, "dmesg in the container shows \(quoted(Self.sandboxMarker)): the sandbox's own kernel log")
            case (.sandbox, false):
                add(.sandboxMarker, .fail, "dmesg in the container (exit \(result.exitCode)) does not show \(quoted(Self.sandboxMarker)), "
                    + "so the container reached the host kernel, not veil's sandbox (first line: \(quoted(first)))")
            case (.native, false):
                add(.sandboxMarker, .pass, "isolation native: dmesg reaches the host kernel, as asked (first line: \(quoted(first)))")
            case (.native, true):
                add(.sandboxMarker, .fail, "isolation native was expected, but dmesg shows veil's sandbox: handler \(quoted(options.handler)) runs the sandbox level "
                    + "(the native handler's ConfigPath TOML says isolation = \"native\"; veil install --containerd registers it as veil-native)")
            }
        } catch {
            add(.sandboxMarker, .fail, "\(error)")
        }
    }

    /// Records `check` as failed when the run was interrupted; the caller then goes to cleanup.
    private func stopped(before check: Check, _ add: (Check, VerifyStatus, String) -> Void) -> Bool {
        guard interrupted() else { return false }
        add(check, .fail, "interrupted before this check (SIGINT or SIGTERM)")
        return true
    }

    // MARK: the pod and the container

    /// Keeps the container alive until it is stopped (StopContainer with timeout 0 sends SIGKILL).
    static let command = ["sleep", "3600"]

    func sandboxConfig(runID: String) -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = "veil-verify-" + runID
        config.metadata.uid = uuid()
        config.metadata.namespace = "veil-verify"
        config.labels = [Self.runLabel: runID]
        // The host's network namespace: no CNI needed, and no hostname may be set.
        config.linux.securityContext.namespaceOptions.network = .node
        if let parent = options.cgroupParent { config.linux.cgroupParent = parent }
        return config
    }

    func containerConfig(runID: String) -> Runtime_V1_ContainerConfig {
        var config = Runtime_V1_ContainerConfig()
        config.metadata.name = "verify"
        config.image.image = options.image
        config.command = Self.command
        config.labels = [Self.runLabel: runID]
        return config
    }

    /// containerd answers an unknown handler with `no runtime for "NAME" is configured`: say so plainly.
    func runPodFailure(_ error: CRIError) -> String {
        let message = error.runtimeMessage
        if message.contains("\"\(options.handler)\""), message.contains("runtime") {
            return "the CRI runtime has no runtime handler \(quoted(options.handler)) "
                + "(register it with `veil install --containerd` and restart containerd): \(message)"
        }
        return "RunPodSandbox with handler \(quoted(options.handler)) failed: \(message)"
    }

    // MARK: checks on what the runtime reports

    /// Which CRI implementation answers: the checks of the runtime-type and shim rows differ.
    enum Manager { case containerd, crio }

    /// The part of the verbose status JSON (`info["info"]`) the checks read: containerd's, or
    /// CRI-O's (pid, and the OCI spec whose annotations name the runtime handler).
    struct RuntimeInfo: Decodable {
        var pid: Int32?
        var runtimeType: String?
        var runtimeSpec: Spec?

        struct Spec: Decodable { var annotations: [String: String]? }

        init?(_ json: String?) {
            guard let json, let decoded = try? JSONDecoder().decode(RuntimeInfo.self, from: Data(json.utf8)) else { return nil }
            self = decoded
        }
    }

    func runtimeTypeStatus(_ container: RuntimeInfo?, _ pod: RuntimeInfo?) -> VerifyStatus {
        container?.runtimeType == Self.runtimeType && pod?.runtimeType == Self.runtimeType ? .pass : .fail
    }

    func runtimeTypeDetail(_ container: RuntimeInfo?, _ pod: RuntimeInfo?) -> String {
        guard let containerType = container?.runtimeType, let podType = pod?.runtimeType else {
            return "the verbose ContainerStatus/PodSandboxStatus has no \"info\" JSON with runtimeType (a CRI runtime other than containerd?)"
        }
        if containerType == Self.runtimeType && podType == Self.runtimeType {
            return "container and pod run under \(Self.runtimeType)"
        }
        return "container runs under \(containerType), pod under \(podType); handler \(quoted(options.handler)) "
            + "should have runtime_type \(quoted(Self.runtimeType)) (veil install --containerd)"
    }

    /// CRI-O: the pod ran under the handler asked for (its spec's io.kubernetes.cri-o.RuntimeHandler).
    func crioHandlerCheck(_ pod: RuntimeInfo?) -> (VerifyStatus, String) {
        guard let handler = pod?.runtimeSpec?.annotations?["io.kubernetes.cri-o.RuntimeHandler"] else {
            return (.fail, "CRI-O's verbose PodSandboxStatus has no runtimeSpec with io.kubernetes.cri-o.RuntimeHandler")
        }
        guard handler == options.handler else {
            return (.fail, "the pod runs under CRI-O's handler \(quoted(handler)), not \(quoted(options.handler))")
        }
        return (.pass, "the pod runs under CRI-O's runtime handler \(quoted(handler))")
    }

    /// CRI-O: the container's monitor is conmon, and the runtime conmon runs (`-r PATH`) is veil.
    func conmonCheck(containerPid: Int32?) -> (VerifyStatus, String) {
        guard let pid = containerPid, pid > 0 else { return (.fail, "the container's verbose status has no pid") }
        guard let parent = VeilLinux.ProcessInfo.parent(pid) else {
            return (.fail, "container pid \(pid) is not visible here: run veil verify on the node, in the host's pid namespace")
        }
        let name = VeilLinux.ProcessInfo.programName(parent) ?? "?"
        guard name == "conmon" else { return (.fail, "the parent of container pid \(pid) is \(name) (pid \(parent)), not conmon") }
        let argv = (try? FS.readFile("/proc/\(parent)/cmdline"))?.split(separator: 0).map { String(decoding: $0, as: UTF8.self) } ?? []
        guard let flag = argv.firstIndex(of: "-r"), flag + 1 < argv.count else {
            return (.fail, "conmon (pid \(parent)) names no runtime (-r)")
        }
        let runtime = argv[flag + 1]
        let binary = (FS.realPath(runtime) ?? runtime).split(separator: "/").last.map(String.init) ?? runtime
        guard binary == "veil" else {
            return (.fail, "conmon (pid \(parent)) runs \(runtime), not veil: handler \(quoted(options.handler))'s runtime_path should be veil (veil install --crio)")
        }
        return (.pass, "container pid \(pid) is a child of conmon (pid \(parent)), which runs veil (\(runtime))")
    }

    func shimCheck(containerPid: Int32?, podPid: Int32?) -> (VerifyStatus, String) {
        guard let pid = containerPid, pid > 0 else { return (.fail, "the container's verbose status has no pid") }
        guard let parent = VeilLinux.ProcessInfo.parent(pid) else {
            return (.fail, "container pid \(pid) is not visible here: run veil verify on the node, in the host's pid namespace")
        }
        let name = VeilLinux.ProcessInfo.programName(parent) ?? "?"
        guard name == Self.shimName else {
            return (.fail, "the parent of container pid \(pid) is \(name) (pid \(parent)), not \(Self.shimName)")
        }
        guard let podPid, podPid > 0, let podParent = VeilLinux.ProcessInfo.parent(podPid) else {
            return (.pass, "container pid \(pid) is a child of \(Self.shimName) (pid \(parent))")
        }
        guard podParent == parent else {
            return (.fail, "container pid \(pid) is a child of \(Self.shimName) pid \(parent), but the pod's sandbox pid \(podPid) of pid \(podParent): expected one shim per pod")
        }
        return (.pass, "container pid \(pid) and the pod's sandbox pid \(podPid) are children of \(Self.shimName) (pid \(parent))")
    }

    // MARK: cleanup

    /// Stops and removes the container and the pod, then any pod still labelled with this run
    /// (one a failed or timed-out RunPodSandbox may have left), and checks that none remains.
    static func cleanUp(_ client: CRIClient, created: Created, labels: [String: String]) async -> VerifyCheck {
        let name = Check.cleanup.rawValue
        var problems: [String] = []
        var removed: [String] = []
        if let container = created.container {
            do {
                try await client.stopContainer(container)
                try await client.removeContainer(container)
                removed.append("container \(short(container))")
            } catch { problems.append("\(error)") }
        }
        var pods = created.pod.map { [$0] } ?? []
        do {
            pods += try await client.listPodSandboxes(labels: labels).map(\.id).filter { !pods.contains($0) }
        } catch { problems.append("\(error)") }
        for pod in pods {
            do {
                try await client.stopPodSandbox(pod)
                try await client.removePodSandbox(pod)
                removed.append("pod \(short(pod))")
            } catch { problems.append("\(error)") }
        }
        do {
            let left = try await client.listPodSandboxes(labels: labels)
            if !left.isEmpty { problems.append("pods still there: " + left.map { short($0.id) }.joined(separator: ", ")) }
        } catch { problems.append("\(error)") }
        if !problems.isEmpty { return VerifyCheck(name, .fail, problems.joined(separator: "; ")) }
        return VerifyCheck(name, .pass, removed.isEmpty ? "nothing was left to remove" : "removed " + removed.joined(separator: " and "))
    }
}

// MARK: small helpers

/// The first 12 characters of a container or pod id, as crictl shows them.
func short(_ id: String) -> String { String(id.prefix(12)) }

/// `sha256:0123456789ab` from a digest or image reference.
func shortDigest(_ reference: String) -> String {
    guard let colon = reference.lastIndex(of: ":") else { return reference }
    let digest = reference[reference.index(after: colon)...]
    return digest.count == 64 ? "sha256:" + digest.prefix(12) : reference
}

func milliseconds(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
}

func randomHex(_ count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator) ?? "0" })
}

/// A random (version 4) UUID for the pod's metadata.uid.
func uuid() -> String {
    let hex = Array(randomHex(32))
    var chars = hex
    chars[12] = "4"
    chars[16] = Array("89ab")[Int(String(hex[16]), radix: 16).map { $0 % 4 } ?? 0]
    let s = String(chars)
    func part(_ from: Int, _ to: Int) -> Substring { s.dropFirst(from).prefix(to - from) }
    return [part(0, 8), part(8, 12), part(12, 16), part(16, 20), part(20, 32)].joined(separator: "-")
}

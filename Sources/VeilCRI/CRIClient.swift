import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import SwiftProtobuf

/// The CRI calls `veil verify` makes, as typed unary gRPC calls over the endpoint's unix socket.
/// Method paths are upstream's (`/runtime.v1.RuntimeService/RunPodSandbox`); the messages are
/// generated from protos/cri/api.proto.
public struct CRIClient: Sendable {
    static let runtimeService = "runtime.v1.RuntimeService"
    static let imageService = "runtime.v1.ImageService"

    public let endpoint: CRIEndpoint
    private let client: GRPCClient<HTTP2ClientTransport.Posix>

    /// Runs `body` with a client connected to `endpoint`; the connection closes when it returns.
    /// Probes the socket first so an absent runtime is a clear error, not a timeout.
    public static func with<Result: Sendable>(
        endpoint: CRIEndpoint, _ body: (CRIClient) async throws -> Result
    ) async throws -> Result {
        try endpoint.probe()
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: endpoint.path), transportSecurity: .plaintext)
        } catch {
            throw CRIError.unreachable(endpoint: endpoint.address, reason: "\(error)")
        }
        return try await withGRPCClient(transport: transport) { client in
            try await body(CRIClient(endpoint: endpoint, client: client))
        }
    }

    /// One unary call. Errors come back as `CRIError.rpc` naming the method and the runtime's message.
    func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ service: String, _ method: String, _ request: Request, timeout: Duration
    ) async throws(CRIError) -> Response {
        var options = CallOptions.defaults
        options.timeout = timeout
        // Fail instead of queueing when the connection drops (the socket was probed just before).
        options.waitForReady = false
        do {
            return try await client.unary(
                request: ClientRequest(message: request),
                descriptor: MethodDescriptor(fullyQualifiedService: service, method: method),
                serializer: ProtobufSerializer<Request>(),
                deserializer: ProtobufDeserializer<Response>(),
                options: options
            ) { response in try response.message }
        } catch let error as RPCError {
            throw .rpc(method: method, code: "\(error.code)", message: error.message)
        } catch {
            throw .rpc(method: method, code: "unknown", message: "\(error)")
        }
    }

    // MARK: RuntimeService

    public func version() async throws(CRIError) -> Runtime_V1_VersionResponse {
        var request = Runtime_V1_VersionRequest()
        request.version = "v1"
        return try await call(Self.runtimeService, "Version", request, timeout: .seconds(10))
    }

    /// Returns the new pod sandbox's id.
    public func runPodSandbox(_ config: Runtime_V1_PodSandboxConfig, handler: String) async throws(CRIError) -> String {
        var request = Runtime_V1_RunPodSandboxRequest()
        request.config = config
        request.runtimeHandler = handler
        // Generous: the runtime may pull or unpack the pause image first.
        let response: Runtime_V1_RunPodSandboxResponse = try await call(Self.runtimeService, "RunPodSandbox", request, timeout: .seconds(120))
        guard !response.podSandboxID.isEmpty else { throw .badResponse(method: "RunPodSandbox", reason: "no pod sandbox id in the answer") }
        return response.podSandboxID
    }

    public func stopPodSandbox(_ id: String) async throws(CRIError) {
        var request = Runtime_V1_StopPodSandboxRequest()
        request.podSandboxID = id
        let _: Runtime_V1_StopPodSandboxResponse = try await call(Self.runtimeService, "StopPodSandbox", request, timeout: .seconds(60))
    }

    public func removePodSandbox(_ id: String) async throws(CRIError) {
        var request = Runtime_V1_RemovePodSandboxRequest()
        request.podSandboxID = id
        let _: Runtime_V1_RemovePodSandboxResponse = try await call(Self.runtimeService, "RemovePodSandbox", request, timeout: .seconds(60))
    }

    public func podSandboxStatus(_ id: String, verbose: Bool) async throws(CRIError) -> Runtime_V1_PodSandboxStatusResponse {
        var request = Runtime_V1_PodSandboxStatusRequest()
        request.podSandboxID = id
        request.verbose = verbose
        return try await call(Self.runtimeService, "PodSandboxStatus", request, timeout: .seconds(30))
    }

    /// Pod sandboxes whose labels include every pair of `labels` (all of them when empty).
    public func listPodSandboxes(labels: [String: String] = [:]) async throws(CRIError) -> [Runtime_V1_PodSandbox] {
        var request = Runtime_V1_ListPodSandboxRequest()
        if !labels.isEmpty { request.filter.labelSelector = labels }
        let response: Runtime_V1_ListPodSandboxResponse = try await call(Self.runtimeService, "ListPodSandbox", request, timeout: .seconds(30))
        return response.items
    }

    /// Returns the new container's id.
    public func createContainer(pod: String, _ config: Runtime_V1_ContainerConfig, sandboxConfig: Runtime_V1_PodSandboxConfig) async throws(CRIError) -> String {
        var request = Runtime_V1_CreateContainerRequest()
        request.podSandboxID = pod
        request.config = config
        request.sandboxConfig = sandboxConfig
        let response: Runtime_V1_CreateContainerResponse = try await call(Self.runtimeService, "CreateContainer", request, timeout: .seconds(60))
        guard !response.containerID.isEmpty else { throw .badResponse(method: "CreateContainer", reason: "no container id in the answer") }
        return response.containerID
    }

    public func startContainer(_ id: String) async throws(CRIError) {
        var request = Runtime_V1_StartContainerRequest()
        request.containerID = id
        let _: Runtime_V1_StartContainerResponse = try await call(Self.runtimeService, "StartContainer", request, timeout: .seconds(60))
    }

    /// `timeout` is the grace period in seconds before SIGKILL (0: at once).
    public func stopContainer(_ id: String, timeout: Int64 = 0) async throws(CRIError) {
        var request = Runtime_V1_StopContainerRequest()
        request.containerID = id
        request.timeout = timeout
        let _: Runtime_V1_StopContainerResponse = try await call(Self.runtimeService, "StopContainer", request, timeout: .seconds(Int64(60) + timeout))
    }

    public func removeContainer(_ id: String) async throws(CRIError) {
        var request = Runtime_V1_RemoveContainerRequest()
        request.containerID = id
        let _: Runtime_V1_RemoveContainerResponse = try await call(Self.runtimeService, "RemoveContainer", request, timeout: .seconds(60))
    }

    public func containerStatus(_ id: String, verbose: Bool) async throws(CRIError) -> Runtime_V1_ContainerStatusResponse {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = id
        request.verbose = verbose
        return try await call(Self.runtimeService, "ContainerStatus", request, timeout: .seconds(30))
    }

    /// Runs `command` in the container and waits for it (at most `timeout` seconds).
    public func execSync(_ id: String, _ command: [String], timeout: Int64 = 10) async throws(CRIError) -> Runtime_V1_ExecSyncResponse {
        var request = Runtime_V1_ExecSyncRequest()
        request.containerID = id
        request.cmd = command
        request.timeout = timeout
        return try await call(Self.runtimeService, "ExecSync", request, timeout: .seconds(timeout + 10))
    }

    // MARK: ImageService

    /// The image, or nil when the runtime does not have it.
    public func imageStatus(_ image: String) async throws(CRIError) -> Runtime_V1_Image? {
        var request = Runtime_V1_ImageStatusRequest()
        request.image.image = image
        let response: Runtime_V1_ImageStatusResponse = try await call(Self.imageService, "ImageStatus", request, timeout: .seconds(30))
        return response.hasImage ? response.image : nil
    }

    /// Returns the pulled image's reference.
    public func pullImage(_ image: String) async throws(CRIError) -> String {
        var request = Runtime_V1_PullImageRequest()
        request.image.image = image
        let response: Runtime_V1_PullImageResponse = try await call(Self.imageService, "PullImage", request, timeout: .seconds(600))
        return response.imageRef
    }
}

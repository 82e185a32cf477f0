import SwiftProtobuf

/// Any RuntimeService call by name, with the request and response as protobuf JSON (the field
/// names of the .proto in lowerCamelCase): what the CRI tests' driver uses to state a scenario
/// in the API's own terms, the way `crictl` takes pod and container configs as JSON.
extension CRIClient {
    /// The RuntimeService methods the JSON form knows, with their message types.
    static let jsonMethods: [String: any JSONCallable.Type] = [
        "Version": JSONCall<Runtime_V1_VersionRequest, Runtime_V1_VersionResponse>.self,
        "RunPodSandbox": JSONCall<Runtime_V1_RunPodSandboxRequest, Runtime_V1_RunPodSandboxResponse>.self,
        "StopPodSandbox": JSONCall<Runtime_V1_StopPodSandboxRequest, Runtime_V1_StopPodSandboxResponse>.self,
        "RemovePodSandbox": JSONCall<Runtime_V1_RemovePodSandboxRequest, Runtime_V1_RemovePodSandboxResponse>.self,
        "PodSandboxStatus": JSONCall<Runtime_V1_PodSandboxStatusRequest, Runtime_V1_PodSandboxStatusResponse>.self,
        "ListPodSandbox": JSONCall<Runtime_V1_ListPodSandboxRequest, Runtime_V1_ListPodSandboxResponse>.self,
        "CreateContainer": JSONCall<Runtime_V1_CreateContainerRequest, Runtime_V1_CreateContainerResponse>.self,
        "StartContainer": JSONCall<Runtime_V1_StartContainerRequest, Runtime_V1_StartContainerResponse>.self,
        "StopContainer": JSONCall<Runtime_V1_StopContainerRequest, Runtime_V1_StopContainerResponse>.self,
        "RemoveContainer": JSONCall<Runtime_V1_RemoveContainerRequest, Runtime_V1_RemoveContainerResponse>.self,
        "ContainerStatus": JSONCall<Runtime_V1_ContainerStatusRequest, Runtime_V1_ContainerStatusResponse>.self,
        "ExecSync": JSONCall<Runtime_V1_ExecSyncRequest, Runtime_V1_ExecSyncResponse>.self,
        "Exec": JSONCall<Runtime_V1_ExecRequest, Runtime_V1_ExecResponse>.self,
        "PortForward": JSONCall<Runtime_V1_PortForwardRequest, Runtime_V1_PortForwardResponse>.self,
        "ContainerStats": JSONCall<Runtime_V1_ContainerStatsRequest, Runtime_V1_ContainerStatsResponse>.self,
        "UpdateContainerResources": JSONCall<Runtime_V1_UpdateContainerResourcesRequest, Runtime_V1_UpdateContainerResourcesResponse>.self,
    ]

    /// Calls RuntimeService `method` with `json` as its request; the response as JSON.
    public func callJSON(_ method: String, _ json: String, timeout: Duration = .seconds(120)) async throws(CRIError) -> String {
        guard let call = Self.jsonMethods[method] else {
            throw .badResponse(method: method, reason: "not a RuntimeService method this client knows (\(Self.jsonMethods.keys.sorted().joined(separator: ", ")))")
        }
        return try await call.run(self, method, json, timeout)
    }
}

protocol JSONCallable {
    static func run(_ client: CRIClient, _ method: String, _ json: String, _ timeout: Duration) async throws(CRIError) -> String
}

enum JSONCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: JSONCallable {
    static func run(_ client: CRIClient, _ method: String, _ json: String, _ timeout: Duration) async throws(CRIError) -> String {
        let request: Request
        do {
            request = try Request(jsonString: json.isEmpty ? "{}" : json)
        } catch {
            throw .badResponse(method: method, reason: "the request is not a \(Request.protoMessageName) in JSON: \(error)")
        }
        let response: Response = try await client.call(CRIClient.runtimeService, method, request, timeout: timeout)
        do {
            return try response.jsonString()
        } catch {
            throw .badResponse(method: method, reason: "cannot render the \(Response.protoMessageName) as JSON: \(error)")
        }
    }
}

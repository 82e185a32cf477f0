// veil-cri-driver: one CRI RuntimeService call per run, for the end-to-end tests.
//
//   veil-cri-driver SOCKET METHOD [REQUEST-JSON]
//
// prints the response as protobuf JSON on stdout and exits 0; a failed call prints the runtime's
// error on stderr and exits 1; bad usage exits 2. A process of its own because the test runner's
// cooperative pool (2 threads here) is held by the blocking end-to-end suites, which would starve
// an in-process async gRPC client.

import Dispatch
import Glibc
import VeilCRI

final class Outcome: @unchecked Sendable {
    // Written once before `done` is signalled, read after waiting on it.
    var result: Result<String, CRIError> = .failure(.badResponse(method: "", reason: "no answer"))
    let done = DispatchSemaphore(value: 0)
}

func fail(_ message: String, status: Int32) -> Never {
    _ = (message + "\n").withCString { write(2, $0, strlen($0)) }
    exit(status)
}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    fail("usage: veil-cri-driver SOCKET METHOD [REQUEST-JSON]", status: 2)
}
let endpoint: CRIEndpoint
do {
    endpoint = try CRIEndpoint(arguments[1])
} catch {
    fail("\(error)", status: 2)
}
/// The call, with everything it needs passed in (top-level variables belong to the main actor).
func perform(_ endpoint: CRIEndpoint, _ method: String, _ request: String) async -> Result<String, CRIError> {
    do {
        return .success(try await CRIClient.with(endpoint: endpoint) { client in try await client.callJSON(method, request) })
    } catch let error as CRIError {
        return .failure(error)
    } catch {
        return .failure(.badResponse(method: method, reason: "\(error)"))
    }
}

let outcome = Outcome()
Task.detached { [endpoint, arguments] in
    outcome.result = await perform(endpoint, arguments[2], arguments.count == 4 ? arguments[3] : "{}")
    outcome.done.signal()
}
outcome.done.wait()
switch outcome.result {
case .success(let json):
    _ = (json + "\n").withCString { write(1, $0, strlen($0)) }
    exit(0)
case .failure(let error):
    fail("\(error)", status: 1)
}

import VeilLinux
import Foundation
import SwiftProtobuf
import TTRPC
import VeilShimProtocol
import NIOCore

/// Forwards task events to containerd (Events/Forward on its ttrpc socket), in order, one at a
/// time, reconnecting when the connection breaks.
final class EventPublisher: Sendable {
    private let continuation: AsyncStream<(String, Google_Protobuf_Any)>.Continuation
    private let pending = Locked(0)

    init(ttrpcAddress: String, namespace: String, group: any EventLoopGroup) {
        let (stream, continuation) = AsyncStream<(String, Google_Protobuf_Any)>.makeStream()
        self.continuation = continuation
        let pending = self.pending
        Task {
            var client: TTRPCClient?
            for await (topic, event) in stream {
                var request = Containerd_Services_Events_Ttrpc_V1_ForwardRequest()
                request.envelope.timestamp = Google_Protobuf_Timestamp(date: Date())
                request.envelope.namespace = namespace
                request.envelope.topic = topic
                request.envelope.event = event
                for attempt in 0..<5 {
                    do {
                        let connected: TTRPCClient
                        if let client { connected = client } else {
                            connected = try await TTRPCClient.connect(unixPath: ttrpcAddress, group: group)
                            client = connected
                        }
                        _ = try await connected.call(
                            service: "containerd.services.events.ttrpc.v1.Events", method: "Forward", request: request,
                            as: Google_Protobuf_Empty.self, timeout: .seconds(5),
                            metadata: [TTRPCMetadata.containerdNamespaceKey: namespace])
                        break
                    } catch {
                        shimLog("publish \(topic) (attempt \(attempt + 1)): \(error)")
                        await client?.close()
                        client = nil
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                pending.withLock { $0 -= 1 }
            }
        }
    }

    func publish(_ topic: String, _ event: some SwiftProtobuf.Message) {
        guard let any = try? Google_Protobuf_Any(containerdPacking: event) else { return }
        pending.withLock { $0 += 1 }
        continuation.yield((topic, any))
    }

    /// Waits (up to `timeout`) until every event published so far has been sent.
    func flush(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while pending.withLock({ $0 }) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The shim's log: stderr (the daemon points it at the bundle's `log` fifo that containerd reads).
func shimLog(_ message: String) {
    let quoted = String(message.map { $0 == "\"" ? "'" : $0 })
    let line = "time=\"\(utcTimestamp())\" level=info msg=\"veil-shim: \(quoted)\"\n"
    _ = Array(line.utf8).withUnsafeBytes { writeAll(2, $0) }
}

/// Now as RFC 3339 in UTC (2006-01-02T15:04:05Z), with libc: a Foundation date formatter would
/// load ICU's calendar data into every shim for one log line.
func utcTimestamp() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}

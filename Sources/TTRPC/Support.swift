import Foundation
import NIOCore
import SwiftProtobuf

/// A value behind a lock (also the shim's).
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Metadata of a call (`Ttrpc_Request.metadata`): keys may repeat, as in gRPC.
public struct TTRPCMetadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var pairs: [(key: String, value: String)]

    public init(_ pairs: [(key: String, value: String)] = []) { self.pairs = pairs }
    public init(dictionaryLiteral elements: (String, String)...) { self.pairs = elements.map { ($0, $1) } }

    /// containerd's key for the namespace of a shim call.
    public static let containerdNamespaceKey = "containerd-namespace-ttrpc"

    /// Every value of `key`, in order.
    public subscript(key: String) -> [String] { pairs.filter { $0.key == key }.map(\.value) }
    /// The first value of `key`.
    public func first(_ key: String) -> String? { pairs.first { $0.key == key }?.value }
    public mutating func append(_ key: String, _ value: String) { pairs.append((key, value)) }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    public static func == (a: TTRPCMetadata, b: TTRPCMetadata) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for (key, value) in pairs {
            hasher.combine(key)
            hasher.combine(value)
        }
    }

    init(_ keyValues: [Ttrpc_KeyValue]) { self.pairs = keyValues.map { ($0.key, $0.value) } }

    var keyValues: [Ttrpc_KeyValue] {
        pairs.map { pair in
            var kv = Ttrpc_KeyValue()
            kv.key = pair.key
            kv.value = pair.value
            return kv
        }
    }
}

extension ByteBuffer {
    var data: Data { Data(readableBytesView) }
}

extension Google_Protobuf_Any {
    /// Packs `message` the way containerd does: the type URL is the bare full message name
    /// ("containerd.events.TaskExit", "io.containerd.cgroups.v1.Metrics"), without the
    /// "type.googleapis.com/" prefix swift-protobuf adds by default. containerd 1.6 looks the type
    /// up by that exact name, so events and stats must be packed with this.
    public init(containerdPacking message: some SwiftProtobuf.Message) throws {
        self.init()
        typeURL = type(of: message).protoMessageName
        value = try message.serializedBytes()
    }
}

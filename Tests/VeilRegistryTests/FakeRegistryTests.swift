// Hermetic: the Bearer token flow and redirects against an in-process registry on 127.0.0.1
// (docker-registry's own `token` auth needs an external token issuer, so the real-registry
// tests cover Basic only).

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import VeilLinux
@testable import VeilRegistry

private struct SeenRequest: Sendable {
    var method: String
    var uri: String
    var host: String
    var authorization: String?
}

private struct Answer: Sendable {
    var status: HTTPResponseStatus
    var headers: [(String, String)] = []
    var body: [UInt8] = []
}

/// A tiny HTTP server: records each request and answers through `route`.
private final class FakeServer: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let seen = NIOLockedValueBox<[SeenRequest]>([])
    let channel: Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(route: @escaping @Sendable (SeenRequest) -> Answer) throws {
        let seen = self.seen
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(seen: seen, route: route))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let seen: NIOLockedValueBox<[SeenRequest]>
        let route: @Sendable (SeenRequest) -> Answer
        var request: SeenRequest?

        init(seen: NIOLockedValueBox<[SeenRequest]>, route: @escaping @Sendable (SeenRequest) -> Answer) {
            self.seen = seen
            self.route = route
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                request = SeenRequest(method: head.method.rawValue, uri: head.uri, host: head.headers["Host"].first ?? "",
                                      authorization: head.headers["Authorization"].first)
            case .body:
                break
            case .end:
                guard let request else { return }
                seen.withLockedValue { $0.append(request) }
                let answer = route(request)
                var headers = HTTPHeaders(answer.headers)
                headers.replaceOrAdd(name: "Content-Length", value: String(answer.body.count))
                headers.replaceOrAdd(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
                if request.method != "HEAD" {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: answer.body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    }
}

@Suite(.serialized) struct FakeRegistryTests {
    static let profile = Array(#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#.utf8)

    @Test func bearerTokenAndRedirectWithoutCredentials() throws {
        let manifest = ProfileArtifact.manifest(layer: Self.profile, title: "p.json")
        let manifestDigest = "sha256:" + SHA256.hex(manifest)
        let layerDigest = "sha256:" + SHA256.hex(Self.profile)
        let portBox = NIOLockedValueBox(0)
        let server = try FakeServer { request in
            let port = portBox.withLockedValue { $0 }
            if request.uri.hasPrefix("/token?") {
                guard request.authorization == "Basic " + Data("user:pw".utf8).base64EncodedString() else { return Answer(status: .unauthorized) }
                return Answer(status: .ok, headers: [("Content-Type", "application/json")], body: Array(#"{"access_token":"tok","expires_in":60}"#.utf8))
            }
            if request.uri == "/elsewhere/blob" { return Answer(status: .ok, body: Self.profile) }
            guard request.authorization == "Bearer tok" else {
                let challenge = #"Bearer realm="http://127.0.0.1:\#(port)/token",service="fake",scope="repository:team/p:pull""#
                return Answer(status: .unauthorized, headers: [("WWW-Authenticate", challenge)],
                              body: Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.utf8))
            }
            if request.uri == "/v2/team/p/manifests/v1" {
                return Answer(status: .ok, headers: [("Content-Type", ProfileArtifact.manifestType), ("Docker-Content-Digest", manifestDigest)], body: manifest)
            }
            if request.uri == "/v2/team/p/blobs/\(layerDigest)" {
                // Another authority for the same machine: credentials must not follow.
                return Answer(status: .temporaryRedirect, headers: [("Location", "http://localhost:\(port)/elsewhere/blob")])
            }
            return Answer(status: .notFound, body: Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.utf8))
        }
        defer { server.stop() }
        portBox.withLockedValue { $0 = server.port }
        let directory = NSTemporaryDirectory() + "veil-fake-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let auth = #"{"auths":{"127.0.0.1:\#(server.port)":{"auth":"\#(Data("user:pw".utf8).base64EncodedString())"}}}"#
        try auth.write(toFile: directory + "/auth.json", atomically: true, encoding: .utf8)
        var settings = RegistrySettings()
        settings.authFile = directory + "/auth.json"
        settings.registriesConf = directory + "/none.conf"
        settings.certDirectory = directory + "/certs.d"
        settings.cacheDirectory = directory + "/cache"
        settings.insecure = true
        settings.timeoutSeconds = 10

        let threadsBefore = eventLoopThreads()
        #expect(threadsBefore >= 1, "the fake server's own event loop thread is named NIO-ELT")
        let pulled = try SeccompArtifact.pull("127.0.0.1:\(server.port)/team/p:v1", settings: settings)
        // The client's event loop thread is gone when pull returns (create forks afterwards).
        #expect(eventLoopThreads() == threadsBefore)
        #expect(pulled.bytes == Self.profile)
        #expect(pulled.manifestDigest == manifestDigest)
        #expect(!pulled.fromCache)
        let seen = server.seen.withLockedValue { $0 }
        #expect(seen.contains { $0.uri == "/token?service=fake&scope=repository%3Ateam%2Fp%3Apull&account=user" }, "\(seen.map(\.uri))")
        let redirected = seen.first { $0.uri == "/elsewhere/blob" }
        #expect(redirected != nil && redirected?.authorization == nil, "\(seen)")
        #expect(seen.contains { $0.uri == "/v2/team/p/blobs/\(layerDigest)" && $0.authorization == "Bearer tok" })

        // The second pull of the tag is answered from the cache: no request at all.
        let count = seen.count
        let again = try SeccompArtifact.pull("127.0.0.1:\(server.port)/team/p:v1", settings: settings)
        #expect(again.fromCache && again.bytes == Self.profile)
        #expect(server.seen.withLockedValue { $0.count } == count)

        // Unknown tags say so.
        #expect {
            _ = try SeccompArtifact.pull("127.0.0.1:\(server.port)/team/p:v2", settings: settings)
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.kind == .unknownManifest && error.reference == "127.0.0.1:\(server.port)/team/p:v2"
        }
    }

    @Test func deadlineIsKept() throws {
        // A server that accepts and never answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound && listen(listener, 8) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
        var settings = RegistrySettings()
        settings.registriesConf = "/nonexistent/registries.conf"
        settings.cacheDirectory = NSTemporaryDirectory() + "veil-fake-cache-\(getpid())"
        settings.authFile = nil
        settings.timeoutSeconds = 1
        defer { try? FileManager.default.removeItem(atPath: settings.cacheDirectory) }
        let started = Date()
        #expect {
            _ = try SeccompArtifact.pull("127.0.0.1:\(port)/p:v1", settings: settings)
        } throws: { ($0 as? RegistryError)?.kind == .timeout }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// This process's SwiftNIO event loop threads (named NIO-ELT-…).
    func eventLoopThreads() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            ((try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-ELT")
        }.count
    }
}

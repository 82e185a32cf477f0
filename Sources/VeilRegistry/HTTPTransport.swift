import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An absolute http(s) URL split the way the client needs it.
struct HTTPURL: Sendable, Equatable, CustomStringConvertible {
    var scheme: String
    /// Without IPv6 brackets.
    var host: String
    var port: Int
    /// Path and query, starting with "/".
    var target: String

    var isTLS: Bool { scheme == "https" }
    var bracketedHost: String { host.contains(":") ? "[\(host)]" : host }
    /// `host[:port]` as the Host header and certs.d name it (default port left out).
    var authority: String { port == (isTLS ? 443 : 80) ? bracketedHost : "\(bracketedHost):\(port)" }
    var description: String { "\(scheme)://\(authority)\(target)" }

    init(scheme: String, host: String, port: Int, target: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.target = target
    }

    /// `scheme` + a registry's `host[:port]`.
    init?(scheme: String, authority: String, target: String) {
        guard let parsed = HTTPURL.parse("\(scheme)://\(authority)\(target)") else { return nil }
        self = parsed
    }

    /// An absolute URL, or one relative to `base` (a path, or a path-less query).
    static func parse(_ text: String, relativeTo base: HTTPURL? = nil) -> HTTPURL? {
        if let base, text.hasPrefix("/"), !text.hasPrefix("//") {
            return HTTPURL(scheme: base.scheme, host: base.host, port: base.port, target: text)
        }
        var rest = Substring(text)
        let scheme: String
        if rest.lowercased().hasPrefix("https://") {
            scheme = "https"
            rest = rest.dropFirst(8)
        } else if rest.lowercased().hasPrefix("http://") {
            scheme = "http"
            rest = rest.dropFirst(7)
        } else {
            return nil
        }
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<end]
        var target = String(rest[end...])
        if let hash = target.firstIndex(of: "#") { target = String(target[..<hash]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        var host = Substring(authority)
        var port = scheme == "https" ? 443 : 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else { return nil }
                port = value
            } else if !after.isEmpty {
                return nil
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else { return nil }
            port = value
            host = host[..<colon]
        }
        guard !host.isEmpty, !host.contains("@") else { return nil }
        return HTTPURL(scheme: scheme, host: String(host), port: port, target: target)
    }
}

struct HTTPResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(named name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

/// Why one exchange failed, before any registry meaning is given to it.
enum HTTPFailure: Error, CustomStringConvertible {
    case connect(String)
    case tls(String)
    case timeout
    case tooLarge(Int)
    case protocolError(String)

    var description: String {
        switch self {
        case .connect(let reason): return reason
        case .tls(let reason): return reason
        case .timeout: return "no answer before the deadline"
        case .tooLarge(let limit): return "the response body exceeds \(limit) bytes"
        case .protocolError(let reason): return reason
        }
    }
}

/// HTTP/1.1 (and TLS) on SwiftNIO, blocking the calling thread. One connection per exchange
/// (`Connection: close`): a pull is three or four requests, and no pool means nothing can linger.
/// The event loop thread exists only between `init` and `shutdown()`.
final class HTTPTransport {
    private let group: MultiThreadedEventLoopGroup
    let deadline: NIODeadline
    private var contexts: [String: NIOSSLContext] = [:]

    init(timeoutSeconds: Double) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        deadline = .now() + .milliseconds(Int64(max(timeoutSeconds, 0.001) * 1000))
    }

    /// Joins the event loop thread; call before returning to code that may fork.
    func shutdown() {
        try? group.syncShutdownGracefully()
    }

    func send(method: HTTPMethod, url: HTTPURL, headers: [(String, String)], body: [UInt8]?, maxBody: Int,
              tls: TLSOptions) throws(HTTPFailure) -> HTTPResponse {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw .timeout }
        let sslContext: NIOSSLContext? = url.isTLS ? try context(for: url, tls: tls) : nil
        let loop = group.next()
        let promise = loop.makePromise(of: HTTPResponse.self)
        let serverName = isIPAddress(url.host) ? nil : url.host
        let limit = maxBody
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(remaining)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, maxBody: limit))
                }
            }
        // Resolved here, on the calling thread: NIO's own resolver would run getaddrinfo on a
        // Dispatch thread that outlives the event loop (and create forks afterwards).
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(url.host, port: url.port)
        } catch {
            promise.fail(HTTPFailure.connect("\(error)"))
            throw .connect("cannot resolve \(url.host): \(error)")
        }
        let channel: Channel
        do {
            channel = try bootstrap.connect(to: address).wait()
        } catch {
            promise.fail(HTTPFailure.connect("\(error)"))
            if (deadline - .now()) <= .zero { throw .timeout }
            throw .connect("cannot connect to \(url.authority): \(describe(error))")
        }
        let timeout = loop.scheduleTask(deadline: deadline) {
            promise.fail(HTTPFailure.timeout)
            channel.close(promise: nil)
        }
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: url.target)
        head.headers.add(name: "Host", value: url.authority)
        head.headers.add(name: "User-Agent", value: "veil")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Length", value: String(body.count))
        } else if method == .PUT || method == .POST {
            head.headers.add(name: "Content-Length", value: "0")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            return try promise.futureResult.wait()
        } catch let failure as HTTPFailure {
            throw failure
        } catch {
            if isTLSError(error) { throw .tls("TLS with \(url.authority) failed: \(describe(error))") }
            throw .protocolError("\(url.authority): \(describe(error))")
        }
    }

    private func context(for url: HTTPURL, tls: TLSOptions) throws(HTTPFailure) -> NIOSSLContext {
        let key = "\(url.authority)|\(tls.verify)"
        if let cached = contexts[key] { return cached }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if !tls.verify { configuration.certificateVerification = .none }
        let directory = tls.certDirectory + "/" + url.authority
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        do {
            for name in names where name.hasSuffix(".crt") {
                configuration.additionalTrustRoots.append(.certificates(try NIOSSLCertificate.fromPEMFile(directory + "/" + name)))
            }
            for name in names where name.hasSuffix(".cert") {
                let keyPath = directory + "/" + String(name.dropLast(5)) + ".key"
                guard FileManager.default.fileExists(atPath: keyPath) else {
                    throw HTTPFailure.tls("client certificate \(directory)/\(name) has no matching .key")
                }
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(directory + "/" + name).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            }
            let context = try NIOSSLContext(configuration: configuration)
            contexts[key] = context
            return context
        } catch let failure as HTTPFailure {
            throw failure
        } catch {
            throw .tls("TLS set-up for \(url.authority) (certificates in \(directory)): \(describe(error))")
        }
    }
}

struct TLSOptions: Sendable {
    var verify: Bool
    var certDirectory: String
}

private func isIPAddress(_ host: String) -> Bool {
    if host.contains(":") { return true }
    let parts = host.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
}

private func isTLSError(_ error: Error) -> Bool {
    error is NIOSSLError || error is BoringSSLError || String(describing: type(of: error)).contains("SSL")
}

private func describe(_ error: Error) -> String {
    if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
    if let error = error as? NIOConnectionError {
        let reasons = error.connectionErrors.map { describe($0.error) }
        return reasons.isEmpty ? "\(error)" : reasons.joined(separator: "; ")
    }
    if let error = error as? ChannelError, case .connectTimeout = error { return "connection timed out" }
    return "\(error)"
}

/// Gathers one response (head, body up to a cap, end) into a promise.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPResponse>
    private let maxBody: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var finished = false

    init(promise: EventLoopPromise<HTTPResponse>, maxBody: Int) {
        self.promise = promise
        self.maxBody = maxBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let value):
            head = value
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= maxBody else {
                finish(.failure(HTTPFailure.tooLarge(maxBody)), context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else {
                finish(.failure(HTTPFailure.protocolError("response ended without a status line")), context: context)
                return
            }
            let headers = head.headers.map { ($0.name, $0.value) }
            finish(.success(HTTPResponse(status: Int(head.status.code), headers: headers, body: body)), context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failure(error), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(HTTPFailure.protocolError("the connection closed before the response ended")), context: context)
        context.fireChannelInactive()
    }

    private func finish(_ result: Result<HTTPResponse, Error>, context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        promise.completeWith(result)
        context.close(promise: nil)
    }
}

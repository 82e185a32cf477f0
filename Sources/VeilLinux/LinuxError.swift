import Glibc

/// A failed system call, with what it was acting on.
public struct LinuxError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let subject: String?
    public let errno: Int32

    public init(_ call: String, _ subject: String? = nil, errno: Int32 = Glibc.errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let subject { return "\(call) \(subject): \(reason)" }
        return "\(call): \(reason)"
    }
}

/// Retries `body` while it fails with EINTR; throws LinuxError for any other -1.
@discardableResult
public func sys<T: BinaryInteger>(_ call: String, _ subject: String? = nil, _ body: () -> T) throws(LinuxError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        if errno == EINTR { continue }
        throw LinuxError(call, subject)
    }
}

/// For the C helpers that return -errno.
@discardableResult
public func sysNeg(_ call: String, _ subject: String? = nil, _ body: () -> Int32) throws(LinuxError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        if -result == EINTR { continue }
        throw LinuxError(call, subject, errno: -result)
    }
}

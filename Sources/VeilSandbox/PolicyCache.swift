import Glibc
import VeilLinux
import VeilSeccomp

/// Compiled policies, cached under the identity of the running build. The sandbox's and the
/// warden's policies are constants of veil's code and of the libseccomp it is linked with, so the
/// executable's device, inode, size and modification time plus libseccomp's version name one
/// compiled form. Keying by a hash of the policy's text instead cost every sandboxed create and
/// exec about a millisecond (building the ~500 entries, printing and hashing them) before any
/// cache lookup.
enum PolicyCache {
    /// Nil when the executable cannot be examined; callers then key by the policy's text.
    static let buildKey: String? = {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return nil }
        let seccomp = SeccompFeatures.libseccompVersion
        // Plain interpolation of integers: joined(separator:) runs unspecialized generic code here.
        let identity = "\(UInt64(st.st_dev))-\(UInt64(st.st_ino))-\(UInt64(st.st_size))-\(Int64(st.st_mtim.tv_sec))-"
            + "\(Int64(st.st_mtim.tv_nsec))-\(seccomp.major)-\(seccomp.minor)-\(seccomp.micro)"
        return String(SHA256.hex(identity).prefix(16))
    }()

    /// `directory/name-KEY.suffix`, KEY from the build, or from `fingerprint` (the policy's text)
    /// where the build has no identity.
    static func path(_ name: String, suffix: String, directory: String, fingerprint: () -> String) -> String {
        let key = buildKey.map { "build-" + $0 } ?? String(SHA256.hex(fingerprint()).prefix(16))
        return directory + "/" + name + "-" + key + "." + suffix
    }

    /// The cached bytes at `path` when `valid` accepts them, else `make`'s, stored for the next caller.
    static func load<Failure: Error>(_ path: String, directory: String, valid: ([UInt8]) -> Bool,
                                     make: () throws(Failure) -> [UInt8]) throws(Failure) -> [UInt8] {
        if let bytes = try? FS.readFile(path), valid(bytes) { return bytes }
        let bytes = try make()
        try? FS.mkdirAll(directory, mode: 0o700)
        try? FS.writeAtomically(path, bytes, mode: 0o644)
        return bytes
    }
}

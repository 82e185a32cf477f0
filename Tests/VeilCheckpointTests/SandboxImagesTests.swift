import Foundation
import SwiftProtobuf
import Testing
import VeilCRIUProtocol
@testable import VeilCheckpoint

/// The two images a sandbox's restore rewrites (`veil-checkpoint checkpoint sandbox-images`), on
/// images built here with CRIU's framing: the policy's filter given a listener, the user namespace
/// moved to the new range, and the images that must be refused.
@Suite struct SandboxImagesTests {
    static let policy: [UInt8] = Array(repeating: 0x20, count: 16) + [6, 0, 0, 0, 0, 0, 0xc0, 0x7f]
    static let other: [UInt8] = [6, 0, 0, 0, 0, 0, 0xff, 0x7f]

    static func directory(filters: [[UInt8]], uidMap: [(UInt32, UInt32, UInt32)]) throws -> String {
        let path = NSTemporaryDirectory() + "veil-sandbox-images-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var seccomp = seccomp_entry()
        seccomp.seccompFilters = filters.enumerated().map { index, bytes in
            var filter = seccomp_filter()
            filter.filter = Data(bytes)
            if index > 0 { filter.prev = UInt32(index - 1) }
            return filter
        }
        var userns = userns_entry()
        let extents = uidMap.map { first, lower, count -> uid_gid_extent in
            var extent = uid_gid_extent()
            extent.first = first; extent.lowerFirst = lower; extent.count = count
            return extent
        }
        userns.uidMap = extents
        userns.gidMap = extents
        let header = ImageFileTests.le32(0x5456_4319)
        try Data(header + ImageFileTests.le32(0x6441_3049) + ImageFileTests.record(seccomp)).write(to: URL(fileURLWithPath: path + "/seccomp.img"))
        try Data(header + ImageFileTests.le32(0x5547_4906) + ImageFileTests.record(userns)).write(to: URL(fileURLWithPath: path + "/userns-12.img"))
        return path
    }

    static func read<M: Message>(_ path: String, _ type: M.Type) throws -> M {
        let image = try ImageFile.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), file: path)
        return try #require(image.messages(type).first)
    }

    @Test func thePolicysFilterGetsAListenerAndTheNamespaceMoves() throws {
        let dir = try Self.directory(filters: [Self.other, Self.policy], uidMap: [(0, 1_073_741_824, 65536)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try SandboxImages.markPolicyFilters(directory: dir, program: Self.policy) == 1)
        let filters = try Self.read(dir + "/seccomp.img", seccomp_entry.self).seccompFilters
        #expect(filters.map(\.flags) == [0, 8 | 16], "only the policy's filter: NEW_LISTENER | TSYNC_ESRCH")
        #expect(filters[1].prev == 0, "the chain is kept")
        #expect(try SandboxImages.moveUserNamespace(directory: dir, hostID: 1_074_003_968, count: 65536) == 1_073_741_824)
        let userns = try Self.read(dir + "/userns-12.img", userns_entry.self)
        #expect(userns.uidMap.map(\.lowerFirst) == [1_074_003_968] && userns.gidMap.map(\.lowerFirst) == [1_074_003_968])
        #expect(userns.uidMap.map(\.count) == [65536])
    }

    @Test func imagesThatAreNotThisSandboxsAreRefused() throws {
        // No filter of the policy: a native checkpoint, or another veil's policy.
        let native = try Self.directory(filters: [Self.other], uidMap: [(0, 1_073_741_824, 65536)])
        defer { try? FileManager.default.removeItem(atPath: native) }
        #expect(throws: CheckpointError.self) { try SandboxImages.markPolicyFilters(directory: native, program: Self.policy) }
        // An extent reaching past the range would map host ids the sandbox never had.
        let wide = try Self.directory(filters: [Self.policy], uidMap: [(0, 1_073_741_824, 65536), (65536, 0, 1000)])
        defer { try? FileManager.default.removeItem(atPath: wide) }
        #expect(throws: CheckpointError.self) { try SandboxImages.moveUserNamespace(directory: wide, hostID: 1_074_003_968, count: 65536) }
        let big = try Self.directory(filters: [Self.policy], uidMap: [(0, 1_073_741_824, 4_000_000)])
        defer { try? FileManager.default.removeItem(atPath: big) }
        #expect(throws: CheckpointError.self) { try SandboxImages.moveUserNamespace(directory: big, hostID: 1_074_003_968, count: 65536) }
    }
}

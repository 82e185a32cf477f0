import Dispatch
import Glibc
import Testing
import VeilLinux
import VeilSandbox

@Suite struct IDPoolRaceTests {
    /// Before the pool had a lock, two creates reclaiming the same stale slot could both win it.
    @Test func concurrentCreatesNeverShareARangeEvenWhenReclaiming() throws {
        let dir = "/tmp/veil-idpool-race-\(getpid())"
        defer { _ = try? VeilSandboxTestSupport.removeAll(dir) }
        let count = 24
        let pool = IDPool(directory: dir, start: 1 << 30, blockSize: 65536, slots: UInt32(count))
        // Every slot starts stale (its owner is gone): each must be reclaimed exactly once.
        try FS.mkdirAll(dir, mode: 0o700)
        for slot in 0..<count { try FS.writeString(dir + "/\(slot)", dir + "-gone-\(slot)") }
        let owners = (0..<count).map { dir + "-owner-\($0)" }
        owners.forEach { mkdir($0, 0o700) }
        defer { owners.forEach { rmdir($0) } }
        let slots = Slots(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { index in
            if let slot = try? pool.allocate(owner: owners[index]) { slots.values[index] = Int64(slot) }
        }
        let taken = Array(slots.values)
        #expect(!taken.contains(-1), "a create found no free range: \(taken)")
        #expect(Set(taken).count == count, "two creates got the same uid range: \(taken.sorted())")
        for (index, slot) in taken.enumerated() where slot >= 0 {
            #expect((try? FS.readString(dir + "/\(slot)")) == owners[index])
        }
    }
}

/// One cell per thread: each writes only its own index.
private final class Slots: @unchecked Sendable {
    let values: UnsafeMutableBufferPointer<Int64>
    init(count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: -1)
    }
    deinit { values.deallocate() }
}

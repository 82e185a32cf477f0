import Foundation
import SwiftProtobuf
import VeilCRIUProtocol

/// What a sandbox's restore changes in CRIU's images before `criu restore` runs (veil restore at
/// the sandbox level, through `veil-checkpoint sandbox-images`).
public enum SandboxImages {
    /// SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH (the second lets CRIU's
    /// TSYNC, which it adds for a thread group's leader, go with a listener).
    static let listenerFlags: UInt32 = 8 | 16

    /// seccomp.img: every filter byte-equal to the sandbox policy's `program` is restored with a
    /// listener, which CRIU's restorer leaves open in each restored process for veil to take.
    /// Returns how many filters were marked; none is an error (the checkpoint is not of a sandbox
    /// under this veil's policy, and a sandbox is never restored without it).
    public static func markPolicyFilters(directory: String, program: [UInt8]) throws(CheckpointError) -> Int {
        let path = directory + "/seccomp.img"
        var (header, entries) = try read(path, as: seccomp_entry.self)
        var marked = 0
        for index in entries.indices {
            for filter in entries[index].seccompFilters.indices where Array(entries[index].seccompFilters[filter].filter) == program {
                entries[index].seccompFilters[filter].flags |= listenerFlags
                marked += 1
            }
        }
        guard marked > 0 else {
            throw .badImage(file: path, reason: "no filter of this veil's sandbox policy (the checkpoint was taken at the native level, or by a veil with another policy)")
        }
        try write(path, header: header, entries)
        return marked
    }

    /// userns-*.img: the maps of the sandbox's user namespace moved from the checkpointed range to
    /// `hostID`'s, every extent within its `count` ids. Returns the range's former first host id.
    public static func moveUserNamespace(directory: String, hostID: UInt32, count: UInt32) throws(CheckpointError) -> UInt32 {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("userns-") && $0.hasSuffix(".img") }
        guard names.count == 1, let name = names.first else {
            throw .missingFile("userns-*.img", in: directory, reason: names.isEmpty ? "a sandbox's checkpoint saves its user namespace" : "\(names.count) user namespaces, a sandbox has one")
        }
        let path = directory + "/" + name
        var (header, entries) = try read(path, as: userns_entry.self)
        guard entries.count == 1, let base = entries[0].uidMap.first(where: { $0.first == 0 })?.lowerFirst else {
            throw .badImage(file: path, reason: "no map of the sandbox's root (uid 0)")
        }
        func moved(_ extents: [uid_gid_extent]) throws(CheckpointError) -> [uid_gid_extent] {
            var result: [uid_gid_extent] = []
            for var extent in extents {
                // Relative to the range, and inside it: an image cannot map more of the host.
                let offset = UInt64(extent.lowerFirst) - UInt64(min(extent.lowerFirst, base))
                guard extent.lowerFirst >= base, offset + UInt64(extent.count) <= UInt64(count) else {
                    throw .badImage(file: path, reason: "a map extent (\(extent.first) \(extent.lowerFirst) \(extent.count)) outside the sandbox's range of \(count) ids from \(base)")
                }
                extent.lowerFirst = hostID + UInt32(offset)
                result.append(extent)
            }
            return result
        }
        entries[0].uidMap = try moved(entries[0].uidMap)
        entries[0].gidMap = try moved(entries[0].gidMap)
        try write(path, header: header, entries)
        return base
    }

    /// An image of plain entries: its magic words, then each entry's size and bytes.
    private static func read<M: Message>(_ path: String, as type: M.Type) throws(CheckpointError) -> (header: [UInt8], entries: [M]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path, in: "the checkpoint", reason: "cannot read it") }
        let bytes = [UInt8](data)
        let image = try ImageFile.decode(bytes, file: path)
        let entries = image.messages(type)
        guard entries.count == image.entries.count else { throw .badImage(file: path, reason: "not an image of \(M.protoMessageName) entries") }
        // The common magic, when present, precedes the image's own.
        let common = bytes.count >= 4 && [ImageKind.commonMagic, ImageKind.serviceMagic].contains(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        return (Array(bytes.prefix(common ? 8 : 4)), entries)
    }

    private static func write<M: Message>(_ path: String, header: [UInt8], _ entries: [M]) throws(CheckpointError) {
        var bytes = header
        for entry in entries {
            let body: [UInt8]
            do { body = try entry.serializedBytes() } catch { throw .badImage(file: path, reason: "re-encoding an entry: \(error)") }
            let size = UInt32(body.count)
            bytes += [UInt8(size & 0xff), UInt8(size >> 8 & 0xff), UInt8(size >> 16 & 0xff), UInt8(size >> 24)]
            bytes += body
        }
        let temporary = path + ".veil"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)), rename(temporary, path) == 0 else {
            unlink(temporary)
            throw .io(path, operation: "rewriting", errno: errno)
        }
    }
}

import SwiftProtobuf
import Testing
import VeilCRIUProtocol
@testable import VeilCheckpoint

/// CRIU's image framing, on images built here: the magics, entries, the raw bytes some entries
/// carry, and what a damaged image gets.
@Suite struct ImageFileTests {
    static func le32(_ value: UInt32) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)] }

    static func record(_ message: some Message) throws -> [UInt8] {
        let body: [UInt8] = try message.serializedBytes()
        return le32(UInt32(body.count)) + body
    }

    static func pstreeImage() throws -> [UInt8] {
        var first = pstree_entry()
        first.pid = 1; first.ppid = 0; first.pgid = 1; first.sid = 1; first.threads = [1]
        var second = pstree_entry()
        second.pid = 7; second.ppid = 1; second.pgid = 1; second.sid = 1; second.threads = [7, 8]
        return le32(0x5456_4319) + le32(0x5027_3030) + (try record(first)) + (try record(second))
    }

    @Test func decodesEntriesAfterTheTwoMagics() throws {
        let image = try ImageFile.decode(try Self.pstreeImage(), file: "pstree.img")
        #expect(image.kind.name == "PSTREE")
        let entries = image.messages(pstree_entry.self)
        #expect(entries.map(\.pid) == [1, 7])
        #expect(entries[1].threads == [7, 8])
    }

    @Test func inventoryHasOnlyItsOwnMagic() throws {
        var inventory = inventory_entry()
        inventory.imgVersion = 2
        let image = try ImageFile.decode(Self.le32(0x5831_3116) + (try Self.record(inventory)), file: "inventory.img")
        #expect(image.kind.name == "INVENTORY")
        #expect(image.messages(inventory_entry.self).first?.imgVersion == 2)
    }

    @Test func jsonIsCritShapedWithProtoFieldNames() throws {
        let json = try ImageFile.decode(try Self.pstreeImage(), file: "pstree.img").json()
        #expect(json.contains("\"magic\": \"PSTREE\""))
        #expect(json.contains("\"pid\":7"))
        #expect(json.contains("\"threads\":[7,8]"))
    }

    @Test func pipeDataKeepsItsBytes() throws {
        var pipe = pipe_data_entry()
        pipe.pipeID = 3
        pipe.bytes = 5
        let bytes = Self.le32(0x5456_4319) + Self.le32(0x5645_3709) + (try Self.record(pipe)) + Array("hello".utf8)
        let image = try ImageFile.decode(bytes, file: "pipes-data.img")
        #expect(image.entries.first?.extra == Array("hello".utf8))
        #expect(try image.json().contains("\"extra\":\"aGVsbG8=\""))
    }

    @Test func truncatedEntryNamesFileAndOffset() throws {
        let whole = try Self.pstreeImage()
        let cut = Array(whole.dropLast(3))
        #expect {
            _ = try ImageFile.decode(cut, file: "/x/pstree.img")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("/x/pstree.img: truncated at byte") && text.contains("pstree_entry")
        }
    }

    @Test func unknownMagicIsRefused() throws {
        #expect {
            _ = try ImageFile.decode(Self.le32(0x1234_5678) + Self.le32(0), file: "pages-1.img")
        } throws: { "\($0)".contains("unknown magic 0x12345678") }
    }

    @Test func emptyAndShortFilesAreRefused() throws {
        #expect { _ = try ImageFile.decode([], file: "a.img") } throws: { "\($0)" == "a.img: empty file" }
        #expect { _ = try ImageFile.decode([1, 2], file: "a.img") } throws: { "\($0)".contains("too short for a magic number") }
    }

    @Test func garbageEntryDoesNotDecode() throws {
        // A size word that promises 4 bytes of a message that is not protobuf (a field with wire type 7).
        let bytes = Self.le32(0x5456_4319) + Self.le32(0x5027_3030) + Self.le32(4) + [0xff, 0xff, 0xff, 0xff]
        #expect { _ = try ImageFile.decode(bytes, file: "pstree.img") } throws: { "\($0)".contains("does not decode") }
    }

    @Test func addressesPrintAsTheKernelDoes() {
        // 10.0.0.2 in network order as CRIU stores it (first octet in the low byte).
        #expect(CheckpointReader.address([0x0200_000a], v6: false) == "10.0.0.2")
        #expect(CheckpointReader.address([0, 0, 0, 0x0100_0000], v6: true) == "::1")
        #expect(CheckpointReader.compressIPv6(["fe80", "0", "0", "0", "1", "0", "0", "2"]) == "fe80::1:0:0:2")
    }

    @Test func hexDumpCollapsesRepeats() {
        let text = hexDump([UInt8](repeating: 0x41, count: 64), start: 0x1000)
        #expect(text == "0000000000001000  41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41  |AAAAAAAAAAAAAAAA|\n*\n")
    }
}

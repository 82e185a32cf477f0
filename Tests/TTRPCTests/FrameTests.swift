import Testing

@testable import TTRPC

@Suite struct FrameTests {
    @Test func headerLayout() throws {
        let frame = TTRPCFrame(streamID: 0x0102_0305, type: .response, flags: TTRPCFlags.remoteClosed, payload: [0xAA, 0xBB, 0xCC])
        #expect(try frame.encoded() == [0, 0, 0, 3, 1, 2, 3, 5, 2, 1, 0xAA, 0xBB, 0xCC])
        let empty = TTRPCFrame(streamID: 7, type: .request, payload: [])
        #expect(try empty.encoded() == [0, 0, 0, 0, 0, 0, 0, 7, 1, 0])
    }

    @Test func partialReadsByteByByte() throws {
        let frame = TTRPCFrame(streamID: 1, type: .request, payload: Array("hello ttrpc".utf8))
        var parser = TTRPCFrameParser()
        var got: [TTRPCInbound] = []
        for byte in try frame.encoded() {
            #expect(got.isEmpty)
            parser.append([byte])
            while let next = parser.next() { got.append(next) }
        }
        #expect(got == [.frame(frame)])
        #expect(parser.bufferedBytes == 0)
    }

    @Test func headerSplitAcrossReads() throws {
        let frame = TTRPCFrame(streamID: 9, type: .request, payload: Array(repeating: 7, count: 1000))
        let bytes = try frame.encoded()
        var parser = TTRPCFrameParser()
        parser.append(bytes[0..<4])
        #expect(parser.next() == nil)
        parser.append(bytes[4..<12])
        #expect(parser.next() == nil)
        parser.append(bytes[12...])
        #expect(parser.next() == .frame(frame))
        #expect(parser.next() == nil)
    }

    @Test func twoFramesAndAHalfInOneRead() throws {
        let a = TTRPCFrame(streamID: 1, type: .request, payload: [1, 2, 3])
        let b = TTRPCFrame(streamID: 3, type: .request, payload: [])
        let c = TTRPCFrame(streamID: 5, type: .data, flags: TTRPCFlags.remoteClosed, payload: [9, 9])
        let cBytes = try c.encoded()
        var parser = TTRPCFrameParser()
        parser.append(try a.encoded() + b.encoded() + cBytes[0..<5])
        #expect(parser.next() == .frame(a))
        #expect(parser.next() == .frame(b))
        #expect(parser.next() == nil)
        parser.append(cBytes[5...])
        #expect(parser.next() == .frame(c))
    }

    @Test func oversizedFrameIsSkippedAndReported() throws {
        let length = TTRPCFrameHeader.maxPayloadLength + 1
        var parser = TTRPCFrameParser()
        // Header of an oversized request, then its payload in pieces, then a normal frame.
        parser.append([0, 0x40, 0, 1, 0, 0, 0, 11, 1, 0])
        #expect(parser.next() == nil)
        let chunk = [UInt8](repeating: 0x55, count: 1 << 20)
        var sent = 0
        while sent + chunk.count <= length {
            parser.append(chunk)
            sent += chunk.count
            #expect(parser.next() == nil)
        }
        let after = TTRPCFrame(streamID: 13, type: .request, payload: [4, 2])
        parser.append([UInt8](repeating: 0x55, count: length - sent) + (try after.encoded()))
        #expect(parser.next() == .oversized(TTRPCFrameHeader(length: UInt32(length), streamID: 11, type: .request)))
        #expect(parser.next() == .frame(after))
        #expect(parser.next() == nil)
        #expect(parser.bufferedBytes == 0)
    }

    @Test func largestFrameIsAccepted() throws {
        let frame = TTRPCFrame(streamID: 1, type: .response, payload: [UInt8](repeating: 1, count: TTRPCFrameHeader.maxPayloadLength))
        var parser = TTRPCFrameParser()
        parser.append(try frame.encoded())
        #expect(parser.next() == .frame(frame))
    }

    @Test func encodingRefusesOversizedPayload() {
        let frame = TTRPCFrame(streamID: 1, type: .request, payload: [UInt8](repeating: 0, count: TTRPCFrameHeader.maxPayloadLength + 1))
        #expect(throws: TTRPCError.self) { try frame.encoded() }
        do {
            _ = try frame.encoded()
        } catch let error as TTRPCError {
            #expect(error.code == .resourceExhausted)
            #expect(error.message == "message length 4194305 exceed maximum message size of 4194304")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func codeNames() {
        #expect(TTRPCCode.unimplemented.rawValue == 12)
        #expect(TTRPCCode.unimplemented.description == "UNIMPLEMENTED")
        #expect(TTRPCCode.notFound.rawValue == 5)
        #expect(TTRPCCode(rawValue: 99).description == "CODE(99)")
        #expect(TTRPCError(.notFound, "container x").description == "ttrpc: NOT_FOUND: container x")
    }
}

@testable import MySQLWire
import NIOCore
import NIOTestUtils
import Testing

@Suite struct PacketFramingTests {
    func frame(_ payload: [UInt8], sequence: UInt8) -> [UInt8] {
        [UInt8(payload.count & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count >> 16), sequence] + payload
    }

    @Test func decodesPacketsDripFed() throws {
        var input = ByteBuffer(bytes: frame([0x03, 0x41], sequence: 0) + frame([], sequence: 1) + frame([0xFF, 1, 2], sequence: 2))
        let expected = [
            MySQLPacket(sequence: 0, payload: ByteBuffer(bytes: [0x03, 0x41])),
            MySQLPacket(sequence: 1, payload: ByteBuffer()),
            MySQLPacket(sequence: 2, payload: ByteBuffer(bytes: [0xFF, 1, 2])),
        ]
        let whole = input.readSlice(length: input.readableBytes)!
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(whole, expected)]) { PacketDecoder() }
    }

    @Test func joinsPayloadsOfSixteenMebibytesAndMore() throws {
        let size = PacketDecoder.maximumPartLength * 2 + 10
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var encoded = ByteBuffer()
        PacketEncoder.encode(MySQLPacket(sequence: 5, payload: ByteBuffer(bytes: payload)), into: &encoded)
        #expect(encoded.readableBytes == size + 3 * 4)
        #expect(encoded.getInteger(at: 3, as: UInt8.self) == 5)
        #expect(encoded.getInteger(at: 4 + PacketDecoder.maximumPartLength + 3, as: UInt8.self) == 6)
        var partial = encoded.getSlice(at: 0, length: encoded.readableBytes - 1)!
        #expect(try PacketDecoder().decodePacket(from: &partial) == nil)
        #expect(partial.readerIndex == 0)
        let packet = try #require(try PacketDecoder().decodePacket(from: &encoded))
        #expect(packet.sequence == 7)
        #expect(packet.payload.readableBytes == size)
        #expect(Array(packet.payload.readableBytesView) == payload)
    }

    @Test func exactlyMaximumPartEndsWithAnEmptyPacket() throws {
        var encoded = ByteBuffer()
        PacketEncoder.encode(MySQLPacket(sequence: 0, payload: ByteBuffer(repeating: 7, count: PacketDecoder.maximumPartLength)), into: &encoded)
        #expect(encoded.readableBytes == PacketDecoder.maximumPartLength + 8)
        let packet = try #require(try PacketDecoder().decodePacket(from: &encoded))
        #expect(packet.payload.readableBytes == PacketDecoder.maximumPartLength && packet.sequence == 1)
    }

    @Test func refusesOversizedPayloads() {
        var decoder = PacketDecoder()
        decoder.maximumPayloadLength = 10
        var input = ByteBuffer(bytes: frame(Array(repeating: 1, count: 11), sequence: 0))
        #expect(throws: MySQLWireError.self) { try decoder.decodePacket(from: &input) }
    }
}

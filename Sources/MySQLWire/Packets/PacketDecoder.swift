import NIOCore

/// Frames MySQL packets: 3-byte little-endian length, 1-byte sequence id, payload. A payload of
/// exactly 0xFFFFFF bytes continues in the next packet; the parts are joined into one
/// `MySQLPacket` carrying the last sequence id. Returns "need more data" without consuming
/// anything while a packet (or a continuation chain) is incomplete.
public struct PacketDecoder: ByteToMessageDecoder {
    public typealias InboundOut = MySQLPacket

    public static let maximumPartLength = 0xFF_FFFF

    /// Largest joined payload accepted (MySQL's own maximum is 1 GiB).
    public var maximumPayloadLength = 1 << 30

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try decodePacket(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(packet))
        return .continue
    }

    /// The pure framing step, usable without a channel.
    public func decodePacket(from buffer: inout ByteBuffer) throws -> MySQLPacket? {
        var offset = buffer.readerIndex
        var total = 0
        var parts = 0
        var sequence: UInt8 = 0
        while true {
            guard let length = buffer.getUInt24LE(at: offset),
                  let seq = buffer.getInteger(at: offset + 3, as: UInt8.self),
                  buffer.writerIndex - (offset + 4) >= length
            else { return nil }
            total += length
            guard total <= maximumPayloadLength else {
                throw MySQLWireError.protocolViolation("packet payload exceeds \(maximumPayloadLength) bytes")
            }
            sequence = seq
            parts += 1
            offset += 4 + length
            if length < Self.maximumPartLength { break }
        }
        if parts == 1 {
            let length = Int(buffer.getUInt24LE(at: buffer.readerIndex)!)
            buffer.moveReaderIndex(forwardBy: 4)
            let payload = buffer.readSlice(length: length)!
            return MySQLPacket(sequence: sequence, payload: payload)
        }
        var payload = ByteBufferAllocator().buffer(capacity: total)
        for _ in 0..<parts {
            let length = Int(buffer.getUInt24LE(at: buffer.readerIndex)!)
            buffer.moveReaderIndex(forwardBy: 4)
            var part = buffer.readSlice(length: length)!
            payload.writeBuffer(&part)
        }
        return MySQLPacket(sequence: sequence, payload: payload)
    }
}

/// Writes `MySQLPacket`s, splitting payloads of 0xFFFFFF bytes or more into continuation packets
/// (ending with a shorter, possibly empty, part) with consecutive sequence ids.
public struct PacketEncoder: MessageToByteEncoder {
    public typealias OutboundIn = MySQLPacket

    public init() {}

    public func encode(data: MySQLPacket, out: inout ByteBuffer) throws {
        Self.encode(data, into: &out)
    }

    public static func encode(_ packet: MySQLPacket, into out: inout ByteBuffer) {
        var payload = packet.payload
        var sequence = packet.sequence
        while true {
            let length = min(payload.readableBytes, PacketDecoder.maximumPartLength)
            out.writeUInt24LE(UInt32(length))
            out.writeInteger(sequence)
            var part = payload.readSlice(length: length)!
            out.writeBuffer(&part)
            sequence &+= 1
            if length < PacketDecoder.maximumPartLength { break }
        }
    }
}

extension ByteBuffer {
    func getUInt24LE(at index: Int) -> Int? {
        guard let low = getInteger(at: index, endianness: .little, as: UInt16.self),
              let high = getInteger(at: index + 2, as: UInt8.self)
        else { return nil }
        return Int(high) << 16 | Int(low)
    }

    mutating func writeUInt24LE(_ value: UInt32) {
        writeInteger(UInt16(truncatingIfNeeded: value), endianness: .little)
        writeInteger(UInt8(truncatingIfNeeded: value >> 16))
    }
}

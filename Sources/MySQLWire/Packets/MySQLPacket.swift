import NIOCore

/// One logical MySQL packet: its sequence id and its payload (continuations already joined).
public struct MySQLPacket: Sendable, Equatable {
    public var sequence: UInt8
    public var payload: ByteBuffer

    public init(sequence: UInt8, payload: ByteBuffer) {
        self.sequence = sequence
        self.payload = payload
    }

    /// The first payload byte, which tells OK (0x00), ERR (0xFF), EOF (0xFE) and friends apart.
    public var header: UInt8? { payload.getInteger(at: payload.readerIndex) }

    public var isERR: Bool { header == 0xFF }
    /// EOF is 0xFE in a packet shorter than 9 bytes; longer 0xFE payloads are length-encoded data.
    public var isEOF: Bool { header == 0xFE && payload.readableBytes < 9 }
    public var isOK: Bool { header == 0x00 }
    /// The marker `MySQLWaker` puts in the stream; the server never sends an empty packet alone.
    var isWake: Bool { payload.readableBytes == 0 }
}

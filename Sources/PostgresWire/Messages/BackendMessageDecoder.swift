import NIOCore

/// Frames server messages: a type byte, a 4-byte big-endian length that counts itself, the body.
/// Before the first message it can expect the single-byte answer to an SSLRequest.
public struct BackendMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = BackendMessage

    /// Largest message accepted; a row of PostgreSQL is at most 1 GiB.
    public static let maximumLength = 1 << 30

    private var expectsSSLAnswer: Bool

    public init(expectsSSLAnswer: Bool = false) {
        self.expectsSSLAnswer = expectsSSLAnswer
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try decodeMessage(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The pure framing step, usable without a channel.
    public mutating func decodeMessage(from buffer: inout ByteBuffer) throws -> BackendMessage? {
        if expectsSSLAnswer {
            guard let answer = buffer.readInteger(as: UInt8.self) else { return nil }
            expectsSSLAnswer = false
            return .sslAnswer(answer)
        }
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self)
        else { return nil }
        guard length >= 4, Int(length) <= Self.maximumLength else {
            throw PostgresWireError.protocolViolation("message of type \(type) with length \(length)")
        }
        guard buffer.readableBytes >= 1 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let body = buffer.readSlice(length: Int(length) - 4)!
        return try BackendMessage.decode(type: type, body: body)
    }
}

@testable import MySQLWire
import NIOCore
import NIOEmbedded
import Testing

/// The binlog read timeout counts only while the reader asks for data: a reader held back by a
/// full consumer must not lose its connection for the server's "silence".
@Suite struct ReadTimeoutTests {
    final class ErrorRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var errors: [any Error] = []
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    }

    func channel() throws -> (EmbeddedChannel, ErrorRecorder) {
        let recorder = ErrorRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.pipeline.syncOperations.addHandler(DemandReadTimeoutHandler(seconds: 15), position: .first)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3306)).wait()
        return (channel, recorder)
    }

    @Test func aReadAskedForAndNeverAnsweredTimesOut() throws {
        let (channel, recorder) = try channel()
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(14))
        #expect(recorder.errors.isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(recorder.errors.count == 1)
        #expect(!channel.isActive)
    }

    @Test func dataDisarmsAndTheNextReadRearms() throws {
        let (channel, recorder) = try channel()
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        try channel.writeInbound(ByteBuffer(bytes: [1, 2, 3]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(recorder.errors.isEmpty, "data arrived 10 s into the read")
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(16))
        #expect(recorder.errors.count == 1)
        _ = try? channel.finish()
    }

    /// No read asked for (the consumer is full): however long the server is silent, no timeout.
    @Test func noReadAskedForNeverTimesOut() throws {
        let (channel, recorder) = try channel()
        try channel.writeInbound(ByteBuffer(bytes: [1]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(600))
        #expect(recorder.errors.isEmpty)
        #expect(channel.isActive)
        _ = try? channel.finish()
    }
}

import DequeModule
import FerryCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One connection to Redis: commands are pipelined (written together, flushed once) and each
/// reply completes the oldest waiting command. The protocol logic is `RESPDecoder`/`RESPCommandWriter`;
/// this is the thin driver around a NIO channel.
final class RedisConnection: Sendable {
    private let channel: any Channel
    private let handler: RESPReplyHandler

    private init(channel: any Channel, handler: RESPReplyHandler) {
        self.channel = channel
        self.handler = handler
    }

    static func connect(host: String, port: Int, timeout: TimeAmount = .seconds(10)) async throws -> RedisConnection {
        let handler = RESPReplyHandler()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: host, port: port).get()
        return RedisConnection(channel: channel, handler: handler)
    }

    var isClosed: Bool { !channel.isActive }

    /// Sends every command and returns their replies in order. Error replies are returned, not
    /// thrown; a broken connection throws.
    func send(_ commands: [[[UInt8]]]) async throws -> [RESPValue] {
        var writer = RESPCommandWriter()
        for command in commands { writer.command(command) }
        return try await write(writer.bytes, commands: writer.count).get()
    }

    /// Writes `commands` commands already encoded; their replies arrive, in order, through the
    /// future (one promise for the group: awaiting one future per command costs more than Redis
    /// takes to run it). Pieces written one after another are answered in the order written.
    func write(_ encoded: [UInt8], commands: Int) async throws -> EventLoopFuture<[RESPValue]> {
        var buffer = channel.allocator.buffer(capacity: encoded.count)
        buffer.writeBytes(encoded)
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        try await channel.eventLoop.flatSubmit { [channel, handler] in
            handler.expect(commands, promise)
            return channel.writeAndFlush(buffer)
        }.get()
        return promise.futureResult
    }

    func send(_ command: [String]) async throws -> RESPValue {
        try await send([command.map { Array($0.utf8) }])[0]
    }

    func close() async {
        try? await channel.close()
    }

    /// Closes the connection from any thread: everything waiting on a reply fails at once.
    func closeNow() {
        channel.close(promise: nil)
    }
}

/// Matches replies to the commands waiting for them; fails them all when the connection ends.
final class RESPReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    /// A group of commands sent together, completed when its last reply arrives.
    private struct Group {
        var expected: Int
        var replies: [RESPValue]
        let promise: EventLoopPromise<[RESPValue]>
    }

    private struct State {
        var waiting = Deque<Group>()
        var pending = ByteBuffer()
        var failure: (any Error)?
    }

    private let state = NIOLockedValueBox(State())

    func expect(_ count: Int, _ promise: EventLoopPromise<[RESPValue]>) {
        let failure: (any Error)? = state.withLockedValue { state in
            if state.failure == nil {
                var group = Group(expected: count, replies: [], promise: promise)
                group.replies.reserveCapacity(count)
                state.waiting.append(group)
            }
            return state.failure
        }
        if let failure { promise.fail(failure) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var completed: [Group] = []
        var broken: (any Error)?
        state.withLockedValue { state in
            state.pending.writeBuffer(&incoming)
            do {
                while let reply = try RESPDecoder.decode(&state.pending) {
                    guard !state.waiting.isEmpty else {
                        broken = RESPDecodingError(reason: "a reply no command asked for", offset: 0)
                        return
                    }
                    state.waiting[state.waiting.startIndex].replies.append(reply)
                    if state.waiting[state.waiting.startIndex].replies.count == state.waiting[state.waiting.startIndex].expected {
                        completed.append(state.waiting.removeFirst())
                    }
                }
                state.pending.discardReadBytes()
            } catch {
                broken = error
            }
        }
        for group in completed { group.promise.succeed(group.replies) }
        if let broken {
            failAll(broken)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        let waiting = state.withLockedValue { state -> Deque<Group> in
            if state.failure == nil { state.failure = error }
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for group in waiting { group.promise.fail(error) }
    }
}

/// The server closed the connection (or it was lost) while commands waited.
struct RedisConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to Redis closed" }
}

import FerryCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One connection to Redis: commands are pipelined (written together, flushed once) and each
/// reply completes the oldest waiting command. The protocol logic is `RESPDecoder`/`RESPEncoder`;
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
        var buffer = channel.allocator.buffer(capacity: commands.count * 64)
        for command in commands { RESPEncoder.encode(command, into: &buffer) }
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        try await channel.eventLoop.flatSubmit { [channel, handler] in
            handler.expect(promises)
            return channel.writeAndFlush(buffer)
        }.get()
        var replies: [RESPValue] = []
        replies.reserveCapacity(promises.count)
        for promise in promises { replies.append(try await promise.futureResult.get()) }
        return replies
    }

    func send(_ command: [String]) async throws -> RESPValue {
        try await send([command.map { Array($0.utf8) }])[0]
    }

    func close() async {
        try? await channel.close()
    }
}

/// Matches replies to the commands waiting for them; fails them all when the connection ends.
final class RESPReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private struct State {
        var waiting: [EventLoopPromise<RESPValue>] = []
        var next = 0
        var pending = ByteBuffer()
        var failure: (any Error)?
    }

    private let state = NIOLockedValueBox(State())

    func expect(_ promises: [EventLoopPromise<RESPValue>]) {
        let failure: (any Error)? = state.withLockedValue { state in
            if state.failure == nil { state.waiting.append(contentsOf: promises) }
            return state.failure
        }
        if let failure { for promise in promises { promise.fail(failure) } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var ready: [(EventLoopPromise<RESPValue>, RESPValue)] = []
        var broken: (any Error)?
        state.withLockedValue { state in
            state.pending.writeBuffer(&incoming)
            do {
                while let reply = try RESPDecoder.decode(&state.pending) {
                    guard state.next < state.waiting.count else {
                        broken = RESPDecodingError(reason: "a reply no command asked for", offset: 0)
                        return
                    }
                    ready.append((state.waiting[state.next], reply))
                    state.next += 1
                }
                if state.next > 1024, state.next == state.waiting.count {
                    state.waiting.removeAll(keepingCapacity: true)
                    state.next = 0
                }
                state.pending.discardReadBytes()
            } catch {
                broken = error
            }
        }
        for (promise, reply) in ready { promise.succeed(reply) }
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
        let waiting = state.withLockedValue { state -> ArraySlice<EventLoopPromise<RESPValue>> in
            if state.failure == nil { state.failure = error }
            let waiting = state.waiting[state.next...]
            state.waiting.removeAll()
            state.next = 0
            return waiting
        }
        for promise in waiting { promise.fail(error) }
    }
}

/// The server closed the connection (or it was lost) while commands waited.
struct RedisConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to Redis closed" }
}

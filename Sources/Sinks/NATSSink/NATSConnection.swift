import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One NATS connection for request/reply: every request gets its own reply subject under this
/// connection's inbox, and the reply completes it. Server PINGs are answered here. The protocol
/// is `NATSDecoder`/`NATSEncoder`; this is the thin driver.
final class NATSConnection: Sendable {
    struct Reply: Sendable {
        var status: Int?
        var headers: [String: String]
        var payload: [UInt8]
    }

    private let channel: any Channel
    private let handler: NATSReplyHandler

    private init(channel: any Channel, handler: NATSReplyHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, authenticates (user/password when given) and subscribes to the reply inbox.
    /// `connected` receives a way to close the connection as soon as the TCP connection stands,
    /// so another task can end a handshake the server never answers.
    static func connect(host: String, port: Int, user: String?, password: String?,
                        connected: (@escaping @Sendable () -> Void) -> Void = { _ in }) async throws -> NATSConnection {
        let inbox = "_INBOX.ferry\(UInt64.random(in: 0...UInt64.max))"
        let handler = NATSReplyHandler(inbox: inbox)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: host, port: port).get()
        connected { channel.close(promise: nil) }
        var options: [String: Any] = ["verbose": false, "pedantic": false, "headers": true, "no_responders": true, "name": "ferry", "lang": "swift",
                                      "version": "1", "protocol": 1]
        if let user { options["user"] = user }
        if let password { options["pass"] = password }
        let connect = try JSONSerialization.data(withJSONObject: options, options: [.sortedKeys])
        var buffer = channel.allocator.buffer(capacity: 256)
        buffer.writeString("CONNECT ")
        buffer.writeBytes(connect)
        buffer.writeString("\r\nSUB \(inbox).* 1\r\nPING\r\n")
        let ready = handler.handshake(on: channel.eventLoop)
        try await channel.writeAndFlush(buffer)
        do {
            try await ready.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return NATSConnection(channel: channel, handler: handler)
    }

    var isClosed: Bool { !channel.isActive }

    /// The most bytes (headers and payload) one message may have on this server.
    var maximumPayload: Int? { handler.maximumPayload }

    /// A message with its header block already encoded.
    struct Message: Sendable {
        var subject: String
        var headerBlock: [UInt8]
        var payload: [UInt8]
    }

    /// Publishes every message with headers; their replies (JetStream's acks) arrive, in order,
    /// through the future once the last has come.
    func publish(_ messages: [Message]) async throws -> EventLoopFuture<[Reply]> {
        var buffer = channel.allocator.buffer(capacity: messages.reduce(0) { $0 + $1.headerBlock.count + $1.payload.count + 96 })
        let (tokens, promise) = handler.expect(messages.count, on: channel.eventLoop)
        for (message, token) in zip(messages, tokens) {
            NATSEncoder.publish(subject: message.subject, replyTo: handler.inbox + "." + token, headerBlock: message.headerBlock, payload: message.payload,
                                into: &buffer)
        }
        try await channel.writeAndFlush(buffer)
        return promise.futureResult
    }

    /// A request to a JetStream API subject; the reply's JSON.
    func request(_ subject: String, _ payload: [UInt8]) async throws -> Reply {
        var buffer = channel.allocator.buffer(capacity: payload.count + 128)
        let (tokens, promise) = handler.expect(1, on: channel.eventLoop)
        NATSEncoder.request(subject: subject, replyTo: handler.inbox + "." + tokens[0], payload: payload, into: &buffer)
        try await channel.writeAndFlush(buffer)
        return try await promise.futureResult.get()[0]
    }

    func close() async {
        try? await channel.close()
    }
}

/// Routes replies to their requests by reply subject; answers PING; fails everything on -ERR or
/// when the connection ends.
final class NATSReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests sent together, completed when the last of their replies arrives (one promise for
    /// the group: awaiting a future per message costs more than the server takes to store it).
    private struct Group {
        var replies: [NATSConnection.Reply?]
        var missing: Int
        let promise: EventLoopPromise<[NATSConnection.Reply]>
    }

    var maximumPayload: Int? { state.withLockedValue { $0.maximumPayload } }

    private struct State {
        var handshake: EventLoopPromise<Void>?
        /// Reply token → (group, index in the group).
        var waiting: [String: (group: Int, index: Int)] = [:]
        var groups: [Int: Group] = [:]
        var next = 0
        var nextGroup = 0
        var pending = ByteBuffer()
        var failure: (any Error)?
        /// The server's `max_payload` from its INFO (1 MiB unless configured).
        var maximumPayload: Int?
    }

    let inbox: String
    private let state = NIOLockedValueBox(State())

    init(inbox: String) {
        self.inbox = inbox
    }

    func handshake(on loop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        state.withLockedValue { $0.handshake = promise }
        return promise.futureResult
    }

    func expect(_ count: Int, on loop: any EventLoop) -> ([String], EventLoopPromise<[NATSConnection.Reply]>) {
        let promise = loop.makePromise(of: [NATSConnection.Reply].self)
        let (tokens, failure) = state.withLockedValue { state -> ([String], (any Error)?) in
            state.nextGroup += 1
            let group = state.nextGroup
            var tokens: [String] = []
            tokens.reserveCapacity(count)
            for index in 0..<count {
                state.next += 1
                let token = String(state.next)
                tokens.append(token)
                if state.failure == nil { state.waiting[token] = (group, index) }
            }
            if state.failure == nil { state.groups[group] = Group(replies: Array(repeating: nil, count: count), missing: count, promise: promise) }
            return (tokens, state.failure)
        }
        if let failure { promise.fail(failure) }
        return (tokens, promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var operations: [NATSServerOperation] = []
        var broken: (any Error)?
        state.withLockedValue { state in
            state.pending.writeBuffer(&incoming)
            do {
                while let operation = try NATSDecoder.decode(&state.pending) { operations.append(operation) }
                state.pending.discardReadBytes()
            } catch {
                broken = error
            }
        }
        for operation in operations {
            switch operation {
            case .ping:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "PONG\r\n")), promise: nil)
            case .pong:
                let handshake = state.withLockedValue { state -> EventLoopPromise<Void>? in
                    defer { state.handshake = nil }
                    return state.handshake
                }
                handshake?.succeed()
            case .message(let subject, _, _, let headers, let payload):
                guard subject.hasPrefix(inbox + ".") else { continue }
                let token = String(subject.dropFirst(inbox.count + 1))
                let parsed = headers.map(NATSDecoder.headers) ?? (status: nil, fields: [:])
                let reply = NATSConnection.Reply(status: parsed.status, headers: parsed.fields, payload: payload)
                let done = state.withLockedValue { state -> Group? in
                    guard let place = state.waiting.removeValue(forKey: token), state.groups[place.group] != nil else { return nil }
                    // In place: a copy of the group would copy its replies on every reply.
                    state.groups[place.group]!.replies[place.index] = reply
                    state.groups[place.group]!.missing -= 1
                    guard state.groups[place.group]!.missing == 0 else { return nil }
                    return state.groups.removeValue(forKey: place.group)
                }
                if let done { done.promise.succeed(done.replies.map { $0! }) }
            case .error(let message):
                broken = NATSServerError(message: message)
            case .info(let json):
                let info = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
                if let limit = (info?["max_payload"] as? NSNumber)?.intValue { state.withLockedValue { $0.maximumPayload = limit } }
            case .ok:
                break
            }
        }
        if let broken {
            failAll(broken)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(NATSConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        let (handshake, groups) = state.withLockedValue { state -> (EventLoopPromise<Void>?, [Group]) in
            if state.failure == nil { state.failure = error }
            let result = (state.handshake, Array(state.groups.values))
            state.handshake = nil
            state.waiting.removeAll()
            state.groups.removeAll()
            return result
        }
        handshake?.fail(error)
        for group in groups { group.promise.fail(error) }
    }
}

/// `-ERR` from the server (authorization violation, maximum payload exceeded, …).
struct NATSServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { "NATS server error: \(message)" }
}

struct NATSConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to NATS closed" }
}

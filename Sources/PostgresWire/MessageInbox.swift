import NIOConcurrencyHelpers
import NIOCore
import WireTLS

/// Server messages waiting for the connection's owner: the channel handler adds them on the event
/// loop, the owning task takes them all at once. The channel's end (or an error) is delivered
/// after every message that came before it.
///
/// Bounded: once `limit` messages wait, the channel stops reading from the socket until the owner
/// takes them, so a server that sends faster than the owner works (a replication stream ahead of
/// slow targets) waits in TCP, not in memory.
final class MessageInbox: Sendable {
    private struct State {
        var messages: [BackendMessage] = []
        var end: PostgresWireError?
        var waiting: CheckedContinuation<[BackendMessage], any Error>?
        /// The channel asked to read while the inbox was full; the owner's next take reads again.
        var readHeld = false
        var readAgain: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())
    let limit: Int

    init(limit: Int = 4096) {
        self.limit = limit
    }

    /// How to make the channel read again (`channel.read()`), once it stands.
    func attach(readAgain: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.readAgain = readAgain }
    }

    /// Whether the channel may read now; if not, the read is held until the owner takes.
    func admitRead() -> Bool {
        state.withLockedValue { state in
            guard state.messages.count >= limit else { return true }
            state.readHeld = true
            return false
        }
    }

    func deliver(_ message: BackendMessage) {
        let ready = state.withLockedValue { state -> (CheckedContinuation<[BackendMessage], any Error>, [BackendMessage])? in
            state.messages.append(message)
            guard let waiting = state.waiting else { return nil }
            state.waiting = nil
            defer { state.messages = [] }
            return (waiting, state.messages)
        }
        if let (waiting, messages) = ready { waiting.resume(returning: messages) }
    }

    /// The channel ended; a reader gets what was delivered first, then `error`.
    func end(_ error: PostgresWireError) {
        let waiting = state.withLockedValue { state -> CheckedContinuation<[BackendMessage], any Error>? in
            if state.end == nil { state.end = error }
            guard let waiting = state.waiting, state.messages.isEmpty else { return nil }
            state.waiting = nil
            return waiting
        }
        waiting?.resume(throwing: error)
    }

    /// Why the channel ended, once it has.
    var endReason: PostgresWireError? { state.withLockedValue { $0.end } }

    /// Whether the server refused (an ErrorResponse is waiting) or the channel ended: the
    /// exchange in progress cannot succeed. Notices and parameter reports do not count.
    var hasFailure: Bool {
        state.withLockedValue { state in
            state.end != nil || state.messages.contains { message in
                if case .error = message { return true }
                return false
            }
        }
    }

    /// Every message delivered since the last call; waits for one when there is none.
    func next() async throws -> [BackendMessage] {
        try await withCheckedThrowingContinuation { continuation in
            let (result, readAgain) = state.withLockedValue { state -> (Result<[BackendMessage], any Error>?, (@Sendable () -> Void)?) in
                if !state.messages.isEmpty {
                    defer { state.messages = [] }
                    let held = state.readHeld
                    state.readHeld = false
                    return (.success(state.messages), held ? state.readAgain : nil)
                }
                if let end = state.end { return (.failure(end), nil) }
                state.waiting = continuation
                return (nil, nil)
            }
            readAgain?()
            if let result { continuation.resume(with: result) }
        }
    }
}

/// Hands decoded messages to the inbox and tells it when the channel ends; holds the channel's
/// reads while the inbox is full.
final class InboxHandler: ChannelDuplexHandler, Sendable {
    typealias InboundIn = BackendMessage
    typealias OutboundIn = Never

    let inbox: MessageInbox

    init(inbox: MessageInbox) { self.inbox = inbox }

    func read(context: ChannelHandlerContext) {
        if inbox.admitRead() { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.deliver(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PostgresWireError {
            inbox.end(error)
        } else if ClientTLS.isTLSError(error) {
            // The handshake failed (an unknown CA, a name mismatch) or TLS broke later.
            inbox.end(.tls("\(error)"))
        } else {
            inbox.end(.connectionClosed("(\(error))"))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.end(.connectionClosed("unexpectedly"))
        context.fireChannelInactive()
    }
}

import Foundation

/// Closes a session's current connection from any thread, for `SinkSession.interrupt()`: the
/// session registers how to close each connection it makes; once fired, a connection registered
/// later (one that was still connecting) is closed at once.
public final class ConnectionInterrupter: @unchecked Sendable {
    private let lock = NSLock()
    private var closeCurrent: (@Sendable () -> Void)?
    private var fired = false

    public init() {}

    /// Whether the session was interrupted: it must not start new work.
    public var isFired: Bool { lock.withLock { fired } }

    /// `close` ends the session's newest connection; it may be called on any thread.
    public func register(_ close: @escaping @Sendable () -> Void) {
        let closeNow = lock.withLock {
            if !fired { closeCurrent = close }
            return fired
        }
        if closeNow { close() }
    }

    /// The connection ended by itself: nothing to close.
    public func clear() {
        lock.withLock { closeCurrent = nil }
    }

    public func fire() {
        let close = lock.withLock {
            fired = true
            defer { closeCurrent = nil }
            return closeCurrent
        }
        close?()
    }
}

import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// Watches one connection for its end, so a statement postgres-nio would wait on forever fails
/// instead: one written just as the channel closed (postgres-nio writes it without a promise, so
/// nothing ever answers it). One per connection: the close callback is registered once, not per
/// statement.
final class ConnectionCloseWatch: Sendable {
    private struct State {
        var closed = false
        var waiting: CheckedContinuation<Void, any Error>?
        /// Which run `waiting` belongs to, so a body abandoned at the close cannot end a later run.
        var run = 0
    }

    let connection: PostgresConnection
    private let state = NIOLockedValueBox(State())

    init(_ connection: PostgresConnection) {
        self.connection = connection
        connection.closeFuture.whenComplete { [state] _ in
            state.withLockedValue { state in
                state.closed = true
                state.waiting?.resume(throwing: ConnectionClosed())
                state.waiting = nil
            }
        }
    }

    /// A statement on the watched connection; fails when the connection closes before it is
    /// answered.
    @discardableResult
    func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        guard !connection.isClosed else { throw ConnectionClosed() }
        let answer = NIOLockedValueBox<PostgresRowSequence?>(nil)
        let connection = self.connection
        try await run {
            let rows = try await connection.query(query, logger: logger)
            answer.withLockedValue { $0 = rows }
        }
        guard let rows = answer.withLockedValue({ $0 }) else { throw ConnectionClosed() }
        return rows
    }

    /// Runs `body`; fails when the connection closes first. A body postgres-nio never answers is
    /// left waiting on the closed connection (the one task that outlives its caller, because the
    /// library gives no way to end it); everything else ends with the connection.
    func run(_ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let (closed, run) = state.withLockedValue { state in
                state.run += 1
                if !state.closed { state.waiting = continuation }
                return (state.closed, state.run)
            }
            if closed { return continuation.resume(throwing: ConnectionClosed()) }
            Task { [state] in
                let result: Result<Void, any Error>
                do {
                    try await body()
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
                state.withLockedValue { state in
                    guard state.run == run else { return }
                    state.waiting?.resume(with: result)
                    state.waiting = nil
                }
            }
        }
    }
}

/// The connection closed before a statement was answered, or before it was sent (retried on a
/// new session).
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to PostgreSQL closed before the statement was answered" }
}

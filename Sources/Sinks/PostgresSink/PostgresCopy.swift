import FerryCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SinkSupport

/// New rows streamed with `COPY … FROM STDIN` (text format): PostgreSQL's fastest way in, and the
/// rows are encoded while the server already parses the previous piece, so ferry and PostgreSQL
/// work at the same time instead of taking turns. Values are in the same text input form as the
/// `text[]` parameters, escaped for COPY's text format.
enum PostgresCopy {
    /// Bytes encoded before they are handed to the connection.
    static let pieceBytes = 256 * 1024

    /// Copies `rows` (their `columns`) into `table` of `schema`. A key that already exists fails
    /// the COPY with 23505, as a plain INSERT would.
    static func copy(_ rows: [Row], columns: [Int], of tableSchema: TableSchema, into table: String, schema: String,
                     connection: PostgresConnection, watch: ConnectionCloseWatch, logger: Logger) async throws {
        // postgres-nio writes `COPY "<table>"(…)`, quoting the name itself: handing it the inner
        // part of a qualified, escaped name yields `"schema"."table"`.
        let qualified = String(PostgresDialect(schema: schema).table(table).dropFirst().dropLast())
        let names = columns.map { String(doubleQuoted(tableSchema.columnName($0)).dropFirst().dropLast()) }
        try await watch.run {
            try await connection.copyFrom(table: qualified, columns: names, logger: logger) { writer in
                var piece: [UInt8] = []
                piece.reserveCapacity(pieceBytes + 4096)
                for row in rows {
                    for (position, column) in columns.enumerated() {
                        if position > 0 { piece.append(UInt8(ascii: "\t")) }
                        append(row[column], to: &piece)
                    }
                    piece.append(UInt8(ascii: "\n"))
                    if piece.count >= pieceBytes {
                        try await writer.write(ByteBuffer(bytes: piece))
                        piece.removeAll(keepingCapacity: true)
                    }
                }
                if !piece.isEmpty { try await writer.write(ByteBuffer(bytes: piece)) }
            }
        }
    }

    /// One value in COPY's text format: `\N` for NULL; backslash, tab, newline and carriage return
    /// escaped.
    static func append(_ value: Value, to out: inout [UInt8]) {
        switch value {
        case .null, .absent: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
        case .int(let number): JSONBuffer.appendInteger(number, to: &out)
        case .uint(let number): JSONBuffer.appendUnsigned(number, to: &out)
        case .decimal(var text), .string(var text), .json(var text), .enumeration(var text):
            text.withUTF8 { appendEscaped($0, to: &out) }
        default:
            guard var text = PostgresTextArray.text(value) else {
                return out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            }
            text.withUTF8 { appendEscaped($0, to: &out) }
        }
    }

    static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var start = 0
        for index in bytes.indices {
            let escaped: UInt8
            switch bytes[index] {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            out.append(UInt8(ascii: "\\"))
            out.append(escaped)
            start = index + 1
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
    }
}

/// Watches one connection for its end, so an operation postgres-nio would wait on forever fails
/// instead: a COPY the server ended mid-way, or a statement written just as the channel closed
/// (postgres-nio writes it without a promise, so nothing ever answers it). One per connection:
/// the close callback is registered once, not per operation.
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
                state.waiting?.resume(throwing: ConnectionClosedMidCopy())
                state.waiting = nil
            }
        }
    }

    /// A statement on the watched connection; fails when the connection closes before it is
    /// answered.
    @discardableResult
    func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        guard !connection.isClosed else { throw ConnectionAlreadyClosed() }
        let answer = NIOLockedValueBox<PostgresRowSequence?>(nil)
        let connection = self.connection
        try await run {
            let rows = try await connection.query(query, logger: logger)
            answer.withLockedValue { $0 = rows }
        }
        guard let rows = answer.withLockedValue({ $0 }) else { throw ConnectionAlreadyClosed() }
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
            if closed { return continuation.resume(throwing: ConnectionClosedMidCopy()) }
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

/// The connection ended during an operation (retried on a new session).
struct ConnectionClosedMidCopy: Error, CustomStringConvertible {
    var description: String { "the connection to PostgreSQL closed during the operation" }
}

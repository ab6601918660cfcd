import FerryCore

/// A logical replication stream's protocol state, without the socket: it decodes what the
/// server sends, assembles transactions, and says when to answer with a standby status update —
/// when the server asks (a keepalive with the reply flag), when the confirmed position moved,
/// and at least every `statusInterval` while data flows. The connection's owner feeds it each
/// CopyData payload and sends what it returns. Pure.
public struct ReplicationStreamState: Sendable {
    private var decoder: PgOutputDecoder
    private var assembler = PgTransactionAssembler()
    /// Received from the server so far (written), and confirmed safe by every target (flushed).
    public private(set) var received = LSN.zero
    public private(set) var confirmed: LSN
    private var confirmedSent: LSN
    /// The end of the last transaction or position mark the owner delivered (`handedOn(_:)`).
    /// Transactions it skips (no published change after its filter, another tool's logical
    /// message, PostgreSQL 14's empty transactions) need no confirmation.
    private var delivered = LSN.zero
    private var lastStatus: PostgresTimestamp = 0
    public let statusIntervalMicroseconds: Int64

    /// A reader that must leave the slot where it is (a tail of a named slot) sends no flush
    /// position at all: the server ignores 0/0.
    public let confirmsNothing: Bool

    public init(protocolVersion: Int, parallelStreaming: Bool = false, confirmed: LSN, statusIntervalMicroseconds: Int64 = 10_000_000,
                confirmsNothing: Bool = false) {
        decoder = PgOutputDecoder(protocolVersion: protocolVersion, parallelStreaming: parallelStreaming)
        self.confirmsNothing = confirmsNothing
        self.confirmed = confirmed
        self.confirmedSent = confirmed
        self.statusIntervalMicroseconds = statusIntervalMicroseconds
    }

    /// What one CopyData payload yields: a committed transaction or a non-transactional message
    /// (when one completed), and a status update to send (when one is due).
    public struct Step: Sendable, Equatable {
        public var assembled: PgAssembled?
        public var reply: StandbyStatusUpdate?
    }

    /// `now`: the current time on PostgreSQL's clock (microseconds since 2000-01-01).
    public mutating func receive(_ payload: [UInt8], now: PostgresTimestamp) throws -> Step {
        switch try ReplicationMessage.decode(payload) {
        case .xLogData(let start, _, _, let data):
            received = max(received, start)
            let assembled = try assembler.add(try decoder.decode(data))
            return Step(assembled: assembled, reply: due(now: now, asked: false))
        case .keepalive(let serverEnd, _, let replyRequested):
            // Nothing open or held, and all handed on confirmed: the WAL up to the server's end
            // holds nothing for us (other tables, checkpoints), so the slot may move past it —
            // else it never advances while the published tables are quiet, and a server
            // shutting down waits for our flush position to reach its end.
            // Between transactions, the server has read its WAL this far (a streamed
            // transaction still held commits later).
            if assembler.isBetweenTransactions { received = max(received, serverEnd) }
            if assembler.isIdle && confirmed >= delivered { confirmed = max(confirmed, serverEnd) }
            return Step(assembled: nil, reply: due(now: now, asked: replyRequested))
        }
    }

    /// No transaction is open or held: everything received so far has been handed on.
    public var isIdle: Bool { assembler.isIdle }

    /// No transaction or stream segment is open (streamed ones may be held): a stream may stop
    /// here and be taken up again from the last transaction handed on.
    public var isBetweenTransactions: Bool { assembler.isBetweenTransactions }

    /// The owner delivered what ends at `lsn`: the slot moves past it only once every target
    /// holds it (`confirm`).
    public mutating func handedOn(_ lsn: LSN) {
        delivered = max(delivered, lsn)
    }

    /// Every target holds everything up to `lsn` (a transaction's end LSN): the slot may
    /// forget it. Never moves backwards.
    public mutating func confirm(_ lsn: LSN) {
        confirmed = max(confirmed, lsn)
    }

    /// A status update if the confirmed position moved since the last one, or one is due.
    public mutating func statusIfDue(now: PostgresTimestamp) -> StandbyStatusUpdate? { due(now: now, asked: false) }

    private mutating func due(now: PostgresTimestamp, asked: Bool) -> StandbyStatusUpdate? {
        guard asked || confirmed > confirmedSent || now - lastStatus >= statusIntervalMicroseconds else { return nil }
        lastStatus = now
        confirmedSent = confirmed
        // Flushed and applied are what the targets hold, never more: the slot keeps the rest.
        let flushed = confirmsNothing ? LSN.zero : confirmed
        return StandbyStatusUpdate(written: max(received, confirmed), flushed: flushed, applied: flushed, sentAt: now)
    }
}

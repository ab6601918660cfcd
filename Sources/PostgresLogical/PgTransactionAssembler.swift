import FerryCore

/// One committed transaction of a pgoutput stream, its changes in commit order, each with the
/// relation as last described before it.
public struct PgTransaction: Sendable, Equatable {
    public var xid: UInt32
    /// The commit record's position; `endLSN` is where a consumer that applied the transaction
    /// resumes (and what it may confirm once every target holds it).
    public var commitLSN: LSN
    public var endLSN: LSN
    public var commitTime: PostgresTimestamp
    public var changes: [PgChange]
    /// Delivered while it ran, in segments (protocol 2+ with streaming).
    public var streamed: Bool

    public init(xid: UInt32, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp, changes: [PgChange], streamed: Bool) {
        self.xid = xid
        self.commitLSN = commitLSN
        self.endLSN = endLSN
        self.commitTime = commitTime
        self.changes = changes
        self.streamed = streamed
    }
}

public enum PgChange: Sendable, Equatable {
    case insert(PgOutputMessage.Relation, new: TupleData)
    case update(PgOutputMessage.Relation, old: PgOutputMessage.OldTuple?, new: TupleData)
    case delete(PgOutputMessage.Relation, old: PgOutputMessage.OldTuple)
    case truncate([PgOutputMessage.Relation], cascade: Bool, restartIdentity: Bool)
    /// A transactional `pg_logical_emit_message`.
    case message(prefix: String, content: [UInt8])
}

/// What the assembler hands on for one message.
public enum PgAssembled: Sendable, Equatable {
    case transaction(PgTransaction)
    /// A non-transactional logical message (a heartbeat), at its own position.
    case message(lsn: LSN, prefix: String, content: [UInt8])
}

public enum PgAssemblyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A change of a relation no Relation message described first.
    case unknownRelation(UInt32)
    /// A message that cannot come where it came (a change outside a transaction, a Begin inside one).
    case outOfOrder(String)

    public var description: String {
        switch self {
        case .unknownRelation(let id): return "the replication stream changed relation \(id) before describing it (no Relation message)"
        case .outOfOrder(let detail): return "the replication stream's messages are out of order: \(detail)"
        }
    }
}

/// Turns pgoutput messages into committed transactions: a plain transaction from Begin to
/// Commit; a streamed one from its segments (Stream Start … Stop, interleaved with others'),
/// kept until Stream Commit, and dropped — whole, or one subtransaction's changes — by Stream
/// Abort. Keeps the relations as described, by id. One owner; pure.
public struct PgTransactionAssembler: Sendable {
    private var relations: [UInt32: PgOutputMessage.Relation] = [:]
    private var open: (begin: PgOutputMessage.Begin, changes: [PgChange])?
    /// Streamed transactions by top-level xid: their changes so far, and where each
    /// subtransaction's first change sits (its abort cuts the list back to there, as
    /// PostgreSQL's own subscriber does: a logical message inside it carries the top-level xid).
    private var streams: [UInt32: HeldStream] = [:]
    private var segment: UInt32?

    private struct HeldStream {
        var changes: [PgChange] = []
        var firstChange: [UInt32: Int] = [:]
    }

    public init() {}

    /// Streamed transactions not yet committed or aborted (their changes are held).
    public var pendingStreams: Int { streams.count }

    /// Nothing is open or held: everything received so far has been handed on.
    public var isIdle: Bool { open == nil && segment == nil && streams.isEmpty }

    /// No transaction or stream segment is open; streamed transactions may be held. Stopping
    /// here loses nothing: a held transaction commits later, and a stream from any earlier
    /// position sends it again whole.
    public var isBetweenTransactions: Bool { open == nil && segment == nil }

    public mutating func add(_ message: PgOutputMessage) throws -> PgAssembled? {
        switch message {
        case .begin(let begin):
            guard open == nil, segment == nil else { throw PgAssemblyError.outOfOrder("Begin of xid \(begin.xid) inside another transaction") }
            open = (begin, [])
        case .commit(let commit):
            guard let (begin, changes) = open else { throw PgAssemblyError.outOfOrder("Commit at \(commit.commitLSN) without Begin") }
            open = nil
            return .transaction(PgTransaction(xid: begin.xid, commitLSN: commit.commitLSN, endLSN: commit.endLSN, commitTime: commit.commitTime,
                                              changes: changes, streamed: false))
        case .origin, .type:
            break
        case .relation(let relation, _):
            relations[relation.id] = relation
        case .insert(let id, let new, let xid):
            try record(.insert(try relation(id), new: new), xid: xid)
        case .update(let id, let old, let new, let xid):
            try record(.update(try relation(id), old: old, new: new), xid: xid)
        case .delete(let id, let old, let xid):
            try record(.delete(try relation(id), old: old), xid: xid)
        case .truncate(let ids, let cascade, let restart, let xid):
            try record(.truncate(try ids.map(relation), cascade: cascade, restartIdentity: restart), xid: xid)
        case .message(let transactional, let lsn, let prefix, let content, let xid):
            guard transactional else { return .message(lsn: lsn, prefix: prefix, content: content) }
            try record(.message(prefix: prefix, content: content), xid: xid)
        case .streamStart(let xid, _):
            guard open == nil, segment == nil else { throw PgAssemblyError.outOfOrder("Stream Start of xid \(xid) inside another transaction") }
            segment = xid
            if streams[xid] == nil { streams[xid] = HeldStream() }
        case .streamStop:
            guard segment != nil else { throw PgAssemblyError.outOfOrder("Stream Stop outside a segment") }
            segment = nil
        case .streamCommit(let xid, let commit):
            guard segment == nil, let held = streams.removeValue(forKey: xid) else {
                throw PgAssemblyError.outOfOrder("Stream Commit of xid \(xid), which was not streamed or is still in a segment")
            }
            return .transaction(PgTransaction(xid: xid, commitLSN: commit.commitLSN, endLSN: commit.endLSN, commitTime: commit.commitTime,
                                              changes: held.changes, streamed: true))
        case .streamAbort(let xid, let subtransaction, _, _):
            if subtransaction == xid {
                streams[xid] = nil
            } else if var held = streams[xid], let start = held.firstChange[subtransaction] {
                held.changes.removeSubrange(start...)
                held.firstChange = held.firstChange.filter { $0.value < start }
                streams[xid] = held
            }
        }
        return nil
    }

    private func relation(_ id: UInt32) throws -> PgOutputMessage.Relation {
        guard let relation = relations[id] else { throw PgAssemblyError.unknownRelation(id) }
        return relation
    }

    private mutating func record(_ change: PgChange, xid: UInt32?) throws {
        if let top = segment {
            let own = xid ?? top
            var held = streams.removeValue(forKey: top) ?? HeldStream()
            if own != top, held.firstChange[own] == nil { held.firstChange[own] = held.changes.count }
            held.changes.append(change)
            streams[top] = held
        } else if open != nil {
            open!.changes.append(change)
        } else {
            throw PgAssemblyError.outOfOrder("a change outside a transaction")
        }
    }
}

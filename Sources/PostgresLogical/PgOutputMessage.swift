import FerryCore

/// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's epoch.
public typealias PostgresTimestamp = Int64

/// One message of the `pgoutput` logical decoding plugin (protocol versions 1–4), as the server
/// sends it inside XLogData. Changes inside a streamed transaction (between Stream Start and
/// Stream Stop, protocol 2+) carry its `xid`; elsewhere `xid` is nil.
public enum PgOutputMessage: Sendable, Equatable {
    case begin(Begin)
    case commit(Commit)
    case origin(commitLSN: LSN, name: String)
    case relation(Relation, xid: UInt32?)
    case type(TypeInfo, xid: UInt32?)
    case insert(relation: UInt32, new: TupleData, xid: UInt32?)
    /// `old` is the key (replica identity DEFAULT or INDEX, when a key column changed) or the
    /// whole old row (FULL); absent when neither was sent.
    case update(relation: UInt32, old: OldTuple?, new: TupleData, xid: UInt32?)
    case delete(relation: UInt32, old: OldTuple, xid: UInt32?)
    case truncate(relations: [UInt32], cascade: Bool, restartIdentity: Bool, xid: UInt32?)
    /// `pg_logical_emit_message`: transactional ones belong to their transaction.
    case message(transactional: Bool, lsn: LSN, prefix: String, content: [UInt8], xid: UInt32?)
    case streamStart(xid: UInt32, firstSegment: Bool)
    case streamStop
    case streamCommit(xid: UInt32, Commit)
    /// `abortLSN` and `abortTime` only with parallel streaming (protocol 4).
    case streamAbort(xid: UInt32, subtransaction: UInt32, abortLSN: LSN?, abortTime: PostgresTimestamp?)

    public struct Begin: Sendable, Equatable {
        /// The LSN of the transaction's commit record.
        public var finalLSN: LSN
        public var commitTime: PostgresTimestamp
        public var xid: UInt32

        public init(finalLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32) {
            self.finalLSN = finalLSN
            self.commitTime = commitTime
            self.xid = xid
        }
    }

    public struct Commit: Sendable, Equatable {
        public var flags: UInt8
        public var commitLSN: LSN
        /// The end of the commit record: where a consumer that applied the transaction resumes.
        public var endLSN: LSN
        public var commitTime: PostgresTimestamp

        public init(flags: UInt8, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp) {
            self.flags = flags
            self.commitLSN = commitLSN
            self.endLSN = endLSN
            self.commitTime = commitTime
        }
    }

    public struct Relation: Sendable, Equatable {
        public struct Column: Sendable, Equatable {
            /// Part of the replica identity (the key sent with updates and deletes).
            public var isKey: Bool
            public var name: String
            public var typeOID: UInt32
            public var typeModifier: Int32

            public init(isKey: Bool, name: String, typeOID: UInt32, typeModifier: Int32) {
                self.isKey = isKey
                self.name = name
                self.typeOID = typeOID
                self.typeModifier = typeModifier
            }
        }

        public enum ReplicaIdentity: UInt8, Sendable {
            case `default` = 100 // 'd': the primary key
            case nothing = 110   // 'n'
            case full = 102      // 'f': every column
            case index = 105     // 'i': a chosen unique index
        }

        public var id: UInt32
        public var namespace: String
        public var name: String
        public var replicaIdentity: ReplicaIdentity
        public var columns: [Column]

        public init(id: UInt32, namespace: String, name: String, replicaIdentity: ReplicaIdentity, columns: [Column]) {
            self.id = id
            self.namespace = namespace
            self.name = name
            self.replicaIdentity = replicaIdentity
            self.columns = columns
        }
    }

    /// A type the server describes before a relation that uses it (non-built-in types).
    public struct TypeInfo: Sendable, Equatable {
        public var oid: UInt32
        public var namespace: String
        public var name: String

        public init(oid: UInt32, namespace: String, name: String) {
            self.oid = oid
            self.namespace = namespace
            self.name = name
        }
    }

    public enum OldTuple: Sendable, Equatable {
        /// 'K': the replica identity's columns (others null).
        case key(TupleData)
        /// 'O': the whole old row (REPLICA IDENTITY FULL).
        case row(TupleData)
    }
}

/// A row's columns as pgoutput sends them.
public struct TupleData: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case null
        /// A TOASTed value the change left as it was: not sent, and the target must keep its own.
        case unchangedToast
        /// The value in the type's text form.
        case text([UInt8])
        /// The value in the type's binary form (with `binary 'true'`).
        case binary([UInt8])
    }

    public var values: [Value]

    public init(_ values: [Value]) { self.values = values }
}

/// What a change did to a row.
public enum ChangeOperation: Sendable, Hashable {
    case create
    case update
    case delete
    /// A row read by a snapshot.
    case read
    /// A schema change; the event carries the statement, not rows.
    case ddl

    /// The Debezium `op` letter.
    public var code: String {
        switch self {
        case .create: "c"
        case .update: "u"
        case .delete: "d"
        case .read: "r"
        case .ddl: "ddl"
        }
    }
}

/// Where a change came from: the source and its transaction's commit position.
public struct ChangeSource: Sendable, Hashable {
    /// The user's name for the source.
    public var name: String
    /// The source server's `server_id` that wrote the change.
    public var serverID: UInt32
    /// The change's own transaction GTID, in the source's text form.
    public var gtid: String?
    /// Resume point after the change's transaction (its commit's end).
    public var position: SourcePosition
    /// 0-based index of the change within its transaction.
    public var row: Int
    /// Commit time of the transaction in milliseconds since the epoch.
    public var timestampMillis: Int64
    /// 0 for the change as the source made it; 1, 2, … for the parts a rule split it into (an
    /// update that moves a row between target tables is a delete, part 1, and a create, part 2),
    /// so that each part has an id of its own.
    public var part: UInt8 = 0
    /// For a snapshot row (`read`): whether it ends its table's snapshot, or the whole snapshot.
    public var snapshotMark: SnapshotRowMark = .within

    public init(name: String, serverID: UInt32, gtid: String?, position: SourcePosition, row: Int, timestampMillis: Int64) {
        self.name = name
        self.serverID = serverID
        self.gtid = gtid
        self.position = position
        self.row = row
        self.timestampMillis = timestampMillis
    }
}

/// Where a snapshot row stands in its snapshot; Debezium's `source.snapshot` values.
public enum SnapshotRowMark: Sendable, Hashable {
    /// `"true"`.
    case within
    /// `"last_in_data_collection"`: the last row a table's snapshot delivered.
    case lastInTable
    /// `"last"`: the last row of the last table the snapshot had to read.
    case last

    /// The `source.snapshot` text of a row read with this mark.
    public var debeziumText: String {
        switch self {
        case .within: "true"
        case .lastInTable: "last_in_data_collection"
        case .last: "last"
        }
    }
}

/// One committed change to one row (or one DDL statement).
public struct ChangeEvent: Sendable {
    public var operation: ChangeOperation
    public var table: TableName
    /// Column names and key of the table when the change was written; `nil` for DDL.
    public var schema: TableSchema?
    public var before: Row?
    public var after: Row?
    /// The statement text for `.ddl` events.
    public var statement: String?
    /// What a `.ddl` statement does to replicated tables.
    public var schemaChanges: [SchemaChange]
    public var source: ChangeSource

    public init(operation: ChangeOperation, table: TableName, schema: TableSchema?, before: Row?, after: Row?,
                statement: String? = nil, schemaChanges: [SchemaChange] = [], source: ChangeSource) {
        self.operation = operation
        self.table = table
        self.schema = schema
        self.before = before
        self.after = after
        self.statement = statement
        self.schemaChanges = schemaChanges
        self.source = source
    }
}

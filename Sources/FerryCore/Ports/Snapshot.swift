/// How a pipeline snapshots existing rows (`snapshot:` in the configuration).
public enum SnapshotMode: String, Sendable, CaseIterable {
    /// On the first start, snapshot every table while streaming; then stream. The default.
    case initial
    /// Never snapshot on its own; `ferry snapshot` still starts one.
    case never
    /// Snapshot, deliver, and stop.
    case initialOnly = "initial_only"
    /// Like `initial`, and snapshot again when the saved position is no longer on the server.
    case whenNeeded = "when_needed"
}

/// One table's snapshot as the state store keeps it.
public struct SnapshotTableRecord: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable {
        /// Asked for; no chunk read yet.
        case requested
        case running
        /// Every chunk delivered.
        case done
    }

    public var table: TableName
    public var state: State
    /// Why it runs: `initial`, `requested` (ferry snapshot), `purged` (when_needed), `repair`.
    public var reason: String
    /// The server's row estimate when the table's snapshot started.
    public var estimatedRows: Int
    /// True once the last chunk (open-ended) has been planned.
    public var planComplete: Bool
    /// Which columns split the table, e.g. `id (primary key)`.
    public var key: String
    public var requestedMillis: Int64
    public var startedMillis: Int64?
    public var finishedMillis: Int64?

    public init(table: TableName, state: State, reason: String, estimatedRows: Int = 0, planComplete: Bool = false, key: String = "",
                requestedMillis: Int64, startedMillis: Int64? = nil, finishedMillis: Int64? = nil) {
        self.table = table
        self.state = state
        self.reason = reason
        self.estimatedRows = estimatedRows
        self.planComplete = planComplete
        self.key = key
        self.requestedMillis = requestedMillis
        self.startedMillis = startedMillis
        self.finishedMillis = finishedMillis
    }
}

/// One key range of a table: keys after `lower` up to and including `upper` (`nil`: unbounded).
/// Bounds are the key's values as source SQL literals, in key order.
public struct SnapshotChunkRecord: Sendable, Equatable, Codable {
    public var table: TableName
    public var index: Int
    public var lower: [String]?
    public var upper: [String]?
    /// For a repair: exactly these keys (SQL literals, in key order) instead of a range; a key the
    /// source no longer has is deleted from the targets.
    public var keys: [[String]]?
    /// Rows delivered for the chunk.
    public var rows: Int
    /// The position the chunk was delivered at; `nil` until then. A chunk counts as done only
    /// when the source will not re-read that position (it is at or before the resume position).
    public var deliveredAt: SourcePosition?

    public init(table: TableName, index: Int, lower: [String]?, upper: [String]?, keys: [[String]]? = nil, rows: Int = 0,
                deliveredAt: SourcePosition? = nil) {
        self.table = table
        self.index = index
        self.lower = lower
        self.upper = upper
        self.keys = keys
        self.rows = rows
        self.deliveredAt = deliveredAt
    }
}

/// Where snapshot progress survives restarts (the state store).
public protocol SnapshotStore: Sendable {
    func snapshotTables(pipeline: String) async throws -> [SnapshotTableRecord]
    func snapshotChunks(pipeline: String, table: TableName) async throws -> [SnapshotChunkRecord]
    /// Replaces the table's record while it still belongs to the same request (the stored
    /// `requestedMillis` equals `record.requestedMillis`, or there is none); returns false, and
    /// writes nothing, when a newer request replaced it — whoever worked on the old one stops.
    @discardableResult
    func saveSnapshotTable(_ record: SnapshotTableRecord, pipeline: String) async throws -> Bool
    /// Records a chunk of the table's request made at `requestedMillis`; returns false, and writes
    /// nothing, when the table's request is no longer that one.
    @discardableResult
    func saveSnapshotChunk(_ chunk: SnapshotChunkRecord, pipeline: String, requestedMillis: Int64) async throws -> Bool
    /// Starts the tables' snapshots over: forgets their chunks and marks them requested, as a new
    /// request (its `requestedMillis` is later than any earlier request's), so a snapshot of the
    /// table that is running stops and starts again.
    func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64) async throws
    /// Asks for exactly these keys of `table` to be read again (`ferry verify --repair`), in
    /// chunks of at most `chunkKeys` keys; a new request, as `requestSnapshot` makes. With
    /// `expected`, only while the table's request is still the one made at `expected` (the one
    /// the caller looked at); returns whether the repair was requested.
    @discardableResult
    func requestRepair(pipeline: String, table: TableName, keys: [[String]], chunkKeys: Int, atMillis: Int64,
                       replacing expected: Int64?) async throws -> Bool
}

extension TableName: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let dot = text.firstIndex(of: ".") else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "table name without database: \(text)"))
        }
        self.init(database: String(text[..<dot]), table: String(text[text.index(after: dot)...]))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

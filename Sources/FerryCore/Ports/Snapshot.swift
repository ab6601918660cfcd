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

extension SnapshotStore {
    /// Marks the chunks delivered after `resume` (all of them without one) as not delivered, and
    /// their tables as running again, so they are read again: the targets may not hold them.
    /// A table asked for again meanwhile is left to its new request. Returns how many chunks of
    /// each table were opened again.
    @discardableResult
    public func reopenChunks(deliveredAfter resume: SourcePosition?, pipeline: String) async throws -> [TableName: Int] {
        var reopened: [TableName: Int] = [:]
        tables: for var record in try await snapshotTables(pipeline: pipeline) where record.state != .requested {
            var undone = 0
            for var chunk in try await snapshotChunks(pipeline: pipeline, table: record.table) {
                guard let delivered = chunk.deliveredAt, resume.map({ delivered > $0 }) ?? true else { continue }
                chunk.deliveredAt = nil
                chunk.rows = 0
                guard try await saveSnapshotChunk(chunk, pipeline: pipeline, requestedMillis: record.requestedMillis) else { continue tables }
                undone += 1
            }
            guard undone > 0 else { continue }
            record.state = .running
            record.finishedMillis = nil
            if try await saveSnapshotTable(record, pipeline: pipeline) { reopened[record.table] = undone }
        }
        return reopened
    }
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

/// How a pipeline's snapshots run.
public struct SnapshotSettings: Sendable {
    public var mode: SnapshotMode
    /// Rows per chunk. Default 8,192.
    public var chunkRows: Int
    /// Chunks read at the same time. Default 4.
    public var parallelism: Int
    /// How chunks are placed in the stream. Default `auto`.
    public var watermarks: WatermarkMode
    /// The table the watermarks are written to. Default `ferry.ferry_signal`.
    public var signalTable: TableName
    /// Key columns for tables by glob (`mapping.key`), first match wins.
    public var keyOverrides: [(tables: String, columns: [String])]
    /// How often an idle snapshotter looks for `ferry snapshot` requests. Default 1 s.
    public var pollInterval: Duration
    /// Read a table again after a DDL statement rewrote its rows (a column added with a
    /// default, a column retyped). Default true.
    public var rereadAfterSchemaChange: Bool

    public init(mode: SnapshotMode = .initial, chunkRows: Int = 8192, parallelism: Int = 4, watermarks: WatermarkMode = .auto,
                signalTable: TableName = TableName(database: "ferry", table: "ferry_signal"),
                keyOverrides: [(tables: String, columns: [String])] = [], pollInterval: Duration = .seconds(1), rereadAfterSchemaChange: Bool = true) {
        self.mode = mode
        self.chunkRows = chunkRows
        self.parallelism = parallelism
        self.watermarks = watermarks
        self.signalTable = signalTable
        self.keyOverrides = keyOverrides
        self.pollInterval = pollInterval
        self.rereadAfterSchemaChange = rereadAfterSchemaChange
    }

    /// The configured key columns of `table`, if any.
    public func keyOverride(for table: TableName) -> [String]? {
        keyOverrides.first { TableGlob.matches($0.tables, table.description) }?.columns
    }
}

/// Where a chunk's low and high watermarks come from.
public enum WatermarkMode: String, Sendable, CaseIterable {
    /// The signal table when ferry may write it, else binlog positions.
    case auto
    /// Rows written to the signal table (needs INSERT on it).
    case signalTable = "signal_table"
    /// The binlog position of each chunk's consistent read (read-only sources).
    case binlog
}

/// What a source needs to snapshot alongside its stream.
public struct SnapshotJob: Sendable {
    public var pipeline: String
    public var settings: SnapshotSettings
    public var store: any SnapshotStore
    /// The position the source resumes after; chunks delivered later than it are read again.
    public var resume: SourcePosition?
    /// The saved position is gone from the server (`when_needed`): snapshot every table again.
    public var resnapshotAll: Bool

    public init(pipeline: String, settings: SnapshotSettings, store: any SnapshotStore, resume: SourcePosition?, resnapshotAll: Bool = false) {
        self.pipeline = pipeline
        self.settings = settings
        self.store = store
        self.resume = resume
        self.resnapshotAll = resnapshotAll
    }
}

/// A table sink that can compare what it holds with source rows (`ferry verify`).
///
/// Rows are in the target's shape (after the pipeline's mapping) and carry the source's values;
/// keys are values of `schema.primaryKey`. Each sink compares in its database with the semantics
/// it writes with, so a value it wrote exactly is never reported as different.
public protocol VerifiableSink: SinkSession {
    /// The indexes of `rows` that the target's table `table` lacks or holds with other values.
    func differingRows(table: String, schema: TableSchema, rows: [Row]) async throws -> [Int]

    /// Rows in the target's table; `nil` when the table does not exist.
    func rowCount(table: String) async throws -> Int?

    /// The keys the target's table holds that are not among `sourceKeys`, as values the source can
    /// take back as literals.
    func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]]
}

/// A source table read for `ferry verify` and for the sweep after a re-snapshot: in key order
/// chunk by chunk, or by keys, decoded exactly as snapshot rows are.
public protocol SourceTableReader: Sendable {
    var schema: TableSchema { get }
    /// The key columns rows are ordered and looked up by; empty when the table has none.
    var keyColumns: [Int] { get }
    /// Up to `limit` rows after `lower` (a key; `nil` from the start), in key order.
    func rows(after lower: [Value]?, limit: Int) async throws -> [Row]
    /// The rows with these keys that the table has now.
    func rows(keys: [[Value]]) async throws -> [Row]
    /// Every key of the table.
    func keys() async throws -> [[Value]]
}

/// What `ferry verify` reads of a source, and how it asks the source's snapshots for a repair.
public protocol VerifiableSource: Sendable {
    /// The tables the pipeline reads (what an initial snapshot reads).
    func verifiedTables(signalTable: TableName) async throws -> [TableName]
    /// A reader of `name`; `keyOverride` is the pipeline's `mapping.key`.
    func verifyReader(_ name: TableName, keyOverride: [String]?) async throws -> any SourceTableReader
    /// A position every change committed before this call is at or before: a sink that applied
    /// up to it holds them all.
    func verifyPosition() async throws -> SourcePosition
    /// A key as a repair request names it (`SnapshotChunkRecord.keys`), for this source's snapshots.
    func repairKey(_ key: [Value]) -> [String]
    /// Whether `error` is a lost or refused connection, which a retry may get past.
    func isLostConnection(_ error: any Error) -> Bool
}

/// Rows of the source's tables as they are now, read by column values (the source's port for
/// documents).
public protocol DocumentRowReader: Sendable {
    /// The rows of `table` whose `columns` equal one of `keys` (each a value per column), in
    /// primary-key order.
    func rows(of table: TableName, where columns: [String], in keys: [[Value]]) async throws -> TableRows
    /// The table's current schema (for checking a definition's columns).
    func schema(of table: TableName) async throws -> TableSchema
}

/// Opens a reader for a while (one connection for a transaction's documents).
public protocol DocumentRowSource: Sendable {
    func withReader<T: Sendable>(_ body: (any DocumentRowReader) async throws -> T) async throws -> T
    /// Forgets what it knows of `table`'s shape (after DDL).
    func forget(_ table: TableName) async
}

/// Rows of one table with its schema.
public struct TableRows: Sendable {
    public var schema: TableSchema
    public var rows: [Row]

    public init(schema: TableSchema, rows: [Row]) {
        self.schema = schema
        self.rows = rows
    }

    public func index(_ column: String) -> Int? { schema.columns.indices.first { schema.columnName($0) == column } }
}

import FerryCore
import Foundation
import Logging
import PostgresLogical
import PostgresWire

/// The source's current rows for joined documents: rows are read and decoded exactly as a
/// snapshot reads them (the schema and values a streamed row of the same data has), and only the
/// rows the publication carries (its row filter applies).
public final class PostgresDocumentRows: DocumentRowSource, @unchecked Sendable {
    let source: PostgresSource
    private let lock = NSLock()
    private var tables: [TableName: PgSnapshotTable] = [:]

    public init(source: PostgresSource) {
        self.source = source
    }

    public func withReader<T: Sendable>(_ body: (any DocumentRowReader) async throws -> T) async throws -> T {
        try await source.withSession(purpose: "documents") { sql in try await body(Reader(rows: self, sql: sql)) }
    }

    public func forget(_ table: TableName) async {
        lock.withLock { tables[table] = nil }
    }

    /// Forgets every table (a new stream: a change made before it brings no schema change).
    public func forgetAll() async {
        lock.withLock { tables.removeAll() }
    }

    /// Whether `error` is a lost connection or a server that is away for now (rendering is
    /// tried again), not a refusal.
    public static func isLostConnection(_ error: any Error) -> Bool {
        if let error = error as? FerryError { return error.code == .sourcePostgresUnreachable }
        return (error as? PostgresWireError)?.isTransient ?? false
    }

    fileprivate func table(_ name: TableName, _ sql: PostgresWireConnection) async throws -> PgSnapshotTable {
        if let known = lock.withLock({ tables[name] }) { return known }
        let loaded = try await PgSnapshotTable.load(name, publication: source.configuration.publication, keyOverride: nil, connection: sql) { catalog, missing in
            try await source.resolveTypes(missing, into: &catalog, sql: sql)
        }
        guard let table = loaded else {
            throw FerryError(code: .snapshotTableMissing, message: "source \(source.configuration.name): table \(name) is not in publication \(source.configuration.publication)",
                             context: [(LoggingKeys.table, "\(name)")], fix: "add it to the publication: ALTER PUBLICATION … ADD TABLE \(name);")
        }
        lock.withLock { tables[name] = table }
        return table
    }

    /// One connection's reads, one at a time.
    private final class Reader: DocumentRowReader, @unchecked Sendable {
        let rows: PostgresDocumentRows
        let sql: PostgresWireConnection

        init(rows: PostgresDocumentRows, sql: PostgresWireConnection) {
            self.rows = rows
            self.sql = sql
        }

        func schema(of table: TableName) async throws -> TableSchema {
            try await rows.table(table, sql).schema
        }

        func rows(of name: TableName, where columns: [String], in keys: [[Value]]) async throws -> TableRows {
            let table = try await rows.table(name, sql)
            guard !keys.isEmpty else { return TableRows(schema: table.schema, rows: []) }
            let indexes = try columns.map { column in
                guard let index = table.columnNames.firstIndex(of: column) else {
                    throw FerryError(code: .configDocumentUnknownColumn, message: "\(name) has no column \(column)", context: [(LoggingKeys.table, "\(name)")],
                                     fix: "columns of \(name): \(table.columnNames.joined(separator: ", "))")
                }
                return index
            }
            let (query, parameters) = table.matchQuery(columns: indexes, values: keys.map { $0.map(PostgresText.form) })
            return TableRows(schema: table.schema, rows: try table.rows(try await sql.query(query, parameters)))
        }
    }
}

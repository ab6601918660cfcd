import FerryCore
import Foundation
import Logging
import MySQLBinlog
import MySQLWire

/// The source's current rows for joined documents: rows are read and decoded exactly as a
/// snapshot reads them (the schema and values a streamed row of the same data has).
public final class MySQLDocumentRows: DocumentRowSource, @unchecked Sendable {
    let configuration: MySQLSourceConfiguration
    let logger: Logger
    private let lock = NSLock()
    private var tables: [TableName: SnapshotTable] = [:]
    private var server: ServerFacts?

    public init(configuration: MySQLSourceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func withReader<T: Sendable>(_ body: (any DocumentRowReader) async throws -> T) async throws -> T {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { connection in
            try await Snapshotter.prepareSession(connection)
            let known = lock.withLock { server }
            let facts: ServerFacts
            if let known {
                facts = known
            } else {
                facts = try await ServerFacts.load(connection)
                lock.withLock { server = facts }
            }
            return try await body(Reader(rows: self, connection: connection, server: facts))
        }
    }

    public func forget(_ table: TableName) async {
        lock.withLock { tables[table] = nil }
    }

    fileprivate func table(_ name: TableName, _ connection: MySQLConnection, _ server: ServerFacts) async throws -> SnapshotTable {
        if let known = lock.withLock({ tables[name] }) { return known }
        let table = try await SnapshotTable.load(name, keyOverride: nil, query: connection, server: server)
        lock.withLock { tables[name] = table }
        return table
    }

    /// One connection's reads, one at a time.
    private final class Reader: DocumentRowReader, @unchecked Sendable {
        let rows: MySQLDocumentRows
        let connection: MySQLConnection
        let server: ServerFacts

        init(rows: MySQLDocumentRows, connection: MySQLConnection, server: ServerFacts) {
            self.rows = rows
            self.connection = connection
            self.server = server
        }

        func schema(of table: TableName) async throws -> TableSchema {
            try await rows.table(table, connection, server).schema
        }

        func rows(of name: TableName, where columns: [String], in keys: [[Value]]) async throws -> TableRows {
            let table = try await rows.table(name, connection, server)
            guard !keys.isEmpty else { return TableRows(schema: table.schema, rows: []) }
            let order = table.quotedKeyColumns.isEmpty ? "" : " ORDER BY " + table.quotedKeyColumns.joined(separator: ", ")
            // One column: `c IN (…)`; several: `(a, b) IN ((…), (…))`.
            let tuples = keys.map { key in MySQLLiteral.literals(key).joined(separator: ", ") }
            let condition = columns.count == 1
                ? "\(backquoted(columns[0])) IN (\(tuples.joined(separator: ", ")))"
                : "(\(columns.map(backquoted).joined(separator: ", "))) IN ((\(tuples.joined(separator: "), ("))))"
            let sql = "SELECT \(table.selectList) FROM \(table.quotedName) WHERE \(condition)\(order)"
            var found: [Row] = []
            _ = try await connection.query(sql) { payload, _ in found.append(try table.decoder.decodeText(payload: payload)) }
            return TableRows(schema: table.schema, rows: found)
        }
    }
}

import FerryCore
import Foundation
import Logging
import NIOCore
import SinkSupport
import SQLiteNIO

/// A SQLite database file as a target: tables created from the source schema, upserts by primary
/// key, deletes, primary-key changes, added columns — and the applied position in
/// `ferry_offsets`, written in the same SQLite transaction as the data (exactly once).
public actor SQLiteSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var path: String
        /// Target table for a source table. Default: the source table's name.
        public var targetTable: @Sendable (TableName) -> String
        public var schemaChanges: SchemaChangePolicy

        public init(name: String, pipeline: String, path: String, targetTable: @escaping @Sendable (TableName) -> String = { $0.table },
                    schemaChanges: SchemaChangePolicy = SchemaChangePolicy()) {
            self.name = name
            self.pipeline = pipeline
            self.path = path
            self.targetTable = targetTable
            self.schemaChanges = schemaChanges
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    var connection: SQLiteConnection?
    private var schema: TargetSchema
    /// Which source table writes each target table: two may not share one.
    private var targets = TargetTableRegistry()

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.schema = TargetSchema(policy: configuration.schemaChanges, dialect: SQLiteDialect())
    }

    public func open() async throws -> SourcePosition? {
        let directory = (configuration.path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let connection = try await SQLiteConnection.open(storage: .file(path: configuration.path), logger: logger)
        self.connection = connection
        _ = try await connection.query("PRAGMA journal_mode = WAL")
        _ = try await connection.query("PRAGMA synchronous = FULL")
        _ = try await connection.query("""
            CREATE TABLE IF NOT EXISTS ferry_offsets (pipeline TEXT NOT NULL, sink TEXT NOT NULL, lane INTEGER NOT NULL,
              position TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (pipeline, sink, lane))
            """)
        let rows = try await connection.query("SELECT position FROM ferry_offsets WHERE pipeline = ? AND sink = ? AND lane = 0",
                                              [.text(configuration.pipeline), .text(name)])
        return rows.first?.column("position")?.string.flatMap(SourcePosition.init(persistedJSON:))
    }

    public func close() async throws {
        guard let connection else { return }
        self.connection = nil
        // The future-based close runs also when this task is cancelled (a worker that stops closes
        // its session), where the async one would refuse and leave the file open.
        try await connection.close().get()
    }

    public func apply(_ transactions: [Transaction]) async throws {
        guard let connection, let last = transactions.last else { return }
        var operations = RowOperations(maximumCells: 30_000)
        var targets = self.targets
        try operations.add(transactions) { event in
            let table = configuration.targetTable(event.table)
            try targets.register(table, for: event.table, sink: name)
            return table
        }
        self.targets = targets
        var schema = self.schema
        let describe: (String) async throws -> TargetTable = { table in
            let columns = try await connection.query("PRAGMA table_info(\(doubleQuoted(table)))")
            let key = columns.compactMap { row -> (Int, String)? in
                guard let position = row.column("pk")?.integer, position > 0, let name = row.column("name")?.string else { return nil }
                return (position, name)
            }
            return TargetTable(columns: columns.map {
                TargetColumn(name: $0.column("name")?.string ?? "", type: $0.column("type")?.string ?? "", notNull: $0.column("notnull")?.integer == 1)
            }, key: key.sorted { $0.0 < $1.0 }.map(\.1))
        }
        let execute: (String) async throws -> Void = { sql in _ = try await connection.query(sql) }
        do {
            // SQLite's DDL is transactional: tables, schema changes, rows and the offset commit together.
            _ = try await connection.query("BEGIN IMMEDIATE")
            try await schema.apply(operations.groups, sink: name, targetTable: configuration.targetTable, describe: describe, execute: execute,
                                   logger: logger) { group in
                let statement = Self.statement(for: group)
                _ = try await connection.query(statement.sql, statement.binds)
            }
            _ = try await connection.query("""
                INSERT INTO ferry_offsets (pipeline, sink, lane, position, updated_at) VALUES (?, ?, 0, ?, ?)
                ON CONFLICT (pipeline, sink, lane) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
                """, [.text(configuration.pipeline), .text(name), .text(last.position.persistedJSON), .text(WallClock.iso8601UTC())])
            _ = try await connection.query("COMMIT")
            self.schema = schema
        } catch {
            _ = try? await connection.query("ROLLBACK")
            self.schema.forget()
            if let refused = error as? FerryError { throw refused }
            throw SQLiteSinkError(underlying: error, sink: name)
        }
    }

    /// One multi-row statement for a group of row operations.
    static func statement(for group: RowOperations.Group) -> (sql: String, binds: [SQLiteData]) {
        switch group {
        case .schemaChange:
            preconditionFailure("schema changes are applied by TargetSchema, not written as rows")
        case .upsert(let table, let schema, let columns, let rows):
            let names = columns.map { doubleQuoted(schema.columnName($0)) }
            let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
            var sql = "INSERT INTO \(doubleQuoted(table)) (\(names.joined(separator: ", "))) VALUES "
                + Array(repeating: tuple, count: rows.count).joined(separator: ", ")
            if !schema.primaryKey.isEmpty {
                let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(doubleQuoted(schema.columnName($0))) = excluded.\(doubleQuoted(schema.columnName($0)))" }
                let conflict = schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ")
                sql += " ON CONFLICT (\(conflict)) DO " + (updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", "))
            }
            return (sql, rows.flatMap { row in columns.map { SQLiteTypeMapping.data(row[$0]) } })
        case .delete(let table, let schema, let key, let rows):
            if schema.primaryKey.isEmpty {
                let conditions = key.map { "\(doubleQuoted(schema.columnName($0))) IS ?" }.joined(separator: " AND ")
                return ("DELETE FROM \(doubleQuoted(table)) WHERE rowid = (SELECT rowid FROM \(doubleQuoted(table)) WHERE \(conditions) LIMIT 1)",
                        key.map { SQLiteTypeMapping.data(rows[0][$0]) })
            }
            let tuple = "(" + Array(repeating: "?", count: key.count).joined(separator: ", ") + ")"
            let columns = "(" + key.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ")"
            return ("DELETE FROM \(doubleQuoted(table)) WHERE \(columns) IN (VALUES \(Array(repeating: tuple, count: rows.count).joined(separator: ", ")))",
                    rows.flatMap { row in key.map { SQLiteTypeMapping.data(row[$0]) } })
        }
    }
}

/// SQLite's spelling of table changes. Columns keep no type (SQLite is dynamically typed), so a
/// retyped column needs nothing.
struct SQLiteDialect: SchemaDialect {
    func identifier(_ name: String) -> String { doubleQuoted(name) }

    func table(_ name: String) -> String { doubleQuoted(name) }

    func columnType(_ typeName: String) -> String { SQLiteTypeMapping.columnType(typeName) }

    func createTable(_ table: String, schema: TableSchema) -> String {
        var definitions = schema.columns.indices.map { "\(doubleQuoted(schema.columnName($0))) \(columnType(schema.columns[$0].typeName))" }
        if !schema.primaryKey.isEmpty {
            definitions.append("PRIMARY KEY (\(schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ")))")
        }
        return "CREATE TABLE IF NOT EXISTS \(doubleQuoted(table)) (\(definitions.joined(separator: ", ")))"
    }

    func modifyColumn(_ table: String, column: String, typeName: String) -> String? { nil }

    func allowNull(_ table: String, columns: [TargetColumn], current: TargetTable) -> [String]? {
        let relaxed = Set(columns.map(\.name))
        var nullable = current
        for index in nullable.columns.indices where relaxed.contains(nullable.columns[index].name) { nullable.columns[index].notNull = false }
        return rebuild(table, current: nullable, key: current.key)
    }

    func replaceKey(_ table: String, current: TargetTable, key: [String]) -> [String]? {
        rebuild(table, current: current, key: key)
    }

    func truncateTable(_ table: String) -> String { "DELETE FROM \(doubleQuoted(table))" }
}

/// A failed write, with the sink named; SQLite's busy and I/O errors are worth retrying.
struct SQLiteSinkError: ClassifiedError, CustomStringConvertible, FerryErrorConvertible {
    var underlying: any Error
    var sink: String

    var isTransient: Bool {
        let text = "\(underlying)".lowercased()
        return text.contains("busy") || text.contains("locked") || text.contains("disk i/o")
    }


    var ferryError: FerryError {
        FerryError(code: isTransient ? .sinkSQLiteBusy : .sinkSQLiteRejected, message: "SQLite sink \(sink) could not apply a batch: \(underlying)",
                   fix: isTransient ? nil : "check the target table's definition against the source (types, constraints)", disposition: disposition)
    }
}

extension SQLiteSink {
    /// The keys of a `type: sqlite` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("path", .text, required: true, doc: "the SQLite file; created with its tables when missing"),
        .schemaChanges,
    ]
}

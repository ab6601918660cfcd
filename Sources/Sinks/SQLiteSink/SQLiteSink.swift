import FerryCore
import Foundation
import Logging
import NIOCore
import SQLiteNIO

/// A SQLite database file as a target: tables created from the source schema, upserts by primary
/// key, deletes, primary-key changes, added columns — and the applied position in
/// `ferry_offsets`, written in the same SQLite transaction as the data (exactly once).
public actor SQLiteSink: Sink {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var path: String
        /// Target table for a source table. Default: the source table's name.
        public var targetTable: @Sendable (TableName) -> String

        public init(name: String, pipeline: String, path: String, targetTable: @escaping @Sendable (TableName) -> String = { $0.table }) {
            self.name = name
            self.pipeline = pipeline
            self.path = path
            self.targetTable = targetTable
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: SQLiteConnection?
    /// Known columns per target table.
    private var tables: [String: Set<String>] = [:]
    /// Which source table writes each target table: two may not share one.
    private var origins: [String: TableName] = [:]

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
    }

    public func open() async throws -> BinlogPosition? {
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
        return rows.first?.column("position")?.string.flatMap(BinlogPosition.init(persistedJSON:))
    }

    public func close() async throws {
        try await connection?.close()
        connection = nil
    }

    public func apply(_ transactions: [Transaction]) async throws {
        guard let connection, let last = transactions.last else { return }
        var statements = StatementBatcher()
        for transaction in transactions {
            for event in transaction.events {
                guard let schema = event.schema else { continue }
                let table = configuration.targetTable(event.table)
                if let origin = origins[table], origin != event.table {
                    throw FerryError(code: "config.target_table_collision",
                                     message: "source tables \(origin) and \(event.table) would both land on table \(table) of sink \(name)",
                                     fix: "set target_table: \"{db}_{table}\" on the pipeline, or exclude one of the tables")
                }
                origins[table] = event.table
                try await ensureTable(table, schema: schema, connection: connection)
                let key = schema.primaryKey
                switch event.operation {
                case .create, .read:
                    if let after = event.after { statements.upsert(table: table, schema: schema, row: after) }
                case .update:
                    guard let before = event.before, let after = event.after else { continue }
                    if !key.isEmpty, key.contains(where: { after[$0] != .absent && before[$0] != after[$0] }) {
                        statements.delete(table: table, schema: schema, row: before)
                    } else if key.isEmpty {
                        statements.delete(table: table, schema: schema, row: before)
                    }
                    statements.upsert(table: table, schema: schema, row: Self.merged(before: before, after: after))
                case .delete:
                    if let before = event.before { statements.delete(table: table, schema: schema, row: before) }
                case .ddl:
                    continue
                }
            }
        }
        statements.flush()
        do {
            _ = try await connection.query("BEGIN IMMEDIATE")
            for statement in statements.statements { _ = try await connection.query(statement.sql, statement.binds) }
            _ = try await connection.query("""
                INSERT INTO ferry_offsets (pipeline, sink, lane, position, updated_at) VALUES (?, ?, 0, ?, ?)
                ON CONFLICT (pipeline, sink, lane) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
                """, [.text(configuration.pipeline), .text(name), .text(last.position.persistedJSON), .text(ISO8601DateFormatter().string(from: Date()))])
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw SQLiteSinkError(underlying: error, sink: name)
        }
    }

    /// An update's after image with columns it lacks (partial images) taken from before.
    static func merged(before: Row, after: Row) -> Row {
        zip(before, after).map { $1 == .absent ? $0 : $1 }
    }

    private func ensureTable(_ table: String, schema: TableSchema, connection: SQLiteConnection) async throws {
        let wanted = schema.columns.indices.map { schema.columnName($0) }
        if let known = tables[table], wanted.allSatisfy(known.contains) { return }
        var existing = Set(try await connection.query("PRAGMA table_info(\(quote(table)))").compactMap { $0.column("name")?.string })
        if existing.isEmpty {
            var definitions = schema.columns.indices.map { "\(quote(schema.columnName($0))) \(SQLiteTypeMapping.columnType(schema.columns[$0].typeName))" }
            if !schema.primaryKey.isEmpty {
                definitions.append("PRIMARY KEY (\(schema.primaryKey.map { quote(schema.columnName($0)) }.joined(separator: ", ")))")
            }
            _ = try await connection.query("CREATE TABLE IF NOT EXISTS \(quote(table)) (\(definitions.joined(separator: ", ")))")
            existing = Set(wanted)
        } else {
            for index in schema.columns.indices where !existing.contains(schema.columnName(index)) {
                _ = try await connection.query("ALTER TABLE \(quote(table)) ADD COLUMN \(quote(schema.columnName(index))) \(SQLiteTypeMapping.columnType(schema.columns[index].typeName))")
                existing.insert(schema.columnName(index))
            }
        }
        tables[table] = existing
    }
}

/// Groups consecutive row operations of one kind on one table into multi-row statements,
/// keeping source order.
struct StatementBatcher {
    struct Statement {
        var sql: String
        var binds: [SQLiteData]
    }

    private enum Pending {
        case upsert(table: String, columns: [Int], schema: TableSchema, rows: [Row])
        case delete(table: String, key: [Int], schema: TableSchema, rows: [Row])
    }

    private(set) var statements: [Statement] = []
    private var pending: Pending?
    /// SQLite allows 32766 bound parameters per statement.
    static let maximumBinds = 30000

    mutating func upsert(table: String, schema: TableSchema, row: Row) {
        let columns = row.indices.filter { row[$0] != .absent }
        if case .upsert(let t, let c, let s, var rows) = pending, t == table, c == columns, s === schema,
           (rows.count + 1) * columns.count <= Self.maximumBinds {
            rows.append(row)
            pending = .upsert(table: t, columns: c, schema: s, rows: rows)
            return
        }
        flush()
        pending = .upsert(table: table, columns: columns, schema: schema, rows: [row])
    }

    mutating func delete(table: String, schema: TableSchema, row: Row) {
        let key = schema.primaryKey.isEmpty ? Array(row.indices.filter { row[$0] != .absent }) : schema.primaryKey
        if !schema.primaryKey.isEmpty, case .delete(let t, let k, let s, var rows) = pending, t == table, k == key, s === schema,
           (rows.count + 1) * key.count <= Self.maximumBinds {
            rows.append(row)
            pending = .delete(table: t, key: k, schema: s, rows: rows)
            return
        }
        flush()
        pending = .delete(table: table, key: key, schema: schema, rows: [row])
    }

    mutating func flush() {
        guard let pending else { return }
        self.pending = nil
        switch pending {
        case .upsert(let table, let columns, let schema, let rows):
            let names = columns.map { quote(schema.columnName($0)) }
            let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
            var sql = "INSERT INTO \(quote(table)) (\(names.joined(separator: ", "))) VALUES "
                + Array(repeating: tuple, count: rows.count).joined(separator: ", ")
            if !schema.primaryKey.isEmpty {
                let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(quote(schema.columnName($0))) = excluded.\(quote(schema.columnName($0)))" }
                let conflict = schema.primaryKey.map { quote(schema.columnName($0)) }.joined(separator: ", ")
                sql += " ON CONFLICT (\(conflict)) DO " + (updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", "))
            }
            statements.append(Statement(sql: sql, binds: rows.flatMap { row in columns.map { SQLiteTypeMapping.data(row[$0]) } }))
        case .delete(let table, let key, let schema, let rows):
            if schema.primaryKey.isEmpty {
                let row = rows[0]
                let conditions = key.map { "\(quote(schema.columnName($0))) IS ?" }.joined(separator: " AND ")
                statements.append(Statement(sql: "DELETE FROM \(quote(table)) WHERE rowid = (SELECT rowid FROM \(quote(table)) WHERE \(conditions) LIMIT 1)",
                                            binds: key.map { SQLiteTypeMapping.data(row[$0]) }))
            } else {
                let tuple = "(" + Array(repeating: "?", count: key.count).joined(separator: ", ") + ")"
                let columns = "(" + key.map { quote(schema.columnName($0)) }.joined(separator: ", ") + ")"
                statements.append(Statement(
                    sql: "DELETE FROM \(quote(table)) WHERE \(columns) IN (VALUES \(Array(repeating: tuple, count: rows.count).joined(separator: ", ")))",
                    binds: rows.flatMap { row in key.map { SQLiteTypeMapping.data(row[$0]) } }))
            }
        }
    }
}

/// A quoted SQLite identifier.
func quote(_ identifier: String) -> String {
    "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// A failed write, with the sink named; SQLite's busy and I/O errors are worth retrying.
struct SQLiteSinkError: ClassifiedError, CustomStringConvertible, FerryErrorConvertible {
    var underlying: any Error
    var sink: String

    var isTransient: Bool {
        let text = "\(underlying)".lowercased()
        return text.contains("busy") || text.contains("locked") || text.contains("disk i/o")
    }

    var description: String { ferryError.description }

    var ferryError: FerryError {
        FerryError(code: isTransient ? "sink.sqlite.busy" : "sink.sqlite.rejected", message: "SQLite sink \(sink) could not apply a batch: \(underlying)",
                   fix: isTransient ? nil : "check the target table's definition against the source (types, constraints)")
    }
}

import FerryCore
import Logging
import NIOCore
import PostgresNIO
import SinkSupport

/// A PostgreSQL database as a target: tables created from the source schema with exact types
/// (numeric for DECIMAL, timestamptz for TIMESTAMP, jsonb for JSON, bytea for BLOB, …),
/// `INSERT … ON CONFLICT DO UPDATE` upserts, deletes, primary-key changes, added columns — and
/// `ferry_offsets` written in the same transaction as the data. Identifiers are always quoted.
public actor PostgresSink: Sink {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var connection: PostgresConnection.Configuration
        /// Schema tables land in. Default `public`.
        public var schema: String
        public var targetTable: @Sendable (TableName) -> String

        public init(name: String, pipeline: String, connection: PostgresConnection.Configuration, schema: String = "public",
                    targetTable: @escaping @Sendable (TableName) -> String = { $0.table }) {
            self.name = name
            self.pipeline = pipeline
            self.connection = connection
            self.schema = schema
            self.targetTable = targetTable
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: PostgresConnection?
    private var tables: [String: Set<String>] = [:]
    private var targets = TargetTableRegistry()
    private var nextConnectionID = 1
    /// Connections given up on after a failure. postgres-nio traps when a connection the server
    /// already ended is closed again, and asserts when one is released unclosed, so they are kept.
    private var abandoned: [PostgresConnection] = []

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
    }

    private func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        do {
            nextConnectionID += 1
            let connection = try await PostgresConnection.connect(configuration: configuration.connection, id: nextConnectionID, logger: logger)
            self.connection = connection
            return connection
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    public func open() async throws -> BinlogPosition? {
        let connection = try await connected()
        do {
            try await connection.query(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(qualified("ferry_offsets")) (pipeline text NOT NULL, sink text NOT NULL, lane integer NOT NULL,
                  position text NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (pipeline, sink, lane))
                """), logger: logger)
            let rows = try await connection.query("SELECT position FROM \(unescaped: qualified("ferry_offsets")) WHERE pipeline = \(configuration.pipeline) AND sink = \(name) AND lane = 0",
                                                  logger: logger)
            for try await position in rows.decode(String.self) { return BinlogPosition(persistedJSON: position) }
            return nil
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    public func close() async throws {
        try? await connection?.close()
        connection = nil
    }

    /// Abandons the connection after a batch that never finished; an attempt stuck on a dead
    /// connection cannot commit anyway.
    public func reset() async {
        abandonConnection()
    }

    private func abandonConnection() {
        if let connection { abandoned.append(connection) }
        connection = nil
    }

    public func apply(_ transactions: [Transaction]) async throws {
        guard let last = transactions.last else { return }
        var operations = RowOperations(maximumCells: 30_000)
        var targets = self.targets
        try operations.add(transactions) { event in
            let table = configuration.targetTable(event.table)
            try targets.register(table, for: event.table, sink: name)
            return table
        }
        self.targets = targets
        let connection = try await connected()
        do {
            for group in operations.groups {
                switch group {
                case .upsert(let table, let schema, _, _), .delete(let table, let schema, _, _):
                    try await ensureTable(table, schema: schema, connection: connection)
                }
            }
            try await connection.query("BEGIN", logger: logger)
            for group in operations.groups {
                try await connection.query(statement(for: group), logger: logger)
            }
            try await connection.query("""
                INSERT INTO \(unescaped: qualified("ferry_offsets")) (pipeline, sink, lane, position, updated_at)
                VALUES (\(configuration.pipeline), \(name), 0, \(last.position.persistedJSON), now())
                ON CONFLICT (pipeline, sink, lane) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
                """, logger: logger)
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            let failure = PostgresSinkError(underlying: error, sink: name)
            if failure.isTransient { abandonConnection() }
            throw failure
        }
    }

    func qualified(_ table: String) -> String { doubleQuoted(configuration.schema) + "." + doubleQuoted(table) }

    /// One statement with bound parameters, each cast to its column's PostgreSQL type.
    func statement(for group: RowOperations.Group) -> PostgresQuery {
        var bindings = PostgresBindings()
        var parameter = 0
        func placeholders(_ row: Row, _ columns: [Int], _ schema: TableSchema) -> String {
            "(" + columns.map { column in
                parameter += 1
                PostgresTypeMapping.bind(row[column], into: &bindings)
                return "$\(parameter)::\(PostgresTypeMapping.columnType(schema.columns[column].typeName))"
            }.joined(separator: ", ") + ")"
        }
        switch group {
        case .upsert(let table, let schema, let columns, let rows):
            // ON CONFLICT may not touch one row twice in a statement: keep each key's last row.
            var unique = rows
            if !schema.primaryKey.isEmpty {
                var seen = Set<[Value]>()
                unique = rows.reversed().filter { row in seen.insert(schema.primaryKey.map { row[$0] }).inserted }.reversed()
            }
            var sql = "INSERT INTO \(qualified(table)) (" + columns.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") VALUES "
            sql += unique.map { placeholders($0, columns, schema) }.joined(separator: ", ")
            if !schema.primaryKey.isEmpty {
                let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(doubleQuoted(schema.columnName($0))) = EXCLUDED.\(doubleQuoted(schema.columnName($0)))" }
                sql += " ON CONFLICT (" + schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") DO "
                sql += updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", ")
            }
            return PostgresQuery(unsafeSQL: sql, binds: bindings)
        case .delete(let table, let schema, let key, let rows):
            if schema.primaryKey.isEmpty {
                let conditions = key.map { column -> String in
                    parameter += 1
                    PostgresTypeMapping.bind(rows[0][column], into: &bindings)
                    return "\(doubleQuoted(schema.columnName(column))) IS NOT DISTINCT FROM $\(parameter)::\(PostgresTypeMapping.columnType(schema.columns[column].typeName))"
                }.joined(separator: " AND ")
                return PostgresQuery(unsafeSQL: "DELETE FROM \(qualified(table)) WHERE ctid = (SELECT ctid FROM \(qualified(table)) WHERE \(conditions) LIMIT 1)",
                                     binds: bindings)
            }
            let columns = "(" + key.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ")"
            let tuples = rows.map { placeholders($0, key, schema) }.joined(separator: ", ")
            return PostgresQuery(unsafeSQL: "DELETE FROM \(qualified(table)) WHERE \(columns) IN (\(tuples))", binds: bindings)
        }
    }

    private func ensureTable(_ table: String, schema: TableSchema, connection: PostgresConnection) async throws {
        let wanted = schema.columns.indices.map { schema.columnName($0) }
        if let known = tables[table], wanted.allSatisfy(known.contains) { return }
        var existing = Set<String>()
        let rows = try await connection.query("""
            SELECT column_name FROM information_schema.columns WHERE table_schema = \(configuration.schema) AND table_name = \(table)
            """, logger: logger)
        for try await column in rows.decode(String.self) { existing.insert(column) }
        if existing.isEmpty {
            var definitions = schema.columns.indices.map { index in
                "\(doubleQuoted(schema.columnName(index))) \(PostgresTypeMapping.columnType(schema.columns[index].typeName))" + (schema.columns[index].nullable ? "" : " NOT NULL")
            }
            if !schema.primaryKey.isEmpty {
                definitions.append("PRIMARY KEY (" + schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ")")
            }
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(qualified(table)) (\(definitions.joined(separator: ", ")))"), logger: logger)
            existing = Set(wanted)
        } else {
            for index in schema.columns.indices where !existing.contains(schema.columnName(index)) {
                try await connection.query(PostgresQuery(unsafeSQL:
                    "ALTER TABLE \(qualified(table)) ADD COLUMN \(doubleQuoted(schema.columnName(index))) \(PostgresTypeMapping.columnType(schema.columns[index].typeName))"),
                    logger: logger)
                existing.insert(schema.columnName(index))
            }
        }
        tables[table] = existing
    }
}


/// A failed write; lost connections, serialization failures, deadlocks and shutdowns are retried.
struct PostgresSinkError: ClassifiedError, CustomStringConvertible, FerryErrorConvertible {
    var underlying: any Error
    var sink: String

    var isTransient: Bool {
        guard let error = underlying as? PSQLError else { return true }
        if error.code == .server {
            let state = error.serverInfo?[.sqlState] ?? ""
            return state == "40001" || state == "40P01" || state.hasPrefix("08") || state.hasPrefix("57P")
        }
        return [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown].contains(error.code)
    }

    var description: String { ferryError.description }

    var ferryError: FerryError {
        var message = "\(underlying)"
        if let error = underlying as? PSQLError, let server = error.serverInfo {
            message = "\(server[.sqlState] ?? "") \(server[.message] ?? "")" + (server[.detail].map { " (\($0))" } ?? "")
        }
        return FerryError(code: isTransient ? "sink.postgres.unavailable" : "sink.postgres.rejected",
                          message: "PostgreSQL sink \(sink): \(message)",
                          fix: isTransient ? nil : "check the target table against the source schema (types, constraints, NUL characters in text)")
    }
}

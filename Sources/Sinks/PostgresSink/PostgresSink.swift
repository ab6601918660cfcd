import FerryCore
import Logging
import NIOCore
import PostgresNIO
import SinkSupport

/// A PostgreSQL database as a target: tables created from the source schema with exact types
/// (numeric for DECIMAL, timestamptz for TIMESTAMP, jsonb for JSON, bytea for BLOB, …),
/// `INSERT … ON CONFLICT DO UPDATE` upserts, deletes, primary-key changes, added columns — and
/// `ferry_offsets` written in the same transaction as the data. Identifiers are always quoted.
public actor PostgresSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var connection: PostgresConnection.Configuration
        /// Schema tables land in. Default `public`.
        public var schema: String
        public var targetTable: @Sendable (TableName) -> String
        public var schemaChanges: SchemaChangePolicy
        /// The lane this instance writes (its own `ferry_offsets` row). Default 0.
        public var lane: Int

        public init(name: String, pipeline: String, connection: PostgresConnection.Configuration, schema: String = "public",
                    targetTable: @escaping @Sendable (TableName) -> String = { $0.table }, schemaChanges: SchemaChangePolicy = SchemaChangePolicy(),
                    lane: Int = 0) {
            self.name = name
            self.pipeline = pipeline
            self.connection = connection
            self.schema = schema
            self.targetTable = targetTable
            self.schemaChanges = schemaChanges
            self.lane = lane
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: PostgresConnection?
    private var closeWatch: ConnectionCloseWatch?
    private var tableSchema: TargetSchema
    private var targets = TargetTableRegistry()
    private var nextConnectionID = 1
    private nonisolated let interrupter = ConnectionInterrupter()
    /// Which tables' large groups are tried as plain INSERTs first.
    private var insertFirst = InsertFirst()
    static let insertFirstRows = 1000

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.tableSchema = TargetSchema(policy: configuration.schemaChanges, dialect: PostgresDialect(schema: configuration.schema))
    }

    /// The session's connection (made when there is none) with its close watch, through which
    /// every statement goes.
    private func connected() async throws -> ConnectionCloseWatch {
        if let connection, !connection.isClosed, let closeWatch { return closeWatch }
        do {
            guard !interrupter.isFired else { throw CancellationError() }
            nextConnectionID += 1
            let connection = try await PostgresConnection.connect(configuration: configuration.connection, id: nextConnectionID, logger: logger)
            let watch = ConnectionCloseWatch(connection)
            self.connection = connection
            self.closeWatch = watch
            interrupter.register { connection.close().whenComplete { _ in } }
            return watch
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    public func open() async throws -> SourcePosition? {
        let watched = try await connected()
        do {
            try await watched.query(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(qualified("ferry_offsets")) (pipeline text NOT NULL, sink text NOT NULL, lane integer NOT NULL,
                  position text NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (pipeline, sink, lane))
                """), logger: logger)
            let rows = try await watched.query("SELECT position FROM \(unescaped: qualified("ferry_offsets")) WHERE pipeline = \(configuration.pipeline) AND sink = \(name) AND lane = \(configuration.lane)",
                                                  logger: logger)
            for try await position in rows.decode(String.self) { return SourcePosition(persistedJSON: position) }
            return nil
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    public func close() async throws {
        interrupter.clear()
        if let connection, !connection.isClosed { try? await connection.close() }
        connection = nil
        closeWatch = nil
    }

    /// Closes the connection: a statement in progress fails at once, and an open transaction
    /// ends with the connection, uncommitted.
    public nonisolated func interrupt() {
        interrupter.fire()
    }

    public func apply(_ transactions: [Transaction]) async throws {
        guard let last = transactions.last else { return }
        var operations = RowOperations(maximumCells: 1_000_000)
        var targets = self.targets
        try operations.add(transactions) { event in
            let table = configuration.targetTable(event.table)
            try targets.register(table, for: event.table, sink: name)
            return table
        }
        self.targets = targets
        let watched = try await connected()
        var tableSchema = self.tableSchema
        let logger = self.logger
        let schemaName = configuration.schema
        let columns: (String) async throws -> Set<String> = { table in
            var existing = Set<String>()
            let rows = try await watched.query("""
                SELECT column_name FROM information_schema.columns WHERE table_schema = \(schemaName) AND table_name = \(table)
                """, logger: logger)
            for try await column in rows.decode(String.self) { existing.insert(column) }
            return existing
        }
        let execute: (String) async throws -> Void = { sql in try await watched.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
        do {
            // PostgreSQL's DDL is transactional: tables, schema changes, rows and the offset commit together.
            try await watched.query("BEGIN", logger: logger)
            var insertFirst = self.insertFirst
            let write: (RowOperations.Group) async throws -> Void = { group in
                // A large group of new rows (a snapshot chunk, a bulk insert) goes in as a plain
                // INSERT, which costs PostgreSQL about half of ON CONFLICT; the first existing key
                // rolls it back to the savepoint and the upsert runs instead. A table where that
                // happened is upserted directly for a while. (COPY would be faster still, but
                // postgres-nio cannot survive a connection closing during one.)
                if case .upsert(let table, let schema, _, let rows) = group, rows.count >= Self.insertFirstRows, !schema.primaryKey.isEmpty {
                    if insertFirst.shouldTry(table) {
                        try await watched.query("SAVEPOINT ferry_insert", logger: logger)
                        do {
                            try await watched.query(Self.statement(for: group, schema: schemaName, upsert: false), logger: logger)
                            try await watched.query("RELEASE SAVEPOINT ferry_insert", logger: logger)
                            insertFirst.succeeded(table)
                            return
                        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                            try await watched.query("ROLLBACK TO SAVEPOINT ferry_insert", logger: logger)
                            insertFirst.failed(table)
                        }
                    } else {
                        insertFirst.skipped(table)
                    }
                }
                try await watched.query(Self.statement(for: group, schema: schemaName), logger: logger)
            }
            try await tableSchema.apply(operations.groups, sink: name, targetTable: configuration.targetTable, columns: columns, execute: execute,
                                        logger: logger, write: write)
            try await watched.query("""
                INSERT INTO \(unescaped: qualified("ferry_offsets")) (pipeline, sink, lane, position, updated_at)
                VALUES (\(configuration.pipeline), \(name), \(configuration.lane), \(last.position.persistedJSON), now())
                ON CONFLICT (pipeline, sink, lane) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
                """, logger: logger)
            try await watched.query("COMMIT", logger: logger)
            self.tableSchema = tableSchema
            self.insertFirst = insertFirst
        } catch {
            _ = try? await watched.query("ROLLBACK", logger: logger)
            self.tableSchema.forget()
            if let refused = error as? FerryError { throw refused }
            // A transient failure ends this session: its owner closes it and retries on a new one.
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    func qualified(_ table: String) -> String { PostgresDialect(schema: configuration.schema).table(table) }

    /// One `text[]` parameter per column of `rows`.
    static func arrays(_ rows: [Row], _ columns: [Int]) -> PostgresBindings {
        var arrays = columns.map { _ in PostgresTextArray(capacity: rows.count) }
        for row in rows {
            for index in columns.indices { arrays[index].append(row[columns[index]]) }
        }
        var bindings = PostgresBindings(capacity: columns.count)
        for array in arrays { bindings.append(array) }
        return bindings
    }

    /// The connection `ferry verify` reads through.
    func verifyConnection() async throws -> ConnectionCloseWatch { try await connected() }

    /// One statement for a group: the rows travel as one `text[]` parameter per column and are
    /// cast to each column's PostgreSQL type in the statement.
    /// `upsert: false` writes an upsert group as a plain INSERT (no ON CONFLICT), which fails on
    /// the first existing key.
    static func statement(for group: RowOperations.Group, schema schemaName: String, upsert: Bool = true) -> PostgresQuery {
        func qualified(_ table: String) -> String { PostgresDialect(schema: schemaName).table(table) }
        func unnest(_ count: Int) -> String {
            "unnest(" + (1...count).map { "$\($0)::text[]" }.joined(separator: ", ") + ") AS u(" + (1...count).map { "c\($0)" }.joined(separator: ", ") + ")"
        }
        func cast(_ position: Int, _ column: Int, _ schema: TableSchema) -> String {
            "u.c\(position)::\(PostgresTypeMapping.columnType(schema.columns[column].typeName))"
        }
        switch group {
        case .schemaChange:
            preconditionFailure("schema changes are applied by TargetSchema, not written as rows")
        case .upsert(let table, let schema, let columns, let rows):
            // ON CONFLICT may not touch one row twice in a statement: keep each key's last row.
            let unique = schema.primaryKey.isEmpty ? rows : RowOperations.lastRowPerKey(rows, key: schema.primaryKey)
            var sql = "INSERT INTO \(qualified(table)) (" + columns.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") SELECT "
            sql += columns.enumerated().map { cast($0.offset + 1, $0.element, schema) }.joined(separator: ", ") + " FROM " + unnest(columns.count)
            if upsert, !schema.primaryKey.isEmpty {
                let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(doubleQuoted(schema.columnName($0))) = EXCLUDED.\(doubleQuoted(schema.columnName($0)))" }
                sql += " ON CONFLICT (" + schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") DO "
                sql += updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", ")
            }
            return PostgresQuery(unsafeSQL: sql, binds: Self.arrays(unique, columns))
        case .delete(let table, let schema, let key, let rows):
            // Key columns are NOT NULL and `=` can use the key's index; without a key, NULLs match.
            let equals = schema.primaryKey.isEmpty ? "IS NOT DISTINCT FROM" : "="
            let conditions = key.enumerated().map { position, column in
                "t.\(doubleQuoted(schema.columnName(column))) \(equals) \(cast(position + 1, column, schema))"
            }.joined(separator: " AND ")
            if schema.primaryKey.isEmpty {
                // Without a key, one matching row goes (duplicates are allowed).
                return PostgresQuery(unsafeSQL: "DELETE FROM \(qualified(table)) WHERE ctid = (SELECT t.ctid FROM \(qualified(table)) t, \(unnest(key.count)) WHERE \(conditions) LIMIT 1)",
                                     binds: Self.arrays(rows, key))
            }
            return PostgresQuery(unsafeSQL: "DELETE FROM \(qualified(table)) t USING \(unnest(key.count)) WHERE \(conditions)", binds: Self.arrays(rows, key))
        }
    }
}

/// Per table: try large groups as plain INSERTs, until one hits an existing key; then upsert
/// directly for the next 16 groups (a table being updated rather than filled).
struct InsertFirst: Sendable {
    private var skip: [String: Int] = [:]

    func shouldTry(_ table: String) -> Bool { (skip[table] ?? 0) == 0 }

    mutating func succeeded(_ table: String) { skip[table] = nil }

    mutating func failed(_ table: String) { skip[table] = 16 }

    /// Called for groups upserted directly.
    mutating func skipped(_ table: String) {
        if let left = skip[table], left > 0 { skip[table] = left - 1 }
    }
}

/// PostgreSQL's spelling of table changes, in the sink's schema.
struct PostgresDialect: SchemaDialect {
    let schema: String

    func identifier(_ name: String) -> String { doubleQuoted(name) }

    func table(_ name: String) -> String { doubleQuoted(schema) + "." + doubleQuoted(name) }

    func columnType(_ typeName: String) -> String { PostgresTypeMapping.columnType(typeName) }

    func createTable(_ table: String, schema tableSchema: TableSchema) -> String {
        var definitions = tableSchema.columns.indices.map { index in
            "\(doubleQuoted(tableSchema.columnName(index))) \(columnType(tableSchema.columns[index].typeName))"
                + (tableSchema.columns[index].nullable ? "" : " NOT NULL")
        }
        if !tableSchema.primaryKey.isEmpty {
            definitions.append("PRIMARY KEY (" + tableSchema.primaryKey.map { doubleQuoted(tableSchema.columnName($0)) }.joined(separator: ", ") + ")")
        }
        return "CREATE TABLE IF NOT EXISTS \(self.table(table)) (\(definitions.joined(separator: ", ")))"
    }

    func modifyColumn(_ table: String, column: String, typeName: String) -> String? {
        let type = columnType(typeName)
        return "ALTER TABLE \(self.table(table)) ALTER COLUMN \(doubleQuoted(column)) TYPE \(type) USING \(doubleQuoted(column))::\(type)"
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


    var ferryError: FerryError {
        var message = "\(underlying)"
        var fix: String? = isTransient ? nil : "check the target table against the source schema (types, constraints, NUL characters in text)"
        if let error = underlying as? PSQLError {
            if let server = error.serverInfo {
                message = "\(server[.sqlState] ?? "") \(server[.message] ?? "")" + (server[.detail].map { " (\($0))" } ?? "")
            } else {
                // PSQLError's own description hides everything; its code and cause are safe to show.
                message = "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
                if error.code == .connectionError {
                    fix = "check the host and port in the sink's url, that PostgreSQL is running and accepts connections from ferry"
                }
            }
        }
        return FerryError(code: isTransient ? .sinkPostgresUnavailable : .sinkPostgresRejected,
                          message: "PostgreSQL sink \(sink): \(message)", fix: fix, disposition: disposition)
    }
}


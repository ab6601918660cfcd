import FerryCore
import Logging
import NIOCore
import PostgresWire
import SinkSupport

/// A PostgreSQL database as a target: tables created from the source schema with exact types
/// (numeric for DECIMAL, timestamptz for TIMESTAMP, jsonb for JSON, bytea for BLOB, …),
/// `INSERT … ON CONFLICT DO UPDATE` upserts, deletes, primary-key changes, added columns — and
/// `ferry_offsets` written in the same transaction as the data. Identifiers are always quoted.
public actor PostgresSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var connection: PostgresWireConfiguration
        /// Schema tables land in. Default `public`.
        public var schema: String
        public var targetTable: @Sendable (TableName) -> String
        public var schemaChanges: SchemaChangePolicy
        /// The lane this instance writes (its own `ferry_offsets` row). Default 0.
        public var lane: Int
        /// Cluster mode: the epoch of this node's claim on the pipeline. It is stored beside the
        /// position, and a write whose epoch is older than the stored one is refused in its own
        /// transaction (`cluster.fenced`) — a former owner changes nothing. nil outside cluster mode.
        public var epoch: Int64?

        public init(name: String, pipeline: String, connection: PostgresWireConfiguration, schema: String = "public",
                    targetTable: @escaping @Sendable (TableName) -> String = { $0.table }, schemaChanges: SchemaChangePolicy = SchemaChangePolicy(),
                    lane: Int = 0, epoch: Int64? = nil) {
            self.name = name
            self.pipeline = pipeline
            // Values arrive in C-locale text (money as 1234.56): the session reads them so.
            var connection = connection
            connection.options.append(("options", "-c lc_monetary=C"))
            self.connection = connection
            self.schema = schema
            self.targetTable = targetTable
            self.schemaChanges = schemaChanges
            self.lane = lane
            self.epoch = epoch
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: PostgresWireConnection?
    private var tableSchema: TargetSchema
    private var targets = TargetTableRegistry()
    private nonisolated let interrupter = ConnectionInterrupter()
    /// Which tables' large groups are tried with COPY first.
    private var copyFirst = CopyFirst()
    static let copyFirstRows = 1000

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.tableSchema = TargetSchema(policy: configuration.schemaChanges, dialect: PostgresDialect(schema: configuration.schema))
    }

    /// The session's connection, made when there is none (or the last one ended).
    func connected() async throws -> PostgresWireConnection {
        if let connection, !connection.isClosed { return connection }
        guard !interrupter.isFired else { throw CancellationError() }
        do {
            let connection = try await PostgresWireConnection.connect(configuration.connection, logger: logger) { closer in
                interrupter.register { closer.close() }
            }
            self.connection = connection
            return connection
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    public func open() async throws -> SourcePosition? {
        let connection = try await connected()
        do {
            try await connection.simpleQuery("""
                CREATE TABLE IF NOT EXISTS \(qualified("ferry_offsets")) (pipeline text NOT NULL, sink text NOT NULL, lane integer NOT NULL,
                  position text NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (pipeline, sink, lane))
                """)
            if let epoch = configuration.epoch { try await takeOffsets(epoch: epoch, connection: connection) }
            let result = try await connection.query("SELECT position FROM \(qualified("ferry_offsets")) WHERE pipeline = $1 AND sink = $2 AND lane = $3",
                                                    [.text(configuration.pipeline), .text(name), .text(String(configuration.lane))])
            guard !result.rows.isEmpty, let position = result.text(0, 0) else { return nil }
            return SourcePosition(persistedJSON: position)
        } catch let refused as FerryError {
            throw refused
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    /// Cluster mode: marks this sink's `ferry_offsets` row with the claim's epoch before anything
    /// is written, so from now on a former owner's transactions are refused; refuses to go on
    /// when a newer owner has marked it already.
    private func takeOffsets(epoch: Int64, connection: PostgresWireConnection) async throws {
        let table = qualified("ferry_offsets")
        // Added once (ALTER takes a lock every pipeline's commit would queue behind).
        let column = try await connection.query("""
            SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'ferry_offsets' AND column_name = 'epoch'
            """, [.text(configuration.schema)])
        if column.rows.isEmpty {
            try await connection.simpleQuery("ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0")
        }
        let newer = try await connection.query("""
            SELECT epoch FROM \(table) WHERE pipeline = $1 AND sink = $2 AND lane = $3 AND epoch > $4
            """, [.text(configuration.pipeline), .text(name), .text(String(configuration.lane)), .text(String(epoch))])
        if let stored = newer.text(0, 0) { throw fenced(epoch: epoch, stored: stored) }
        try await connection.query("""
            UPDATE \(table) SET epoch = $4 WHERE pipeline = $1 AND sink = $2 AND lane = $3 AND epoch <= $4
            """, [.text(configuration.pipeline), .text(name), .text(String(configuration.lane)), .text(String(epoch))])
    }

    private func fenced(epoch: Int64, stored: String) -> FerryError {
        .fencedByTarget(sink: name, pipeline: configuration.pipeline, epoch: epoch, stored: stored, where: "the target's ferry_offsets", lane: configuration.lane)
    }

    public func close() async throws {
        interrupter.clear()
        await connection?.close()
        connection = nil
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
        let connection = try await connected()
        var tableSchema = self.tableSchema
        let schemaName = configuration.schema
        let describe: (String) async throws -> TargetTable = { table in
            let columns = try await connection.query("""
                SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a
                JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                """, [.text(schemaName), .text(table)])
            guard !columns.rows.isEmpty else { return .missing }
            let key = try await connection.query("""
                SELECT a.attname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum
                WHERE k.contype = 'p' AND n.nspname = $1 AND c.relname = $2 ORDER BY u.ord
                """, [.text(schemaName), .text(table)])
            return TargetTable(columns: columns.rows.indices.map {
                TargetColumn(name: columns.text($0, 0) ?? "", type: columns.text($0, 1) ?? "", notNull: columns.text($0, 2) == "t")
            }, key: key.rows.indices.compactMap { key.text($0, 0) }, keyName: key.rows.isEmpty ? nil : key.text(0, 1))
        }
        let execute: (String) async throws -> Void = { sql in try await connection.simpleQuery(sql) }
        do {
            // PostgreSQL's DDL is transactional: tables, schema changes, rows and the offset commit together.
            try await connection.simpleQuery("BEGIN")
            var copyFirst = self.copyFirst
            let write: (RowOperations.Group) async throws -> Void = { group in
                // A large group of new rows (a snapshot chunk, a bulk insert) is streamed by COPY,
                // PostgreSQL's fastest way in; the first existing key rolls it back to the
                // savepoint and the upsert runs instead. A table where that happened is upserted
                // directly for a while.
                if case .upsert(let table, let schema, let columns, let rows) = group, rows.count >= Self.copyFirstRows, !schema.primaryKey.isEmpty {
                    if copyFirst.shouldTry(table) {
                        try await connection.simpleQuery("SAVEPOINT ferry_copy")
                        do {
                            try await PostgresCopy.copy(rows, columns: columns, of: schema, into: table, schema: schemaName, connection: connection)
                            try await connection.simpleQuery("RELEASE SAVEPOINT ferry_copy")
                            copyFirst.succeeded(table)
                            return
                        } catch PostgresWireError.server(let error) where error.sqlState == "23505" {
                            try await connection.simpleQuery("ROLLBACK TO SAVEPOINT ferry_copy")
                            copyFirst.failed(table)
                        }
                    } else {
                        copyFirst.skipped(table)
                    }
                }
                let statement = Self.statement(for: group, schema: schemaName)
                try await connection.query(statement.sql, statement.parameters)
            }
            try await tableSchema.apply(operations.groups, sink: name, targetTable: configuration.targetTable, describe: describe, execute: execute,
                                        logger: logger, write: write)
            // In cluster mode fenced: the row moves only while its epoch is not newer than ours;
            // otherwise nothing is returned and the whole transaction, data included, is rolled back.
            let table = qualified("ferry_offsets")
            let key: [FrontendMessage.Parameter] = [.text(configuration.pipeline), .text(name), .text(String(configuration.lane))]
            let epoch = configuration.epoch
            let written = try await connection.query("""
                INSERT INTO \(table) (pipeline, sink, lane, position, updated_at\(epoch == nil ? "" : ", epoch")) VALUES ($1, $2, $3, $4, now()\(epoch == nil ? "" : ", $5"))
                ON CONFLICT (pipeline, sink, lane) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at\(
                    epoch == nil ? "" : ", epoch = EXCLUDED.epoch WHERE \(table).epoch <= EXCLUDED.epoch RETURNING epoch")
                """, key + [.text(last.position.persistedJSON)] + (epoch.map { [.text(String($0))] } ?? []))
            if let epoch, written.rows.isEmpty {
                let stored = try await connection.query("SELECT epoch FROM \(table) WHERE pipeline = $1 AND sink = $2 AND lane = $3", key)
                throw fenced(epoch: epoch, stored: stored.text(0, 0) ?? "?")
            }
            try await connection.simpleQuery("COMMIT")
            self.tableSchema = tableSchema
            self.copyFirst = copyFirst
        } catch {
            if !connection.isClosed { _ = try? await connection.simpleQuery("ROLLBACK") }
            self.tableSchema.forget()
            if let refused = error as? FerryError { throw refused }
            // A transient failure ends this session: its owner closes it and retries on a new one.
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }

    func qualified(_ table: String) -> String { PostgresDialect(schema: configuration.schema).table(table) }

    /// One `text[]` parameter per column of `rows`.
    static func arrays(_ rows: [Row], _ columns: [Int]) -> [FrontendMessage.Parameter] {
        var arrays = columns.map { _ in PostgresTextArray(capacity: rows.count) }
        for row in rows {
            for index in columns.indices { arrays[index].append(row[columns[index]]) }
        }
        return arrays.map(\.parameter)
    }

    /// A statement and its parameters.
    struct Statement {
        var sql: String
        var parameters: [FrontendMessage.Parameter]
    }

    /// One statement for a group: the rows travel as one `text[]` parameter per column and are
    /// cast to each column's PostgreSQL type in the statement.
    static func statement(for group: RowOperations.Group, schema schemaName: String) -> Statement {
        func qualified(_ table: String) -> String { PostgresDialect(schema: schemaName).table(table) }
        func unnest(_ count: Int) -> String {
            "unnest(" + (1...count).map { "$\($0)::text[]" }.joined(separator: ", ") + ") AS u(" + (1...count).map { "c\($0)" }.joined(separator: ", ") + ")"
        }
        func cast(_ position: Int, _ column: Int, _ schema: TableSchema) -> String {
            "u.c\(position)::\(PostgresTypeMapping.columnType(schema.columns[column]))"
        }
        switch group {
        case .schemaChange:
            preconditionFailure("schema changes are applied by TargetSchema, not written as rows")
        case .upsert(let table, let schema, let columns, let rows):
            // ON CONFLICT may not touch one row twice in a statement: keep each key's last row.
            let unique = schema.primaryKey.isEmpty ? rows : RowOperations.lastRowPerKey(rows, key: schema.primaryKey)
            var sql = "INSERT INTO \(qualified(table)) (" + columns.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") SELECT "
            sql += columns.enumerated().map { cast($0.offset + 1, $0.element, schema) }.joined(separator: ", ") + " FROM " + unnest(columns.count)
            if !schema.primaryKey.isEmpty {
                let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(doubleQuoted(schema.columnName($0))) = EXCLUDED.\(doubleQuoted(schema.columnName($0)))" }
                sql += " ON CONFLICT (" + schema.primaryKey.map { doubleQuoted(schema.columnName($0)) }.joined(separator: ", ") + ") DO "
                sql += updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", ")
            }
            return Statement(sql: sql, parameters: Self.arrays(unique, columns))
        case .delete(let table, let schema, let key, let rows):
            // Key columns are NOT NULL and `=` can use the key's index; without a key, NULLs match.
            let equals = schema.primaryKey.isEmpty ? "IS NOT DISTINCT FROM" : "="
            let conditions = key.enumerated().map { position, column in
                "t.\(doubleQuoted(schema.columnName(column))) \(equals) \(cast(position + 1, column, schema))"
            }.joined(separator: " AND ")
            if schema.primaryKey.isEmpty {
                // Without a key, one matching row goes (duplicates are allowed).
                return Statement(sql: "DELETE FROM \(qualified(table)) WHERE ctid = (SELECT t.ctid FROM \(qualified(table)) t, \(unnest(key.count)) WHERE \(conditions) LIMIT 1)",
                                 parameters: Self.arrays(rows, key))
            }
            return Statement(sql: "DELETE FROM \(qualified(table)) t USING \(unnest(key.count)) WHERE \(conditions)", parameters: Self.arrays(rows, key))
        }
    }
}

/// Per table: try large groups with COPY, until one hits an existing key; then upsert directly
/// for the next 16 groups (a table being updated rather than filled).
struct CopyFirst: Sendable {
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
            "\(doubleQuoted(tableSchema.columnName(index))) \(PostgresTypeMapping.columnType(tableSchema.columns[index]))"
                + (tableSchema.columns[index].nullable ? "" : " NOT NULL")
        }
        if !tableSchema.primaryKey.isEmpty {
            definitions.append("PRIMARY KEY (" + tableSchema.primaryKey.map { doubleQuoted(tableSchema.columnName($0)) }.joined(separator: ", ") + ")")
        }
        return "CREATE TABLE IF NOT EXISTS \(self.table(table)) (\(definitions.joined(separator: ", ")))"
    }

    func replaceKey(_ table: String, current: TargetTable, key: [String]) -> [String]? {
        var statements: [String] = []
        if let name = current.keyName { statements.append("ALTER TABLE \(self.table(table)) DROP CONSTRAINT \(doubleQuoted(name))") }
        if !key.isEmpty { statements.append("ALTER TABLE \(self.table(table)) ADD PRIMARY KEY (" + key.map(doubleQuoted).joined(separator: ", ") + ")") }
        return statements
    }

    var savepoint: (set: String, undo: String, release: String)? {
        ("SAVEPOINT ferry_step", "ROLLBACK TO SAVEPOINT ferry_step", "RELEASE SAVEPOINT ferry_step")
    }

    func allowNull(_ table: String, columns: [TargetColumn], current: TargetTable) -> [String]? {
        ["ALTER TABLE \(self.table(table)) " + columns.map { "ALTER COLUMN \(doubleQuoted($0.name)) DROP NOT NULL" }.joined(separator: ", ")]
    }

    func modifyColumnEmptying(_ table: String, column: String, typeName: String) -> [String]? {
        ["ALTER TABLE \(self.table(table)) ALTER COLUMN \(doubleQuoted(column)) TYPE \(columnType(typeName)) USING NULL"]
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
        guard let error = underlying as? PostgresWireError else { return !(underlying is FerryError) }
        return error.isTransient
    }

    var ferryError: FerryError {
        var fix: String? = isTransient ? nil : "check the target table against the source schema (types, constraints, NUL characters in text)"
        switch underlying as? PostgresWireError {
        case .connectFailed?:
            fix = "check the host and port in the sink's url, that PostgreSQL is running and accepts connections from ferry"
        case .authentication?:
            fix = "check the user and password of the sink's url (or its password setting) and pg_hba.conf"
        case .tls?:
            fix = "check the sink's sslmode (disable, prefer, require, verify-ca, verify-full) and sslrootcert against the server's TLS setup"
        case .protocolViolation?:
            fix = "check that the sink's url names a PostgreSQL server: what answered there does not speak PostgreSQL's protocol (a proxy, another service, or a port mix-up)"
        case .server(let error)?:
            fix = Self.fix(sqlState: error.sqlState) ?? fix
        default: break
        }
        return FerryError(code: isTransient ? .sinkPostgresUnavailable : .sinkPostgresRejected,
                          message: "PostgreSQL sink \(sink): \(underlying)", fix: fix, disposition: disposition)
    }

    /// What to do about a refusal that is not about the rows: privileges, a missing schema or
    /// database, a read-only server (docs/getting-started.md lists what the sink's user needs).
    static func fix(sqlState: String) -> String? {
        switch sqlState {
        case "42501": "grant the sink's user USAGE and CREATE on the target schema (or make it the database's owner), and make it the owner of target tables it did not create"
        case "3F000": "create the schema named by the sink's ?schema= (ferry creates tables, never schemas), or name an existing one"
        case "3D000": "create the database named in the sink's url, or name an existing one"
        case "25006": "point the sink at the primary: this server is read-only (a standby, or default_transaction_read_only)"
        case "28000", "28P01": "check the user and password of the sink's url (or its password setting) and pg_hba.conf"
        case "53100": "free disk space on the PostgreSQL server, then start ferry again: the sink applies the batch again from its own position"
        default: nil
        }
    }
}

extension PostgresSink {
    /// The keys of a `type: postgres` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "postgres://USER@HOST:PORT/DATABASE, with ?schema= and ?sslmode= / ?sslrootcert="),
        .password(),
        .schemaChanges,
        .lanes,
    ]
}

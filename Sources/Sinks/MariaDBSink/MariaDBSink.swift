import FerryCore
import Logging
import MySQLWire
import SinkSupport

/// A MariaDB or MySQL database as a target: tables created from the source schema with the
/// source's own column types, `INSERT … ON DUPLICATE KEY UPDATE` upserts, deletes, primary-key
/// changes, added columns — and `ferry_offsets` written in the same transaction as the data.
///
/// Each batch uses a fresh connection (a lost connection costs one batch retry, nothing else).
public actor MariaDBSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        /// Must name the target database: `mysql://USER@HOST:PORT/DATABASE`.
        public var connection: MySQLConnectionConfiguration
        public var targetTable: @Sendable (TableName) -> String
        public var schemaChanges: SchemaChangePolicy
        /// The lane this instance writes (its own `ferry_offsets` row). Default 0.
        public var lane: Int
        /// Cluster mode: the epoch of this node's claim on the pipeline. The session marks its
        /// `ferry_offsets` row with it when it opens, and every transaction first locks that row
        /// and is refused when it holds a newer epoch (a newer owner's).
        public var epoch: Int64?

        public init(name: String, pipeline: String, connection: MySQLConnectionConfiguration,
                    targetTable: @escaping @Sendable (TableName) -> String = { $0.table }, schemaChanges: SchemaChangePolicy = SchemaChangePolicy(),
                    lane: Int = 0, epoch: Int64? = nil) {
            self.name = name
            self.pipeline = pipeline
            self.connection = connection
            self.targetTable = targetTable
            self.schemaChanges = schemaChanges
            self.lane = lane
            self.epoch = epoch
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var tableSchema: TargetSchema
    private var targets = TargetTableRegistry()
    nonisolated let interrupter = ConnectionInterrupter()

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.tableSchema = TargetSchema(policy: configuration.schemaChanges, dialect: MariaDBDialect())
    }

    var database: String { configuration.connection.database ?? "" }

    public func open() async throws -> SourcePosition? {
        guard !database.isEmpty else {
            throw FerryError(code: .configInvalid, message: "sink \(name): the URL names no database",
                             fix: "use mysql://USER@HOST:PORT/DATABASE")
        }
        let row = offsetsRow, fence = self.fence
        return try await Self.withSession(configuration.connection, logger: logger, sink: name, interrupter: interrupter) { connection in
            try await connection.execute("""
                CREATE TABLE IF NOT EXISTS ferry_offsets (pipeline VARCHAR(190) NOT NULL, sink VARCHAR(190) NOT NULL, lane INT NOT NULL,
                  position TEXT NOT NULL, updated_at DATETIME(6) NOT NULL, epoch BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (pipeline, sink, lane)) ENGINE=InnoDB
                """)
            if let fence { try await fence.take(connection) }
            let result = try await connection.query("SELECT position FROM ferry_offsets WHERE \(row)")
            // A row made by `take` before any position holds none ('').
            return result.rows.first?[0].flatMap(SourcePosition.init(persistedJSON:))
        }
    }

    /// `pipeline = … AND sink = … AND lane = …`: this session's `ferry_offsets` row.
    var offsetsRow: String {
        var row = "pipeline = "
        MySQLLiteral.appendQuoted(configuration.pipeline, to: &row)
        row += " AND sink = "
        MySQLLiteral.appendQuoted(name, to: &row)
        return row + " AND lane = \(configuration.lane)"
    }

    var fence: EpochFence? {
        configuration.epoch.map { EpochFence(epoch: $0, pipeline: configuration.pipeline, sink: name, lane: configuration.lane, row: offsetsRow) }
    }

    public func close() async throws {}

    /// Closes the batch's connection: its statements fail at once and its transaction ends uncommitted.
    public nonisolated func interrupt() {
        interrupter.fire()
    }

    public func apply(_ transactions: [Transaction]) async throws {
        guard let last = transactions.last else { return }
        var operations = RowOperations(maximumCells: 20_000)
        var targets = self.targets
        try operations.add(transactions) { event in
            let table = configuration.targetTable(event.table)
            try targets.register(table, for: event.table, sink: name)
            return table
        }
        self.targets = targets
        var offsets = "INSERT INTO ferry_offsets (pipeline, sink, lane, position, updated_at) VALUES ("
        MySQLLiteral.appendQuoted(configuration.pipeline, to: &offsets)
        offsets += ", "
        MySQLLiteral.appendQuoted(name, to: &offsets)
        offsets += ", \(configuration.lane), "
        MySQLLiteral.appendQuoted(last.position.persistedJSON, to: &offsets)
        offsets += ", UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)"
        let before = tableSchema
        do {
            tableSchema = try await Self.write(operations.groups, offsets: offsets, fence: fence, database: database, schema: tableSchema,
                                               targetTable: configuration.targetTable, connection: configuration.connection, logger: logger, sink: name,
                                               interrupter: interrupter)
        } catch {
            tableSchema = before
            tableSchema.forget()
            throw error
        }
    }

    /// Applies the groups and the offsets row in one transaction. DDL (creating tables, schema
    /// changes) commits implicitly in MariaDB and MySQL, so the rows before it commit early —
    /// harmless, as replaying them changes nothing — and every DDL step checks the target first.
    /// In cluster mode (`fence`) every transaction begins by locking the offsets row and checking
    /// its epoch, and every schema change is preceded by the check.
    static func write(_ groups: [RowOperations.Group], offsets: String, fence: EpochFence?, database: String, schema: TargetSchema,
                      targetTable: (TableName) -> String, connection configuration: MySQLConnectionConfiguration,
                      logger: Logger, sink: String, interrupter: ConnectionInterrupter) async throws -> TargetSchema {
        try await withSession(configuration, logger: logger, sink: sink, interrupter: interrupter) { connection in
            var schema = schema
            var open = false
            let describe: (String) async throws -> TargetTable = { table in
                var tableLiteral = "", databaseLiteral = ""
                MySQLLiteral.appendQuoted(table, to: &tableLiteral)
                MySQLLiteral.appendQuoted(database, to: &databaseLiteral)
                let columns = try await connection.query("""
                    SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
                    WHERE TABLE_SCHEMA = \(databaseLiteral) AND TABLE_NAME = \(tableLiteral) ORDER BY ORDINAL_POSITION
                    """).rows
                let key = try await connection.query("""
                    SELECT COLUMN_NAME FROM information_schema.STATISTICS
                    WHERE TABLE_SCHEMA = \(databaseLiteral) AND TABLE_NAME = \(tableLiteral) AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX
                    """).rows
                return TargetTable(columns: columns.map { TargetColumn(name: $0[0] ?? "", type: $0[1] ?? "", notNull: $0[2] == "NO") },
                                   key: key.compactMap { $0[0] })
            }
            let begin = {
                try await connection.execute("START TRANSACTION")
                if let fence { try await fence.check(connection, locking: true) }
                open = true
            }
            let ddl: (String) async throws -> Void = { sql in
                // DDL commits what came before it (releasing the row lock) and cannot be rolled
                // back: it runs under the fence's named lock, which a new owner's mark also takes.
                if let fence {
                    try await fence.whileMarkWaits(connection) { try await connection.execute(sql) }
                } else {
                    try await connection.execute(sql)
                }
                open = false
            }
            try await schema.apply(groups, sink: sink, targetTable: targetTable, describe: describe, execute: ddl, logger: logger) { group in
                if !open { try await begin() }
                try await connection.execute(try statement(for: group, sink: sink))
            }
            if !open { try await begin() }
            try await connection.execute(offsets)
            try await connection.execute("COMMIT")
            return schema
        }
    }

    /// One connection with the session settings every statement relies on; `interrupter` can close it.
    static func withSession<T: Sendable>(_ configuration: MySQLConnectionConfiguration, logger: Logger, sink: String,
                                         interrupter: ConnectionInterrupter, _ body: (MySQLConnection) async throws -> T) async throws -> T {
        guard !interrupter.isFired else { throw CancellationError() }
        do {
            defer { interrupter.clear() }
            return try await MySQLConnection.withConnection(configuration, logger: logger, connected: { handle in
                interrupter.register { handle.close() }
            }) { connection in
                // READ COMMITTED takes no gap locks, so lanes writing one table rarely deadlock.
                try await connection.execute("SET SESSION sql_mode = '', time_zone = '+00:00', foreign_key_checks = 0")
                try await connection.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                return try await body(connection)
            }
        } catch let error as MySQLWireError {
            throw MariaDBSinkError(underlying: error, sink: sink)
        }
    }

    static func statement(for group: RowOperations.Group, sink: String) throws(FerryError) -> String {
        switch group {
        case .schemaChange:
            preconditionFailure("schema changes are applied by TargetSchema, not written as rows")
        case .upsert(let table, let schema, let columns, let rows):
            try refuseUnstorable(rows, columns: columns, schema: schema, table: table, sink: sink)
            var sql = "INSERT INTO \(backquoted(table)) (" + columns.map { backquoted(schema.columnName($0)) }.joined(separator: ", ") + ") VALUES "
            for (index, row) in rows.enumerated() {
                sql += index == 0 ? "(" : ", ("
                for (position, column) in columns.enumerated() {
                    if position > 0 { sql += ", " }
                    MySQLLiteral.append(row[column], to: &sql)
                }
                sql += ")"
            }
            let updates = columns.filter { !schema.primaryKey.contains($0) }.map { "\(backquoted(schema.columnName($0))) = VALUES(\(backquoted(schema.columnName($0))))" }
            if !schema.primaryKey.isEmpty {
                let first = backquoted(schema.columnName(schema.primaryKey[0]))
                sql += " ON DUPLICATE KEY UPDATE " + (updates.isEmpty ? "\(first) = \(first)" : updates.joined(separator: ", "))
            }
            return sql
        case .delete(let table, let schema, let key, let rows):
            if schema.primaryKey.isEmpty {
                var conditions: [String] = []
                for column in key {
                    var literal = ""
                    MySQLLiteral.append(rows[0][column], to: &literal)
                    conditions.append("\(backquoted(schema.columnName(column))) <=> \(literal)")
                }
                return "DELETE FROM \(backquoted(table)) WHERE \(conditions.joined(separator: " AND ")) LIMIT 1"
            }
            var sql = "DELETE FROM \(backquoted(table)) WHERE (" + key.map { backquoted(schema.columnName($0)) }.joined(separator: ", ") + ") IN ("
            for (index, row) in rows.enumerated() {
                sql += index == 0 ? "(" : ", ("
                for (position, column) in key.enumerated() {
                    if position > 0 { sql += ", " }
                    MySQLLiteral.append(row[column], to: &sql)
                }
                sql += ")"
            }
            return sql + ")"
        }
    }

    /// A source value kept as text (`.sourceText`: a PostgreSQL numeric NaN, an infinite or BC
    /// date) has no form in a numeric or temporal column, nor a NaN or infinite float in any
    /// MariaDB column, and the session's lax `sql_mode` would store a zero or NULL in its place
    /// without a word: the batch is refused instead.
    static func refuseUnstorable(_ rows: [Row], columns: [Int], schema: TableSchema, table: String, sink: String) throws(FerryError) {
        for column in columns {
            let type = schema.columns[column].typeName
            let holdsText = ["char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json"].contains(where: { type.hasPrefix($0) })
            for row in rows {
                let text: String
                switch row[column] {
                case .sourceText(let value) where !holdsText: text = value
                case .float(let value) where !value.isFinite: text = ValueJSON.nonFiniteText(Double(value))
                case .double(let value) where !value.isFinite: text = ValueJSON.nonFiniteText(value)
                default: continue
                }
                throw FerryError(code: .sinkMariaDBRejected,
                                 message: "sink \(sink): column \(table).\(schema.columnName(column)) is \(type) here and cannot hold the source's value '\(text)' (\(schema.columns[column].nativeType ?? "source type"))",
                                 fix: "change the target column to a text type (ALTER TABLE \(backquoted(table)) MODIFY \(backquoted(schema.columnName(column))) LONGTEXT), or drop or rewrite the value with a rule",
                                 disposition: .reject)
            }
        }
    }

}

/// MariaDB's and MySQL's spelling of table changes; columns keep the source's own types.
struct MariaDBDialect: SchemaDialect {
    /// The source's own type, charset and nullability (MariaDB's JSON is LONGTEXT with a check).
    static func columnDefinition(_ schema: TableSchema, _ index: Int) -> String {
        let column = schema.columns[index]
        var definition = "\(backquoted(schema.columnName(index))) \(column.typeName)"
        if let charset = column.charset, charset != "binary", !column.typeName.hasPrefix("json") {
            definition += " CHARACTER SET \(charset)"
        }
        definition += column.nullable ? " NULL" : " NOT NULL"
        return definition
    }

    func identifier(_ name: String) -> String { backquoted(name) }

    func table(_ name: String) -> String { backquoted(name) }

    func columnType(_ typeName: String) -> String { typeName }

    func createTable(_ table: String, schema: TableSchema) -> String {
        var definitions = schema.columns.indices.map { Self.columnDefinition(schema, $0) }
        if !schema.primaryKey.isEmpty {
            definitions.append("PRIMARY KEY (" + schema.primaryKey.map { backquoted(schema.columnName($0)) }.joined(separator: ", ") + ")")
        }
        return "CREATE TABLE IF NOT EXISTS \(backquoted(table)) (\(definitions.joined(separator: ", "))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    }

    func modifyColumn(_ table: String, column: String, typeName: String) -> String? {
        "ALTER TABLE \(backquoted(table)) MODIFY COLUMN \(backquoted(column)) \(typeName) NULL"
    }

    func renameTable(_ from: String, to: String) -> String { "RENAME TABLE \(backquoted(from)) TO \(backquoted(to))" }

    /// `COLUMN_TYPE` as the catalog spells it, made nullable.
    func allowNull(_ table: String, columns: [TargetColumn], current: TargetTable) -> [String]? {
        ["ALTER TABLE \(backquoted(table)) " + columns.map { "MODIFY COLUMN \(backquoted($0.name)) \($0.type) NULL" }.joined(separator: ", ")]
    }

    func modifyColumnEmptying(_ table: String, column: String, typeName: String) -> [String]? {
        ["UPDATE \(backquoted(table)) SET \(backquoted(column)) = NULL", modifyColumn(table, column: column, typeName: typeName)!]
    }

    func replaceKey(_ table: String, current: TargetTable, key: [String]) -> [String]? {
        var clauses: [String] = []
        if !current.key.isEmpty { clauses.append("DROP PRIMARY KEY") }
        if !key.isEmpty { clauses.append("ADD PRIMARY KEY (" + key.map(backquoted).joined(separator: ", ") + ")") }
        return clauses.isEmpty ? [] : ["ALTER TABLE \(backquoted(table)) " + clauses.joined(separator: ", ")]
    }
}

/// A failed write; connection trouble, deadlocks and lock timeouts are worth retrying.
struct MariaDBSinkError: ClassifiedError, CustomStringConvertible, FerryErrorConvertible {
    var underlying: MySQLWireError
    var sink: String

    var isTransient: Bool {
        switch underlying {
        case .connectionClosed, .connectFailed, .readTimeout: return true
        case .server(let packet, _): return [1205, 1213, 1040, 1053, 2006, 2013].contains(packet.errorCode)
        default: return false
        }
    }


    var ferryError: FerryError {
        let inner = underlying.ferryError
        return FerryError(code: isTransient ? .sinkMariaDBUnavailable : .sinkMariaDBRejected,
                          message: "sink \(sink): \(inner.message)", fix: Self.fix(underlying) ?? "check the target table against the source schema",
                          disposition: disposition)
    }

    /// What to do, for the sink's account (the source's hints name the replication user).
    static func fix(_ error: MySQLWireError) -> String? {
        guard case .server(let packet, _) = error else { return error.ferryError.fix }
        switch packet.errorCode {
        case 1045: return "check the user and password of the sink's url (or its password setting)"
        case 1044, 1142, 1143, 1227:
            return "grant the sink's user what it needs on the target database: GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX ON db.* TO 'user'@'host'"
        case 1049: return "create the target database named in the sink's url (CREATE DATABASE …), or name an existing one"
        case 1290, 1836: return "point the sink at the primary: this server is read-only (read_only or super_read_only)"
        default: return error.ferryError.fix
        }
    }
}

extension MariaDBSink {
    /// The keys of a `type: mysql` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "mysql://USER@HOST:PORT/DATABASE, with ?tls= as for sources"),
        .password(),
        .schemaChanges,
        .lanes,
    ]
}

/// Cluster mode's fence in a MariaDB/MySQL target: the epoch of the session's claim, checked
/// against the one in its `ferry_offsets` row.
struct EpochFence: Sendable {
    let epoch: Int64
    let pipeline: String
    let sink: String
    let lane: Int
    /// The row's `WHERE` condition.
    let row: String

    /// Marks the row with this epoch (making it if there is none yet, without a position), unless
    /// a newer owner's epoch is there: then refuses. Under the named lock, so no former owner's
    /// schema change is between its check and its statement.
    func take(_ connection: MySQLConnection) async throws {
        // Added once to a table made before cluster mode (ALTER locks every pipeline's commits).
        let column = try await connection.query("""
            SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ferry_offsets' AND COLUMN_NAME = 'epoch'
            """)
        if column.rows.isEmpty {
            do {
                // MySQL has no ADD COLUMN IF NOT EXISTS; another session adding it first is fine.
                try await connection.execute("ALTER TABLE ferry_offsets ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0")
            } catch MySQLWireError.server(let packet, _) where packet.errorCode == 1060 {}
        }
        var values = ""
        MySQLLiteral.appendQuoted(pipeline, to: &values)
        values += ", "
        MySQLLiteral.appendQuoted(sink, to: &values)
        let epoch = self.epoch, lane = self.lane
        try await locked(connection) {
            try await connection.execute("""
                INSERT INTO ferry_offsets (pipeline, sink, lane, position, updated_at, epoch) VALUES (\(values), \(lane), '', UTC_TIMESTAMP(6), \(epoch))
                ON DUPLICATE KEY UPDATE epoch = IF(epoch <= VALUES(epoch), VALUES(epoch), epoch)
                """)
        }
        try await check(connection, locking: false)
    }

    /// Runs a schema change after checking the epoch, both under the named lock.
    func whileMarkWaits(_ connection: MySQLConnection, _ body: () async throws -> Void) async throws {
        try await locked(connection) {
            try await check(connection, locking: false)
            try await body()
        }
    }

    /// The session-wide named lock of this row (`GET_LOCK` outlives commits, and goes with the
    /// connection if it breaks).
    private func locked(_ connection: MySQLConnection, _ body: () async throws -> Void) async throws {
        var key = ""
        MySQLLiteral.appendQuoted(lockName, to: &key)
        let granted = try await connection.query("SELECT GET_LOCK(\(key), 30)").rows.first?[0]
        guard granted == "1" else {
            throw FerryError(code: .sinkMariaDBUnavailable, message: "sink \(sink) waited 30 s for the lock \(lockName) that orders cluster owners' schema changes",
                             context: [("pipeline", pipeline), ("sink", sink)], fix: "another session holds it; it is retried", disposition: .retry)
        }
        do {
            try await body()
        } catch {
            _ = try? await connection.query("SELECT RELEASE_LOCK(\(key))")
            throw error
        }
        _ = try await connection.query("SELECT RELEASE_LOCK(\(key))")
    }

    /// At most 64 characters: a hash of the row's key.
    var lockName: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(pipeline)\u{0}\(sink)\u{0}\(lane)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "ferry_epoch_" + String(hash, radix: 16)
    }

    /// Refuses to go on when the row holds a newer epoch. `locking` holds the row until the
    /// transaction ends, so a newer owner's `take` waits for it and every later check sees it.
    func check(_ connection: MySQLConnection, locking: Bool) async throws {
        let stored = try await connection.query("SELECT epoch FROM ferry_offsets WHERE \(row)\(locking ? " FOR UPDATE" : "")").rows.first?[0]
        guard let stored, let value = Int64(stored), value > epoch else { return }
        throw FerryError.fencedByTarget(sink: sink, pipeline: pipeline, epoch: epoch, stored: stored, where: "the target's ferry_offsets", lane: lane)
    }
}

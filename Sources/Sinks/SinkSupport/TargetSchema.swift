import FerryCore
import Logging

/// How one SQL dialect spells the statements that shape target tables. Table names are the
/// target's (already mapped); column types are the source's type names. The common SQL is
/// written once below; a dialect overrides what it spells differently.
public protocol SchemaDialect: Sendable {
    /// A quoted identifier.
    func identifier(_ name: String) -> String
    /// A quoted table name, qualified where the target has schemas.
    func table(_ name: String) -> String
    /// The target column type for a source type name.
    func columnType(_ typeName: String) -> String
    func createTable(_ table: String, schema: TableSchema) -> String
    func addColumn(_ table: String, column: String, typeName: String) -> String
    func dropColumn(_ table: String, column: String) -> String
    func renameColumn(_ table: String, from: String, to: String) -> String
    /// `nil` when the target keeps no column types (SQLite).
    func modifyColumn(_ table: String, column: String, typeName: String) -> String?
    /// Retypes a column whose values the target cannot convert, emptying it (the table's rows
    /// are read again from the source); `nil` when the target cannot.
    func modifyColumnEmptying(_ table: String, column: String, typeName: String) -> [String]?
    /// Statements that mark a point a failed statement can be undone to inside a transaction
    /// (PostgreSQL, where a failed statement otherwise aborts the transaction); `nil` where a
    /// failed statement changes nothing.
    var savepoint: (set: String, undo: String, release: String)? { get }
    func dropTable(_ table: String) -> String
    func truncateTable(_ table: String) -> String
    /// Empties a table inside the sink's transaction (MariaDB's TRUNCATE would commit it).
    func deleteAllRows(_ table: String) -> String
    func renameTable(_ from: String, to: String) -> String
    /// The statements that give `current` the primary key `key` (empty: none), in order; `nil`
    /// when the target cannot change a table's key (ClickHouse orders its parts by it).
    func replaceKey(_ table: String, current: TargetTable, key: [String]) -> [String]?
    /// The statements that let `columns` of `current` hold NULL; `nil` when the target has no
    /// NOT NULL columns to relax (ClickHouse fills a missing column with its default).
    func allowNull(_ table: String, columns: [TargetColumn], current: TargetTable) -> [String]?
}

/// One column of a target table as the target's catalog describes it.
public struct TargetColumn: Sendable, Equatable {
    public var name: String
    /// The target's type name as its catalog spells it (`integer`, `varchar(20)`, `TEXT`).
    public var type: String
    public var notNull: Bool

    public init(name: String, type: String, notNull: Bool) {
        self.name = name
        self.type = type
        self.notNull = notNull
    }
}

/// A target table as the target describes it: its columns in order and its primary key.
public struct TargetTable: Sendable, Equatable {
    public var columns: [TargetColumn]
    /// Primary key columns in key order; empty when the table has none.
    public var key: [String]
    /// The primary key constraint's name where the target names it (PostgreSQL).
    public var keyName: String?

    public init(columns: [TargetColumn], key: [String], keyName: String? = nil) {
        self.columns = columns
        self.key = key
        self.keyName = keyName
    }

    /// No such table.
    public static let missing = TargetTable(columns: [], key: [])

    public var exists: Bool { !columns.isEmpty }
    public var names: Set<String> { Set(columns.map(\.name)) }
}

extension SchemaDialect {
    public func addColumn(_ table: String, column: String, typeName: String) -> String {
        "ALTER TABLE \(self.table(table)) ADD COLUMN \(identifier(column)) \(columnType(typeName))"
    }

    public func dropColumn(_ table: String, column: String) -> String {
        "ALTER TABLE \(self.table(table)) DROP COLUMN \(identifier(column))"
    }

    public func renameColumn(_ table: String, from: String, to: String) -> String {
        "ALTER TABLE \(self.table(table)) RENAME COLUMN \(identifier(from)) TO \(identifier(to))"
    }

    public func dropTable(_ table: String) -> String { "DROP TABLE IF EXISTS \(self.table(table))" }

    public func truncateTable(_ table: String) -> String { "TRUNCATE TABLE \(self.table(table))" }

    public func deleteAllRows(_ table: String) -> String { "DELETE FROM \(self.table(table))" }

    public func renameTable(_ from: String, to: String) -> String { "ALTER TABLE \(table(from)) RENAME TO \(identifier(to))" }

    public func modifyColumnEmptying(_ table: String, column: String, typeName: String) -> [String]? { nil }

    public func allowNull(_ table: String, columns: [TargetColumn], current: TargetTable) -> [String]? { nil }

    public var savepoint: (set: String, undo: String, release: String)? { nil }

    /// Rebuilds the table with `current`'s columns and the key `key` (a copy, the rows moved
    /// over, the copy renamed), for changes the target cannot make in place (SQLite: a new key,
    /// a NOT NULL dropped).
    public func rebuild(_ table: String, current: TargetTable, key: [String]) -> [String] {
        let copy = "ferry_rekey_" + table
        var definitions = current.columns.map { "\(identifier($0.name)) \($0.type)" + ($0.notNull ? " NOT NULL" : "") }
        if !key.isEmpty { definitions.append("PRIMARY KEY (" + key.map(identifier).joined(separator: ", ") + ")") }
        let names = current.columns.map { identifier($0.name) }.joined(separator: ", ")
        return [
            "DROP TABLE IF EXISTS \(self.table(copy))",
            "CREATE TABLE \(self.table(copy)) (\(definitions.joined(separator: ", ")))",
            "INSERT INTO \(self.table(copy)) (\(names)) SELECT \(names) FROM \(self.table(table))",
            dropTable(table),
            renameTable(copy, to: table),
        ]
    }
}

/// The target tables' columns as a sink knows them, and the one place that creates tables, adds
/// columns and applies schema changes under the sink's `SchemaChangePolicy`. Every step checks
/// the target first, so a replayed change is harmless.
public struct TargetSchema: Sendable {
    public let policy: SchemaChangePolicy
    let dialect: any SchemaDialect
    /// Each target table as last read or changed.
    private var known: [String: TargetTable] = [:]
    /// The schema each known table was last found to take NULL where it may get one (schemas are
    /// interned, one object per version): the check then costs one comparison per group.
    private var checkedAgainst: [String: TableSchema] = [:]

    public init(policy: SchemaChangePolicy, dialect: any SchemaDialect) {
        self.policy = policy
        self.dialect = dialect
    }

    /// Forgets what it knew (after a failed transaction that may have rolled DDL back).
    public mutating func forget() {
        known = [:]
        checkedAgainst = [:]
    }

    /// Whether the target's primary key follows the source's (`evolve` and `lenient`): an upsert
    /// needs the target to be unique on the source's key, and a key the source dropped must not
    /// refuse rows the source now accepts.
    var followsKeys: Bool { policy.mode == .evolve || policy.mode == .lenient }

    /// Makes sure `table` exists with the row's columns and key, as far as the policy allows, and
    /// returns the columns the target has. `describe` reads a table (`.missing`: no such table).
    nonisolated(nonsending) public mutating func prepare(_ table: String, schema: TableSchema, describe: (String) async throws -> TargetTable,
                                                         execute: (String) async throws -> Void, logger: Logger? = nil) async throws -> Set<String> {
        let wanted = schema.columns.indices.map { schema.columnName($0) }
        let wantedKey = schema.primaryKey.map { schema.columnName($0) }
        if let current = known[table] {
            let names = current.names
            if !policy.addsColumnsFromRows
                || (wanted.allSatisfy(names.contains) && (!followsKeys || (current.key == wantedKey && takesNull(current, table, schema)))) {
                return names
            }
        }
        var existing = try await describe(table)
        if !existing.exists {
            try await execute(dialect.createTable(table, schema: schema))
            existing = try await describe(table)
        } else if policy.addsColumnsFromRows {
            var added = false
            for index in schema.columns.indices where !existing.names.contains(wanted[index]) {
                try await execute(dialect.addColumn(table, column: wanted[index], typeName: schema.columns[index].typeName))
                added = true
            }
            if added { existing = try await describe(table) }
        }
        if followsKeys, existing.key != wantedKey {
            if let statements = dialect.replaceKey(table, current: existing, key: wantedKey) {
                logger?.info("the target table's primary key follows the source's", metadata: [
                    LoggingKeys.table: "\(schema.name)", "ferry.target_table": "\(table)",
                    "ferry.key_before": "\(existing.key.joined(separator: ","))", "ferry.key": "\(wantedKey.joined(separator: ","))",
                ])
                for statement in statements { try await execute(statement) }
                existing = try await describe(table)
            } else {
                // The target keeps its key; remember the source's so rows do not ask again.
                existing.key = wantedKey
            }
        }
        let refusing = followsKeys ? Self.refusingNull(existing, schema: schema) : []
        if !refusing.isEmpty, let statements = dialect.allowNull(table, columns: refusing, current: existing) {
            logger?.info("target columns the source's rows may leave empty now accept NULL", metadata: [
                LoggingKeys.table: "\(schema.name)", "ferry.target_table": "\(table)",
                "ferry.columns": "\(refusing.map(\.name).joined(separator: ","))",
            ])
            for statement in statements { try await execute(statement) }
            existing = try await describe(table)
        }
        known[table] = existing
        checkedAgainst[table] = schema
        return existing.names
    }

    private mutating func takesNull(_ current: TargetTable, _ table: String, _ schema: TableSchema) -> Bool {
        if checkedAgainst[table] === schema { return true }
        guard Self.refusingNull(current, schema: schema).isEmpty else { return false }
        checkedAgainst[table] = schema
        return true
    }

    /// Target columns outside the key that refuse NULL where the source's rows may leave them
    /// NULL: columns the rows no longer carry (dropped or renamed at the source and kept by
    /// `lenient`), and columns the source now lets be NULL (`MODIFY … NULL`).
    static func refusingNull(_ target: TargetTable, schema: TableSchema) -> [TargetColumn] {
        var carried: [String: Bool] = [:]
        for index in schema.columns.indices { carried[schema.columnName(index)] = schema.columns[index].nullable }
        return target.columns.filter { column in
            column.notNull && !target.key.contains(column.name) && (carried[column.name] ?? true)
        }
    }

    /// Applies a sink's groups in order: schema changes as the policy decides, and for row groups
    /// makes sure the target table is ready, then hands the group — restricted to the target's
    /// columns under `ignore` — to `write`.
    nonisolated(nonsending) public mutating func apply(_ groups: [RowOperations.Group], sink: String, targetTable: (TableName) -> String,
                               describe: (String) async throws -> TargetTable, execute: (String) async throws -> Void, logger: Logger,
                               write: (RowOperations.Group) async throws -> Void) async throws {
        for group in groups {
            switch group {
            case .schemaChange(let changes, let statement, let position):
                for change in Self.targetOrder(changes) {
                    try await apply(change, statement: statement, position: position, sink: sink, targetTable: targetTable,
                                    describe: describe, execute: execute, logger: logger)
                }
            case .upsert(let table, let schema, _, _), .delete(let table, let schema, _, _):
                let existing = try await prepare(table, schema: schema, describe: describe, execute: execute, logger: logger)
                try await write(policy.addsColumnsFromRows ? group : group.restricted(to: existing))
            }
        }
    }

    /// The clauses of one statement in an order a target accepts one by one. MariaDB applies an
    /// ALTER TABLE's clauses together, so `DROP a, DROP b, ADD c` on a table of `a, b` is fine
    /// there, while SQLite refuses to drop a table's last column: drops of columns the statement
    /// does not add again go last (a `DROP c, ADD c` pair keeps its order).
    public static func targetOrder(_ changes: [SchemaChange]) -> [SchemaChange] {
        var added = Set<String>()
        for change in changes { if case .addColumn(let table, let column, _) = change { added.insert("\(table)\u{0}\(column.lowercased())") } }
        func isFinalDrop(_ change: SchemaChange) -> Bool {
            guard case .dropColumn(let table, let column) = change else { return false }
            return !added.contains("\(table)\u{0}\(column.lowercased())")
        }
        return changes.filter { !isFinalDrop($0) } + changes.filter(isFinalDrop)
    }

    /// Applies one schema change as the policy decides. `position` and `statement` name it in
    /// errors and logs.
    nonisolated(nonsending) public mutating func apply(_ change: SchemaChange, statement: String?, position: SourcePosition, sink: String,
                               targetTable: (TableName) -> String, describe: (String) async throws -> TargetTable,
                               execute: (String) async throws -> Void, logger: Logger) async throws {
        let where_ = "\(position.place)"
        switch policy.decide(change) {
        case .fail:
            throw FerryError(code: .sinkSchemaChangeRefused,
                             message: "sink \(sink) refuses the schema change '\(change)' (statement: \(statement ?? "?"))",
                             context: [("sink", sink), ("table", change.table.description), ("position", where_)],
                             fix: "apply the change to the target yourself and set schema_changes: ignore, or choose evolve or lenient (or allow \(change.kind.rawValue)), then restart")
        case .skip(let why):
            let level: Logger.Level = change.kind == .unrecognized ? .warning : .info
            logger.log(level: level, "schema change not applied to the target", metadata: [
                LoggingKeys.sink: "\(sink)", LoggingKeys.table: "\(change.table)", LoggingKeys.position: "\(where_)",
                "ferry.change": "\(change)", "ferry.reason": "\(why)", "ferry.statement": "\(statement ?? "")",
            ])
            return
        case .apply:
            break
        }
        let table = targetTable(change.table)
        let existing = try await describe(table).names
        switch change {
        case .createTable, .unrecognized:
            // A table is created with its first row, from that row's exact column types.
            return
        case .dropTable:
            if !existing.isEmpty { try await execute(dialect.dropTable(table)) }
        case .truncateTable:
            if !existing.isEmpty { try await execute(dialect.truncateTable(table)) }
        case .replaceRows:
            if !existing.isEmpty { try await execute(dialect.deleteAllRows(table)) }
        case .renameTable(_, let to):
            let target = targetTable(to)
            if !existing.isEmpty, target != table, try await !describe(target).exists { try await execute(dialect.renameTable(table, to: target)) }
            known[target] = nil
        case .addColumn(_, let column, let type):
            if !existing.isEmpty, !existing.contains(column) { try await execute(dialect.addColumn(table, column: column, typeName: type)) }
        case .dropColumn(_, let column):
            if existing.contains(column) { try await execute(dialect.dropColumn(table, column: column)) }
        case .renameColumn(_, let from, let to):
            if existing.contains(from), !existing.contains(to) { try await execute(dialect.renameColumn(table, from: from, to: to)) }
        case .modifyColumn(_, let column, let type):
            if existing.contains(column), let sql = dialect.modifyColumn(table, column: column, typeName: type) {
                try await retype(sql, table: table, column: column, type: type, change: change, position: where_, sink: sink, execute: execute, logger: logger)
            }
        }
        known[table] = nil
        logger.info("schema change applied to the target", metadata: [LoggingKeys.sink: "\(sink)", "ferry.change": "\(change)", LoggingKeys.position: "\(where_)"])
    }

    /// Retypes a column in place; where the target refuses to convert a value (MariaDB clipped
    /// 56922 to 127 under a lax `sql_mode`, PostgreSQL stops at "smallint out of range"), it
    /// retypes the emptied column instead: the source's values come back with the table's re-read.
    nonisolated(nonsending) private func retype(_ sql: String, table: String, column: String, type: String, change: SchemaChange, position: String,
                                                sink: String, execute: (String) async throws -> Void, logger: Logger) async throws {
        let savepoint = dialect.savepoint
        if let savepoint { try await execute(savepoint.set) }
        do {
            try await execute(sql)
            if let savepoint { try await execute(savepoint.release) }
        } catch {
            guard !(error is CancellationError), let emptying = dialect.modifyColumnEmptying(table, column: column, typeName: type) else { throw error }
            if let savepoint { try await execute(savepoint.undo) }
            logger.warning("the target cannot convert the column's values to the new type; it is retyped empty and refilled by the table's re-read", metadata: [
                LoggingKeys.sink: "\(sink)", LoggingKeys.table: "\(change.table)", LoggingKeys.position: "\(position)", "ferry.column": "\(column)",
                "ferry.type": "\(type)", LoggingKeys.error: .error(error),
            ])
            for statement in emptying { try await execute(statement) }
            if let savepoint { try await execute(savepoint.release) }
        }
    }
}
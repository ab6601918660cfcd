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
    func dropTable(_ table: String) -> String
    func truncateTable(_ table: String) -> String
    func renameTable(_ from: String, to: String) -> String
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

    public func renameTable(_ from: String, to: String) -> String { "ALTER TABLE \(table(from)) RENAME TO \(identifier(to))" }
}

/// The target tables' columns as a sink knows them, and the one place that creates tables, adds
/// columns and applies schema changes under the sink's `SchemaChangePolicy`. Every step checks
/// the target first, so a replayed change is harmless.
public struct TargetSchema: Sendable {
    public let policy: SchemaChangePolicy
    let dialect: any SchemaDialect
    /// Columns of each target table, as last read or changed.
    private var known: [String: Set<String>] = [:]

    public init(policy: SchemaChangePolicy, dialect: any SchemaDialect) {
        self.policy = policy
        self.dialect = dialect
    }

    /// Forgets what it knew (after a failed transaction that may have rolled DDL back).
    public mutating func forget() {
        known = [:]
    }

    /// Makes sure `table` exists with the row's columns, as far as the policy allows, and returns
    /// the columns the target has. `columns` reads a table's columns (empty: no such table).
    nonisolated(nonsending) public mutating func prepare(_ table: String, schema: TableSchema, columns: (String) async throws -> Set<String>,
                                 execute: (String) async throws -> Void) async throws -> Set<String> {
        let wanted = schema.columns.indices.map { schema.columnName($0) }
        if let current = known[table], !policy.addsColumnsFromRows || wanted.allSatisfy(current.contains) { return current }
        var existing = try await columns(table)
        if existing.isEmpty {
            try await execute(dialect.createTable(table, schema: schema))
            existing = Set(wanted)
        } else if policy.addsColumnsFromRows {
            for index in schema.columns.indices where !existing.contains(wanted[index]) {
                try await execute(dialect.addColumn(table, column: wanted[index], typeName: schema.columns[index].typeName))
                existing.insert(wanted[index])
            }
        }
        known[table] = existing
        return existing
    }

    /// Applies a sink's groups in order: schema changes as the policy decides, and for row groups
    /// makes sure the target table is ready, then hands the group — restricted to the target's
    /// columns under `ignore` — to `write`.
    nonisolated(nonsending) public mutating func apply(_ groups: [RowOperations.Group], sink: String, targetTable: (TableName) -> String,
                               columns: (String) async throws -> Set<String>, execute: (String) async throws -> Void, logger: Logger,
                               write: (RowOperations.Group) async throws -> Void) async throws {
        for group in groups {
            switch group {
            case .schemaChange(let changes, let statement, let position):
                for change in Self.targetOrder(changes) {
                    try await apply(change, statement: statement, position: position, sink: sink, targetTable: targetTable,
                                    columns: columns, execute: execute, logger: logger)
                }
            case .upsert(let table, let schema, _, _), .delete(let table, let schema, _, _):
                let existing = try await prepare(table, schema: schema, columns: columns, execute: execute)
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
                               targetTable: (TableName) -> String, columns: (String) async throws -> Set<String>,
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
        let existing = try await columns(table)
        switch change {
        case .createTable, .unrecognized:
            // A table is created with its first row, from that row's exact column types.
            return
        case .dropTable:
            if !existing.isEmpty { try await execute(dialect.dropTable(table)) }
        case .truncateTable:
            if !existing.isEmpty { try await execute(dialect.truncateTable(table)) }
        case .renameTable(_, let to):
            let target = targetTable(to)
            if !existing.isEmpty, target != table, try await columns(target).isEmpty { try await execute(dialect.renameTable(table, to: target)) }
            known[target] = nil
        case .addColumn(_, let column, let type):
            if !existing.isEmpty, !existing.contains(column) { try await execute(dialect.addColumn(table, column: column, typeName: type)) }
        case .dropColumn(_, let column):
            if existing.contains(column) { try await execute(dialect.dropColumn(table, column: column)) }
        case .renameColumn(_, let from, let to):
            if existing.contains(from), !existing.contains(to) { try await execute(dialect.renameColumn(table, from: from, to: to)) }
        case .modifyColumn(_, let column, let type):
            if existing.contains(column), let sql = dialect.modifyColumn(table, column: column, typeName: type) { try await execute(sql) }
        }
        known[table] = nil
        logger.info("schema change applied to the target", metadata: [LoggingKeys.sink: "\(sink)", "ferry.change": "\(change)", LoggingKeys.position: "\(where_)"])
    }
}

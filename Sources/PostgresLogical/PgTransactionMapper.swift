import FerryCore

/// Turns assembled pgoutput transactions into ferry's `Transaction`s: rows read into values,
/// each relation's schema built once while it stays the same. Pure; the source keeps its
/// `catalog` complete for the relations a transaction uses (`missingTypes`) before `map`.
public struct PgTransactionMapper: Sendable {
    public var catalog = PgTypeCatalog()
    public let sourceName: String
    private var relations: [UInt32: (relation: PgOutputMessage.Relation, schema: PgRelationSchema)] = [:]
    private var interner = TableSchemaInterner()

    /// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    public init(sourceName: String) {
        self.sourceName = sourceName
    }

    /// Type OIDs the transaction's relations use that the catalog cannot resolve yet.
    public func missingTypes(_ transaction: PgTransaction) -> [UInt32] {
        // Each relation once, and only one not already mapped as it is: a 10,000-row
        // transaction of one table looks at one relation, not 10,000.
        var seen: Set<UInt32> = []
        var oids: Set<UInt32> = []
        for change in transaction.changes {
            for relation in change.relations where seen.insert(relation.id).inserted && relations[relation.id]?.relation != relation {
                oids.formUnion(relation.columns.map(\.typeOID))
            }
        }
        return oids.isEmpty ? [] : catalog.missing(Array(oids))
    }

    public mutating func map(_ transaction: PgTransaction) throws -> Transaction {
        let position = SourcePosition.wal(WALPosition(lsn: transaction.endLSN, xid: transaction.xid))
        let millis = (transaction.commitTime + Self.postgresEpochMicroseconds) / 1000
        var events: [ChangeEvent] = []
        events.reserveCapacity(transaction.changes.count)
        func event(_ operation: ChangeOperation, _ schema: TableSchema, before: Row?, after: Row?) {
            events.append(ChangeEvent(operation: operation, table: schema.name, schema: schema, before: before, after: after,
                                      source: ChangeSource(name: sourceName, serverID: 0, gtid: nil, position: position, row: events.count, timestampMillis: millis)))
        }
        // A relation that changed since the stream last described it: its schema changes go
        // before its first row (logical replication carries no DDL; this is how it shows).
        func table(_ relation: PgOutputMessage.Relation) throws -> PgRelationSchema {
            let (table, changes) = try self.table(relation)
            if !changes.isEmpty {
                events.append(ChangeEvent(operation: .ddl, table: table.schema.name, schema: nil, before: nil, after: nil,
                                          statement: Self.statement(changes, table: table.schema), schemaChanges: changes,
                                          source: ChangeSource(name: sourceName, serverID: 0, gtid: nil, position: position, row: events.count, timestampMillis: millis)))
            }
            return table
        }
        for change in transaction.changes {
            switch change {
            case .insert(let relation, let new):
                let table = try table(relation)
                event(.create, table.schema, before: nil, after: try table.row(new))
            case .update(let relation, let old, let new):
                let table = try table(relation)
                let after = try table.row(new)
                // Without an old tuple the key did not change: the before image is the key, as
                // every sink needs one to find the row (its other columns absent, not NULL).
                event(.update, table.schema, before: try old.map { try before($0, table) } ?? keyOnly(after, table), after: after)
            case .delete(let relation, let old):
                let table = try table(relation)
                event(.delete, table.schema, before: try before(old, table), after: nil)
            case .truncate(let truncated, _, _):
                let names = truncated.map { TableName(database: $0.namespace, table: $0.name) }
                events.append(ChangeEvent(operation: .ddl, table: names.first ?? TableName(database: "", table: ""), schema: nil, before: nil, after: nil,
                                          statement: "TRUNCATE " + names.map(\.description).joined(separator: ", "),
                                          schemaChanges: names.map(SchemaChange.truncateTable),
                                          source: ChangeSource(name: sourceName, serverID: 0, gtid: nil, position: position, row: events.count, timestampMillis: millis)))
            case .message:
                continue
            }
        }
        return Transaction(gtid: nil, position: position, serverID: 0, timestampMillis: millis, events: events)
    }

    /// The old row: the whole row under REPLICA IDENTITY FULL, else the identity's columns with
    /// the others absent (the server sends them as NULL, but it did not say what they held).
    func before(_ old: PgOutputMessage.OldTuple, _ table: PgRelationSchema) throws -> Row {
        switch old {
        case .row(let tuple):
            return try table.row(tuple)
        case .key(let tuple):
            return keyOnly(try table.row(tuple), table)
        }
    }

    func keyOnly(_ row: Row, _ table: PgRelationSchema) -> Row {
        var keyed = Row(repeating: .absent, count: row.count)
        for index in table.schema.primaryKey { keyed[index] = row[index] }
        return keyed
    }

    /// The relation's schema, and how it changed since the stream last described the same
    /// relation (nothing the first time in a session).
    mutating func table(_ relation: PgOutputMessage.Relation) throws -> (PgRelationSchema, [SchemaChange]) {
        let known = relations[relation.id]
        if let known, known.relation == relation { return (known.schema, []) }
        guard let built = PgRelationSchema(relation, catalog: catalog) else {
            throw PgOutputError.unreadableRow(table: "\(relation.namespace).\(relation.name)",
                                              detail: "types \(catalog.missing(relation.columns.map(\.typeOID))) are not in the catalog")
        }
        let schema = PgRelationSchema(schema: interner.intern(built.schema), columnTypes: built.columnTypes)
        relations[relation.id] = (relation, schema)
        return (schema, known.map { Self.changes(from: $0.schema.schema, to: schema.schema) } ?? [])
    }

    /// The column changes that turn `old` into `new`. Relation messages name columns without
    /// their identity, so one column gone and one come at the same place with the same type is
    /// taken as a rename (what `ALTER TABLE … RENAME COLUMN` looks like); a table renamed keeps
    /// its relation but changes its name.
    static func changes(from old: TableSchema, to new: TableSchema) -> [SchemaChange] {
        var changes: [SchemaChange] = []
        if old.name != new.name { changes.append(.renameTable(from: old.name, to: new.name)) }
        let table = new.name
        let oldNames = old.columns.indices.map { old.columnName($0) }
        let newNames = new.columns.indices.map { new.columnName($0) }
        var dropped = oldNames.indices.filter { !newNames.contains(oldNames[$0]) }
        var added = newNames.indices.filter { !oldNames.contains(newNames[$0]) }
        if dropped.count == 1, added.count == 1, dropped[0] == added[0],
           old.columns[dropped[0]].nativeType == new.columns[added[0]].nativeType {
            changes.append(.renameColumn(table, from: oldNames[dropped[0]], to: newNames[added[0]]))
            dropped = []
            added = []
        }
        for index in dropped { changes.append(.dropColumn(table, column: oldNames[index])) }
        for (index, name) in newNames.enumerated() {
            guard let before = oldNames.firstIndex(of: name) else { continue }
            if old.columns[before].nativeType != new.columns[index].nativeType || old.columns[before].typeName != new.columns[index].typeName {
                changes.append(.modifyColumn(table, column: name, type: new.columns[index].typeName))
            }
        }
        for index in added { changes.append(.addColumn(table, column: newNames[index], type: new.columns[index].typeName)) }
        return changes
    }

    /// What the changes would be as PostgreSQL statements (with the columns' own types), for
    /// logs and the `ddl` event.
    static func statement(_ changes: [SchemaChange], table schema: TableSchema) -> String {
        func quoted(_ name: String) -> String { "\"" + name.replacing("\"", with: "\"\"") + "\"" }
        func type(_ column: String, _ fallback: String) -> String {
            schema.columns.indices.first { schema.columnName($0) == column }.flatMap { schema.columns[$0].nativeType } ?? fallback
        }
        var statements: [String] = []
        var clauses: [String] = []
        for change in changes {
            switch change {
            case .renameTable(let from, let to):
                statements.append("ALTER TABLE \(quoted(from.database)).\(quoted(from.table)) RENAME TO \(quoted(to.table))")
            case .renameColumn(_, let from, let to): clauses.append("RENAME COLUMN \(quoted(from)) TO \(quoted(to))")
            case .dropColumn(_, let column): clauses.append("DROP COLUMN \(quoted(column))")
            case .modifyColumn(_, let column, let fallback): clauses.append("ALTER COLUMN \(quoted(column)) TYPE \(type(column, fallback))")
            case .addColumn(_, let column, let fallback): clauses.append("ADD COLUMN \(quoted(column)) \(type(column, fallback))")
            default: continue
            }
        }
        if !clauses.isEmpty {
            statements.append("ALTER TABLE \(quoted(schema.name.database)).\(quoted(schema.name.table)) " + clauses.joined(separator: ", "))
        }
        return statements.joined(separator: "; ") + " /* ferry: read from the stream's new description of the table */"
    }
}

extension PgChange {
    /// The relations the change uses.
    var relations: [PgOutputMessage.Relation] {
        switch self {
        case .insert(let relation, _), .update(let relation, _, _), .delete(let relation, _): [relation]
        case .truncate(let relations, _, _): relations
        case .message: []
        }
    }
}

import FerryCore

/// Turns assembled pgoutput transactions into ferry's `Transaction`s: rows read into values,
/// each relation's schema built once while it stays the same. Pure; the source keeps its
/// `catalog` complete for the relations a transaction uses (`missingTypes`) before `map`.
public struct PgTransactionMapper: Sendable {
    public var catalog = PgTypeCatalog()
    public let sourceName: String
    private var relations: [UInt32: (relation: PgOutputMessage.Relation, schema: PgRelationSchema)] = [:]
    /// How the schema history describes relations this stream has not described yet (`seed`).
    private var earlier: [UInt32: TableSchema] = [:]
    private var interner = TableSchemaInterner()
    /// The descriptions the last `map` met that neither this stream nor the seed had: the
    /// schema history keeps them from the transaction's position on.
    public private(set) var described: [PgDescribedTable] = []
    /// Tables whose changes in the last `map` are a guess (columns gone and come after the last
    /// column both descriptions have): their rows are to be read again, so what the guess got
    /// wrong does not stay in the targets.
    public private(set) var guessed: Set<TableName> = []

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

    /// The descriptions in effect where the stream starts (the schema history's): a relation's
    /// first description in the stream is compared with its own, so a change made while no
    /// stream was open is one.
    public mutating func seed(_ tables: [PgDescribedTable]) {
        for table in tables { earlier[table.relationID] = table.schema }
    }

    public mutating func map(_ transaction: PgTransaction) throws -> Transaction {
        described = []
        guessed = []
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
                events.append(Self.schemaChangeEvent(changes, table: table.schema,
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

    /// The relation's schema, and how it changed since the stream (or before it, the seed) last
    /// described the same relation (nothing the first time ever).
    mutating func table(_ relation: PgOutputMessage.Relation) throws -> (PgRelationSchema, [SchemaChange]) {
        let known = relations[relation.id]
        if let known, known.relation == relation { return (known.schema, []) }
        guard let built = PgRelationSchema(relation, catalog: catalog) else {
            throw PgOutputError.unreadableRow(table: "\(relation.namespace).\(relation.name)",
                                              detail: "types \(catalog.missing(relation.columns.map(\.typeOID))) are not in the catalog")
        }
        let schema = PgRelationSchema(schema: interner.intern(built.schema), columnTypes: built.columnTypes)
        relations[relation.id] = (relation, schema)
        let previous = known?.schema.schema ?? earlier.removeValue(forKey: relation.id)
        if previous.map({ !$0.hasSameShape(as: schema.schema) }) ?? true {
            described.append(PgDescribedTable(relationID: relation.id, schema: schema.schema))
        }
        guard let previous else { return (schema, []) }
        let (changes, guess) = Self.compare(previous, schema.schema)
        if guess { guessed.insert(schema.schema.name) }
        return (schema, changes)
    }

    /// The `ddl` event that applies `changes` to a table now described by `schema`: what the
    /// stream delivers before a changed table's first row, and a snapshot round before the rows
    /// of a table whose snapshot describes it otherwise than the schema history.
    public static func schemaChangeEvent(_ changes: [SchemaChange], table schema: TableSchema, source: ChangeSource) -> ChangeEvent {
        ChangeEvent(operation: .ddl, table: schema.name, schema: nil, before: nil, after: nil,
                    statement: statement(changes, table: schema), schemaChanges: changes, source: source)
    }

    /// The column changes that turn `old` into `new`, and whether they are a guess. Relation
    /// messages name columns without their identity, so renames are read from where columns
    /// stand: PostgreSQL adds columns only at the end, so between two columns both descriptions
    /// have (by name), the new description's columns are the old ones renamed — in turn when
    /// there are as many (renamed and retyped), else each to the next of the old ones with its
    /// type — and the old ones left were dropped. After the last such column a drop and an add
    /// look like a rename, and taking a rename for them would keep old values the source no
    /// longer has: only one column gone and one come there, of the same type, is a rename; more
    /// are drops and adds. A table renamed keeps its relation but changes its name. The changes
    /// are a guess when columns both went and came after the last column both descriptions have.
    public static func compare(_ old: TableSchema, _ new: TableSchema) -> (changes: [SchemaChange], guessed: Bool) {
        var changes: [SchemaChange] = []
        if old.name != new.name { changes.append(.renameTable(from: old.name, to: new.name)) }
        let table = new.name
        let oldNames = old.columns.indices.map { old.columnName($0) }
        let newNames = new.columns.indices.map { new.columnName($0) }
        let kept = Set(oldNames).intersection(newNames)
        /// The columns one description has that the other does not, by the kept column they
        /// stand before (nil: after the last).
        func gaps(_ names: [String]) -> [String?: [Int]] {
            var gaps: [String?: [Int]] = [:]
            var pending: [Int] = []
            for (index, name) in names.enumerated() {
                if kept.contains(name) {
                    if !pending.isEmpty { gaps[name] = pending }
                    pending = []
                } else {
                    pending.append(index)
                }
            }
            if !pending.isEmpty { gaps[nil] = pending }
            return gaps
        }
        let oldGaps = gaps(oldNames)
        let newGaps = gaps(newNames)
        let guessed = oldGaps[nil] != nil && newGaps[nil] != nil
        var renamed: [(old: Int, new: Int)] = []
        for (before, added) in newGaps {
            let dropped = oldGaps[before] ?? []
            // After the last kept column, columns dropped and others added look alike: only one
            // gone and one come there, of one type, is taken as a rename.
            let oneLikeOne = dropped.count == 1 && added.count == 1 && old.columns[dropped[0]].nativeType == new.columns[added[0]].nativeType
            if before == nil ? oneLikeOne : dropped.count == added.count {
                renamed += zip(dropped, added).map { ($0, $1) }
            } else if before != nil {
                var candidates = dropped[...]
                for index in added {
                    guard let match = candidates.firstIndex(where: { old.columns[$0].nativeType == new.columns[index].nativeType }) else { continue }
                    renamed.append((candidates[match], index))
                    candidates = candidates[(match + 1)...]
                }
            }
        }
        renamed.sort { $0.new < $1.new }
        let renamedOld = Set(renamed.map(\.old))
        let renamedNew = Set(renamed.map(\.new))
        for pair in renamed { changes.append(.renameColumn(table, from: oldNames[pair.old], to: newNames[pair.new])) }
        for index in oldNames.indices where !kept.contains(oldNames[index]) && !renamedOld.contains(index) {
            changes.append(.dropColumn(table, column: oldNames[index]))
        }
        let counterparts = Dictionary(uniqueKeysWithValues: renamed.map { ($0.new, $0.old) })
        for (index, name) in newNames.enumerated() {
            guard let before = counterparts[index] ?? oldNames.firstIndex(of: name) else { continue }
            if old.columns[before].nativeType != new.columns[index].nativeType || old.columns[before].typeName != new.columns[index].typeName {
                changes.append(.modifyColumn(table, column: name, type: new.columns[index].typeName))
            }
        }
        for index in newNames.indices where !kept.contains(newNames[index]) && !renamedNew.contains(index) {
            changes.append(.addColumn(table, column: newNames[index], type: new.columns[index].typeName))
        }
        return (changes, guessed)
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

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
        for change in transaction.changes {
            switch change {
            case .insert(let relation, let new):
                let table = try self.table(relation)
                event(.create, table.schema, before: nil, after: try table.row(new))
            case .update(let relation, let old, let new):
                let table = try self.table(relation)
                let after = try table.row(new)
                // Without an old tuple the key did not change: the before image is the key, as
                // every sink needs one to find the row (its other columns absent, not NULL).
                event(.update, table.schema, before: try old.map { try before($0, table) } ?? keyOnly(after, table), after: after)
            case .delete(let relation, let old):
                let table = try self.table(relation)
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

    mutating func table(_ relation: PgOutputMessage.Relation) throws -> PgRelationSchema {
        if let known = relations[relation.id], known.relation == relation { return known.schema }
        guard let built = PgRelationSchema(relation, catalog: catalog) else {
            throw PgOutputError.unreadableRow(table: "\(relation.namespace).\(relation.name)",
                                              detail: "types \(catalog.missing(relation.columns.map(\.typeOID))) are not in the catalog")
        }
        let schema = PgRelationSchema(schema: interner.intern(built.schema), columnTypes: built.columnTypes)
        relations[relation.id] = (relation, schema)
        return schema
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

import FerryCore

/// The row operations a batch of transactions means for a table sink, in source order, with
/// consecutive operations of one kind on one table grouped so they can become multi-row statements.
///
/// - inserts and updates are upserts of the whole new row (an update's partial after image is
///   completed from its before image);
/// - a primary-key change is a delete of the old key followed by an upsert of the new row;
/// - tables without a key delete the old row (matching every column it has) before the upsert.
public struct RowOperations {
    public enum Group: Sendable {
        /// `columns` are the indexes present in every row of the group.
        case upsert(table: String, schema: TableSchema, columns: [Int], rows: [Row])
        /// `key` are the columns that identify a row (the primary key, else every present column).
        case delete(table: String, schema: TableSchema, key: [Int], rows: [Row])
        /// A DDL statement's changes, between the rows before and after it.
        case schemaChange([SchemaChange], statement: String?, position: BinlogPosition)

        /// The same group writing only columns the target has (`ignore` policy); deletes keep
        /// their key.
        public func restricted(to existing: Set<String>) -> Group {
            guard case .upsert(let table, let schema, let columns, let rows) = self else { return self }
            return .upsert(table: table, schema: schema, columns: columns.filter { existing.contains(schema.columnName($0)) }, rows: rows)
        }
    }

    public private(set) var groups: [Group] = []
    /// Most rows × columns in one group (bound parameters or literal size).
    public var maximumCells: Int

    public init(maximumCells: Int = 30_000) {
        self.maximumCells = maximumCells
    }

    /// Adds every change of `transactions`, naming target tables with `targetTable` (not called
    /// for DDL).
    public mutating func add(_ transactions: [Transaction], targetTable: (ChangeEvent) throws -> String) rethrows {
        for transaction in transactions {
            for event in transaction.events {
                if event.operation == .ddl, !event.schemaChanges.isEmpty {
                    groups.append(.schemaChange(event.schemaChanges, statement: event.statement, position: transaction.position))
                    continue
                }
                guard let schema = event.schema else { continue }
                let table = try targetTable(event)
                let key = schema.primaryKey
                switch event.operation {
                case .create, .read:
                    if let after = event.after { upsert(table: table, schema: schema, row: after) }
                case .update:
                    guard let before = event.before, let after = event.after else { continue }
                    if key.isEmpty || key.contains(where: { after[$0] != .absent && before[$0] != after[$0] }) {
                        delete(table: table, schema: schema, row: before)
                    }
                    upsert(table: table, schema: schema, row: zip(before, after).map { $1 == .absent ? $0 : $1 })
                case .delete:
                    if let before = event.before { delete(table: table, schema: schema, row: before) }
                case .ddl:
                    continue
                }
            }
        }
    }

    mutating func upsert(table: String, schema: TableSchema, row: Row) {
        let columns = row.indices.filter { row[$0] != .absent }
        if case .upsert(let t, let s, let c, var rows)? = groups.last, t == table, s === schema, c == columns,
           (rows.count + 1) * columns.count <= maximumCells {
            rows.append(row)
            groups[groups.count - 1] = .upsert(table: t, schema: s, columns: c, rows: rows)
        } else {
            groups.append(.upsert(table: table, schema: schema, columns: columns, rows: [row]))
        }
    }

    mutating func delete(table: String, schema: TableSchema, row: Row) {
        let key = schema.primaryKey.isEmpty ? row.indices.filter { row[$0] != .absent } : schema.primaryKey
        if !schema.primaryKey.isEmpty, case .delete(let t, let s, let k, var rows)? = groups.last, t == table, s === schema, k == key,
           (rows.count + 1) * key.count <= maximumCells {
            rows.append(row)
            groups[groups.count - 1] = .delete(table: t, schema: s, key: k, rows: rows)
        } else {
            groups.append(.delete(table: table, schema: schema, key: key, rows: [row]))
        }
    }
}

/// A double-quoted SQL identifier (SQLite, PostgreSQL), embedded quotes doubled.
public func doubleQuoted(_ identifier: String) -> String {
    "\"" + identifier.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
}

/// Guards against two source tables landing on one target table.
public struct TargetTableRegistry: Sendable {
    private var origins: [String: TableName] = [:]

    public init() {}

    public mutating func register(_ target: String, for source: TableName, sink: String) throws {
        if let origin = origins[target], origin != source {
            throw FerryError(code: "config.target_table_collision",
                             message: "source tables \(origin) and \(source) would both land on table \(target) of sink \(sink)",
                             fix: "set target_table: \"{db}_{table}\" on the pipeline, or exclude one of the tables")
        }
        origins[target] = source
    }
}

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
        case schemaChange([SchemaChange], statement: String?, position: SourcePosition)

        /// The same group writing only columns the target has (`ignore` policy); deletes keep
        /// their key.
        public func restricted(to existing: Set<String>) -> Group {
            guard case .upsert(let table, let schema, let columns, let rows) = self else { return self }
            return .upsert(table: table, schema: schema, columns: columns.filter { existing.contains(schema.columnName($0)) }, rows: rows)
        }
    }

    /// The groups in source order.
    public var groups: [Group] { closed + (open.map { [$0.group] } ?? []) }
    /// Most rows × columns in one group (bound parameters or literal size).
    public var maximumCells: Int

    /// The group rows are being added to, kept apart so appending does not copy its rows.
    private struct OpenGroup {
        var isUpsert: Bool
        var table: String
        var schema: TableSchema
        var columns: [Int]
        var rows: [Row]

        var group: Group {
            isUpsert ? .upsert(table: table, schema: schema, columns: columns, rows: rows)
                : .delete(table: table, schema: schema, key: columns, rows: rows)
        }
    }

    private var closed: [Group] = []
    private var open: OpenGroup?
    private var targets = TableRun<String>()

    public init(maximumCells: Int = 30_000) {
        self.maximumCells = maximumCells
    }

    /// Adds every change of `transactions`, naming target tables with `targetTable` (not called
    /// for DDL).
    public mutating func add(_ transactions: [Transaction], targetTable: (ChangeEvent) throws -> String) rethrows {
        for transaction in transactions {
            for event in transaction.events {
                if event.operation == .ddl, !event.schemaChanges.isEmpty {
                    close()
                    closed.append(.schemaChange(event.schemaChanges, statement: event.statement, position: transaction.position))
                    continue
                }
                guard let schema = event.schema else { continue }
                let table = try targets.value(for: event.table) { try targetTable(event) }
                let key = schema.primaryKey
                switch event.operation {
                case .create, .read:
                    if let after = event.after { upsert(table: table, schema: schema, row: after) }
                case .update:
                    guard let before = event.before, let after = event.after else { continue }
                    if key.isEmpty || key.contains(where: { after[$0] != .absent && before[$0] != after[$0] }) {
                        delete(table: table, schema: schema, row: before)
                    }
                    upsert(table: table, schema: schema, row: after.completed(from: before))
                case .delete:
                    if let before = event.before { delete(table: table, schema: schema, row: before) }
                case .ddl:
                    continue
                }
            }
        }
    }

    /// The rows with each key's last row only, in order. Keys are compared by hash first, so the
    /// usual group — every key once — costs no key copies.
    public static func lastRowPerKey(_ rows: [Row], key: [Int]) -> [Row] {
        lastPerKey(rows, key: key) { $0 }
    }

    /// `items` with each key's last item only, in order; `row` gives an item's row.
    public static func lastPerKey<Item>(_ items: [Item], key: [Int], row: (Item) -> Row) -> [Item] {
        var hashes = Set<Int>(minimumCapacity: items.count)
        var clash = false
        for item in items {
            let values = row(item)
            var hasher = Hasher()
            for column in key { hasher.combine(values[column]) }
            if !hashes.insert(hasher.finalize()).inserted {
                clash = true
                break
            }
        }
        guard clash else { return items }
        var seen = Set<[Value]>()
        return items.reversed().filter { item in
            let values = row(item)
            return seen.insert(key.map { values[$0] }).inserted
        }.reversed()
    }

    /// The indexes of the row's present columns.
    static func presentColumns(_ row: Row) -> [Int] {
        row.isPartial ? row.indices.filter { row[$0] != .absent } : Array(row.indices)
    }

    private mutating func close() {
        if let group = open { closed.append(group.group) }
        open = nil
    }

    mutating func upsert(table: String, schema: TableSchema, row: Row) {
        let columns = Self.presentColumns(row)
        // Optional chaining reads in place: a copy of the open group would make the append copy its rows.
        if open?.isUpsert == true, open?.schema === schema, open?.table == table, open?.columns == columns,
           let count = open?.rows.count, (count + 1) * columns.count <= maximumCells {
            open!.rows.append(row)
        } else {
            close()
            open = OpenGroup(isUpsert: true, table: table, schema: schema, columns: columns, rows: [row])
        }
    }

    mutating func delete(table: String, schema: TableSchema, row: Row) {
        let key = schema.primaryKey.isEmpty ? Self.presentColumns(row) : schema.primaryKey
        if !schema.primaryKey.isEmpty, open?.isUpsert == false, open?.schema === schema, open?.table == table, open?.columns == key,
           let count = open?.rows.count, (count + 1) * key.count <= maximumCells {
            open!.rows.append(row)
        } else {
            close()
            open = OpenGroup(isUpsert: false, table: table, schema: schema, columns: key, rows: [row])
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
            throw FerryError(code: .configTargetTableCollision,
                             message: "source tables \(origin) and \(source) would both land on table \(target) of sink \(sink)",
                             fix: "set target_table: \"{db}_{table}\" on the pipeline, or exclude one of the tables")
        }
        origins[target] = source
    }
}

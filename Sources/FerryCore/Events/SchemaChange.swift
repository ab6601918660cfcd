/// What a DDL statement does to replicated tables, as far as targets care: tables and columns
/// appear, disappear, are renamed, retyped or emptied.
public enum SchemaChange: Sendable, Hashable, CustomStringConvertible {
    case createTable(TableName)
    case dropTable(TableName)
    case truncateTable(TableName)
    case renameTable(from: TableName, to: TableName)
    /// `type` is the source type name in the form `TableSchema` uses (`varchar(20)`, `int unsigned`).
    case addColumn(TableName, column: String, type: String)
    case dropColumn(TableName, column: String)
    case renameColumn(TableName, from: String, to: String)
    case modifyColumn(TableName, column: String, type: String)
    /// Not a statement of the source: a snapshot read a table without a key whole, and its rows,
    /// which follow in the same transaction, replace every row the target holds (rows of such a
    /// table have nothing to be matched by, so a re-read would otherwise add them beside the old).
    case replaceRows(TableName)
    /// A statement ferry could not interpret; `reason` says which part. The table's name is
    /// empty when the statement did not name one.
    case unrecognized(TableName, reason: String)

    /// The kind's name in configuration allow/deny lists.
    public enum Kind: String, Sendable, CaseIterable {
        case createTable = "create_table"
        case dropTable = "drop_table"
        case truncateTable = "truncate_table"
        case renameTable = "rename_table"
        case addColumn = "add_column"
        case dropColumn = "drop_column"
        case renameColumn = "rename_column"
        case modifyColumn = "modify_column"
        case replaceRows = "replace_rows"
        case unrecognized = "unrecognized"

        /// The kinds a sink's `allow`/`deny` lists name: what a statement can do (not the rows
        /// a re-read replaces, nor a statement ferry cannot interpret).
        public static let policyKinds = allCases.filter { $0 != .unrecognized && $0 != .replaceRows }
    }

    public var kind: Kind {
        switch self {
        case .createTable: .createTable
        case .dropTable: .dropTable
        case .truncateTable: .truncateTable
        case .renameTable: .renameTable
        case .addColumn: .addColumn
        case .dropColumn: .dropColumn
        case .renameColumn: .renameColumn
        case .modifyColumn: .modifyColumn
        case .replaceRows: .replaceRows
        case .unrecognized: .unrecognized
        }
    }

    /// The table the change applies to (for a rename, the old name).
    public var table: TableName {
        switch self {
        case .createTable(let table), .dropTable(let table), .truncateTable(let table), .addColumn(let table, _, _),
             .dropColumn(let table, _), .renameColumn(let table, _, _), .modifyColumn(let table, _, _), .replaceRows(let table), .unrecognized(let table, _):
            table
        case .renameTable(let from, _): from
        }
    }

    public var description: String {
        switch self {
        case .createTable(let table): "create table \(table)"
        case .dropTable(let table): "drop table \(table)"
        case .truncateTable(let table): "truncate table \(table)"
        case .renameTable(let from, let to): "rename table \(from) to \(to)"
        case .addColumn(let table, let column, let type): "add column \(column) \(type) to \(table)"
        case .dropColumn(let table, let column): "drop column \(column) of \(table)"
        case .renameColumn(let table, let from, let to): "rename column \(from) of \(table) to \(to)"
        case .modifyColumn(let table, let column, let type): "change column \(column) of \(table) to \(type)"
        case .replaceRows(let table): "replace the rows of \(table) with its snapshot's"
        case .unrecognized(_, let reason): "unrecognized schema change (\(reason))"
        }
    }
}

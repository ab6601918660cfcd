/// Which columns of a table travel, under which names, and which identify a row: the shape a
/// pipeline's `mapping:` gives a table, and a rule gives the changes it matches.
public struct ColumnProjection: Sendable, Equatable {
    /// Column-name globs to keep; empty keeps every column.
    public var includeColumns: [String]
    /// Column-name globs to drop; they win over `includeColumns`.
    public var excludeColumns: [String]
    /// Source column name → target column name.
    public var renameColumns: [String: String]
    /// Source column names that identify a row, replacing the primary key (for tables without one).
    public var key: [String]?

    public init(includeColumns: [String] = [], excludeColumns: [String] = [], renameColumns: [String: String] = [:], key: [String]? = nil) {
        self.includeColumns = includeColumns
        self.excludeColumns = excludeColumns
        self.renameColumns = renameColumns
        self.key = key
    }

    /// Whether the projection leaves every table as it is.
    public var isEmpty: Bool { includeColumns.isEmpty && excludeColumns.isEmpty && renameColumns.isEmpty && key == nil }

    /// A table's shape after the projection.
    public struct Shape: Sendable {
        public let schema: TableSchema
        /// Source column index of each target column.
        public let columns: [Int]

        public func project(_ row: Row) -> Row { columns.map { row[$0] } }
    }

    /// `schema` projected. `origin` names what asks for it in errors ("the mapping", "the rule at
    /// ferry.yml:12"); a renamed or key column the table lacks, a key column left out, or two
    /// columns given one name are refused.
    public func shape(_ schema: TableSchema, pipeline: String, origin: String) throws -> Shape {
        let names = schema.columns.indices.map { schema.columnName($0) }
        func unknown(_ column: String, _ role: String) -> FerryError {
            FerryError(code: .configUnknownColumn,
                       message: "\(role) column '\(column)' of \(origin) is not a column of \(schema.name)",
                       context: [("pipeline", pipeline), ("table", schema.name.description)],
                       fix: "columns of \(schema.name): \(names.joined(separator: ", "))")
        }
        for column in renameColumns.keys.sorted() where !names.contains(column) { throw unknown(column, "renamed") }
        let keep = names.indices.filter { index in
            let name = names[index]
            if excludeColumns.contains(where: { TableGlob.matchesName($0, name) }) { return false }
            return includeColumns.isEmpty || includeColumns.contains { TableGlob.matchesName($0, name) }
        }
        var primaryKey = schema.primaryKey
        if let key {
            primaryKey = try key.map { column in
                guard let index = names.firstIndex(of: column) else { throw unknown(column, "key") }
                return index
            }
        }
        for index in primaryKey where !keep.contains(index) {
            throw FerryError(code: .configKeyColumnExcluded,
                             message: "column '\(names[index])' identifies rows of \(schema.name) but \(origin) leaves it out",
                             context: [("pipeline", pipeline), ("table", schema.name.description)],
                             fix: "keep the key columns (\(primaryKey.map { names[$0] }.joined(separator: ", "))) or set another key for the table (mapping.key)")
        }
        let renamed = keep.map { renameColumns[names[$0]] ?? names[$0] }
        if let duplicate = Dictionary(grouping: renamed, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw FerryError(code: .configDuplicateColumn, message: "two columns of \(schema.name) would both be named '\(duplicate)' after \(origin)",
                             context: [("pipeline", pipeline), ("table", schema.name.description)], fix: "rename one of them")
        }
        let columns = zip(keep, renamed).map { index, name in
            var column = schema.columns[index]
            column.name = name
            return column
        }
        let targetKey = primaryKey.map { keep.firstIndex(of: $0)! }
        return Shape(schema: TableSchema(name: schema.name, columns: columns, primaryKey: targetKey), columns: keep)
    }
}

import FerryCore
import Foundation

/// How the changes of some tables are shaped before they are buffered: which columns travel,
/// under which names, and which columns identify a row.
public struct TableMapping: Sendable {
    /// `database.table` glob (see `TableGlob`); the first mapping that matches a table applies.
    public var tables: String
    /// Column-name globs to keep; empty keeps every column.
    public var includeColumns: [String]
    /// Column-name globs to drop; they win over `includeColumns`.
    public var excludeColumns: [String]
    /// Source column name → target column name.
    public var renameColumns: [String: String]
    /// Source column names that identify a row, replacing the primary key (for tables without one).
    public var key: [String]?

    public init(tables: String, includeColumns: [String] = [], excludeColumns: [String] = [], renameColumns: [String: String] = [:],
                key: [String]? = nil) {
        self.tables = tables
        self.includeColumns = includeColumns
        self.excludeColumns = excludeColumns
        self.renameColumns = renameColumns
        self.key = key
    }
}

/// Applies a pipeline's `TableMapping`s to each transaction. A projection is worked out once per
/// table schema and cached; tables no mapping names pass through untouched.
public final class TransactionTransform: @unchecked Sendable {
    public let mappings: [TableMapping]
    public let pipeline: String
    private let lock = NSLock()
    /// Per source schema: the schema itself (kept alive so its identifier is not reused) and the
    /// projection, `nil` when the table passes through unchanged.
    private var projections: [ObjectIdentifier: (schema: TableSchema, projection: Projection?)] = [:]

    struct Projection {
        let schema: TableSchema
        /// Source column index of each target column.
        let columns: [Int]
    }

    public init(mappings: [TableMapping] = [], pipeline: String = "") {
        self.mappings = mappings
        self.pipeline = pipeline
    }

    public func apply(_ transaction: Transaction) throws -> Transaction {
        guard !mappings.isEmpty else { return transaction }
        var shaped = transaction
        for index in shaped.events.indices {
            guard let schema = shaped.events[index].schema, let projection = try projection(for: schema) else { continue }
            shaped.events[index].schema = projection.schema
            shaped.events[index].before = shaped.events[index].before.map { row in projection.columns.map { row[$0] } }
            shaped.events[index].after = shaped.events[index].after.map { row in projection.columns.map { row[$0] } }
        }
        return shaped
    }

    func projection(for schema: TableSchema) throws -> Projection? {
        lock.lock()
        defer { lock.unlock() }
        if let known = projections[ObjectIdentifier(schema)] { return known.projection }
        let projection = try Self.project(schema, mapping: mappings.first { TableGlob.matches($0.tables, schema.name.description) }, pipeline: pipeline)
        projections[ObjectIdentifier(schema)] = (schema, projection)
        return projection
    }

    static func project(_ schema: TableSchema, mapping: TableMapping?, pipeline: String) throws -> Projection? {
        guard let mapping else { return nil }
        func unknown(_ column: String, _ role: String) -> FerryError {
            FerryError(code: "config.unknown_column",
                       message: "\(role) column '\(column)' is not a column of \(schema.name)",
                       context: [("pipeline", pipeline), ("table", schema.name.description)],
                       fix: "columns of \(schema.name): \(schema.columns.indices.map { schema.columnName($0) }.joined(separator: ", "))")
        }
        let names = schema.columns.indices.map { schema.columnName($0) }
        for column in mapping.renameColumns.keys where !names.contains(column) { throw unknown(column, "renamed") }
        let keep = names.indices.filter { index in
            let name = names[index]
            if mapping.excludeColumns.contains(where: { TableGlob.matchesName($0, name) }) { return false }
            return mapping.includeColumns.isEmpty || mapping.includeColumns.contains { TableGlob.matchesName($0, name) }
        }
        var key = schema.primaryKey
        if let override = mapping.key {
            key = try override.map { column in
                guard let index = names.firstIndex(of: column) else { throw unknown(column, "key") }
                return index
            }
        }
        for index in key where !keep.contains(index) {
            throw FerryError(code: "config.key_column_excluded",
                             message: "column '\(names[index])' identifies rows of \(schema.name) but the mapping leaves it out",
                             context: [("pipeline", pipeline), ("table", schema.name.description)],
                             fix: "keep the key columns (\(key.map { names[$0] }.joined(separator: ", "))) or set another key for the table")
        }
        let renamed = keep.map { mapping.renameColumns[names[$0]] ?? names[$0] }
        if let duplicate = Dictionary(grouping: renamed, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw FerryError(code: "config.duplicate_column", message: "two columns of \(schema.name) would both be named '\(duplicate)'",
                             context: [("pipeline", pipeline), ("table", schema.name.description)], fix: "rename one of them")
        }
        let columns = zip(keep, renamed).map { index, name in
            var column = schema.columns[index]
            column.name = name
            return column
        }
        let targetKey = key.map { keep.firstIndex(of: $0)! }
        return Projection(schema: TableSchema(name: schema.name, columns: columns, primaryKey: targetKey), columns: keep)
    }
}

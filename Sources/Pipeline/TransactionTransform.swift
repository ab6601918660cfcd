import FerryCore
import Foundation

/// How the changes of some tables are shaped before they are buffered.
public struct TableMapping: Sendable {
    /// `database.table` glob (see `TableGlob`); the first mapping that matches a table applies.
    public var tables: String
    public var columns: ColumnProjection

    public init(tables: String, columns: ColumnProjection = ColumnProjection()) {
        self.tables = tables
        self.columns = columns
    }
}

/// Applies a pipeline's `TableMapping`s to each transaction. A projection is worked out once per
/// table schema and cached; tables no mapping names pass through untouched.
public final class TransactionTransform: @unchecked Sendable {
    public let mappings: [TableMapping]
    public let pipeline: String
    private let lock = NSLock()
    /// Per table: the schema its projection was worked out for and the projection, `nil` when
    /// the table passes through unchanged. A table's newer schema replaces the older entry.
    private var projections: [TableName: (schema: TableSchema, projection: ColumnProjection.Shape?)] = [:]

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
            shaped.events[index].before = shaped.events[index].before.map(projection.project)
            shaped.events[index].after = shaped.events[index].after.map(projection.project)
        }
        return shaped
    }

    func projection(for schema: TableSchema) throws -> ColumnProjection.Shape? {
        lock.lock()
        defer { lock.unlock() }
        if let known = projections[schema.name], known.schema === schema { return known.projection }
        let projection = try mappings.first { TableGlob.matches($0.tables, schema.name.description) }
            .map { try $0.columns.shape(schema, pipeline: pipeline, origin: "the mapping") }
        projections[schema.name] = (schema, projection)
        return projection
    }
}

import FerryCore
import Foundation

/// A relation's schema as the schema history keeps it: what the next description of the same
/// relation is compared with, in a stream that starts later (`PgTransactionMapper.seed`).
public struct PgDescribedTable: Sendable, Codable, Equatable {
    struct Column: Sendable, Codable, Equatable {
        var name: String
        var typeName: String
        var nativeType: String?
        var charset: String?
    }

    /// The relation's OID: a rename keeps it, a table dropped and made again has a new one.
    public let relationID: UInt32
    let namespace: String
    let name: String
    let columns: [Column]
    let key: [Int]

    public init(relationID: UInt32, schema: TableSchema) {
        self.relationID = relationID
        namespace = schema.name.database
        name = schema.name.table
        columns = schema.columns.indices.map {
            Column(name: schema.columnName($0), typeName: schema.columns[$0].typeName, nativeType: schema.columns[$0].nativeType, charset: schema.columns[$0].charset)
        }
        key = schema.primaryKey
    }

    /// The schema a stream built from the same description (`PgRelationSchema`).
    public var schema: TableSchema {
        TableSchema(name: TableName(database: namespace, table: name),
                    columns: columns.map { ColumnSchema(name: $0.name, typeName: $0.typeName, nullable: true, charset: $0.charset, nativeType: $0.nativeType) },
                    primaryKey: key)
    }

    /// The history's record of the description, in effect from `position`.
    public func record(at position: SourcePosition) throws -> SchemaHistoryRecord {
        SchemaHistoryRecord(table: String(relationID), position: position, description: String(decoding: try JSONEncoder().encode(self), as: UTF8.self))
    }

    /// The description a record keeps; nil when it is not one (another source's kind).
    public init?(_ record: SchemaHistoryRecord) {
        guard let decoded = try? JSONDecoder().decode(PgDescribedTable.self, from: Data(record.description.utf8)) else { return nil }
        self = decoded
    }
}

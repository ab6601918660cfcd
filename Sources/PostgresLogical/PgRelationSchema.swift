import FerryCore

/// A pgoutput relation as ferry's `TableSchema`, with how each column's text reads, and its
/// tuples as `Row`s.
public struct PgRelationSchema: Sendable {
    public let schema: TableSchema
    /// Each column's type and the modifier its values read with.
    public let columnTypes: [(type: PgType, modifier: Int32)]

    init(schema: TableSchema, columnTypes: [(type: PgType, modifier: Int32)]) {
        self.schema = schema
        self.columnTypes = columnTypes
    }

    /// Nil while the catalog lacks one of the relation's types (`PgTypeCatalog.missing`).
    public init?(_ relation: PgOutputMessage.Relation, catalog: PgTypeCatalog) {
        var types: [(type: PgType, modifier: Int32)] = []
        var columns: [ColumnSchema] = []
        for column in relation.columns {
            guard let resolved = catalog.column(oid: column.typeOID, modifier: column.typeModifier) else { return nil }
            types.append(resolved)
            columns.append(ColumnSchema(name: column.name, typeName: resolved.type.mysqlType(modifier: resolved.modifier), nullable: true,
                                        charset: resolved.type.charset, nativeType: resolved.type.nativeType(modifier: resolved.modifier)))
        }
        // The replica identity's columns: the primary key under REPLICA IDENTITY DEFAULT, or the
        // chosen unique index's columns under USING INDEX. Under FULL the server flags every
        // column, and the table is keyless here: its old rows are whole, so targets match them.
        let key = relation.replicaIdentity == .full ? [] : relation.columns.indices.filter { relation.columns[$0].isKey }
        schema = TableSchema(name: TableName(database: relation.namespace, table: relation.name), columns: columns, primaryKey: key)
        columnTypes = types
    }

    /// A tuple's values; a TOASTed value the change left alone is `.absent`, so targets keep theirs.
    public func row(_ tuple: TupleData) throws(PgOutputError) -> Row {
        guard tuple.values.count == columnTypes.count else {
            throw PgOutputError.unreadableRow(table: "\(schema.name)", detail: "it has \(tuple.values.count) columns, its relation \(columnTypes.count)")
        }
        var row: Row = []
        row.reserveCapacity(tuple.values.count)
        for (index, value) in tuple.values.enumerated() {
            switch value {
            case .null: row.append(.null)
            case .unchangedToast: row.append(.absent)
            case .text(let text): row.append(PgValueReader.value(text, type: columnTypes[index].type, modifier: columnTypes[index].modifier))
            case .binary:
                throw PgOutputError.unreadableRow(table: "\(schema.name)", detail: "column \(schema.columnName(index)) came in binary form, which ferry never asks for")
            }
        }
        return row
    }
}

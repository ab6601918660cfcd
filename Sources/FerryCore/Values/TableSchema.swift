/// A table's identity in the source: database (schema) and table name.
public struct TableName: Sendable, Hashable, CustomStringConvertible {
    public var database: String
    public var table: String

    public init(database: String, table: String) {
        self.database = database
        self.table = table
    }

    public var description: String { "\(database).\(table)" }
}

/// One column as the source describes it.
public struct ColumnSchema: Sendable, Hashable {
    /// Column name; `nil` when the source did not say (e.g. `binlog_row_metadata=MINIMAL`).
    public var name: String?
    /// The source's type name, e.g. `decimal(10,2)`, `varchar`, `timestamp(6)`.
    public var typeName: String
    public var nullable: Bool
    /// Character set name for character columns (`utf8mb4`, `latin1`, `binary`, …).
    public var charset: String?
    /// The source's own type when its types are not MySQL's: PostgreSQL's `format_type` text,
    /// e.g. `timestamp(3) with time zone` or `integer[]`. `typeName` then holds the nearest MySQL
    /// type, which every sink's mapping understands; a PostgreSQL target uses this one instead.
    public var nativeType: String?

    public init(name: String?, typeName: String, nullable: Bool, charset: String? = nil, nativeType: String? = nil) {
        self.name = name
        self.typeName = typeName
        self.nullable = nullable
        self.charset = charset
        self.nativeType = nativeType
    }
}

/// Columns in source order, plus the primary key as column indexes.
///
/// A class so that every change of a table shares one copy; it is immutable.
public final class TableSchema: Sendable {
    public let name: TableName
    public let columns: [ColumnSchema]
    /// Indexes into `columns`, in key order; empty when the table has no primary key.
    public let primaryKey: [Int]
    /// Each column's JSON object key, `"name":`, encoded once for the event writer.
    let jsonKeys: [[UInt8]]

    public init(name: TableName, columns: [ColumnSchema], primaryKey: [Int]) {
        self.name = name
        self.columns = columns
        self.primaryKey = primaryKey
        self.jsonKeys = columns.indices.map { index in
            var key: [UInt8] = []
            JSONBuffer.appendString(columns[index].name ?? "col_\(index + 1)", to: &key)
            key.append(UInt8(ascii: ":"))
            return key
        }
    }

    /// The column's name, or `col_<n>` (1-based) when the source gave none.
    public func columnName(_ index: Int) -> String {
        columns[index].name ?? "col_\(index + 1)"
    }
}

/// Values in column order, aligned with a `TableSchema`.
public typealias Row = [Value]

extension TableSchema {
    /// Same table, columns and key: changes of either can share one schema object.
    public func hasSameShape(as other: TableSchema) -> Bool {
        self === other || (name == other.name && primaryKey == other.primaryKey && columns == other.columns)
    }
}

/// One schema object per table while its shape stays the same. A source builds a schema whenever
/// it meets a table map again (after every binlog rotation and reconnect); interning gives every
/// change of an unchanged table the same object, so caches keyed by a schema's identity stay
/// bounded by the number of tables and schema changes, not by the length of the stream.
public struct TableSchemaInterner: Sendable {
    private var latest: [TableName: TableSchema] = [:]

    public init() {}

    /// `schema`, or the object already known for a table of the same shape.
    public mutating func intern(_ schema: TableSchema) -> TableSchema {
        if let known = latest[schema.name], known.hasSameShape(as: schema) { return known }
        latest[schema.name] = schema
        return schema
    }
}

extension Array where Element == Value {
    /// True when some column is not in this image (`binlog_row_image` MINIMAL or NOBLOB).
    public var isPartial: Bool {
        contains { if case .absent = $0 { return true } else { return false } }
    }

    /// A partial after image completed from the before image: columns absent from it keep
    /// their old values.
    public func completed(from before: Row) -> Row {
        isPartial ? zip(before, self).map { $1 == .absent ? $0 : $1 } : self
    }
}

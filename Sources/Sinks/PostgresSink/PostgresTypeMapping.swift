import FerryCore

/// How source columns and values land in PostgreSQL (docs/sinks/postgres.md).
enum PostgresTypeMapping {
    /// The PostgreSQL column type for a source column: a PostgreSQL source's own type, else the
    /// mapping of its MySQL type.
    static func columnType(_ column: ColumnSchema) -> String {
        column.nativeType ?? columnType(column.typeName)
    }

    /// The PostgreSQL column type for a source type name.
    static func columnType(_ typeName: String) -> String {
        let unsigned = typeName.hasSuffix(" unsigned")
        let name = unsigned ? String(typeName.dropLast(9)) : typeName
        let base = name.split(separator: "(").first.map(String.init) ?? name
        let arguments = name.contains("(") ? String(name[name.index(after: name.firstIndex(of: "(")!)...].dropLast()) : ""
        switch base {
        case "tinyint": return "smallint"
        case "smallint": return unsigned ? "integer" : "smallint"
        case "mediumint": return "integer"
        case "int": return unsigned ? "bigint" : "integer"
        case "bigint": return unsigned ? "numeric(20,0)" : "bigint"
        case "float": return "real"
        case "double": return "double precision"
        case "decimal": return "numeric(\(arguments))"
        case "year": return "smallint"
        case "date": return "date"
        case "time": return "interval"
        case "datetime": return arguments.isEmpty ? "timestamp(0)" : "timestamp(\(arguments))"
        case "timestamp": return arguments.isEmpty ? "timestamptz(0)" : "timestamptz(\(arguments))"
        case "char", "varchar": return arguments.isEmpty ? "text" : "varchar(\(arguments))"
        case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry": return "bytea"
        case "json": return "jsonb"
        case "uuid": return "uuid"
        case "inet4", "inet6": return "inet"
        case "bit": return (Int(arguments) ?? 64) >= 64 ? "numeric(20,0)" : "bigint"
        default: return "text"
        }
    }
}

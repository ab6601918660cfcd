/// The `schema` half of a Debezium message as Kafka Connect's JSON converter writes it
/// (`schemas.enable=true`), describing the values as ferry prints them (docs/types.md) — so a
/// consumer that reads column types from the schema reads them right: DECIMAL is a string (as with
/// Debezium's `decimal.handling.mode=string`), dates and times ISO strings (`io.debezium.time.IsoDate`,
/// `IsoTime`, `IsoTimestamp`, `ZonedTimestamp`), binary columns base64 `bytes`.
enum DebeziumSchema {
    /// `{"type":"struct","fields":[before, after, source, op, ts_ms],…}` for events of `table`.
    static func envelope(_ table: TableSchema, sourceName: String, postgres: Bool = false) -> [UInt8] {
        let prefix = "\(sourceName).\(table.name.database).\(table.name.table)"
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"type\":\"struct\",\"fields\":[", to: &out)
        for (index, field) in ["before", "after"].enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBuffer.appendASCII("{\"type\":\"struct\",\"fields\":[", to: &out)
            for column in table.columns.indices {
                if column > 0 { out.append(UInt8(ascii: ",")) }
                appendColumn(table.columns[column], name: table.columnName(column), to: &out)
            }
            JSONBuffer.appendASCII("],\"optional\":true,\"name\":", to: &out)
            JSONBuffer.appendString(prefix + ".Value", to: &out)
            JSONBuffer.appendASCII(",\"field\":", to: &out)
            JSONBuffer.appendString(field, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONBuffer.appendASCII(",", to: &out)
        out.append(contentsOf: postgres ? postgresSourceStruct : sourceStruct)
        JSONBuffer.appendASCII(",{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"}],\"optional\":false,\"name\":", to: &out)
        JSONBuffer.appendString(prefix + ".Envelope", to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The `source` block's fields, as ferry writes them.
    static let sourceStruct: [UInt8] = Array(("{\"type\":\"struct\",\"fields\":["
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},"
        + "{\"type\":\"string\",\"optional\":true,\"field\":\"gtid\"},{\"type\":\"string\",\"optional\":true,\"field\":\"gtid_pos\"},"
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"file\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"pos\"},"
        + "{\"type\":\"int64\",\"optional\":true,\"field\":\"snapshot_step\"},{\"type\":\"int32\",\"optional\":false,\"field\":\"row\"},"
        + "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{\"allowed\":\"true,last_in_data_collection,last,false\"},\"default\":\"false\",\"field\":\"snapshot\"},"
        + "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
        + "{\"type\":\"string\",\"optional\":true,\"field\":\"table\"}"
        + "],\"optional\":false,\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}").utf8)

    /// The `source` block of a PostgreSQL source's events.
    static let postgresSourceStruct: [UInt8] = Array(("{\"type\":\"struct\",\"fields\":["
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},"
        + "{\"type\":\"string\",\"optional\":true,\"field\":\"gtid\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"lsn\"},"
        + "{\"type\":\"int64\",\"optional\":true,\"field\":\"txId\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"xmin\"},"
        + "{\"type\":\"int64\",\"optional\":true,\"field\":\"snapshot_step\"},{\"type\":\"int32\",\"optional\":false,\"field\":\"row\"},"
        + "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{\"allowed\":\"true,last_in_data_collection,last,false\"},\"default\":\"false\",\"field\":\"snapshot\"},"
        + "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"
        + "{\"type\":\"string\",\"optional\":true,\"field\":\"table\"}"
        + "],\"optional\":false,\"name\":\"io.debezium.connector.postgresql.Source\",\"field\":\"source\"}").utf8)

    /// One column's field schema: Kafka Connect type, optional semantic name, nullability.
    static func appendColumn(_ column: ColumnSchema, name: String, to out: inout [UInt8]) {
        let (type, semantic) = connectType(column.typeName)
        JSONBuffer.appendASCII("{\"type\":", to: &out)
        JSONBuffer.appendString(type, to: &out)
        if type == "struct" {
            // GEOMETRY: {"srid":N,"wkb":"<base64>"}.
            JSONBuffer.appendASCII(",\"fields\":[{\"type\":\"bytes\",\"optional\":false,\"field\":\"wkb\"},{\"type\":\"int32\",\"optional\":true,\"field\":\"srid\"}]", to: &out)
        }
        JSONBuffer.appendASCII(column.nullable ? ",\"optional\":true" : ",\"optional\":false", to: &out)
        if let semantic {
            JSONBuffer.appendASCII(",\"name\":", to: &out)
            JSONBuffer.appendString(semantic, to: &out)
        }
        if let allowed = members(column.typeName) {
            JSONBuffer.appendASCII(",\"parameters\":{\"allowed\":", to: &out)
            JSONBuffer.appendString(allowed, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONBuffer.appendASCII(",\"field\":", to: &out)
        JSONBuffer.appendString(name, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// Kafka Connect's type and Debezium's semantic name for a source type name, as ferry prints
    /// its values.
    static func connectType(_ typeName: String) -> (type: String, semantic: String?) {
        let unsigned = typeName.hasSuffix(" unsigned")
        let base = String(typeName.prefix { $0 != "(" && $0 != " " })
        switch base {
        case "boolean": return ("boolean", nil)
        case "tinyint": return (unsigned ? "int16" : "int8", nil)
        case "smallint": return (unsigned ? "int32" : "int16", nil)
        case "mediumint": return ("int32", nil)
        case "int": return (unsigned ? "int64" : "int32", nil)
        case "bigint", "bit": return ("int64", nil)
        case "float": return ("float32", nil)
        case "double": return ("float64", nil)
        case "year": return ("int32", "io.debezium.time.Year")
        case "decimal": return ("string", nil)
        case "date": return ("string", "io.debezium.time.IsoDate")
        case "time": return ("string", "io.debezium.time.IsoTime")
        case "datetime": return ("string", "io.debezium.time.IsoTimestamp")
        case "timestamp": return ("string", "io.debezium.time.ZonedTimestamp")
        case "json": return ("string", "io.debezium.data.Json")
        case "enum": return ("string", "io.debezium.data.Enum")
        case "set": return ("string", "io.debezium.data.EnumSet")
        case "uuid": return ("string", "io.debezium.data.Uuid")
        case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob": return ("bytes", nil)
        case "geometry": return ("struct", "io.debezium.data.geometry.Geometry")
        default: return ("string", nil)
        }
    }

    /// ENUM/SET members as Debezium lists them (`a,b,c`), from `enum('a','b','c')`.
    static func members(_ typeName: String) -> String? {
        guard typeName.hasPrefix("enum(") || typeName.hasPrefix("set("), let open = typeName.firstIndex(of: "("), typeName.hasSuffix(")") else { return nil }
        var names: [String] = []
        var current = ""
        var quoted = false
        let characters = Array(typeName[typeName.index(after: open)..<typeName.index(before: typeName.endIndex)])
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if quoted {
                if character == "'", index + 1 < characters.count, characters[index + 1] == "'" {
                    current.append("'")
                    index += 1
                } else if character == "'" {
                    quoted = false
                } else if character == "\\", index + 1 < characters.count {
                    current.append(characters[index + 1])
                    index += 1
                } else {
                    current.append(character)
                }
            } else if character == "'" {
                quoted = true
            } else if character == "," {
                names.append(current)
                current = ""
            }
            index += 1
        }
        names.append(current)
        return names.joined(separator: ",")
    }
}

import FerryCore
import NIOCore
import PostgresNIO

/// How source columns and values land in PostgreSQL (docs/sinks/postgres.md).
enum PostgresTypeMapping {
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
        case "bit": return (Int(arguments) ?? 64) >= 64 ? "numeric(20,0)" : "bigint"
        default: return "text"
        }
    }

    /// Appends `value` to the bindings; the SQL casts each parameter to its column's type.
    static func bind(_ value: Value, into bindings: inout PostgresBindings) {
        switch value {
        case .null, .absent: bindings.appendNull()
        case .int(let v): bindings.append(v)
        case .uint(let v): if v <= UInt64(Int64.max) { bindings.append(Int64(v)) } else { bindings.append(String(v)) }
        case .float(let v): bindings.append(v)
        case .double(let v): bindings.append(v)
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text): bindings.append(text)
        case .set(let members): bindings.append(members.joined(separator: ","))
        case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
        case .year(let year): bindings.append(Int64(year))
        case .bit(let bits, _): if bits <= UInt64(Int64.max) { bindings.append(Int64(bits)) } else { bindings.append(String(bits)) }
        case .geometry(let geometry):
            var buffer = ByteBuffer()
            buffer.writeInteger(geometry.srid, endianness: .little)
            buffer.writeBytes(geometry.wkb)
            bindings.append(buffer)
        case .time(let time):
            var text = time.negative ? "-" : ""
            text += "\(time.hours):\(two(time.minutes)):\(two(time.seconds)).\(six(time.microseconds))"
            bindings.append(text)
        case .date, .datetime, .timestamp:
            // Zero dates have no PostgreSQL form: NULL, as in the JSON form.
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            guard json.count >= 2, json.first == UInt8(ascii: "\"") else { return bindings.appendNull() }
            bindings.append(String(decoding: json.dropFirst().dropLast(), as: UTF8.self))
        }
    }

    private static func two(_ value: UInt8) -> String { value < 10 ? "0\(value)" : "\(value)" }
    private static func six(_ value: UInt32) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 6 - text.count)) + text
    }
}

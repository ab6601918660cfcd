import FerryCore
import NIOCore
import SQLiteNIO

/// How source values land in SQLite (documented in docs/sinks/sqlite.md).
enum SQLiteTypeMapping {
    /// The declared column type for a source type name.
    static func columnType(_ typeName: String) -> String {
        // SQLite integers are signed 64-bit: values above 2^63-1 would turn into REAL.
        if typeName == "bigint unsigned" || typeName == "bit(64)" { return "TEXT" }
        let base = typeName.split(separator: "(").first.map(String.init)?.split(separator: " ").first.map(String.init) ?? typeName
        switch base {
        case "boolean", "tinyint", "smallint", "mediumint", "int", "bigint", "year", "bit": return "INTEGER"
        case "float", "double": return "REAL"
        case "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry": return "BLOB"
        case _ where base.hasPrefix("binary"): return "BLOB"
        default: return "TEXT"
        }
    }

    /// The bound value. Temporal and decimal values are text in the JSON forms of docs/types.md.
    static func data(_ value: Value) -> SQLiteData {
        switch value {
        case .null, .absent: return .null
        case .int(let v): return .integer(Int(v))
        case .uint(let v): return v <= UInt64(Int64.max) ? .integer(Int(v)) : .text(String(v))
        // SQLite stores a NaN double as NULL: non-finite values keep their text.
        case .float(let v): return v.isFinite ? .float(Double(v.description) ?? Double(v)) : .text(ValueJSON.nonFiniteText(Double(v)))
        case .double(let v): return v.isFinite ? .float(v) : .text(ValueJSON.nonFiniteText(v))
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): return .text(text)
        case .bool(let truth): return .integer(truth ? 1 : 0)
        case .bytes(let bytes): return .blob(ByteBuffer(bytes: bytes))
        // SQLite text must be valid in the database's encoding; a blob keeps the exact bytes.
        case .illFormedText(let bytes): return .blob(ByteBuffer(bytes: bytes))
        case .year(let year): return .integer(Int(year))
        case .set(let members): return .text(members.joined(separator: ","))
        case .bit(let bits, _): return bits <= UInt64(Int64.max) ? .integer(Int(bits)) : .text(String(bits))
        case .geometry(let geometry):
            var buffer = ByteBuffer()
            buffer.writeInteger(geometry.srid, endianness: .little)
            buffer.writeBytes(geometry.wkb)
            return .blob(buffer)
        case .date, .time, .datetime, .timestamp:
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            guard json.count >= 2, json.first == UInt8(ascii: "\"") else { return .null }
            return .text(String(decoding: json.dropFirst().dropLast(), as: UTF8.self))
        }
    }
}

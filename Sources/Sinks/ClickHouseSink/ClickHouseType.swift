import FerryCore
import Foundation

/// A ClickHouse column type as far as the sink writes it in RowBinary. Values are encoded by the
/// target's declared type (read from `system.columns`), so a table the user created — say with a
/// `String` where ferry would have chosen `Date` — is written correctly too.
indirect enum ClickHouseType: Sendable, Equatable, CustomStringConvertible {
    case integer(bytes: Int, signed: Bool)
    case float32
    case float64
    case decimal(precision: Int, scale: Int)
    case string
    case fixedString(Int)
    case date
    case dateTime
    case dateTime64(precision: Int)
    /// Names and their numbers; `bytes` is 1 (Enum8) or 2 (Enum16).
    case enumeration(bytes: Int, values: [String: Int16])
    case nullable(ClickHouseType)

    var description: String {
        switch self {
        case .integer(let bytes, let signed): "\(signed ? "" : "U")Int\(bytes * 8)"
        case .float32: "Float32"
        case .float64: "Float64"
        case .decimal(let precision, let scale): "Decimal(\(precision), \(scale))"
        case .string: "String"
        case .fixedString(let length): "FixedString(\(length))"
        case .date: "Date"
        case .dateTime: "DateTime"
        case .dateTime64(let precision): "DateTime64(\(precision))"
        case .enumeration(let bytes, _): "Enum\(bytes * 8)"
        case .nullable(let inner): "Nullable(\(inner))"
        }
    }

    /// Parses a type as `system.columns` spells it; `nil` for a type the sink cannot write
    /// (arrays, tuples, maps, UUID, IP addresses…).
    init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        let (name, arguments) = Self.split(text)
        switch name {
        case "Nullable":
            guard let inner = arguments.first.flatMap({ ClickHouseType(parsing: $0) }) else { return nil }
            self = .nullable(inner)
        case "LowCardinality":
            // The same bytes as the inner type in RowBinary.
            guard let inner = arguments.first.flatMap({ ClickHouseType(parsing: $0) }) else { return nil }
            self = inner
        case "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64":
            let signed = !name.hasPrefix("U")
            self = .integer(bytes: Int(name.dropFirst(signed ? 3 : 4))! / 8, signed: signed)
        case "Float32": self = .float32
        case "Float64": self = .float64
        case "Decimal":
            guard arguments.count == 2, let precision = Int(arguments[0]), let scale = Int(arguments[1]) else { return nil }
            self = .decimal(precision: precision, scale: scale)
        case "Decimal32", "Decimal64", "Decimal128":
            guard arguments.count == 1, let scale = Int(arguments[0]) else { return nil }
            self = .decimal(precision: ["Decimal32": 9, "Decimal64": 18, "Decimal128": 38][name]!, scale: scale)
        case "String": self = .string
        case "FixedString":
            guard let length = arguments.first.flatMap({ Int($0) }) else { return nil }
            self = .fixedString(length)
        case "Date": self = .date
        case "DateTime": self = .dateTime
        case "DateTime64":
            guard let precision = arguments.first.flatMap({ Int($0) }) else { return nil }
            self = .dateTime64(precision: precision)
        case "Enum8", "Enum16":
            var values: [String: Int16] = [:]
            for argument in arguments {
                guard let equals = argument.lastIndex(of: "="), let number = Int16(argument[argument.index(after: equals)...].trimmingCharacters(in: .whitespaces)),
                      let label = Self.unquote(argument[..<equals].trimmingCharacters(in: .whitespaces)) else { return nil }
                values[label] = number
            }
            self = .enumeration(bytes: name == "Enum8" ? 1 : 2, values: values)
        default:
            return nil
        }
    }

    /// `Name(a, b)` → ("Name", ["a", "b"]), splitting at top-level commas outside quotes.
    private static func split(_ text: String) -> (String, [String]) {
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else { return (text, []) }
        let name = String(text[..<open])
        let inner = text[text.index(after: open)..<text.index(before: text.endIndex)]
        var arguments: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        var escaped = false
        for character in inner {
            if escaped {
                escaped = false
            } else if quoted {
                if character == "\\" { escaped = true } else if character == "'" { quoted = false }
            } else if character == "'" {
                quoted = true
            } else if character == "(" {
                depth += 1
            } else if character == ")" {
                depth -= 1
            } else if character == ",", depth == 0 {
                arguments.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
                continue
            }
            current.append(character)
        }
        arguments.append(current.trimmingCharacters(in: .whitespaces))
        return (name, arguments)
    }

    /// `'a\'b'` → `a'b`.
    private static func unquote(_ text: String) -> String? {
        guard text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") else { return nil }
        var out = ""
        var escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped {
                out.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// The column type ferry creates for a source column (docs/sinks/clickhouse.md). Decimals wider
    /// than ClickHouse's 38 digits, times of day and temporal values with fractions on servers
    /// without `DateTime64` (before 20.1) are exact text.
    static func forSource(_ typeName: String, nullable: Bool, hasDateTime64: Bool) -> String {
        let unsigned = typeName.hasSuffix(" unsigned")
        let name = unsigned ? String(typeName.dropLast(9)) : typeName
        let base = name.split(separator: "(").first.map(String.init) ?? name
        let arguments = name.contains("(") ? String(name[name.index(after: name.firstIndex(of: "(")!)...].dropLast()) : ""
        let u = unsigned ? "U" : ""
        let type: String
        switch base {
        case "boolean": type = "UInt8"
        case "tinyint": type = "\(u)Int8"
        case "smallint": type = "\(u)Int16"
        case "mediumint", "int": type = "\(u)Int32"
        case "bigint": type = "\(u)Int64"
        case "float": type = "Float32"
        case "double": type = "Float64"
        case "decimal":
            let parts = arguments.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            let precision = parts.first ?? 10
            type = precision <= 38 ? "Decimal(\(precision), \(parts.count > 1 ? parts[1] : 0))" : "String"
        case "year": type = "UInt16"
        case "bit": type = "UInt64"
        case "date": type = "Date"
        case "datetime", "timestamp":
            let fraction = Int(arguments) ?? 0
            type = fraction == 0 ? "DateTime('UTC')" : hasDateTime64 ? "DateTime64(\(fraction), 'UTC')" : "String"
        default: type = "String"
        }
        return nullable ? "Nullable(\(type))" : type
    }
}

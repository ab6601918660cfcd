/// Values in PostgreSQL's text input form: what a PostgreSQL target is given for a column of the
/// matching type, and how a PostgreSQL source's key values are bound back into its queries.
public enum PostgresText {
    /// The value's text form; `nil` for NULL (and for zero dates, which have no PostgreSQL form —
    /// NULL, as in the JSON form).
    public static func form(_ value: Value) -> String? {
        switch value {
        case .null, .absent: return nil
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .float(let v): return floating(Double(v.description) ?? Double(v))
        case .double(let v): return floating(v)
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): return text
        case .bool(let truth): return truth ? "true" : "false"
        // PostgreSQL text holds only well-formed text (the source logged the repair).
        case .illFormedText(let bytes): return Value.repairedText(bytes)
        case .set(let members): return members.joined(separator: ",")
        case .bytes(let bytes): return hex(bytes)
        case .year(let year): return String(year)
        case .bit(let bits, _): return String(bits)
        case .geometry(let geometry):
            var bytes: [UInt8] = withUnsafeBytes(of: geometry.srid.littleEndian) { Array($0) }
            bytes += geometry.wkb
            return hex(bytes)
        case .time(let time):
            let minutes = time.minutes < 10 ? "0\(time.minutes)" : "\(time.minutes)"
            let seconds = time.seconds < 10 ? "0\(time.seconds)" : "\(time.seconds)"
            let micros = String(time.microseconds)
            return (time.negative ? "-" : "") + "\(time.hours):\(minutes):\(seconds)." + String(repeating: "0", count: max(0, 6 - micros.count)) + micros
        case .date, .datetime, .timestamp:
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            guard json.count >= 2, json.first == UInt8(ascii: "\"") else { return nil }
            return String(decoding: json.dropFirst().dropLast(), as: UTF8.self)
        }
    }

    static func floating(_ value: Double) -> String {
        value.isFinite ? "\(value)" : ValueJSON.nonFiniteText(value)
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// bytea's hex form: a backslash, `x`, two digits per byte.
    public static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        for (index, byte) in bytes.enumerated() {
            out[2 + index * 2] = digits[Int(byte >> 4)]
            out[3 + index * 2] = digits[Int(byte & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

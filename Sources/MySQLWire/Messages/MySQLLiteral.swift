import FerryCore

/// Source values as MariaDB/MySQL SQL literals (the text protocol has no parameters). The session
/// runs with `sql_mode = ''` (zero dates are allowed) and `time_zone = '+00:00'` (TIMESTAMP
/// literals are UTC), so every value arrives exactly as the source stored it.
public enum MySQLLiteral {
    public static func append(_ value: Value, to out: inout String) {
        switch value {
        case .null, .absent: out += "NULL"
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .float(let v): out += v.isFinite ? v.description : "NULL"
        case .double(let v): out += v.isFinite ? v.description : "NULL"
        case .decimal(let text): out += text
        case .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): appendQuoted(text, to: &out)
        case .bool(let truth): out += truth ? "1" : "0"
        case .set(let members): appendQuoted(members.joined(separator: ","), to: &out)
        case .bytes(let bytes): appendHex(bytes, to: &out)
        // Text with the column's collation in comparisons (snapshot chunks, key matches); a
        // session with a lax sql_mode stores these bytes exactly, as the source did.
        case .illFormedText(let bytes):
            out += "_utf8mb4 "
            appendHex(bytes, to: &out)
        case .year(let year): out += String(year)
        case .bit(let bits, _): out += String(bits)
        case .date(let date):
            out += "'"
            appendDate(date, to: &out)
            out += "'"
        case .time(let time):
            out += "'" + (time.negative ? "-" : "")
            appendClock(hours: time.hours, minutes: time.minutes, seconds: time.seconds, microseconds: time.microseconds, to: &out)
            out += "'"
        case .datetime(let datetime):
            out += "'"
            appendDateTime(datetime, to: &out)
            out += "'"
        case .timestamp(let timestamp):
            out += "'"
            if timestamp.isZero { out += "0000-00-00 00:00:00" } else { appendDateTime(CivilTime.utc(timestamp), to: &out) }
            out += "'"
        case .geometry(let geometry):
            out += "ST_GeomFromWKB("
            appendHex(geometry.wkb, to: &out)
            out += ", \(geometry.srid))"
        }
    }

    /// How an `.illFormedText` literal starts.
    static let illFormedPrefix = "_utf8mb4 X'"

    /// One value as a literal.
    public static func literal(_ value: Value) -> String {
        var literal = ""
        append(value, to: &literal)
        return literal
    }

    /// A key's values as literals, in key order.
    public static func literals(_ values: [Value]) -> [String] { values.map(literal) }

    /// A literal made by `literal` back as a value: numbers, quoted text, hex bytes.
    public static func value(parsing literal: String) -> Value {
        if literal == "NULL" { return .null }
        if let number = Int64(literal) { return .int(number) }
        if let number = UInt64(literal) { return .uint(number) }
        if literal.hasPrefix("X'"), literal.hasSuffix("'") { return .bytes(HexBytes.decode(literal.dropFirst(2).dropLast())) }
        if literal.hasPrefix(illFormedPrefix), literal.hasSuffix("'") {
            return .illFormedText(HexBytes.decode(literal.dropFirst(illFormedPrefix.count).dropLast()))
        }
        if literal.hasPrefix("'"), literal.hasSuffix("'"), literal.count >= 2 {
            var text = ""
            var escaped = false
            for character in literal.dropFirst().dropLast() {
                if escaped {
                    switch character {
                    case "0": text.append("\0")
                    case "n": text.append("\n")
                    case "r": text.append("\r")
                    case "Z": text.append("\u{1A}")
                    default: text.append(character)
                    }
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else {
                    text.append(character)
                }
            }
            return .string(text)
        }
        return .decimal(literal)
    }

    /// A key's text, equal for equal keys whatever value kinds carry them (a repair's keys come
    /// back from targets as numbers or text).
    public static func keyText(_ key: [Value]) -> String {
        literals(key).map { literal in
            switch value(parsing: literal) {
            case .int(let number): String(number)
            case .uint(let number): String(number)
            case .string(let text), .decimal(let text): text
            case .bytes(let bytes): "0x" + bytes.map { String($0, radix: 16) }.joined(separator: ".")
            default: literal
            }
        }.joined(separator: "\u{1}")
    }

    /// A single-quoted string with MySQL's backslash escapes.
    public static func appendQuoted(_ text: String, to out: inout String) {
        out += "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "'": out += "\\'"
            case "\\": out += "\\\\"
            case "\0": out += "\\0"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\u{1A}": out += "\\Z"
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "'"
    }

    public static func appendHex(_ bytes: [UInt8], to out: inout String) {
        if bytes.isEmpty { out += "''"; return }
        let digits = Array("0123456789ABCDEF")
        out += "X'"
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        out += "'"
    }

    public static func appendDate(_ date: DateValue, to out: inout String) {
        out += padded(Int(date.year), 4) + "-" + padded(Int(date.month), 2) + "-" + padded(Int(date.day), 2)
    }

    public static func appendClock(hours: UInt32, minutes: UInt8, seconds: UInt8, microseconds: UInt32, to out: inout String) {
        out += padded(Int(hours), 2) + ":" + padded(Int(minutes), 2) + ":" + padded(Int(seconds), 2)
        if microseconds > 0 { out += "." + padded(Int(microseconds), 6) }
    }

    public static func appendDateTime(_ value: DateTimeValue, to out: inout String) {
        appendDate(value.date, to: &out)
        out += " "
        appendClock(hours: UInt32(value.hour), minutes: value.minute, seconds: value.second, microseconds: value.microseconds, to: &out)
    }

    static func padded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// A backquoted identifier.
public func backquoted(_ name: String) -> String {
    "`" + name.split(separator: "`", omittingEmptySubsequences: false).joined(separator: "``") + "`"
}

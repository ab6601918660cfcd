/// The JSON form of each `Value`, as documented in `docs/types.md`.
public enum ValueJSON {
    /// Values and rows whose JSON can exceed this are written a part at a time, so no region is
    /// ever much larger than the output it produces.
    static let regionLimit = 64 * 1024

    /// Appends `value` as JSON. `.absent` must be filtered out by the caller (it has no JSON form).
    public static func append(_ value: Value, to out: inout [UInt8]) {
        let bound = maximumBytes(value)
        if bound <= regionLimit {
            return JSONCursor.appending(bound: bound, to: &out) { write(value, to: &$0) }
        }
        switch value {
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): JSONBuffer.appendString(text, to: &out)
        case .illFormedText(let bytes): JSONBuffer.appendString(Value.repairedText(bytes), to: &out)
        case .set(let members): JSONBuffer.appendString(members.joined(separator: ","), to: &out)
        case .bytes(let bytes):
            out.append(UInt8(ascii: "\""))
            JSONBuffer.appendBase64(bytes, to: &out)
            out.append(UInt8(ascii: "\""))
        default:
            JSONCursor.appending(bound: bound, to: &out) { write(value, to: &$0) }
        }
    }

    /// The most bytes `write` can take for `value`.
    public static func maximumBytes(_ value: Value) -> Int {
        switch value {
        case .null, .absent, .int, .uint, .year, .bit, .bool: 20
        case .float, .double: 32
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): JSONCursor.stringBound(text.utf8.count)
        // Each ill-formed byte can become a 3-byte U+FFFD.
        case .illFormedText(let bytes): JSONCursor.stringBound(3 * bytes.count)
        case .set(let members): JSONCursor.stringBound(members.reduce(members.count) { $0 + $1.utf8.count })
        case .bytes(let bytes): 2 + JSONCursor.base64Bound(bytes.count)
        case .date, .time, .datetime, .timestamp: 48
        case .geometry(let geometry): 40 + JSONCursor.base64Bound(geometry.wkb.count)
        }
    }

    /// Writes `value` as JSON, at most `maximumBytes(value)` bytes.
    public static func write(_ value: Value, to out: inout JSONCursor) {
        switch value {
        case .null, .absent:
            out.ascii("null")
        case .int(let v):
            out.integer(v)
        case .uint(let v):
            out.unsigned(v)
        case .float(let v):
            writeFloatingPoint(v.isFinite ? v.description : nil, special: Double(v), to: &out)
        case .double(let v):
            writeFloatingPoint(v.isFinite ? v.description : nil, special: v, to: &out)
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text):
            out.string(text)
        case .bool(let truth):
            out.ascii(truth ? "true" : "false")
        case .illFormedText(let bytes):
            out.string(Value.repairedText(bytes))
        case .bytes(let bytes):
            out.byte(UInt8(ascii: "\""))
            out.base64(bytes)
            out.byte(UInt8(ascii: "\""))
        case .year(let year):
            out.unsigned(UInt64(year))
        case .date(let date):
            if date.isZero { return out.ascii("null") }
            out.byte(UInt8(ascii: "\""))
            writeDateForm(date, to: &out)
            out.byte(UInt8(ascii: "\""))
        case .time(let time):
            out.byte(UInt8(ascii: "\""))
            if time.negative { out.byte(UInt8(ascii: "-")) }
            writeClockForm(hour: time.hours, minute: time.minutes, second: time.seconds,
                           microseconds: time.microseconds, fsp: time.fsp, to: &out)
            out.byte(UInt8(ascii: "\""))
        case .datetime(let datetime):
            if datetime.date.isZero { return out.ascii("null") }
            out.byte(UInt8(ascii: "\""))
            writeDateTime(datetime, to: &out)
            out.byte(UInt8(ascii: "\""))
        case .timestamp(let timestamp):
            if timestamp.isZero { return out.ascii("null") }
            out.byte(UInt8(ascii: "\""))
            writeDateTime(CivilTime.utc(timestamp), to: &out)
            out.byte(UInt8(ascii: "Z"))
            out.byte(UInt8(ascii: "\""))
        case .set(let members):
            out.string(members.joined(separator: ","))
        case .bit(let bits, _):
            out.unsigned(bits)
        case .geometry(let geometry):
            out.ascii("{\"srid\":")
            out.unsigned(UInt64(geometry.srid))
            out.ascii(",\"wkb\":\"")
            out.base64(geometry.wkb)
            out.ascii("\"}")
        }
    }

    /// A value as plain text — a hash field, a key part, a document id: text as it is, everything
    /// else in its JSON form without quotes; nil for NULL.
    public static func plainText(_ value: Value) -> [UInt8]? {
        var out: [UInt8] = []
        return appendPlainText(value, to: &out) ? out : nil
    }

    /// Appends `plainText(value)` to `out` without an array of its own; false (nothing appended)
    /// for NULL.
    public static func appendPlainText(_ value: Value, to out: inout [UInt8]) -> Bool {
        switch value {
        case .null, .absent: return false
        case .string(let text), .decimal(let text), .json(let text), .enumeration(let text), .sourceText(let text): out.append(contentsOf: text.utf8)
        case .illFormedText(let bytes): out.append(contentsOf: Value.repairedText(bytes).utf8)
        case .set(let members):
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: member.utf8)
            }
        default:
            let start = out.count
            append(value, to: &out)
            let written = out[start...]
            if written.elementsEqual("null".utf8) {
                out.removeSubrange(start...)
                return false
            }
            if written.count >= 2, written.first == UInt8(ascii: "\""), written.last == UInt8(ascii: "\"") {
                out.removeLast()
                out.remove(at: start)
            }
        }
        return true
    }

    /// A row as a JSON object keyed by column name (`col_<n>` where the source gave none); `null`
    /// for no row. `.absent` columns (not in the binlog's row image) are left out. The row is
    /// written in one region when it fits `regionLimit`, else a value at a time.
    public static func appendRow(_ row: Row?, schema: TableSchema?, to out: inout [UInt8]) {
        guard let row else { return JSONBuffer.appendASCII("null", to: &out) }
        // Values are read in place through buffer pointers: a copy of each out of the row would
        // retain and release its text.
        row.withUnsafeBufferPointer { row in
            (schema?.jsonKeys ?? []).withUnsafeBufferPointer { keys in appendRow(row, keys: keys, to: &out) }
        }
    }

    @inline(__always)
    private static func appendRow(_ row: UnsafeBufferPointer<Value>, keys: UnsafeBufferPointer<[UInt8]>, to out: inout [UInt8]) {
        var bound = 2
        for index in row.indices {
            bound += 1 + (index < keys.count ? keys[index].count : 16) + maximumBytes(row[index])
        }
        if bound <= regionLimit {
            JSONCursor.appending(bound: bound, to: &out) { cursor in
                cursor.byte(UInt8(ascii: "{"))
                var first = true
                for index in row.indices {
                    if case .absent = row[index] { continue }
                    writeMemberName(index, keys: keys, first: &first, to: &cursor)
                    write(row[index], to: &cursor)
                }
                cursor.byte(UInt8(ascii: "}"))
            }
            return
        }
        // Large values: each on its own, the longest in parts.
        out.append(UInt8(ascii: "{"))
        var first = true
        for index in row.indices {
            if case .absent = row[index] { continue }
            JSONCursor.appending(bound: 1 + (index < keys.count ? keys[index].count : 16), to: &out) {
                writeMemberName(index, keys: keys, first: &first, to: &$0)
            }
            append(row[index], to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// `,` (except before the first member) and `"name":`; at most 1 + the key's length, or 17.
    static func writeMemberName(_ index: Int, keys: UnsafeBufferPointer<[UInt8]>, first: inout Bool, to cursor: inout JSONCursor) {
        if !first { cursor.byte(UInt8(ascii: ",")) }
        first = false
        if index < keys.count {
            cursor.bytes(keys[index])
        } else {
            cursor.ascii("\"col_")
            cursor.unsigned(UInt64(index + 1))
            cursor.ascii("\":")
        }
    }

    /// A finite number's text, or JSON's nearest for the rest (a PostgreSQL `real` or `double
    /// precision` can hold them; MySQL cannot): the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    static func writeFloatingPoint(_ text: String?, special value: Double, to out: inout JSONCursor) {
        guard var text else { return out.string(nonFiniteText(value)) }
        text.withUTF8 { out.bytes($0) }
    }

    /// `NaN`, `Infinity` or `-Infinity`, as PostgreSQL writes and reads them.
    public static func nonFiniteText(_ value: Double) -> String {
        value.isNaN ? "NaN" : value < 0 ? "-Infinity" : "Infinity"
    }

    /// `YYYY-MM-DD`, unquoted.
    public static func appendDateForm(_ date: DateValue, to out: inout [UInt8]) {
        JSONCursor.appending(bound: 24, to: &out) { writeDateForm(date, to: &$0) }
    }

    /// `HH:MM:SS[.fff…]` with exactly `fsp` fractional digits, unquoted; hours may exceed 99.
    public static func appendClockForm(hour: UInt32, minute: UInt8, second: UInt8, microseconds: UInt32, fsp: UInt8,
                                       to out: inout [UInt8]) {
        JSONCursor.appending(bound: 32, to: &out) {
            writeClockForm(hour: hour, minute: minute, second: second, microseconds: microseconds, fsp: fsp, to: &$0)
        }
    }

    static func appendDateTime(_ value: DateTimeValue, to out: inout [UInt8]) {
        JSONCursor.appending(bound: 48, to: &out) { writeDateTime(value, to: &$0) }
    }

    static func writeDateForm(_ date: DateValue, to out: inout JSONCursor) {
        out.padded(UInt64(date.year), width: 4)
        out.byte(UInt8(ascii: "-"))
        out.padded(UInt64(date.month), width: 2)
        out.byte(UInt8(ascii: "-"))
        out.padded(UInt64(date.day), width: 2)
    }

    static func writeClockForm(hour: UInt32, minute: UInt8, second: UInt8, microseconds: UInt32, fsp: UInt8, to out: inout JSONCursor) {
        out.padded(UInt64(hour), width: 2)
        out.byte(UInt8(ascii: ":"))
        out.padded(UInt64(minute), width: 2)
        out.byte(UInt8(ascii: ":"))
        out.padded(UInt64(second), width: 2)
        out.fraction(microseconds, fsp: fsp)
    }

    static func writeDateTime(_ value: DateTimeValue, to out: inout JSONCursor) {
        writeDateForm(value.date, to: &out)
        out.byte(UInt8(ascii: "T"))
        writeClockForm(hour: UInt32(value.hour), minute: value.minute, second: value.second,
                       microseconds: value.microseconds, fsp: value.fsp, to: &out)
    }
}

/// Calendar arithmetic on Unix time, proleptic Gregorian, UTC.
public enum CivilTime {
    /// The UTC date and time of a timestamp.
    public static func utc(_ timestamp: TimestampValue) -> DateTimeValue {
        let days = floorDivide(timestamp.seconds, 86_400)
        let secondsOfDay = timestamp.seconds - days * 86_400
        return DateTimeValue(
            date: date(daysSinceEpoch: days),
            hour: UInt8(secondsOfDay / 3600),
            minute: UInt8(secondsOfDay % 3600 / 60),
            second: UInt8(secondsOfDay % 60),
            microseconds: timestamp.microseconds,
            fsp: timestamp.fsp
        )
    }

    /// The civil date `days` after 1970-01-01 (days may be negative).
    public static func date(daysSinceEpoch days: Int64) -> DateValue {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return DateValue(year: UInt16(clamping: year), month: UInt8(month), day: UInt8(day))
    }

    /// Days from 1970-01-01 to the given civil date.
    public static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

import FerryCore

/// Reads a column's text form — as pgoutput and a text-format SELECT send it — into a `Value`,
/// exactly: every value either becomes the matching `Value` with nothing rounded, or keeps its
/// text as `.sourceText` (numeric NaN, dates BC or past 9999, infinities, intervals, …).
///
/// The text forms depend on session settings, so every connection ferry reads values through
/// starts with `sessionOptions`: ISO dates, UTC, shortest exact floats (3 gives PostgreSQL 12's
/// shortest form there, and enough digits to be exact on older servers), hex bytea, C money.
public enum PgValueReader {
    /// Startup `options` for every source connection, replication and SQL alike.
    public static let sessionOptions = "-c datestyle=ISO,YMD -c timezone=UTC -c extra_float_digits=3 -c bytea_output=hex -c lc_monetary=C -c intervalstyle=postgres"

    public static func value(_ text: [UInt8], type: PgType, modifier: Int32) -> Value {
        switch type.kind {
        case .boolean:
            if text == [UInt8(ascii: "t")] { return .bool(true) }
            if text == [UInt8(ascii: "f")] { return .bool(false) }
        case .smallint, .integer, .bigint, .oid:
            if let number = integer(text[...]) { return .int(number) }
        case .real:
            if let number = Float(String(decoding: text, as: UTF8.self)) { return .float(number) }
        case .double:
            if let number = Double(String(decoding: text, as: UTF8.self)) { return .double(number) }
        case .numeric:
            if isDecimal(text[...]) { return .decimal(String(decoding: text, as: UTF8.self)) }
        case .money:
            if let decimal = moneyDecimal(text) { return .decimal(decimal) }
        case .text:
            return String(validating: text, as: UTF8.self).map(Value.string) ?? .illFormedText(text)
        case .bytea:
            if let bytes = hexBytes(text) { return .bytes(bytes) }
        case .date:
            if text.count == 10, let date = date(text[...]) { return .date(date) }
        case .time:
            if let clock = clock(text[...]), clock.rest.isEmpty, clock.hour <= 24 {
                return .time(TimeValue(negative: false, hours: UInt32(clock.hour), minutes: clock.minute, seconds: clock.second,
                                       microseconds: clock.microseconds, fsp: PgType.fractionDigits(modifier: modifier)))
            }
        case .timestamp:
            if let (date, clock) = dateTime(text), clock.rest.isEmpty, clock.hour < 24 {
                return .datetime(DateTimeValue(date: date, hour: clock.hour, minute: clock.minute, second: clock.second,
                                               microseconds: clock.microseconds, fsp: PgType.fractionDigits(modifier: modifier)))
            }
        case .timestamptz:
            if let (date, clock) = dateTime(text), clock.hour < 24, let offset = zoneOffset(clock.rest) {
                let days = CivilTime.daysSinceEpoch(year: Int64(date.year), month: Int64(date.month), day: Int64(date.day))
                let seconds = days * 86_400 + Int64(clock.hour) * 3600 + Int64(clock.minute) * 60 + Int64(clock.second) - offset
                // Seconds 0 with no fraction is MySQL's zero timestamp to every sink; the instant
                // 1970-01-01 00:00:00 UTC keeps its text instead of becoming NULL there.
                if seconds != 0 || clock.microseconds != 0 {
                    return .timestamp(TimestampValue(seconds: seconds, microseconds: clock.microseconds, fsp: PgType.fractionDigits(modifier: modifier)))
                }
            }
        case .json:
            return .json(String(decoding: text, as: UTF8.self))
        case .uuid:
            return .string(String(decoding: text, as: UTF8.self))
        case .enumeration:
            return .enumeration(String(decoding: text, as: UTF8.self))
        case .other:
            break
        }
        return .sourceText(String(decoding: text, as: UTF8.self))
    }

    static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    static func integer(_ text: ArraySlice<UInt8>) -> Int64? {
        var rest = text
        let negative = rest.first == UInt8(ascii: "-")
        if negative { rest = rest.dropFirst() }
        guard !rest.isEmpty, rest.count <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for byte in rest {
            guard let value = digit(byte) else { return nil }
            magnitude = magnitude * 10 + UInt64(value)
        }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// `-?digits(.digits)?`: a finite numeric as PostgreSQL writes it.
    static func isDecimal(_ text: ArraySlice<UInt8>) -> Bool {
        var rest = text
        if rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
        let whole = rest.prefix { digit($0) != nil }
        guard !whole.isEmpty else { return false }
        rest = rest.dropFirst(whole.count)
        if rest.isEmpty { return true }
        guard rest.first == UInt8(ascii: ".") else { return false }
        rest = rest.dropFirst()
        return !rest.isEmpty && rest.allSatisfy { digit($0) != nil }
    }

    /// `-$1,234.56` (lc_monetary=C) as `-1234.56`.
    static func moneyDecimal(_ text: [UInt8]) -> String? {
        var rest = text[...]
        var out: [UInt8] = []
        if rest.first == UInt8(ascii: "-") {
            out.append(UInt8(ascii: "-"))
            rest = rest.dropFirst()
        }
        guard rest.first == UInt8(ascii: "$") else { return nil }
        out += rest.dropFirst().filter { $0 != UInt8(ascii: ",") }
        return isDecimal(out[...]) ? String(decoding: out, as: UTF8.self) : nil
    }

    static func hexBytes(_ text: [UInt8]) -> [UInt8]? {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2 - 1)
        var index = 2
        while index < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func number(_ text: ArraySlice<UInt8>, digits count: Int) -> Int? {
        guard text.count >= count else { return nil }
        var value = 0
        for byte in text.prefix(count) {
            guard let next = digit(byte) else { return nil }
            value = value * 10 + next
        }
        return value
    }

    /// `YYYY-MM-DD` with a year from 1 to 9999 (anything else keeps its text).
    static func date(_ text: ArraySlice<UInt8>) -> DateValue? {
        let base = text.startIndex
        guard text.count >= 10, text[base + 4] == UInt8(ascii: "-"), text[base + 7] == UInt8(ascii: "-"),
              let year = number(text, digits: 4), year >= 1,
              let month = number(text.dropFirst(5), digits: 2), let day = number(text.dropFirst(8), digits: 2) else { return nil }
        return DateValue(year: UInt16(year), month: UInt8(month), day: UInt8(day))
    }

    struct Clock {
        var hour: UInt8
        var minute: UInt8
        var second: UInt8
        var microseconds: UInt32
        /// What follows the clock (a zone offset, ` BC`).
        var rest: ArraySlice<UInt8>
    }

    /// `HH:MM:SS[.ffffff]` and what follows it.
    static func clock(_ text: ArraySlice<UInt8>) -> Clock? {
        let base = text.startIndex
        guard text.count >= 8, text[base + 2] == UInt8(ascii: ":"), text[base + 5] == UInt8(ascii: ":"),
              let hour = number(text, digits: 2), let minute = number(text.dropFirst(3), digits: 2),
              let second = number(text.dropFirst(6), digits: 2) else { return nil }
        var rest = text.dropFirst(8)
        var microseconds: UInt32 = 0
        if rest.first == UInt8(ascii: ".") {
            let fraction = rest.dropFirst().prefix { digit($0) != nil }
            guard (1...6).contains(fraction.count), let value = number(fraction, digits: fraction.count) else { return nil }
            var scaled = UInt32(value)
            for _ in fraction.count..<6 { scaled *= 10 }
            microseconds = scaled
            rest = rest.dropFirst(1 + fraction.count)
        }
        return Clock(hour: UInt8(hour), minute: UInt8(minute), second: UInt8(second), microseconds: microseconds, rest: rest)
    }

    static func dateTime(_ text: [UInt8]) -> (DateValue, Clock)? {
        guard text.count >= 19, text[10] == UInt8(ascii: " "), let date = date(text[..<10]), let clock = clock(text[11...]) else { return nil }
        return (date, clock)
    }

    /// `+HH`, `-HH:MM`, `+HH:MM:SS` as seconds east of UTC; nil for anything else (` BC`).
    static func zoneOffset(_ text: ArraySlice<UInt8>) -> Int64? {
        guard let sign = text.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        var rest = text.dropFirst()
        guard rest.count >= 2, let hours = number(rest, digits: 2) else { return nil }
        var seconds = hours * 3600
        rest = rest.dropFirst(2)
        for unit in [60, 1] where !rest.isEmpty {
            guard rest.count >= 3, rest.first == UInt8(ascii: ":"), let value = number(rest.dropFirst(), digits: 2) else { return nil }
            seconds += value * unit
            rest = rest.dropFirst(3)
        }
        guard rest.isEmpty else { return nil }
        return Int64(sign == UInt8(ascii: "-") ? -seconds : seconds)
    }
}

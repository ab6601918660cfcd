/// One column value, exactly as the source stored it.
///
/// Nothing here is widened or rounded: decimals keep their digits, FLOAT stays a `Float`,
/// temporal values keep their fields and fractional-second precision, and a column missing
/// from a partial row image is `.absent`, which is different from `.null`.
public enum Value: Sendable, Hashable {
    case null
    /// The column is not part of this row image (MINIMAL/NOBLOB row images).
    case absent
    case int(Int64)
    case uint(UInt64)
    case float(Float)
    case double(Double)
    /// Exact decimal text with exactly the column's scale, e.g. `-12.50`.
    case decimal(String)
    /// A character string, decoded to UTF-8 from its column charset.
    case string(String)
    /// A character string whose stored bytes are not well-formed UTF-8 (MariaDB accepts such bytes
    /// in a utf8mb4 column under a lax `sql_mode`): the exact bytes, so targets that can hold them
    /// get them; JSON and Unicode-only targets use `repairedText`.
    case illFormedText([UInt8])
    /// A binary string or BLOB.
    case bytes([UInt8])
    case year(UInt16)
    case date(DateValue)
    case time(TimeValue)
    case datetime(DateTimeValue)
    /// A UTC instant: seconds since the Unix epoch plus microseconds.
    case timestamp(TimestampValue)
    /// A JSON document as JSON text.
    case json(String)
    /// ENUM member name; `""` for the invalid-value index 0.
    case enumeration(String)
    /// SET member names in definition order.
    case set([String])
    /// BIT(width) as an unsigned integer.
    case bit(UInt64, width: UInt8)
    case geometry(GeometryValue)
    /// A truth value (PostgreSQL `boolean`; MySQL's BOOLEAN is TINYINT(1) and stays `.int`).
    case bool(Bool)
    /// A value no other database has a counterpart for — a PostgreSQL interval, range, array,
    /// inet, timetz, a numeric NaN, a date outside years 1–9999 — in the source's canonical text
    /// form. The column's `nativeType` names its type, so a target of the same kind takes the
    /// text back exactly; every other target stores the text.
    case sourceText(String)
}

extension Value {
    /// The text of an `.illFormedText` value with U+FFFD for each ill-formed sequence.
    public static func repairedText(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// A calendar date as stored; month or day may be 0 (MySQL "zero" dates).
public struct DateValue: Sendable, Hashable {
    public var year: UInt16
    public var month: UInt8
    public var day: UInt8

    public init(year: UInt16, month: UInt8, day: UInt8) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// True when month or day is 0: such a date has no calendar meaning.
    public var isZero: Bool { month == 0 || day == 0 }
}

/// A signed time of day or duration; hours may exceed 23 (MySQL TIME range is ±838:59:59).
public struct TimeValue: Sendable, Hashable {
    public var negative: Bool
    public var hours: UInt32
    public var minutes: UInt8
    public var seconds: UInt8
    public var microseconds: UInt32
    /// Fractional-second precision of the column (0–6).
    public var fsp: UInt8

    public init(negative: Bool, hours: UInt32, minutes: UInt8, seconds: UInt8, microseconds: UInt32, fsp: UInt8) {
        self.negative = negative
        self.hours = hours
        self.minutes = minutes
        self.seconds = seconds
        self.microseconds = microseconds
        self.fsp = fsp
    }
}

/// A date and time without zone.
public struct DateTimeValue: Sendable, Hashable {
    public var date: DateValue
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8
    public var microseconds: UInt32
    public var fsp: UInt8

    public init(date: DateValue, hour: UInt8, minute: UInt8, second: UInt8, microseconds: UInt32, fsp: UInt8) {
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.microseconds = microseconds
        self.fsp = fsp
    }
}

/// A UTC instant as MySQL stores TIMESTAMP: seconds since the epoch, never negative.
public struct TimestampValue: Sendable, Hashable {
    public var seconds: Int64
    public var microseconds: UInt32
    public var fsp: UInt8

    public init(seconds: Int64, microseconds: UInt32, fsp: UInt8) {
        self.seconds = seconds
        self.microseconds = microseconds
        self.fsp = fsp
    }

    /// `0000-00-00 00:00:00` is stored as 0 seconds.
    public var isZero: Bool { seconds == 0 && microseconds == 0 }
}

/// A geometry value: SRID plus OGC well-known binary.
public struct GeometryValue: Sendable, Hashable {
    public var srid: UInt32
    public var wkb: [UInt8]

    public init(srid: UInt32, wkb: [UInt8]) {
        self.srid = srid
        self.wkb = wkb
    }
}

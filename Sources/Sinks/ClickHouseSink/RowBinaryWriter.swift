import FerryCore

/// Writes values in ClickHouse's RowBinary format, each by the target column's declared type:
/// integers and floats little-endian, decimals as their scaled integer, strings as a LEB128 length
/// and the bytes, Date as days and DateTime as seconds since 1970-01-01 (UTC), Nullable as a null
/// byte before the value. A value the type cannot hold exactly is refused, never rounded or wrapped.
struct RowBinaryWriter {
    private(set) var bytes: [UInt8] = []
    private var scratch: [UInt8] = []

    init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// Writes `value` as `type`. `.absent` (a column missing from a partial row image — only in
    /// the before image of a delete) is written as the type's default.
    mutating func write(_ value: Value, as type: ClickHouseType) throws(RowBinaryError) {
        if case .nullable(let inner) = type {
            switch value {
            case .null, .absent:
                bytes.append(1)
            default:
                bytes.append(0)
                try write(value, as: inner)
            }
            return
        }
        switch value {
        case .absent: return writeDefault(type)
        case .null: throw RowBinaryError("NULL for a column declared \(type) (not Nullable)")
        default: break
        }
        switch type {
        case .nullable: preconditionFailure("handled above")
        case .integer(let size, let signed): try writeInteger(value, bytes: size, signed: signed)
        case .float32:
            guard let number = Self.number(value) else { throw Self.mismatch(value, type) }
            append(UInt64(Float(number).bitPattern), bytes: 4)
        case .float64:
            guard let number = Self.number(value) else { throw Self.mismatch(value, type) }
            append(number.bitPattern, bytes: 8)
        case .decimal(let precision, let scale): try writeDecimal(value, precision: precision, scale: scale)
        case .string:
            switch value {
            // ClickHouse strings are bytes, so ill-formed text keeps the source's exact bytes.
            case .bytes(let raw), .illFormedText(let raw): writeString(raw)
            case .string(let text), .decimal(let text), .json(let text), .enumeration(let text), .sourceText(let text): writeString(text)
            case .geometry(let geometry):
                var raw: [UInt8] = []
                withUnsafeBytes(of: geometry.srid.littleEndian) { raw.append(contentsOf: $0) }
                writeString(raw + geometry.wkb)
            default:
                // Other values as their plain text, through one reused buffer: the length comes first.
                scratch.removeAll(keepingCapacity: true)
                _ = ValueJSON.appendPlainText(value, to: &scratch)
                writeString(scratch)
            }
        case .fixedString(let length):
            let raw: [UInt8]
            switch value {
            case .bytes(let data), .illFormedText(let data): raw = data
            default: raw = ValueJSON.plainText(value) ?? []
            }
            guard raw.count <= length else { throw RowBinaryError("\(raw.count) bytes do not fit FixedString(\(length))") }
            bytes.append(contentsOf: raw)
            bytes.append(contentsOf: repeatElement(0, count: length - raw.count))
        case .date:
            guard case .date(let date) = value else { throw Self.mismatch(value, type) }
            let days = date.isZero ? 0 : Self.daysSinceEpoch(date)
            guard (0...Int64(UInt16.max)).contains(days) else {
                throw RowBinaryError("\(Self.text(value)) is outside ClickHouse's Date range (1970-01-01 … 2149-06-06)")
            }
            append(UInt64(days), bytes: 2)
        case .dateTime:
            let (seconds, _) = try Self.instant(value, type)
            guard (0...Int64(UInt32.max)).contains(seconds) else {
                throw RowBinaryError("\(Self.text(value)) is outside ClickHouse's DateTime range (1970 … 2106)")
            }
            append(UInt64(seconds), bytes: 4)
        case .dateTime64(let precision):
            let (seconds, microseconds) = try Self.instant(value, type)
            var scaled = seconds
            for _ in 0..<precision { scaled *= 10 }
            var fraction = Int64(microseconds)
            if precision >= 6 {
                for _ in 6..<precision { fraction *= 10 }
            } else {
                for _ in precision..<6 { fraction /= 10 }
            }
            append(UInt64(bitPattern: scaled + fraction), bytes: 8)
        case .enumeration(let size, let values):
            let name: String
            switch value {
            case .enumeration(let text), .string(let text): name = text
            default: throw Self.mismatch(value, type)
            }
            guard let number = values[name] else { throw RowBinaryError("'\(name)' is not a member of the target's \(type)") }
            append(UInt64(bitPattern: Int64(number)), bytes: size)
        }
    }

    /// The bytes of `value` as one little-endian integer of `bytes` bytes.
    mutating func append(_ value: UInt64, bytes count: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0.prefix(count)) }
    }

    mutating func writeString(_ raw: [UInt8]) {
        writeLength(raw.count)
        bytes.append(contentsOf: raw)
    }

    mutating func writeString(_ text: String) {
        writeLength(text.utf8.count)
        bytes.append(contentsOf: text.utf8)
    }

    /// LEB128, as RowBinary prefixes strings.
    private mutating func writeLength(_ count: Int) {
        var length = count
        repeat {
            var byte = UInt8(length & 0x7f)
            length >>= 7
            if length > 0 { byte |= 0x80 }
            bytes.append(byte)
        } while length > 0
    }

    private mutating func writeDefault(_ type: ClickHouseType) {
        switch type {
        case .integer(let size, _): append(0, bytes: size)
        case .date: append(0, bytes: 2)
        case .float32, .dateTime: append(0, bytes: 4)
        case .float64, .dateTime64: append(0, bytes: 8)
        case .decimal(let precision, _): bytes.append(contentsOf: repeatElement(0, count: Self.decimalBytes(precision)))
        case .string: bytes.append(0)
        case .fixedString(let length): bytes.append(contentsOf: repeatElement(0, count: length))
        case .enumeration(let size, let values): append(UInt64(bitPattern: Int64(values.values.min() ?? 0)), bytes: size)
        case .nullable: bytes.append(1)
        }
    }

    private mutating func writeInteger(_ value: Value, bytes size: Int, signed: Bool) throws(RowBinaryError) {
        let type = ClickHouseType.integer(bytes: size, signed: signed)
        let bits = size * 8
        switch value {
        case .int, .year:
            var wide: Int64 = 0
            if case .int(let number) = value { wide = number }
            if case .year(let year) = value { wide = Int64(year) }
            let fits = signed ? (bits == 64 || (wide >= -(1 << (bits - 1)) && wide < 1 << (bits - 1))) : (wide >= 0 && (bits == 64 || wide < 1 << bits))
            guard fits else { throw RowBinaryError("\(wide) does not fit \(type)") }
            append(UInt64(bitPattern: wide), bytes: size)
        case .uint(let number), .bit(let number, _):
            let limit: UInt64 = signed ? (bits == 64 ? UInt64(Int64.max) : 1 << (bits - 1) - 1) : (bits == 64 ? .max : 1 << bits - 1)
            guard number <= limit else { throw RowBinaryError("\(number) does not fit \(type)") }
            append(number, bytes: size)
        case .bool(let truth):
            append(truth ? 1 : 0, bytes: size)
        default:
            throw Self.mismatch(value, type)
        }
    }

    /// Decimal32/64/128 by precision: the value times 10^scale as a two's-complement integer.
    private mutating func writeDecimal(_ value: Value, precision: Int, scale: Int) throws(RowBinaryError) {
        let scaled: Int128?
        switch value {
        case .decimal(let digits): scaled = Self.scaledDecimal(digits, scale: scale, precision: precision)
        case .int(let number): scaled = Self.scaledDecimal(String(number), scale: scale, precision: precision)
        case .uint(let number): scaled = Self.scaledDecimal(String(number), scale: scale, precision: precision)
        default: throw Self.mismatch(value, .decimal(precision: precision, scale: scale))
        }
        guard let scaled else {
            throw RowBinaryError("\(Self.text(value)) does not fit Decimal(\(precision), \(scale)) exactly")
        }
        let size = Self.decimalBytes(precision)
        let low = UInt64(truncatingIfNeeded: scaled)
        append(low, bytes: min(size, 8))
        if size == 16 { append(UInt64(truncatingIfNeeded: scaled >> 64), bytes: 8) }
    }

    static func decimalBytes(_ precision: Int) -> Int {
        precision <= 9 ? 4 : precision <= 18 ? 8 : 16
    }

    /// `"-12.5"` at scale 2 → -1250; `nil` when digits would be lost or the precision exceeded.
    /// One pass over the UTF-8 bytes: this runs for every DECIMAL cell.
    static func scaledDecimal(_ text: String, scale: Int, precision: Int) -> Int128? {
        var text = text
        return text.withUTF8 { utf8 -> Int128? in
            var index = 0
            let negative = utf8.first == UInt8(ascii: "-")
            if negative || utf8.first == UInt8(ascii: "+") { index = 1 }
            var result: Int128 = 0
            var significant = 0
            // Shifts one digit in; false once the precision would be exceeded (before Int128 could overflow).
            func push(_ digit: UInt8) -> Bool {
                if result > 0 || digit > 0 {
                    guard significant < precision else { return false }
                    significant += 1
                }
                result = result * 10 + Int128(digit)
                return true
            }
            var digits = 0
            var fractionDigits = 0
            var pendingZeros = 0
            var inFraction = false
            while index < utf8.count {
                let byte = utf8[index]
                index += 1
                if byte == UInt8(ascii: "."), !inFraction {
                    inFraction = true
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                digits += 1
                if inFraction {
                    // Zeros beyond the scale lose nothing; any other digit there would be lost.
                    if fractionDigits + pendingZeros >= scale {
                        guard byte == UInt8(ascii: "0") else { return nil }
                        continue
                    }
                    if byte == UInt8(ascii: "0") {
                        pendingZeros += 1
                        continue
                    }
                    for _ in 0..<pendingZeros where !push(0) { return nil }
                    fractionDigits += pendingZeros + 1
                    pendingZeros = 0
                }
                guard push(byte - UInt8(ascii: "0")) else { return nil }
            }
            guard digits > 0 else { return nil }
            for _ in fractionDigits..<scale where !push(0) { return nil }
            return negative ? -result : result
        }
    }

    private static func number(_ value: Value) -> Double? {
        switch value {
        case .float(let number): Double(number)
        case .double(let number): number
        case .int(let number): Double(number)
        case .uint(let number): Double(number)
        case .decimal(let text): Double(text)
        default: nil
        }
    }

    /// Seconds since the epoch and microseconds of a DATETIME (read as UTC) or TIMESTAMP; zero
    /// dates are the epoch, ClickHouse's own zero.
    private static func instant(_ value: Value, _ type: ClickHouseType) throws(RowBinaryError) -> (Int64, UInt32) {
        switch value {
        case .timestamp(let timestamp): return (timestamp.seconds, timestamp.microseconds)
        case .datetime(let datetime):
            if datetime.date.isZero { return (0, 0) }
            let seconds = daysSinceEpoch(datetime.date) * 86_400 + Int64(datetime.hour) * 3600 + Int64(datetime.minute) * 60 + Int64(datetime.second)
            return (seconds, datetime.microseconds)
        default: throw Self.mismatch(value, type)
        }
    }

    /// Days from 1970-01-01 in the proleptic Gregorian calendar.
    static func daysSinceEpoch(_ date: DateValue) -> Int64 {
        let month = Int64(date.month)
        let year = Int64(date.year) - (month <= 2 ? 1 : 0)
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + Int64(date.day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func text(_ value: Value) -> String {
        ValueJSON.plainText(value).map { String(decoding: $0, as: UTF8.self) } ?? "NULL"
    }

    private static func mismatch(_ value: Value, _ type: ClickHouseType) -> RowBinaryError {
        RowBinaryError("\(text(value)) cannot be written to a \(type) column")
    }
}

/// A value the target column cannot hold.
struct RowBinaryError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

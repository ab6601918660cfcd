import FerryCore
import NIOCore

/// Rows of a text-protocol result set (`SELECT` of a table's columns in order) decoded with the
/// same column decoders as row images, so a snapshot row and a streamed row of the same data are
/// equal `Value` for `Value`.
///
/// The session must read with `time_zone = '+00:00'` (TIMESTAMP text is then UTC) and
/// `character_set_results = utf8mb4`; FLOAT columns must be selected as `CAST(col AS DOUBLE)`
/// (FLOAT text has only 6 significant digits) — see `selectExpression(_:)`.
extension TableDecoder {
    /// What to SELECT for column `index` so its text converts back exactly.
    public func selectExpression(_ index: Int, quotedName: String) -> String {
        if case .float = columns[index] { return "CAST(\(quotedName) AS DOUBLE)" }
        return quotedName
    }

    /// Decodes a text row holding only the key columns `keyColumns`, in that order.
    public func decodeKeyText(_ fields: [ByteBuffer?], keyColumns: [Int]) throws -> [Value] {
        guard fields.count == keyColumns.count else {
            throw BinlogDecodingError(.invalid("a key row of \(schema.name) has \(fields.count) columns, the key \(keyColumns.count)"))
        }
        return try zip(fields, keyColumns).map { field, column in
            guard let field else { return .null }
            guard let value = try field.withUnsafeReadableBytes({ try columns[column].readText($0, details: details) }) else {
                throw BinlogDecodingError(.invalid("key column \(schema.columnName(column)) of \(schema.name) has unreadable text"))
            }
            return value
        }
    }

    /// Decodes one text row straight from its packet payload: `columns.count` length-encoded
    /// fields, 0xFB for NULL. No array and no slice per field: a snapshot reads millions.
    public func decodeText(payload: ByteBuffer) throws -> Row {
        var row = Row()
        row.reserveCapacity(columns.count)
        var fields = payload
        for index in columns.indices {
            guard let first = fields.getInteger(at: fields.readerIndex, as: UInt8.self) else {
                throw BinlogDecodingError(.invalid("a text row of \(schema.name) ends after \(index) of its \(columns.count) columns"))
            }
            if first == 0xFB {
                fields.moveReaderIndex(forwardBy: 1)
                row.append(.null)
                continue
            }
            let length = try fields.readLengthEncodedCount()
            row.append(try fields.withUnsafeReadableBytes { try textValue(UnsafeRawBufferPointer(rebasing: $0.prefix(length)), column: index) })
            fields.moveReaderIndex(forwardBy: length)
        }
        guard fields.readableBytes == 0 else {
            throw BinlogDecodingError(.invalid("a text row of \(schema.name) has more than its \(columns.count) columns"))
        }
        return row
    }

    /// Column `index`'s value from its text, recording a repair of ill-formed text.
    private func textValue(_ bytes: UnsafeRawBufferPointer, column index: Int) throws -> Value {
        var repaired = false
        let value = try columns[index].readText(bytes, details: details, repaired: &repaired)
        if repaired { textRepairs.record(column: index) }
        guard let value else {
            let text = String(decoding: bytes.prefix(60), as: UTF8.self)
            throw BinlogDecodingError(.invalid("column \(schema.columnName(index)) of \(schema.name): cannot read '\(text)' as \(schema.columns[index].typeName)"))
        }
        return value
    }
}

extension ColumnDecoder {
    /// The value of a text-protocol field, or `nil` when the text does not fit the type.
    func readText(_ bytes: UnsafeRawBufferPointer, details: ColumnDetails) throws -> Value? {
        var repaired = false
        return try readText(bytes, details: details, repaired: &repaired)
    }

    /// As `readText(_:)`; sets `repaired` when text was not well-formed UTF-8 (an `.illFormedText`).
    func readText(_ bytes: UnsafeRawBufferPointer, details: ColumnDetails, repaired: inout Bool) throws -> Value? {
        var text = TextScanner(bytes)
        switch self {
        case .integer(_, let unsigned):
            if unsigned { return text.unsignedInteger().map { .uint($0) } }
            return text.signedInteger().map { .int($0) }
        case .float:
            return Double(String(decoding: bytes, as: UTF8.self)).map { .float(Float($0)) }
        case .double:
            return Double(String(decoding: bytes, as: UTF8.self)).map { .double($0) }
        case .decimal:
            return .decimal(String(decoding: bytes, as: UTF8.self))
        case .year:
            return text.unsignedInteger().map { .year(UInt16(clamping: $0)) }
        case .date:
            return text.date().map { .date($0) }
        case .time:
            return text.time(fsp: 0).map { .time($0) }
        case .time2(let fsp):
            return text.time(fsp: fsp).map { .time($0) }
        case .datetime:
            return text.dateTime(fsp: 0).map { .datetime($0) }
        case .datetime2(let fsp):
            return text.dateTime(fsp: fsp).map { .datetime($0) }
        case .timestamp:
            return text.dateTime(fsp: 0).map { .timestamp(Self.instant($0)) }
        case .timestamp2(let fsp):
            return text.dateTime(fsp: fsp).map { .timestamp(Self.instant($0)) }
        case .string(_, let charset, _), .blob(_, let charset):
            if charset == .binary { return .bytes(Array(bytes)) }
            return UTF8Check.value(bytes.assumingMemoryBound(to: UInt8.self), repaired: &repaired)
        case .json:
            return .json(String(decoding: bytes, as: UTF8.self))
        case .geometry:
            guard bytes.count >= 4 else { return nil }
            let srid = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            return .geometry(GeometryValue(srid: srid, wkb: Array(bytes[4...])))
        case .bit(let bits):
            guard bytes.count <= 8 else { return nil }
            return .bit(bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, width: UInt8(bits))
        case .enumeration:
            return .enumeration(String(decoding: bytes, as: UTF8.self))
        case .set:
            let text = String(decoding: bytes, as: UTF8.self)
            return .set(text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false).map(String.init))
        case .mariadbType:
            return .string(String(decoding: bytes, as: UTF8.self))
        case .null:
            return .null
        case .unsupported(let note):
            throw BinlogDecodingError(.unsupportedColumn(details.notes[note]))
        }
    }

    /// TIMESTAMP text read in a UTC session; the zero timestamp is 0 seconds, as in row images.
    static func instant(_ value: DateTimeValue) -> TimestampValue {
        if value.date.isZero { return TimestampValue(seconds: 0, microseconds: value.microseconds, fsp: value.fsp) }
        let days = CivilTime.daysSinceEpoch(year: Int64(value.date.year), month: Int64(value.date.month), day: Int64(value.date.day))
        let seconds = days * 86_400 + Int64(value.hour) * 3600 + Int64(value.minute) * 60 + Int64(value.second)
        return TimestampValue(seconds: seconds, microseconds: value.microseconds, fsp: value.fsp)
    }
}

/// Reads the server's text forms of numbers and temporal values without making strings.
struct TextScanner {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func skip(_ ascii: Character) -> Bool {
        guard index < bytes.count, bytes[index] == ascii.asciiValue! else { return false }
        index += 1
        return true
    }

    /// Digits up to `limit` of them; `nil` when there are none.
    mutating func digits(limit: Int = 20) -> (value: UInt64, count: Int)? {
        var value: UInt64 = 0
        var count = 0
        while index < bytes.count, count < limit, bytes[index] >= 0x30, bytes[index] <= 0x39 {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(bytes[index] - 0x30))
            if overflow1 || overflow2 { return nil }
            value = sum
            index += 1
            count += 1
        }
        return count == 0 ? nil : (value, count)
    }

    mutating func unsignedInteger() -> UInt64? {
        guard let (value, _) = digits(), atEnd else { return nil }
        return value
    }

    mutating func signedInteger() -> Int64? {
        let negative = skip("-")
        guard let (magnitude, _) = digits(), atEnd else { return nil }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(bitPattern: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    mutating func date() -> DateValue? {
        guard let year = digits(limit: 4), skip("-"), let month = digits(limit: 2), skip("-"), let day = digits(limit: 2) else { return nil }
        return DateValue(year: UInt16(year.value), month: UInt8(month.value), day: UInt8(day.value))
    }

    /// `.ffffff` scaled to microseconds; absent means 0.
    mutating func fraction() -> UInt32? {
        guard skip(".") else { return 0 }
        guard let (value, count) = digits(limit: 6) else { return nil }
        var micro = value
        for _ in count..<6 { micro *= 10 }
        return UInt32(micro)
    }

    mutating func dateTime(fsp: UInt8) -> DateTimeValue? {
        guard let date = date(), skip(" "), let hour = digits(limit: 2), skip(":"), let minute = digits(limit: 2), skip(":"),
              let second = digits(limit: 2), let micro = fraction(), atEnd
        else { return nil }
        return DateTimeValue(date: date, hour: UInt8(hour.value), minute: UInt8(minute.value), second: UInt8(second.value),
                             microseconds: micro, fsp: fsp)
    }

    mutating func time(fsp: UInt8) -> TimeValue? {
        let negative = skip("-")
        guard let hours = digits(limit: 4), skip(":"), let minutes = digits(limit: 2), skip(":"), let seconds = digits(limit: 2),
              let micro = fraction(), atEnd
        else { return nil }
        return TimeValue(negative: negative, hours: UInt32(hours.value), minutes: UInt8(minutes.value), seconds: UInt8(seconds.value),
                         microseconds: micro, fsp: fsp)
    }
}

import FerryCore
import NIOCore

/// How to read one column's value from a row image, resolved once per TABLE_MAP.
///
/// Every payload is plain bytes (names and messages live in the table's `ColumnDetails`), so the
/// row loop reads a decoder per column without reference counting.
enum ColumnDecoder: Sendable {
    case integer(byteCount: Int, unsigned: Bool)
    case float
    case double
    case decimal(precision: Int, scale: Int)
    case year
    case date
    case time
    case time2(fsp: UInt8)
    case datetime
    case datetime2(fsp: UInt8)
    case timestamp
    case timestamp2(fsp: UInt8)
    /// VARCHAR/VARBINARY and CHAR/BINARY. `padTo` re-pads BINARY(n) with zero bytes.
    case string(lengthBytes: Int, charset: CharacterSet, padTo: Int?)
    /// TEXT/BLOB of any size (MariaDB's JSON is LONGTEXT and arrives here).
    case blob(lengthBytes: Int, charset: CharacterSet)
    case json(lengthBytes: Int)
    case geometry(lengthBytes: Int)
    case bit(bits: Int)
    /// `members` indexes `ColumnDetails.members`.
    case enumeration(byteCount: Int, members: Int)
    case set(byteCount: Int, members: Int)
    /// MariaDB's UUID, INET4 and INET6 (BINARY(n) in TABLE_MAP): their text as SELECT shows it.
    case mariadbType(MariaDBDataType)
    case null
    /// A column Ferry cannot decode; reading a value of it is an error with the text at `note`
    /// in `ColumnDetails.notes`.
    case unsupported(note: Int)

    /// Reads one value.
    func read(from buffer: inout ByteBuffer, details: ColumnDetails) throws -> Value {
        var repaired = false
        return try read(from: &buffer, details: details, repaired: &repaired)
    }

    /// Reads one value; sets `repaired` when text was not well-formed in its character set (a
    /// utf8mb4 column holding bytes MariaDB stored under a lax `sql_mode`); such a value is an
    /// `.illFormedText` holding the exact bytes.
    @inline(__always)
    func read(from buffer: inout ByteBuffer, details: ColumnDetails, repaired: inout Bool) throws -> Value {
        switch self {
        case .integer(let count, let unsigned):
            let raw: UInt64
            switch count {
            case 1: raw = UInt64(try buffer.readLE(UInt8.self))
            case 2: raw = UInt64(try buffer.readLE(UInt16.self))
            case 4: raw = UInt64(try buffer.readLE(UInt32.self))
            case 8: raw = try buffer.readLE(UInt64.self)
            default: raw = try buffer.readUnsignedLE(byteCount: count)
            }
            if unsigned { return .uint(raw) }
            let shift = UInt64(64 - count * 8)
            return .int(Int64(bitPattern: raw << shift) >> Int64(shift))
        case .float:
            return .float(Float(bitPattern: try buffer.readLE(UInt32.self)))
        case .double:
            return .double(Double(bitPattern: try buffer.readLE(UInt64.self)))
        case .decimal(let precision, let scale):
            return .decimal(try DecimalDecoder.decode(from: &buffer, precision: precision, scale: scale))
        case .year:
            let raw: UInt8 = try buffer.readLE()
            return .year(raw == 0 ? 0 : 1900 + UInt16(raw))
        case .date:
            return .date(try TemporalDecoder.date(&buffer))
        case .time:
            return .time(try TemporalDecoder.time(&buffer))
        case .time2(let fsp):
            return .time(try TemporalDecoder.time2(&buffer, fsp: fsp))
        case .datetime:
            return .datetime(try TemporalDecoder.datetime(&buffer))
        case .datetime2(let fsp):
            return .datetime(try TemporalDecoder.datetime2(&buffer, fsp: fsp))
        case .timestamp:
            return .timestamp(TimestampValue(seconds: Int64(try buffer.readLE(UInt32.self)), microseconds: 0, fsp: 0))
        case .timestamp2(let fsp):
            let seconds = try buffer.readUnsignedBE(byteCount: 4)
            let micro = try TemporalDecoder.readFraction(&buffer, fsp: fsp)
            return .timestamp(TimestampValue(seconds: Int64(seconds), microseconds: micro, fsp: fsp))
        case .string(let lengthBytes, let charset, let padTo):
            let length = Int(try buffer.readUnsignedLE(byteCount: lengthBytes))
            return try Self.readText(&buffer, length: length, charset: charset, padTo: padTo, repaired: &repaired)
        case .blob(let lengthBytes, let charset):
            let length = Int(try buffer.readUnsignedLE(byteCount: lengthBytes))
            return try Self.readText(&buffer, length: length, charset: charset, padTo: nil, repaired: &repaired)
        case .json(let lengthBytes):
            let length = Int(try buffer.readUnsignedLE(byteCount: lengthBytes))
            guard buffer.readableBytes >= length else {
                throw BinlogDecodingError(.truncated(needed: length, available: buffer.readableBytes))
            }
            let text = try buffer.withUnsafeReadableBytes { try JSONBinaryDecoder.decode(UnsafeRawBufferPointer(rebasing: $0[..<length])) }
            buffer.moveReaderIndex(forwardBy: length)
            return .json(text)
        case .geometry(let lengthBytes):
            let length = Int(try buffer.readUnsignedLE(byteCount: lengthBytes))
            guard length >= 4 else { throw BinlogDecodingError(.invalid("GEOMETRY value of \(length) bytes has no SRID")) }
            let srid: UInt32 = try buffer.readLE()
            return .geometry(GeometryValue(srid: srid, wkb: try buffer.readBytesChecked(length: length - 4)))
        case .bit(let bits):
            let value = try buffer.readUnsignedBE(byteCount: (bits + 7) / 8)
            return .bit(value, width: UInt8(bits))
        case .enumeration(let count, let members):
            let names = details.members[members]
            let index = Int(try buffer.readUnsignedLE(byteCount: count))
            if index == 0 { return .enumeration("") }
            guard index <= names.count else {
                if names.isEmpty { return .enumeration(String(index)) }
                throw BinlogDecodingError(.invalid("ENUM index \(index) of \(names.count) members"))
            }
            return .enumeration(names[index - 1])
        case .set(let count, let members):
            let names = details.members[members]
            let bits = try buffer.readUnsignedLE(byteCount: count)
            if names.isEmpty { return .set(bits == 0 ? [] : [String(bits)]) }
            var chosen: [String] = []
            for (index, name) in names.enumerated() where index < 64 && bits & (1 << UInt64(index)) != 0 {
                chosen.append(name)
            }
            return .set(chosen)
        case .mariadbType(let type):
            let length = Int(try buffer.readUnsignedLE(byteCount: 1))
            guard length <= type.byteCount else { throw BinlogDecodingError(.invalid("\(type.rawValue) value of \(length) bytes")) }
            return .string(type.text(try buffer.readBytesChecked(length: length)))
        case .null:
            return .null
        case .unsupported(let note):
            throw BinlogDecodingError(.unsupportedColumn(details.notes[note]))
        }
    }

    private static func readText(_ buffer: inout ByteBuffer, length: Int, charset: CharacterSet, padTo: Int?, repaired: inout Bool) throws -> Value {
        guard buffer.readableBytes >= length else {
            throw BinlogDecodingError(.truncated(needed: length, available: buffer.readableBytes))
        }
        switch charset {
        case .binary:
            var bytes = buffer.readBytes(length: length)!
            if let padTo, bytes.count < padTo {
                bytes.append(contentsOf: repeatElement(0, count: padTo - bytes.count))
            }
            return .bytes(bytes)
        case .unsupported:
            // The table's decoder names the set (`ColumnDetails.characterSetNames`).
            throw BinlogDecodingError(.unsupportedColumn("its character set cannot be decoded exactly"))
        case .utf8, .ascii:
            let value = buffer.withUnsafeReadableBytes { raw in
                UTF8Check.value(UnsafeRawBufferPointer(rebasing: raw[..<length]).assumingMemoryBound(to: UInt8.self), repaired: &repaired)
            }
            buffer.moveReaderIndex(forwardBy: length)
            return value
        default:
            let text = buffer.withUnsafeReadableBytes { charset.decode(UnsafeRawBufferPointer(rebasing: $0[..<length])) }
            guard let text else {
                throw BinlogDecodingError(.unsupportedColumn("a value of \(length) bytes is not text in character set \(charset.serverName ?? "\(charset)")"))
            }
            buffer.moveReaderIndex(forwardBy: length)
            return .string(text)
        }
    }
}

/// What column decoders refer to by index, so that they copy as plain bytes: ENUM and SET member
/// names, and the texts of columns Ferry cannot decode. One per table.
struct ColumnDetails: Sendable {
    var members: [[String]] = []
    var notes: [String] = []
    /// The names of text columns' character sets Ferry cannot decode, by column index.
    var characterSetNames: [Int: String] = [:]
}

/// Whether decoding replaced ill-formed UTF-8, at almost no cost for well-formed text. Each
/// ill-formed run of 1, 2 or 3 bytes becomes one 3-byte U+FFFD, so a repaired text is longer than
/// its bytes unless every run was 3 bytes long — a 4-byte sequence cut short, which starts with a
/// byte ≥ 0xF0. Only text holding such a byte (emoji and other 4-byte characters) is validated.
enum UTF8Check {
    /// The value of a text column's UTF-8 bytes: `.string`, or `.illFormedText` with the exact
    /// bytes (setting `repaired`) when they are not well-formed.
    @inline(__always)
    static func value(_ bytes: UnsafeBufferPointer<UInt8>, repaired: inout Bool) -> Value {
        let text = String(decoding: bytes, as: UTF8.self)
        guard wasRepaired(text, from: bytes) else { return .string(text) }
        repaired = true
        return .illFormedText(Array(bytes))
    }

    @inline(__always)
    static func wasRepaired(_ text: String, from bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if text.utf8.count != bytes.count { return true }
        return hasFourByteLead(bytes) && String(validating: bytes, as: UTF8.self) == nil
    }

    /// Whether any byte is 0xF0 or above; 8 bytes at a time.
    @inline(__always)
    static func hasFourByteLead(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let count = bytes.count
        var index = 0
        let raw = UnsafeRawPointer(base)
        while index + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // Bit 7 of each byte ANDed with its bits 6, 5 and 4 (shifting by k moves a byte's bit 7-k to its bit 7).
            if word & (word << 1) & (word << 2) & (word << 3) & 0x8080_8080_8080_8080 != 0 { return true }
            index += 8
        }
        while index < count {
            if bytes[index] >= 0xF0 { return true }
            index += 1
        }
        return false
    }
}

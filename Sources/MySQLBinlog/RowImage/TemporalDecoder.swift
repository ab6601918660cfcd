import FerryCore
import NIOCore

/// Binary forms of MySQL temporal columns (`my_time.cc`, `log_event.cc`).
enum TemporalDecoder {
    /// Bytes of fractional seconds for a given precision in TIME2/DATETIME2/TIMESTAMP2.
    static func fractionBytes(fsp: UInt8) -> Int { (Int(fsp) + 1) / 2 }

    /// Reads the big-endian fraction and returns microseconds.
    static func readFraction(_ buffer: inout ByteBuffer, fsp: UInt8) throws -> UInt32 {
        switch fsp {
        case 0: return 0
        case 1, 2: return UInt32(try buffer.readUnsignedBE(byteCount: 1)) * 10_000
        case 3, 4: return UInt32(try buffer.readUnsignedBE(byteCount: 2)) * 100
        case 5, 6: return UInt32(try buffer.readUnsignedBE(byteCount: 3))
        default: throw BinlogDecodingError(.invalid("fractional-second precision \(fsp) > 6"))
        }
    }

    /// DATE: 3 bytes little-endian, `day | month << 5 | year << 9`.
    static func date(_ buffer: inout ByteBuffer) throws -> DateValue {
        let raw = try buffer.readUnsignedLE(byteCount: 3)
        return DateValue(year: UInt16(raw >> 9), month: UInt8(raw >> 5 & 15), day: UInt8(raw & 31))
    }

    /// DATETIME2: 5 bytes big-endian (sign bit, year*13+month 17 bits, day 5, hour 5, minute 6,
    /// second 6), then the fraction.
    static func datetime2(_ buffer: inout ByteBuffer, fsp: UInt8) throws -> DateTimeValue {
        let intPart = Int64(try buffer.readUnsignedBE(byteCount: 5)) - 0x80_0000_0000
        let micro = try readFraction(&buffer, fsp: fsp)
        let magnitude = intPart < 0 ? -intPart : intPart
        let yearMonthDay = magnitude >> 17
        let yearMonth = yearMonthDay >> 5
        let hms = magnitude % (1 << 17)
        return DateTimeValue(
            date: DateValue(year: UInt16(clamping: yearMonth / 13), month: UInt8(yearMonth % 13), day: UInt8(yearMonthDay % 32)),
            hour: UInt8(clamping: hms >> 12), minute: UInt8(hms >> 6 & 63), second: UInt8(hms % 64),
            microseconds: micro, fsp: fsp)
    }

    /// DATETIME (pre-5.6): 8 bytes little-endian holding the decimal number YYYYMMDDhhmmss.
    static func datetime(_ buffer: inout ByteBuffer) throws -> DateTimeValue {
        let raw = try buffer.readUnsignedLE(byteCount: 8)
        let datePart = raw / 1_000_000, timePart = raw % 1_000_000
        return DateTimeValue(
            date: DateValue(year: UInt16(clamping: datePart / 10000), month: UInt8(datePart / 100 % 100), day: UInt8(datePart % 100)),
            hour: UInt8(timePart / 10000), minute: UInt8(timePart / 100 % 100), second: UInt8(timePart % 100),
            microseconds: 0, fsp: 0)
    }

    /// TIME2: 3 bytes big-endian offset by 0x800000 (sign, hour 10 bits, minute 6, second 6),
    /// then the fraction; negative values borrow from the integer part.
    static func time2(_ buffer: inout ByteBuffer, fsp: UInt8) throws -> TimeValue {
        let packed: Int64
        switch fsp {
        case 0:
            packed = (Int64(try buffer.readUnsignedBE(byteCount: 3)) - 0x80_0000) << 24
        case 1, 2, 3, 4:
            // 1 or 2 fraction bytes; a negative value with a fraction borrows one second.
            let fractionBytes = fsp <= 2 ? 1 : 2
            var intPart = Int64(try buffer.readUnsignedBE(byteCount: 3)) - 0x80_0000
            var frac = Int64(try buffer.readUnsignedBE(byteCount: fractionBytes))
            if intPart < 0 && frac != 0 {
                intPart += 1
                frac -= 1 << (8 * fractionBytes)
            }
            packed = intPart << 24 + frac * (fsp <= 2 ? 10_000 : 100)
        case 5, 6:
            packed = Int64(try buffer.readUnsignedBE(byteCount: 6)) - 0x8000_0000_0000
        default:
            throw BinlogDecodingError(.invalid("fractional-second precision \(fsp) > 6"))
        }
        return time(fromPacked: packed, fsp: fsp)
    }

    /// TIME (pre-5.6): 3 bytes little-endian signed, the decimal number ±HHMMSS.
    static func time(_ buffer: inout ByteBuffer) throws -> TimeValue {
        let raw = try buffer.readUnsignedLE(byteCount: 3)
        let signed = Int64(raw) - (raw & 0x80_0000 != 0 ? 0x100_0000 : 0)
        let magnitude = signed < 0 ? -signed : signed
        return TimeValue(negative: signed < 0, hours: UInt32(magnitude / 10000), minutes: UInt8(magnitude / 100 % 100),
                         seconds: UInt8(magnitude % 100), microseconds: 0, fsp: 0)
    }

    /// MySQL's packed time: `(hour << 12 | minute << 6 | second) << 24 | microseconds`, signed.
    static func time(fromPacked packed: Int64, fsp: UInt8) -> TimeValue {
        let negative = packed < 0
        let magnitude = negative ? -packed : packed
        let hms = magnitude >> 24
        return TimeValue(negative: negative, hours: UInt32(hms >> 12 & 0x3FF), minutes: UInt8(hms >> 6 & 63),
                         seconds: UInt8(hms & 63), microseconds: UInt32(magnitude & 0xFF_FFFF), fsp: fsp)
    }

    /// MySQL's packed datetime: `((year*13+month) << 5 | day) << 17 | hms) << 24 | microseconds`.
    static func datetime(fromPacked packed: Int64, fsp: UInt8) -> DateTimeValue {
        let magnitude = packed < 0 ? -packed : packed
        let intPart = magnitude >> 24
        let yearMonthDay = intPart >> 17
        let yearMonth = yearMonthDay >> 5
        let hms = intPart % (1 << 17)
        return DateTimeValue(
            date: DateValue(year: UInt16(clamping: yearMonth / 13), month: UInt8(yearMonth % 13), day: UInt8(yearMonthDay % 32)),
            hour: UInt8(clamping: hms >> 12), minute: UInt8(hms >> 6 & 63), second: UInt8(hms & 63),
            microseconds: UInt32(magnitude & 0xFF_FFFF), fsp: fsp)
    }
}

/// A shared allocator for the few places that need a scratch `ByteBuffer`.
enum ByteBufferAllocatorHolder {
    static let allocator = ByteBufferAllocator()
}

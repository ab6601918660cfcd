import FerryCore
import NIOCore

/// MySQL's binary JSON (`json_binary.h`) to JSON text in the form MySQL itself prints
/// (`{"a": 1, "b": [true, null]}`).
///
/// Layout: a type byte, then the value. Objects and arrays: element count and byte size (2 bytes
/// each in the small form, 4 in the large), key entries (offset, u16 length), value entries (type
/// and either an inlined scalar or an offset from the container's start). Strings have a 7-bit
/// variable-length size. Opaque values carry a MySQL column type and its binary form.
enum JSONBinaryDecoder {
    static let maximumDepth = 150

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> String {
        if bytes.isEmpty { return "null" }  // MySQL writes an empty value for a JSON NULL-like column
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 4)
        let reader = Reader(bytes: bytes)
        try reader.appendValue(type: bytes[0], at: 1, depth: 0, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer

        func check(_ offset: Int, _ count: Int) throws {
            guard offset >= 0, count >= 0, offset <= bytes.count - count else {
                throw BinlogDecodingError(.truncated(needed: offset + count, available: bytes.count))
            }
        }

        func unsigned(_ offset: Int, _ count: Int) throws -> UInt64 {
            try check(offset, count)
            var value: UInt64 = 0
            for index in stride(from: count - 1, through: 0, by: -1) { value = value << 8 | UInt64(bytes[offset + index]) }
            return value
        }

        func appendValue(type: UInt8, at offset: Int, depth: Int, into out: inout [UInt8]) throws {
            guard depth < maximumDepth else { throw BinlogDecodingError(.invalid("JSON nested deeper than \(maximumDepth)")) }
            switch type {
            case 0x00: try appendContainer(at: offset, large: false, object: true, depth: depth, into: &out)
            case 0x01: try appendContainer(at: offset, large: true, object: true, depth: depth, into: &out)
            case 0x02: try appendContainer(at: offset, large: false, object: false, depth: depth, into: &out)
            case 0x03: try appendContainer(at: offset, large: true, object: false, depth: depth, into: &out)
            case 0x04:
                try check(offset, 1)
                try appendLiteral(bytes[offset], into: &out)
            case 0x05: JSONBuffer.appendInteger(Int64(Int16(truncatingIfNeeded: try unsigned(offset, 2))), to: &out)
            case 0x06: JSONBuffer.appendUnsigned(try unsigned(offset, 2), to: &out)
            case 0x07: JSONBuffer.appendInteger(Int64(Int32(truncatingIfNeeded: try unsigned(offset, 4))), to: &out)
            case 0x08: JSONBuffer.appendUnsigned(try unsigned(offset, 4), to: &out)
            case 0x09: JSONBuffer.appendInteger(Int64(bitPattern: try unsigned(offset, 8)), to: &out)
            case 0x0A: JSONBuffer.appendUnsigned(try unsigned(offset, 8), to: &out)
            case 0x0B:
                let value = Double(bitPattern: try unsigned(offset, 8))
                appendDouble(value, into: &out)
            case 0x0C:
                let (length, start) = try variableLength(at: offset)
                try check(start, length)
                JSONBuffer.appendString(utf8: UnsafeBufferPointer(rebasing: bytes.bindMemory(to: UInt8.self)[start..<(start + length)]), to: &out)
            case 0x0F:
                try check(offset, 1)
                let fieldType = bytes[offset]
                let (length, start) = try variableLength(at: offset + 1)
                try check(start, length)
                try appendOpaque(fieldType: fieldType, data: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]), into: &out)
            default:
                throw BinlogDecodingError(.invalid("JSON value type 0x\(String(type, radix: 16))"))
            }
        }

        func appendLiteral(_ literal: UInt8, into out: inout [UInt8]) throws {
            switch literal {
            case 0: JSONBuffer.appendASCII("null", to: &out)
            case 1: JSONBuffer.appendASCII("true", to: &out)
            case 2: JSONBuffer.appendASCII("false", to: &out)
            default: throw BinlogDecodingError(.invalid("JSON literal \(literal)"))
            }
        }

        func appendContainer(at start: Int, large: Bool, object: Bool, depth: Int, into out: inout [UInt8]) throws {
            let width = large ? 4 : 2
            let count = Int(try unsigned(start, width))
            let size = Int(try unsigned(start + width, width))
            try check(start, size)
            let keyEntrySize = width + 2
            let valueEntrySize = 1 + width
            let headerSize = 2 * width + (object ? count * keyEntrySize : 0) + count * valueEntrySize
            guard headerSize <= size else {
                throw BinlogDecodingError(.invalid("JSON container of \(count) elements does not fit in \(size) bytes"))
            }
            out.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
            let valueEntries = start + 2 * width + (object ? count * keyEntrySize : 0)
            for index in 0..<count {
                if index > 0 { out.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: " ")]) }
                if object {
                    let entry = start + 2 * width + index * keyEntrySize
                    let keyOffset = Int(try unsigned(entry, width))
                    let keyLength = Int(try unsigned(entry + width, 2))
                    guard keyOffset + keyLength <= size else { throw BinlogDecodingError(.invalid("JSON key outside its object")) }
                    try check(start + keyOffset, keyLength)
                    JSONBuffer.appendString(utf8: UnsafeBufferPointer(rebasing: bytes.bindMemory(to: UInt8.self)[(start + keyOffset)..<(start + keyOffset + keyLength)]), to: &out)
                    out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
                }
                let entry = valueEntries + index * valueEntrySize
                try check(entry, valueEntrySize)
                let type = bytes[entry]
                if isInlined(type, large: large) {
                    try appendValue(type: type, at: entry + 1, depth: depth + 1, into: &out)
                } else {
                    let valueOffset = Int(try unsigned(entry + 1, width))
                    guard valueOffset < size else { throw BinlogDecodingError(.invalid("JSON value outside its container")) }
                    try appendValue(type: type, at: start + valueOffset, depth: depth + 1, into: &out)
                }
            }
            out.append(object ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }

        func isInlined(_ type: UInt8, large: Bool) -> Bool {
            switch type {
            case 0x04, 0x05, 0x06: true
            case 0x07, 0x08: large
            default: false
            }
        }

        /// 7 bits per byte, least significant first, high bit set on all but the last byte.
        func variableLength(at offset: Int) throws -> (length: Int, start: Int) {
            var length = 0
            for index in 0..<5 {
                try check(offset + index, 1)
                let byte = bytes[offset + index]
                length |= Int(byte & 0x7F) << (7 * index)
                if byte & 0x80 == 0 { return (length, offset + index + 1) }
            }
            throw BinlogDecodingError(.invalid("JSON string length longer than 5 bytes"))
        }

        func appendOpaque(fieldType: UInt8, data: UnsafeRawBufferPointer, into out: inout [UInt8]) throws {
            switch ColumnType(rawValue: fieldType) {
            case .newDecimal:
                guard data.count >= 2 else { throw BinlogDecodingError(.truncated(needed: 2, available: data.count)) }
                var buffer = ByteBufferAllocatorHolder.allocator.buffer(bytes: data[2...])
                let text = try DecimalDecoder.decode(from: &buffer, precision: Int(data[0]), scale: Int(data[1]))
                out.append(contentsOf: text.utf8)
            case .date, .datetime, .timestamp, .datetime2, .timestamp2:
                guard data.count >= 8 else { throw BinlogDecodingError(.truncated(needed: 8, available: data.count)) }
                let packed = Int64(bitPattern: data.loadUnaligned(as: UInt64.self).littleEndian)
                let datetime = TemporalDecoder.datetime(fromPacked: packed, fsp: 6)
                out.append(UInt8(ascii: "\""))
                ValueJSON.appendDateForm(datetime.date, to: &out)
                if ColumnType(rawValue: fieldType) != .date {
                    out.append(UInt8(ascii: " "))
                    ValueJSON.appendClockForm(hour: UInt32(datetime.hour), minute: datetime.minute, second: datetime.second,
                                              microseconds: datetime.microseconds, fsp: 6, to: &out)
                }
                out.append(UInt8(ascii: "\""))
            case .time, .time2:
                guard data.count >= 8 else { throw BinlogDecodingError(.truncated(needed: 8, available: data.count)) }
                let packed = Int64(bitPattern: data.loadUnaligned(as: UInt64.self).littleEndian)
                let time = TemporalDecoder.time(fromPacked: packed, fsp: 6)
                out.append(UInt8(ascii: "\""))
                if time.negative { out.append(UInt8(ascii: "-")) }
                ValueJSON.appendClockForm(hour: time.hours, minute: time.minutes, second: time.seconds,
                                          microseconds: time.microseconds, fsp: 6, to: &out)
                out.append(UInt8(ascii: "\""))
            default:
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: "base64:type\(fieldType):".utf8)
                JSONBuffer.appendBase64(Array(data), to: &out)
                out.append(UInt8(ascii: "\""))
            }
        }

        func appendDouble(_ value: Double, into out: inout [UInt8]) {
            guard value.isFinite else { return JSONBuffer.appendASCII("null", to: &out) }
            if value == value.rounded(), abs(value) < 1e15 {
                JSONBuffer.appendInteger(Int64(value), to: &out)
                out.append(contentsOf: [UInt8(ascii: "."), UInt8(ascii: "0")])
            } else {
                out.append(contentsOf: value.description.utf8)
            }
        }
    }
}

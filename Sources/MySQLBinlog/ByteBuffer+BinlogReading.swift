import NIOCore

/// Bounds-checked reads for binlog decoding. Every read throws `BinlogDecodingError.truncated`
/// instead of trapping or returning a default, and never moves the reader index on failure.
extension ByteBuffer {
    @inlinable
    mutating func readLE<T: FixedWidthInteger>(_: T.Type = T.self, file: String = #fileID, line: UInt = #line) throws -> T {
        guard let value = readInteger(endianness: .little, as: T.self) else {
            throw BinlogDecodingError(.truncated(needed: MemoryLayout<T>.size, available: readableBytes), file: file, line: line)
        }
        return value
    }

    /// Reads an unsigned little-endian integer of `count` (1…8) bytes.
    @inlinable
    mutating func readUnsignedLE(byteCount count: Int, file: String = #fileID, line: UInt = #line) throws -> UInt64 {
        guard count >= 0, count <= 8, readableBytes >= count else {
            throw BinlogDecodingError(.truncated(needed: count, available: readableBytes), file: file, line: line)
        }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<count {
            value |= UInt64(getInteger(at: readerIndex + index, as: UInt8.self)!) << shift
            shift += 8
        }
        moveReaderIndex(forwardBy: count)
        return value
    }

    /// Reads an unsigned big-endian integer of `count` (1…8) bytes.
    @inlinable
    mutating func readUnsignedBE(byteCount count: Int, file: String = #fileID, line: UInt = #line) throws -> UInt64 {
        guard count >= 0, count <= 8, readableBytes >= count else {
            throw BinlogDecodingError(.truncated(needed: count, available: readableBytes), file: file, line: line)
        }
        var value: UInt64 = 0
        for index in 0..<count {
            value = value << 8 | UInt64(getInteger(at: readerIndex + index, as: UInt8.self)!)
        }
        moveReaderIndex(forwardBy: count)
        return value
    }

    /// Reads a MySQL length-encoded integer (`0xFC` + 2, `0xFD` + 3, `0xFE` + 8 bytes).
    @inlinable
    mutating func readLengthEncodedInteger(file: String = #fileID, line: UInt = #line) throws -> UInt64 {
        let first: UInt8 = try readLE(file: file, line: line)
        switch first {
        case 0..<0xFB: return UInt64(first)
        case 0xFC: return try readUnsignedLE(byteCount: 2, file: file, line: line)
        case 0xFD: return try readUnsignedLE(byteCount: 3, file: file, line: line)
        case 0xFE: return try readUnsignedLE(byteCount: 8, file: file, line: line)
        default:
            throw BinlogDecodingError(.invalid("length-encoded integer starts with 0x\(String(first, radix: 16))"), file: file, line: line)
        }
    }

    /// A length-encoded integer that must fit in `Int` and in the remaining bytes.
    @inlinable
    mutating func readLengthEncodedCount(file: String = #fileID, line: UInt = #line) throws -> Int {
        let value = try readLengthEncodedInteger(file: file, line: line)
        guard value <= UInt64(readableBytes) else {
            throw BinlogDecodingError(.truncated(needed: Int(clamping: value), available: readableBytes), file: file, line: line)
        }
        return Int(value)
    }

    @inlinable
    mutating func readSliceChecked(length: Int, file: String = #fileID, line: UInt = #line) throws -> ByteBuffer {
        guard length >= 0, let slice = readSlice(length: length) else {
            throw BinlogDecodingError(.truncated(needed: length, available: readableBytes), file: file, line: line)
        }
        return slice
    }

    @inlinable
    mutating func readBytesChecked(length: Int, file: String = #fileID, line: UInt = #line) throws -> [UInt8] {
        guard length >= 0, let bytes = readBytes(length: length) else {
            throw BinlogDecodingError(.truncated(needed: length, available: readableBytes), file: file, line: line)
        }
        return bytes
    }

    @inlinable
    mutating func skipChecked(_ length: Int, file: String = #fileID, line: UInt = #line) throws {
        guard length >= 0, readableBytes >= length else {
            throw BinlogDecodingError(.truncated(needed: length, available: readableBytes), file: file, line: line)
        }
        moveReaderIndex(forwardBy: length)
    }

    /// Reads bytes as UTF-8 text (invalid sequences become U+FFFD).
    @inlinable
    mutating func readTextChecked(length: Int, file: String = #fileID, line: UInt = #line) throws -> String {
        guard length >= 0, let text = readString(length: length) else {
            throw BinlogDecodingError(.truncated(needed: length, available: readableBytes), file: file, line: line)
        }
        return text
    }

    /// Reads a length-encoded string.
    @inlinable
    mutating func readLengthEncodedText(file: String = #fileID, line: UInt = #line) throws -> String {
        let length = try readLengthEncodedCount(file: file, line: line)
        return try readTextChecked(length: length, file: file, line: line)
    }

    /// Reads everything that is left as UTF-8 text.
    mutating func readRemainingText() -> String {
        readString(length: readableBytes) ?? ""
    }

    /// Reads a NUL-terminated string; the NUL is consumed.
    mutating func readNullTerminatedText(file: String = #fileID, line: UInt = #line) throws -> String {
        guard let text = readNullTerminatedString() else {
            throw BinlogDecodingError(.invalid("string without terminating NUL"), file: file, line: line)
        }
        return text
    }
}

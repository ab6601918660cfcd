/// Reads a message's fields in network byte order; running past the end, or a string without
/// its terminating zero, is a typed error naming the message and the offset.
struct ByteCursor {
    let bytes: [UInt8]
    let message: String
    private(set) var offset: Int

    init(_ bytes: [UInt8], message: String, offset: Int = 0) {
        self.bytes = bytes
        self.message = message
        self.offset = offset
    }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func uint8() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func int16() throws -> Int16 { Int16(bitPattern: UInt16(truncatingIfNeeded: try unsigned(2))) }
    mutating func uint32() throws -> UInt32 { UInt32(truncatingIfNeeded: try unsigned(4)) }
    mutating func int32() throws -> Int32 { Int32(bitPattern: try uint32()) }
    mutating func uint64() throws -> UInt64 { try unsigned(8) }
    mutating func int64() throws -> Int64 { Int64(bitPattern: try uint64()) }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw PgOutputError.malformed(message: message, offset: offset, detail: "a negative length \(count)") }
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A zero-terminated string, as UTF-8.
    mutating func string() throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw PgOutputError.malformed(message: message, offset: offset, detail: "a string without its terminating zero")
        }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    private mutating func unsigned(_ width: Int) throws -> UInt64 {
        try need(width)
        var value: UInt64 = 0
        for byte in bytes[offset..<offset + width] { value = value << 8 | UInt64(byte) }
        offset += width
        return value
    }

    private func need(_ count: Int) throws {
        guard bytes.count - offset >= count else {
            throw PgOutputError.truncated(message: message, offset: offset, needed: count, available: bytes.count - offset)
        }
    }
}

public enum PgOutputError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(message: String, offset: Int, needed: Int, available: Int)
    case malformed(message: String, offset: Int, detail: String)
    case unknownMessage(type: UInt8)
    /// A row that does not fit its relation.
    case unreadableRow(table: String, detail: String)

    public var description: String {
        switch self {
        case .truncated(let message, let offset, let needed, let available):
            return "a pgoutput \(message) message ends early: \(needed) bytes needed at offset \(offset), \(available) left"
        case .malformed(let message, let offset, let detail):
            return "a pgoutput \(message) message is malformed at offset \(offset): \(detail)"
        case .unknownMessage(let type):
            let shown = (32..<127).contains(type) ? "'\(Character(UnicodeScalar(type)))'" : "0x" + String(type, radix: 16)
            return "a pgoutput message of unknown type \(shown)"
        case .unreadableRow(let table, let detail):
            return "a pgoutput row of \(table) cannot be read: \(detail)"
        }
    }
}

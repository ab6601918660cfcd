import FerryCore
import NIOCore

/// A Redis reply in RESP2: what `RESPDecoder` reads.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// `nil` is the null bulk string (`$-1`).
    case bulk([UInt8]?)
    /// `nil` is the null array (`*-1`), e.g. EXEC after WATCH failed.
    case array([RESPValue]?)

    var text: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }
}

/// A reply that is not RESP; the connection cannot be used any more.
public struct RESPDecodingError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    /// Where in the reply, from its first byte.
    public var offset: Int

    public var description: String { "malformed Redis reply at byte \(offset): \(reason)" }
}

/// Reads RESP2 replies. `decode` returns nil while the buffer holds only part of a reply and then
/// leaves the reader index where it was; a complete reply is consumed exactly.
public enum RESPDecoder {
    /// Nesting deeper than this is refused (a hostile or broken peer cannot exhaust the stack).
    static let maximumDepth = 32
    /// A bulk string longer than this is refused (Redis's own limit is 512 MiB).
    static let maximumBulk = 512 << 20

    public static func decode(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        var cursor = buffer
        let start = cursor.readerIndex
        guard let value = try value(&cursor, start: start, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    private static func value(_ buffer: inout ByteBuffer, start: Int, depth: Int) throws -> RESPValue? {
        guard depth <= maximumDepth else { throw RESPDecodingError(reason: "nested deeper than \(maximumDepth)", offset: buffer.readerIndex - start) }
        guard let kind = buffer.readInteger(as: UInt8.self) else { return nil }
        guard "+-:$*".utf8.contains(kind) else {
            throw RESPDecodingError(reason: "unknown type byte 0x\(String(kind, radix: 16))", offset: buffer.readerIndex - 1 - start)
        }
        guard let line = try self.line(&buffer, start: start) else { return nil }
        switch kind {
        case UInt8(ascii: "+"): return .simpleString(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"): return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"): return .integer(try integer(line, buffer, start))
        case UInt8(ascii: "$"):
            let length = try integer(line, buffer, start)
            if length == -1 { return .bulk(nil) }
            guard length >= 0, length <= maximumBulk else { throw RESPDecodingError(reason: "bulk length \(length)", offset: buffer.readerIndex - start) }
            guard buffer.readableBytes >= Int(length) + 2, let bytes = buffer.readBytes(length: Int(length)) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RESPDecodingError(reason: "bulk string not ended by CRLF", offset: buffer.readerIndex - start)
            }
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            let count = try integer(line, buffer, start)
            if count == -1 { return .array(nil) }
            guard count >= 0, count <= 1 << 24 else { throw RESPDecodingError(reason: "array length \(count)", offset: buffer.readerIndex - start) }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(min(count, 4096)))
            for _ in 0..<count {
                guard let element = try value(&buffer, start: start, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        default:
            preconditionFailure("type bytes are checked above")
        }
    }

    /// The bytes up to CRLF (consumed with it); nil when no CRLF has arrived.
    private static func line(_ buffer: inout ByteBuffer, start: Int) throws -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 0x0D) else {
            if view.count > 64 << 10 { throw RESPDecodingError(reason: "a line longer than 64 KiB", offset: buffer.readerIndex - start) }
            return nil
        }
        guard view.index(after: cr) < view.endIndex else { return nil }
        guard view[view.index(after: cr)] == 0x0A else { throw RESPDecodingError(reason: "CR without LF", offset: cr - start) }
        let line = buffer.readBytes(length: cr - view.startIndex)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func integer(_ line: [UInt8], _ buffer: ByteBuffer, _ start: Int) throws -> Int64 {
        guard let number = Int64(String(decoding: line, as: UTF8.self)) else {
            throw RESPDecodingError(reason: "'\(String(decoding: line.prefix(32), as: UTF8.self))' is not an integer", offset: buffer.readerIndex - start)
        }
        return number
    }
}

/// Commands in RESP (arrays of bulk strings) written straight into one byte array, without an
/// array per argument: a batch of a hundred thousand hash rows has millions of arguments.
public struct RESPCommandWriter {
    public private(set) var bytes: [UInt8] = []
    /// Commands written since the last `reset()`.
    public private(set) var count = 0
    /// The arguments of a command whose argument count is known only at its end.
    private var pending: [UInt8] = []
    private var pendingArguments = 0

    public init() {}

    /// Empties the writer, keeping its memory.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        count = 0
    }

    public mutating func command(_ arguments: [[UInt8]]) {
        begin(arguments: arguments.count)
        for argument in arguments { Self.bulk(argument, to: &bytes) }
    }

    /// A command of two arguments (`DEL key`), without an array of them.
    public mutating func command(_ name: [UInt8], _ argument: [UInt8]) {
        begin(arguments: 2)
        Self.bulk(name, to: &bytes)
        Self.bulk(argument, to: &bytes)
    }

    /// Starts a command of `arguments` arguments; each follows as `argument(_:)`.
    public mutating func begin(arguments: Int) {
        count += 1
        bytes.append(UInt8(ascii: "*"))
        Self.decimal(arguments, to: &bytes)
        bytes.append(contentsOf: [13, 10])
    }

    public mutating func argument(_ argument: some Collection<UInt8>) {
        Self.bulk(argument, to: &bytes)
    }

    public mutating func argument(_ text: String) {
        Self.bulk(text.utf8, to: &bytes)
    }

    /// Collects the arguments of a command whose length is decided while it is written (a hash
    /// row leaves its NULL columns out); `endCollected` writes it.
    public mutating func collect(_ argument: some Collection<UInt8>) {
        Self.bulk(argument, to: &pending)
        pendingArguments += 1
    }

    /// Collects a value's plain text (`ValueJSON.plainText`); false, and nothing collected, for NULL.
    public mutating func collect(plainTextOf value: Value, scratch: inout [UInt8]) -> Bool {
        scratch.removeAll(keepingCapacity: true)
        guard ValueJSON.appendPlainText(value, to: &scratch) else { return false }
        collect(scratch)
        return true
    }

    /// Writes `name` and `leading` then the collected arguments as one command; nothing when no
    /// argument was collected. Returns whether a command was written.
    @discardableResult
    public mutating func endCollected(_ name: String, _ leading: [UInt8]) -> Bool {
        defer {
            pending.removeAll(keepingCapacity: true)
            pendingArguments = 0
        }
        guard pendingArguments > 0 else { return false }
        begin(arguments: 2 + pendingArguments)
        argument(name)
        argument(leading)
        bytes.append(contentsOf: pending)
        return true
    }

    static func bulk(_ argument: some Collection<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "$"))
        decimal(argument.count, to: &out)
        out.append(contentsOf: [13, 10])
        out.append(contentsOf: argument)
        out.append(contentsOf: [13, 10])
    }

    static func decimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 { return out.append(UInt8(ascii: "0") + UInt8(value)) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = value
        var length = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - length] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                length += 1
            } while remaining > 0
            out.append(contentsOf: buffer[(20 - length)...])
        }
    }
}

import FerryCore

/// Why some bytes could not be decoded, and where in Ferry's decoder that was noticed.
public struct BinlogDecodingError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Fewer bytes than the format requires.
        case truncated(needed: Int, available: Int)
        /// A field holds a value the format does not allow.
        case invalid(String)
        /// The event's CRC32 does not match its bytes.
        case checksumMismatch(expected: UInt32, computed: UInt32)
        /// A rows event refers to a table id with no preceding TABLE_MAP.
        case unknownTable(UInt64)
        /// A column uses an encoding Ferry does not decode (named in the message).
        case unsupportedColumn(String)
        /// An event Ferry must not skip but cannot interpret (named in the message, with the fix).
        case unsupportedEvent(String)
        /// A compressed event whose payload does not inflate.
        case decompressionFailed(String)
        /// The event was decoded but bytes were left over.
        case trailingBytes(Int)
    }

    public var kind: Kind
    /// Source location in Ferry where the problem was detected.
    public var file: String
    public var line: UInt

    public init(_ kind: Kind, file: String = #fileID, line: UInt = #line) {
        self.kind = kind
        self.file = file
        self.line = line
    }

    public var description: String {
        let what: String
        switch kind {
        case .truncated(let needed, let available): what = "truncated: needed \(needed) bytes, \(available) left"
        case .invalid(let text): what = "invalid: \(text)"
        case .checksumMismatch(let expected, let computed):
            what = "CRC32 mismatch: event says \(hex(expected)), bytes give \(hex(computed))"
        case .unknownTable(let id): what = "rows event for table id \(id) without a preceding TABLE_MAP event"
        case .unsupportedColumn(let text), .unsupportedEvent(let text): what = text
        case .decompressionFailed(let text): what = "compressed event does not inflate: \(text)"
        case .trailingBytes(let count): what = "\(count) unexpected bytes after the event body"
        }
        return "\(what) [\(file):\(line)]"
    }
}

/// A decoding failure with the event it happened in: type, position and the raw bytes.
public struct BinlogEventError: Error, Sendable, CustomStringConvertible, FerryErrorConvertible {
    public var underlying: BinlogDecodingError
    /// Raw event type byte (0 when the header itself could not be read).
    public var eventType: UInt8
    /// Where the event starts, when known.
    public var coordinates: BinlogCoordinates?
    /// The first bytes of the event, for the bug report.
    public var bytesPrefix: [UInt8]

    public init(underlying: BinlogDecodingError, eventType: UInt8, coordinates: BinlogCoordinates?, bytesPrefix: [UInt8]) {
        self.underlying = underlying
        self.eventType = eventType
        self.coordinates = coordinates
        self.bytesPrefix = bytesPrefix
    }

    public var description: String { ferryError.description }

    public var ferryError: FerryError {
        let typeName = BinlogEventType(rawValue: eventType).map { "\($0)" } ?? "type \(eventType)"
        var context: [(key: String, value: String)] = [("event", typeName)]
        if let coordinates { context.append(("position", coordinates.description)) }
        context.append(("bytes", hexDump(bytesPrefix)))
        switch underlying.kind {
        case .checksumMismatch:
            return FerryError(
                code: .sourceBinlogChecksumMismatch,
                message: "binlog event failed its CRC32 check: \(underlying)",
                context: context,
                fix: "the binlog bytes were damaged in transit or on disk; check the server's binlog with `mariadb-binlog --verify-binlog-checksum` and restart from the last good position"
            )
        case .unsupportedColumn:
            return FerryError(code: .sourceBinlogUnsupportedColumn, message: underlying.description, context: context)
        case .unsupportedEvent:
            return FerryError(code: .sourceBinlogUnsupportedEvent, message: underlying.description, context: context)
        default:
            return FerryError(
                code: .sourceBinlogUndecodableEvent,
                message: "cannot decode binlog event: \(underlying)",
                context: context,
                fix: "report this with the bytes shown; the stream stops here so nothing is skipped"
            )
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

func hexDump(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

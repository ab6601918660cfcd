import NIOCore

/// Readers and writers for the client protocol's basic types. Reads return `nil` when the bytes
/// are missing or malformed; message decoders turn that into `MySQLWireError.protocolViolation`.
extension ByteBuffer {
    /// Length-encoded integer; `nil` also for the 0xFB (NULL) and 0xFF markers.
    mutating func readLengthEncodedInteger() -> UInt64? {
        guard let first = readInteger(as: UInt8.self) else { return nil }
        switch first {
        case 0..<0xFB: return UInt64(first)
        case 0xFC: return readInteger(endianness: .little, as: UInt16.self).map(UInt64.init)
        case 0xFD: return readUInt24().map(UInt64.init)
        case 0xFE: return readInteger(endianness: .little, as: UInt64.self)
        default: return nil
        }
    }

    mutating func readUInt24() -> UInt32? {
        guard let low = readInteger(endianness: .little, as: UInt16.self), let high = readInteger(as: UInt8.self) else { return nil }
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func readLengthEncodedSlice() -> ByteBuffer? {
        guard let length = readLengthEncodedInteger(), length <= UInt64(readableBytes) else { return nil }
        return readSlice(length: Int(length))
    }

    mutating func readLengthEncodedString() -> String? {
        readLengthEncodedSlice().map { String(buffer: $0) }
    }

    mutating func writeLengthEncodedInteger(_ value: UInt64) {
        switch value {
        case 0..<251: writeInteger(UInt8(value))
        case 251..<(1 << 16):
            writeInteger(UInt8(0xFC))
            writeInteger(UInt16(value), endianness: .little)
        case (1 << 16)..<(1 << 24):
            writeInteger(UInt8(0xFD))
            writeInteger(UInt16(truncatingIfNeeded: value), endianness: .little)
            writeInteger(UInt8(truncatingIfNeeded: value >> 16))
        default:
            writeInteger(UInt8(0xFE))
            writeInteger(value, endianness: .little)
        }
    }

    mutating func writeLengthEncodedBytes<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        writeLengthEncodedInteger(UInt64(bytes.count))
        writeBytes(bytes)
    }
}

/// Capability flags (`CLIENT_*`) negotiated in the handshake.
public struct CapabilityFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let longPassword = Self(rawValue: 0x0000_0001)
    public static let foundRows = Self(rawValue: 0x0000_0002)
    public static let longFlag = Self(rawValue: 0x0000_0004)
    public static let connectWithDB = Self(rawValue: 0x0000_0008)
    public static let protocol41 = Self(rawValue: 0x0000_0200)
    public static let ssl = Self(rawValue: 0x0000_0800)
    public static let transactions = Self(rawValue: 0x0000_2000)
    public static let secureConnection = Self(rawValue: 0x0000_8000)
    public static let multiStatements = Self(rawValue: 0x0001_0000)
    public static let multiResults = Self(rawValue: 0x0002_0000)
    public static let pluginAuth = Self(rawValue: 0x0008_0000)
    public static let connectAttributes = Self(rawValue: 0x0010_0000)
    public static let pluginAuthLengthEncodedData = Self(rawValue: 0x0020_0000)
    public static let deprecateEOF = Self(rawValue: 0x0100_0000)
}

import MySQLBinlog
import NIOCore

/// Builds binlog events byte by byte, as a server writes them, for decoder tests: the test plays
/// the server. Positions advance like a real binlog file that starts after the 4-byte magic.
public struct BinlogEventEncoder {
    public var serverID: UInt32 = 1
    public var timestamp: UInt32 = 1_700_000_000
    public var checksum = true
    /// `log_pos` of the next event's start.
    public var position: UInt32 = 4

    public init(checksum: Bool = true) {
        self.checksum = checksum
    }

    /// A complete event: 19-byte header, `body`, and CRC32 when `checksum` is on.
    public mutating func event(_ type: BinlogEventType, body: [UInt8], flags: UInt16 = 0) -> ByteBuffer {
        event(typeCode: type.rawValue, body: body, flags: flags)
    }

    public mutating func event(typeCode: UInt8, body: [UInt8], flags: UInt16 = 0) -> ByteBuffer {
        let size = UInt32(19 + body.count + (checksum ? 4 : 0))
        var buffer = ByteBuffer()
        buffer.writeInteger(timestamp, endianness: .little)
        buffer.writeInteger(typeCode)
        buffer.writeInteger(serverID, endianness: .little)
        buffer.writeInteger(size, endianness: .little)
        buffer.writeInteger(position + size, endianness: .little)
        buffer.writeInteger(flags, endianness: .little)
        buffer.writeBytes(body)
        if checksum {
            let crc = buffer.withUnsafeReadableBytes { BinlogChecksum.crc32(of: $0) }
            buffer.writeInteger(crc, endianness: .little)
        }
        position += size
        return buffer
    }

    /// FORMAT_DESCRIPTION body for a MariaDB 10.11 server (post-header lengths as it sends them).
    public func formatDescriptionBody(serverVersion: String = "10.11.6-MariaDB-log") -> [UInt8] {
        var body: [UInt8] = [4, 0]
        var version = Array(serverVersion.utf8.prefix(50))
        version += [UInt8](repeating: 0, count: 50 - version.count)
        body += version
        body += le(timestamp, 4)
        body.append(19)
        var lengths = [UInt8](repeating: 0, count: 171)
        func set(_ type: BinlogEventType, _ length: UInt8) { lengths[Int(type.rawValue) - 1] = length }
        set(.query, 13); set(.rotate, 8); set(.formatDescription, 84); set(.xid, 0); set(.tableMap, 8)
        for type in [BinlogEventType.writeRowsV1, .updateRowsV1, .deleteRowsV1, .writeRowsCompressedV1, .updateRowsCompressedV1, .deleteRowsCompressedV1] { set(type, 8) }
        for type in [BinlogEventType.writeRowsV2, .updateRowsV2, .deleteRowsV2, .partialUpdateRows] { set(type, 10) }
        set(.mariadbGTID, 19); set(.mariadbGTIDList, 4); set(.binlogCheckpoint, 4); set(.queryCompressed, 13)
        body += lengths
        body.append(checksum ? 1 : 0)
        if !checksum { body += [0, 0, 0, 0] }  // servers keep the checksum field in the FDE even when off
        return body
    }

    public mutating func formatDescription(serverVersion: String = "10.11.6-MariaDB-log") -> ByteBuffer {
        event(.formatDescription, body: formatDescriptionBody(serverVersion: serverVersion))
    }

    /// TABLE_MAP body. `metadata` is the raw per-column metadata block; `optional` the TLV block.
    public static func tableMapBody(tableID: UInt64, database: String, table: String, types: [ColumnType],
                                    metadata: [UInt8], nullable: [Bool], optional: [UInt8] = []) -> [UInt8] {
        var body = le(tableID, 6) + [1, 0]
        body.append(UInt8(database.utf8.count)); body += Array(database.utf8); body.append(0)
        body.append(UInt8(table.utf8.count)); body += Array(table.utf8); body.append(0)
        body += lengthEncoded(UInt64(types.count))
        body += types.map(\.rawValue)
        body += lengthEncoded(UInt64(metadata.count)) + metadata
        body += bitmap(nullable)
        body += optional
        return body
    }

    /// One optional-metadata TLV entry.
    public static func optionalField(_ code: UInt8, _ value: [UInt8]) -> [UInt8] {
        [code] + lengthEncoded(UInt64(value.count)) + value
    }

    /// COLUMN_NAME optional metadata (type 4).
    public static func columnNames(_ names: [String]) -> [UInt8] {
        optionalField(4, names.flatMap { lengthEncoded(UInt64($0.utf8.count)) + Array($0.utf8) })
    }

    /// Rows event body (v1 layout; `extraData` switches to the v2 layout).
    public static func rowsBody(tableID: UInt64, columnCount: Int, present: [Bool]? = nil, presentAfter: [Bool]? = nil,
                                rows: [[UInt8]], v2: Bool = false, flags: UInt16 = 1) -> [UInt8] {
        var body = le(tableID, 6) + le(flags, 2)
        if v2 { body += [2, 0] }
        body += lengthEncoded(UInt64(columnCount))
        body += bitmap(present ?? Array(repeating: true, count: columnCount))
        if let presentAfter { body += bitmap(presentAfter) }
        for row in rows { body += row }
        return body
    }

    /// A row image: null bitmap over the present columns, then the encoded non-null values.
    public static func rowImage(_ values: [[UInt8]?]) -> [UInt8] {
        bitmap(values.map { $0 == nil }) + values.compactMap { $0 }.flatMap { $0 }
    }

    public static func bitmap(_ bits: [Bool]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (index, bit) in bits.enumerated() where bit { bytes[index / 8] |= 1 << (index % 8) }
        return bytes
    }

    public static func lengthEncoded(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0..<251: [UInt8(value)]
        case 251..<(1 << 16): [0xFC] + le(value, 2)
        case (1 << 16)..<(1 << 24): [0xFD] + le(value, 3)
        default: [0xFE] + le(value, 8)
        }
    }
}

/// `count` little-endian bytes of `value`.
public func le<T: BinaryInteger>(_ value: T, _ count: Int) -> [UInt8] {
    let wide = UInt64(truncatingIfNeeded: value)
    return (0..<count).map { UInt8(truncatingIfNeeded: wide >> (8 * UInt64($0))) }
}

/// `count` big-endian bytes of `value`.
public func be<T: BinaryInteger>(_ value: T, _ count: Int) -> [UInt8] {
    Array(le(value, count).reversed())
}

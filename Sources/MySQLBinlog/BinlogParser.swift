import FerryCore
import Logging
import NIOCore

/// Turns raw binlog events into `BinlogEventRecord`s. Keeps only protocol context — the current
/// FORMAT_DESCRIPTION, the checksum algorithm and the table-map cache — so the same parser reads a
/// live replication stream and a binlog file.
public struct BinlogParser: Sendable {
    /// The magic bytes at the start of every binlog file: `0xFE 'b' 'i' 'n'`.
    public static let fileMagic: [UInt8] = [0xFE, 0x62, 0x69, 0x6E]

    public private(set) var formatDescription: FormatDescriptionEvent?
    /// Checksum algorithm for events before the first FORMAT_DESCRIPTION (the server's fake
    /// ROTATE carries a checksum when the replica negotiated one).
    public var initialChecksum: FormatDescriptionEvent.ChecksumAlgorithm
    public var verifyChecksums = true
    /// Each table's last TABLE_MAP with the body it was decoded from. Every transaction repeats its
    /// tables' maps byte for byte, and decoding them again cost about a tenth of a stream of
    /// one-row transactions.
    private var tableMaps: [UInt64: (map: TableMapEvent, body: ByteBuffer)] = [:]

    public init(initialChecksum: FormatDescriptionEvent.ChecksumAlgorithm = .off) {
        self.initialChecksum = initialChecksum
    }

    public var isMariaDB: Bool { formatDescription?.isMariaDB ?? false }

    /// The TABLE_MAP most recently seen for `tableID`.
    public func tableMap(for tableID: UInt64) -> TableMapEvent? { tableMaps[tableID]?.map }

    /// Decodes one complete event (header, body and checksum).
    /// - Parameter file: for error messages only.
    public mutating func parse(_ bytes: ByteBuffer, file: String? = nil) throws -> BinlogEventRecord {
        var buffer = bytes
        let startOffset: UInt64?
        do {
            let header = try BinlogEventHeader.decode(from: &buffer)
            startOffset = header.logPosition >= header.eventSize ? UInt64(header.logPosition - header.eventSize) : nil
            do {
                return try parseBody(header: header, event: bytes, body: &buffer)
            } catch let error as BinlogDecodingError {
                throw BinlogEventError(underlying: error, eventType: header.typeCode,
                                       coordinates: file.flatMap { name in startOffset.map { BinlogCoordinates(file: name, offset: $0) } },
                                       bytesPrefix: bytes.getBytes(at: bytes.readerIndex, length: min(64, bytes.readableBytes)) ?? [])
            }
        } catch let error as BinlogDecodingError {
            throw BinlogEventError(underlying: error, eventType: 0, coordinates: nil,
                                   bytesPrefix: bytes.getBytes(at: bytes.readerIndex, length: min(64, bytes.readableBytes)) ?? [])
        }
    }

    private mutating func parseBody(header: BinlogEventHeader, event: ByteBuffer, body: inout ByteBuffer) throws -> BinlogEventRecord {
        guard Int(header.eventSize) == event.readableBytes else {
            throw BinlogDecodingError(.invalid("event_size \(header.eventSize) but \(event.readableBytes) bytes received"))
        }
        let type = header.type
        let checksum: FormatDescriptionEvent.ChecksumAlgorithm
        // A checksum-aware server always ends its FORMAT_DESCRIPTION with the algorithm byte and
        // four checksum bytes, even when the algorithm is "off".
        let hasTrailer: Bool
        if type == .formatDescription {
            checksum = FormatDescriptionEvent.checksumAlgorithm(ofBody: body)
            hasTrailer = FormatDescriptionEvent.hasChecksumTrailer(body: body)
        } else {
            checksum = formatDescription?.checksumAlgorithm ?? initialChecksum
            hasTrailer = checksum == .crc32
        }
        if hasTrailer {
            guard body.readableBytes >= 4 else { throw BinlogDecodingError(.truncated(needed: 4, available: body.readableBytes)) }
            if checksum == .crc32 && verifyChecksums {
                let stored = body.getInteger(at: body.writerIndex - 4, endianness: .little, as: UInt32.self) ?? 0
                let computed = event.withUnsafeReadableBytes { BinlogChecksum.crc32(of: UnsafeRawBufferPointer(rebasing: $0.dropLast(4))) }
                guard computed == stored else { throw BinlogDecodingError(.checksumMismatch(expected: stored, computed: computed)) }
            }
            body = body.getSlice(at: body.readerIndex, length: body.readableBytes - 4)!
        }
        let decoded = try decodeEvent(type: type, header: header, body: &body, hasTrailer: hasTrailer)
        return BinlogEventRecord(header: header, event: decoded)
    }

    private mutating func decodeEvent(type: BinlogEventType?, header: BinlogEventHeader, body: inout ByteBuffer,
                                      hasTrailer: Bool) throws -> BinlogEvent {
        func postHeader(_ fallback: Int) -> Int { formatDescription?.postHeaderLength(of: header.typeCode) ?? fallback }
        let event: BinlogEvent
        switch type {
        case .formatDescription:
            let fde = try FormatDescriptionEvent.decode(from: &body, hasChecksumTrailer: hasTrailer)
            formatDescription = fde
            tableMaps.removeAll(keepingCapacity: true)
            return .formatDescription(fde)
        case .rotate:
            event = .rotate(try RotateEvent.decode(from: &body))
        case .query, .queryCompressed:
            event = .query(try QueryEvent.decode(from: &body, postHeaderLength: postHeader(13), compressed: type == .queryCompressed))
        case .xid:
            event = .xid(try XIDEvent.decode(from: &body))
        case .tableMap:
            let postHeaderLength = postHeader(8)
            if let id = TableMapEvent.tableID(of: body, postHeaderLength: postHeaderLength), let known = tableMaps[id], known.body == body {
                event = .tableMap(known.map)
            } else {
                let received = body
                let map = try TableMapEvent.decode(from: &body, postHeaderLength: postHeaderLength, mariadb: isMariaDB)
                // A copy: a slice would keep the whole network read it came from alive.
                tableMaps[map.tableID] = (map, ByteBuffer(bytes: received.readableBytesView))
                event = .tableMap(map)
            }
        case .writeRowsV1, .updateRowsV1, .deleteRowsV1, .writeRowsV2, .updateRowsV2, .deleteRowsV2, .partialUpdateRows,
             .writeRowsCompressedV1, .updateRowsCompressedV1, .deleteRowsCompressedV1,
             .writeRowsCompressedV2, .updateRowsCompressedV2, .deleteRowsCompressedV2:
            let rows = try RowsEvent.decode(from: &body, type: type!, postHeaderLength: postHeader(8))
            if rows.tableID != RowsEvent.dummyTableID, tableMaps[rows.tableID] == nil {
                throw BinlogDecodingError(.unknownTable(rows.tableID))
            }
            event = .rows(rows)
        case .mariadbGTID:
            event = .mariadbGTID(try MariaDBGTIDEvent.decode(from: &body, serverID: header.serverID))
        case .mariadbGTIDList:
            event = .mariadbGTIDList(try MariaDBGTIDListEvent.decode(from: &body))
        case .gtid, .anonymousGTID:
            event = .mysqlGTID(try MySQLGTIDEvent.decode(from: &body, anonymous: type == .anonymousGTID))
        case .previousGTIDs:
            event = .previousGTIDs(try PreviousGTIDsEvent.decode(from: &body))
        case .annotateRows:
            event = .rowsQuery(try RowsQueryEvent.decode(from: &body, hasLengthPrefix: false))
        case .rowsQuery:
            event = .rowsQuery(try RowsQueryEvent.decode(from: &body, hasLengthPrefix: true))
        case .binlogCheckpoint:
            event = .binlogCheckpoint(try BinlogCheckpointEvent.decode(from: &body))
        case .heartbeat:
            event = .heartbeat(HeartbeatEvent(file: body.readRemainingText(), position: header.logPosition))
        case .stop:
            event = .stop
        case .transactionPayload:
            throw BinlogDecodingError(.unsupportedEvent(
                "TRANSACTION_PAYLOAD (MySQL binlog_transaction_compression=ON) is not decoded; run SET GLOBAL binlog_transaction_compression = OFF on the source and restart from a position after this event's transaction, or re-snapshot"))
        case .incident:
            throw BinlogDecodingError(.unsupportedEvent(
                "the source wrote an INCIDENT event: changes around this position were lost from its binlog; re-snapshot the affected tables"))
        case .startEncryption:
            throw BinlogDecodingError(.unsupportedEvent(
                "the binlog is encrypted (MariaDB encrypt_binlog=ON); Ferry reads unencrypted binlog only — replicas receive it decrypted over the replication protocol, so this only happens when reading files"))
        default:
            let raw = body
            body.moveReaderIndex(to: body.writerIndex)
            return .unsupported(typeCode: header.typeCode, body: raw)
        }
        return event
    }

    /// Iterates the events of a whole binlog file held in memory.
    public static func events(inFile bytes: ByteBuffer) throws -> FileEventSequence {
        var buffer = bytes
        guard buffer.readBytes(length: 4) == fileMagic else {
            throw BinlogDecodingError(.invalid("not a binlog file: missing magic bytes fe 62 69 6e"))
        }
        return FileEventSequence(remaining: buffer)
    }
}

/// Splits a binlog file into event byte ranges using each header's event_size.
public struct FileEventSequence: Sendable {
    var remaining: ByteBuffer

    /// The next whole event, or `nil` at the end; a torn last event is an error.
    public mutating func next() throws -> ByteBuffer? {
        guard remaining.readableBytes > 0 else { return nil }
        guard remaining.readableBytes >= BinlogEventHeader.size,
              let size = remaining.getInteger(at: remaining.readerIndex + 9, endianness: .little, as: UInt32.self),
              size >= UInt32(BinlogEventHeader.size)
        else {
            throw BinlogDecodingError(.truncated(needed: BinlogEventHeader.size, available: remaining.readableBytes))
        }
        guard let event = remaining.readSlice(length: Int(size)) else {
            throw BinlogDecodingError(.truncated(needed: Int(size), available: remaining.readableBytes))
        }
        return event
    }
}

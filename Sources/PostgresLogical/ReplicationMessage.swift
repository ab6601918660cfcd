import FerryCore

/// What the server sends inside CopyData once START_REPLICATION runs.
public enum ReplicationMessage: Sendable, Equatable {
    /// 'w': WAL data — for a logical slot, one message of the output plugin.
    case xLogData(start: LSN, serverEnd: LSN, sentAt: PostgresTimestamp, data: [UInt8])
    /// 'k': the server's WAL end, and whether it wants an answer at once (else it ends the
    /// connection after `wal_sender_timeout`).
    case keepalive(serverEnd: LSN, sentAt: PostgresTimestamp, replyRequested: Bool)

    public static func decode(_ bytes: [UInt8]) throws -> ReplicationMessage {
        guard let type = bytes.first else { throw PgOutputError.truncated(message: "CopyData", offset: 0, needed: 1, available: 0) }
        switch type {
        case UInt8(ascii: "w"):
            var cursor = ByteCursor(bytes, message: "XLogData", offset: 1)
            return .xLogData(start: LSN(try cursor.uint64()), serverEnd: LSN(try cursor.uint64()), sentAt: try cursor.int64(), data: cursor.rest())
        case UInt8(ascii: "k"):
            var cursor = ByteCursor(bytes, message: "Primary keepalive", offset: 1)
            let message = ReplicationMessage.keepalive(serverEnd: LSN(try cursor.uint64()), sentAt: try cursor.int64(), replyRequested: try cursor.uint8() != 0)
            guard cursor.isAtEnd else { throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset, detail: "bytes left over") }
            return message
        default:
            throw PgOutputError.unknownMessage(type: type)
        }
    }
}

/// 'r', the standby status update: what the client has written, flushed and applied. For a
/// logical slot, `flushed` is what the server may forget (the slot's confirmed position), so it
/// must only ever be a position every target has durably applied.
public struct StandbyStatusUpdate: Sendable, Equatable {
    public var written: LSN
    public var flushed: LSN
    public var applied: LSN
    public var sentAt: PostgresTimestamp
    public var replyRequested: Bool

    public init(written: LSN, flushed: LSN, applied: LSN, sentAt: PostgresTimestamp, replyRequested: Bool = false) {
        self.written = written
        self.flushed = flushed
        self.applied = applied
        self.sentAt = sentAt
        self.replyRequested = replyRequested
    }

    /// The CopyData payload (34 bytes).
    public var bytes: [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "r")]
        out.reserveCapacity(34)
        for value in [written.value, flushed.value, applied.value, UInt64(bitPattern: sentAt)] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }
        out.append(replyRequested ? 1 : 0)
        return out
    }
}

extension PostgresTimestamp {
    /// Seconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
    static let unixEpochOffsetSeconds: Int64 = 946_684_800

    /// From microseconds since 1970-01-01.
    public static func fromUnixMicroseconds(_ micros: Int64) -> PostgresTimestamp { micros - unixEpochOffsetSeconds * 1_000_000 }

    /// Microseconds since 1970-01-01.
    public var unixMicroseconds: Int64 { self + Self.unixEpochOffsetSeconds * 1_000_000 }
}

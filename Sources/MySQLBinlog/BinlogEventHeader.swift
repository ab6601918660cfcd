import NIOCore

/// The 19-byte v4 event header common to every binlog event.
///
/// timestamp u32 · type u8 · server_id u32 · event_size u32 · log_pos u32 · flags u16
public struct BinlogEventHeader: Sendable, Equatable {
    public static let size = 19

    /// Seconds since the epoch when the statement began.
    public var timestamp: UInt32
    public var typeCode: UInt8
    public var serverID: UInt32
    /// Size of the whole event including header and checksum.
    public var eventSize: UInt32
    /// Offset of the next event in the binlog file (0 for artificial events).
    public var logPosition: UInt32
    public var flags: UInt16

    public init(timestamp: UInt32, typeCode: UInt8, serverID: UInt32, eventSize: UInt32, logPosition: UInt32, flags: UInt16) {
        self.timestamp = timestamp
        self.typeCode = typeCode
        self.serverID = serverID
        self.eventSize = eventSize
        self.logPosition = logPosition
        self.flags = flags
    }

    /// `LOG_EVENT_ARTIFICIAL_F`: made up by the server for the replica (fake rotate).
    public var isArtificial: Bool { flags & 0x20 != 0 }

    public var type: BinlogEventType? { BinlogEventType(rawValue: typeCode) }

    static func decode(from buffer: inout ByteBuffer) throws -> BinlogEventHeader {
        BinlogEventHeader(
            timestamp: try buffer.readLE(),
            typeCode: try buffer.readLE(),
            serverID: try buffer.readLE(),
            eventSize: try buffer.readLE(),
            logPosition: try buffer.readLE(),
            flags: try buffer.readLE()
        )
    }
}

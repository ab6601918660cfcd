import NIOCore

/// MariaDB ANNOTATE_ROWS_EVENT (160) and MySQL ROWS_QUERY_LOG_EVENT (29): the statement
/// that produced the following rows events (informational).
public struct RowsQueryEvent: Sendable, Equatable {
    public var statement: String

    public init(statement: String) { self.statement = statement }

    /// MySQL prefixes the text with a 1-byte length that is wrong for long statements; it is skipped.
    static func decode(from body: inout ByteBuffer, hasLengthPrefix: Bool) throws -> RowsQueryEvent {
        if hasLengthPrefix { try body.skipChecked(1) }
        return RowsQueryEvent(statement: body.readRemainingText())
    }
}

/// MariaDB BINLOG_CHECKPOINT_EVENT (161): the oldest binlog file still needed for crash recovery.
/// name_length u32 · name
public struct BinlogCheckpointEvent: Sendable, Equatable {
    public var file: String

    public init(file: String) { self.file = file }

    static func decode(from body: inout ByteBuffer) throws -> BinlogCheckpointEvent {
        let length: UInt32 = try body.readLE()
        return BinlogCheckpointEvent(file: try body.readTextChecked(length: Int(length)))
    }
}

/// HEARTBEAT_LOG_EVENT (27): sent by the server when idle; the body is the current file name,
/// and the header's log position is the current offset.
public struct HeartbeatEvent: Sendable, Equatable {
    public var file: String
    public var position: UInt32

    public init(file: String, position: UInt32) {
        self.file = file
        self.position = position
    }
}

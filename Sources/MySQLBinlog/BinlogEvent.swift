import NIOCore

/// One decoded binlog event.
public enum BinlogEvent: Sendable {
    case formatDescription(FormatDescriptionEvent)
    case rotate(RotateEvent)
    case query(QueryEvent)
    case xid(XIDEvent)
    case tableMap(TableMapEvent)
    case rows(RowsEvent)
    case mariadbGTID(MariaDBGTIDEvent)
    case mariadbGTIDList(MariaDBGTIDListEvent)
    case mysqlGTID(MySQLGTIDEvent)
    case previousGTIDs(PreviousGTIDsEvent)
    case rowsQuery(RowsQueryEvent)
    case binlogCheckpoint(BinlogCheckpointEvent)
    case heartbeat(HeartbeatEvent)
    case stop
    /// An event type Ferry does not interpret (or knows to be irrelevant); its bytes are kept.
    case unsupported(typeCode: UInt8, body: ByteBuffer)
}

/// A decoded event with its header.
public struct BinlogEventRecord: Sendable {
    public var header: BinlogEventHeader
    public var event: BinlogEvent

    public init(header: BinlogEventHeader, event: BinlogEvent) {
        self.header = header
        self.event = event
    }
}

/// One committed source transaction: its changes in source order, all stamped with the
/// transaction's commit position. A DDL statement travels as a transaction of one `.ddl` event.
public struct Transaction: Sendable {
    /// The transaction's GTID in the source's text form, when it has one.
    public var gtid: String?
    /// Resume point after this transaction.
    public var position: SourcePosition
    /// The source server that wrote it.
    public var serverID: UInt32
    /// Commit time, milliseconds since the epoch.
    public var timestampMillis: Int64
    public var events: [ChangeEvent]

    public init(gtid: String?, position: SourcePosition, serverID: UInt32, timestampMillis: Int64, events: [ChangeEvent]) {
        self.gtid = gtid
        self.position = position
        self.serverID = serverID
        self.timestampMillis = timestampMillis
        self.events = events
    }
}

import FerryCore
import NIOCore

/// MariaDB GTID_EVENT (type 162): starts an event group and names its GTID.
///
/// sequence u64 · domain u32 · flags u8 · (commit_id u64 if FL_GROUP_COMMIT_ID) · …
/// The server id of the GTID is the event header's server id.
public struct MariaDBGTIDEvent: Sendable, Equatable {
    public static let standaloneFlag: UInt8 = 0x01
    public static let groupCommitIDFlag: UInt8 = 0x02
    public static let transactionalFlag: UInt8 = 0x04
    public static let ddlFlag: UInt8 = 0x20

    public var gtid: MariaDBGTID
    public var flags: UInt8
    public var commitID: UInt64?

    public init(gtid: MariaDBGTID, flags: UInt8, commitID: UInt64?) {
        self.gtid = gtid
        self.flags = flags
        self.commitID = commitID
    }

    /// A standalone group (DDL, non-transactional statement) has no XID or COMMIT.
    public var isStandalone: Bool { flags & Self.standaloneFlag != 0 }

    static func decode(from body: inout ByteBuffer, serverID: UInt32) throws -> MariaDBGTIDEvent {
        let sequence: UInt64 = try body.readLE()
        let domain: UInt32 = try body.readLE()
        let flags: UInt8 = try body.readLE()
        var commitID: UInt64? = nil
        if flags & groupCommitIDFlag != 0 {
            commitID = try body.readLE()
        }
        body.moveReaderIndex(to: body.writerIndex)
        return MariaDBGTIDEvent(gtid: MariaDBGTID(domain: domain, serverID: serverID, sequence: sequence),
                                flags: flags, commitID: commitID)
    }
}

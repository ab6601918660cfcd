import FerryCore
import NIOCore

/// MySQL GTID_LOG_EVENT (33) and ANONYMOUS_GTID_LOG_EVENT (34).
///
/// flags u8 · server uuid [16] · gno u64 · (logical clock and later fields, not needed here)
public struct MySQLGTIDEvent: Sendable, Equatable {
    public var uuid: MySQLGTIDSet.ServerUUID
    public var transactionNumber: UInt64
    public var flags: UInt8
    public var isAnonymous: Bool

    public init(uuid: MySQLGTIDSet.ServerUUID, transactionNumber: UInt64, flags: UInt8, isAnonymous: Bool) {
        self.uuid = uuid
        self.transactionNumber = transactionNumber
        self.flags = flags
        self.isAnonymous = isAnonymous
    }

    /// `uuid:gno` as MySQL prints a single GTID.
    public var text: String { "\(uuid):\(transactionNumber)" }

    static func decode(from body: inout ByteBuffer, anonymous: Bool) throws -> MySQLGTIDEvent {
        let flags: UInt8 = try body.readLE()
        let uuid = MySQLGTIDSet.ServerUUID(bytes: try body.readBytesChecked(length: 16))!
        let gno: UInt64 = try body.readLE()
        body.moveReaderIndex(to: body.writerIndex)
        return MySQLGTIDEvent(uuid: uuid, transactionNumber: gno, flags: flags, isAnonymous: anonymous)
    }
}

/// MySQL PREVIOUS_GTIDS_LOG_EVENT (35): the executed GTID set before this binlog file.
///
/// n_sids u64 · n_sids × (uuid [16] · n_intervals u64 · n_intervals × (start u64 · end u64))
public struct PreviousGTIDsEvent: Sendable, Equatable {
    public var set: MySQLGTIDSet

    public init(set: MySQLGTIDSet) { self.set = set }

    static func decode(from body: inout ByteBuffer) throws -> PreviousGTIDsEvent {
        var set = MySQLGTIDSet()
        let sidCount: UInt64 = try body.readLE()
        for _ in 0..<sidCount {
            let uuid = MySQLGTIDSet.ServerUUID(bytes: try body.readBytesChecked(length: 16))!
            let intervalCount: UInt64 = try body.readLE()
            guard intervalCount <= UInt64(body.readableBytes / 16) else {
                throw BinlogDecodingError(.truncated(needed: Int(clamping: intervalCount) &* 16, available: body.readableBytes))
            }
            for _ in 0..<intervalCount {
                let start: UInt64 = try body.readLE()
                let end: UInt64 = try body.readLE()
                guard start < end else { throw BinlogDecodingError(.invalid("GTID interval \(start)..<\(end) is empty")) }
                set.insert(uuid: uuid, interval: .init(start: start, end: end))
            }
        }
        return PreviousGTIDsEvent(set: set)
    }
}

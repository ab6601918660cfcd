import FerryCore
import NIOCore

/// MariaDB GTID_LIST_EVENT (type 163): the GTID state at the start of a binlog file.
///
/// count_and_flags u32 (low 28 bits: count) · count × (domain u32 · server_id u32 · sequence u64)
public struct MariaDBGTIDListEvent: Sendable, Equatable {
    public var gtids: [MariaDBGTID]
    public var flags: UInt8

    public init(gtids: [MariaDBGTID], flags: UInt8) {
        self.gtids = gtids
        self.flags = flags
    }

    static func decode(from body: inout ByteBuffer) throws -> MariaDBGTIDListEvent {
        let countAndFlags: UInt32 = try body.readLE()
        let count = Int(countAndFlags & 0x0FFF_FFFF)
        guard count * 16 <= body.readableBytes else {
            throw BinlogDecodingError(.truncated(needed: count * 16, available: body.readableBytes))
        }
        var gtids: [MariaDBGTID] = []
        gtids.reserveCapacity(count)
        for _ in 0..<count {
            let domain: UInt32 = try body.readLE()
            let server: UInt32 = try body.readLE()
            let sequence: UInt64 = try body.readLE()
            gtids.append(MariaDBGTID(domain: domain, serverID: server, sequence: sequence))
        }
        return MariaDBGTIDListEvent(gtids: gtids, flags: UInt8(countAndFlags >> 28))
    }
}

import FerryCore
import NIOCore

/// Client commands. Each encodes its payload; the connection frames it with sequence id 0.
public enum Command: Sendable {
    /// COM_QUIT (0x01).
    case quit
    /// COM_QUERY (0x03) · statement text.
    case query(String)
    /// COM_REGISTER_SLAVE (0x15) · server_id u32 · hostname (u8 len) · user (u8 len) ·
    /// password (u8 len) · port u16 · replication_rank u32 · master_id u32
    case registerReplica(serverID: UInt32, hostname: String, port: UInt16)
    /// COM_BINLOG_DUMP (0x12) · position u32 · flags u16 · server_id u32 · file name.
    /// MariaDB with `@slave_connect_state` set: empty file name, position 4.
    case binlogDump(position: UInt32, flags: UInt16, serverID: UInt32, file: String)
    /// COM_BINLOG_DUMP_GTID (0x1E) · flags u16 · server_id u32 · name_len u32 · name ·
    /// position u64 · data_len u32 · encoded GTID set (flags include BINLOG_THROUGH_GTID 0x04).
    case binlogDumpGTID(flags: UInt16, serverID: UInt32, file: String, position: UInt64, gtidSet: MySQLGTIDSet)

    /// `BINLOG_DUMP_NON_BLOCK`: the server sends EOF at the end of the log instead of waiting.
    public static let nonBlockingFlag: UInt16 = 0x01
    /// MariaDB `BINLOG_SEND_ANNOTATE_ROWS_EVENT`.
    public static let sendAnnotateRowsFlag: UInt16 = 0x02
    static let throughGTIDFlag: UInt16 = 0x04

    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .quit:
            buffer.writeInteger(UInt8(0x01))
        case .query(let text):
            buffer.writeInteger(UInt8(0x03))
            buffer.writeString(text)
        case .registerReplica(let serverID, let hostname, let port):
            buffer.writeInteger(UInt8(0x15))
            buffer.writeInteger(serverID, endianness: .little)
            let host = Array(hostname.utf8.prefix(255))
            buffer.writeInteger(UInt8(host.count))
            buffer.writeBytes(host)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(port, endianness: .little)
            buffer.writeInteger(UInt32(0), endianness: .little)
            buffer.writeInteger(UInt32(0), endianness: .little)
        case .binlogDump(let position, let flags, let serverID, let file):
            buffer.writeInteger(UInt8(0x12))
            buffer.writeInteger(position, endianness: .little)
            buffer.writeInteger(flags, endianness: .little)
            buffer.writeInteger(serverID, endianness: .little)
            buffer.writeString(file)
        case .binlogDumpGTID(let flags, let serverID, let file, let position, let gtidSet):
            buffer.writeInteger(UInt8(0x1E))
            buffer.writeInteger(flags | Self.throughGTIDFlag, endianness: .little)
            buffer.writeInteger(serverID, endianness: .little)
            buffer.writeInteger(UInt32(file.utf8.count), endianness: .little)
            buffer.writeString(file)
            buffer.writeInteger(position, endianness: .little)
            var encoded = ByteBuffer()
            Self.encodeGTIDSet(gtidSet, into: &encoded)
            buffer.writeInteger(UInt32(encoded.readableBytes), endianness: .little)
            buffer.writeBuffer(&encoded)
        }
    }

    /// The binary GTID set of COM_BINLOG_DUMP_GTID: n_sids u64 · per sid: uuid [16] ·
    /// n_intervals u64 · (start u64 · end u64, end exclusive).
    static func encodeGTIDSet(_ set: MySQLGTIDSet, into buffer: inout ByteBuffer) {
        let uuids = set.intervals.keys.sorted()
        buffer.writeInteger(UInt64(uuids.count), endianness: .little)
        for uuid in uuids {
            buffer.writeBytes(uuid.bytes)
            let intervals = set.intervals[uuid]!
            buffer.writeInteger(UInt64(intervals.count), endianness: .little)
            for interval in intervals {
                buffer.writeInteger(interval.start, endianness: .little)
                buffer.writeInteger(interval.end, endianness: .little)
            }
        }
    }
}

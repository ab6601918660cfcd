/// Binlog event type codes (MySQL `Log_event_type`, MariaDB additions from 160).
public enum BinlogEventType: UInt8, Sendable, CaseIterable {
    case unknown = 0
    case startV3 = 1
    case query = 2
    case stop = 3
    case rotate = 4
    case intvar = 5
    case slave = 7
    case appendBlock = 9
    case deleteFile = 11
    case rand = 13
    case userVar = 14
    case formatDescription = 15
    case xid = 16
    case beginLoadQuery = 17
    case executeLoadQuery = 18
    case tableMap = 19
    case writeRowsV0 = 20
    case updateRowsV0 = 21
    case deleteRowsV0 = 22
    case writeRowsV1 = 23
    case updateRowsV1 = 24
    case deleteRowsV1 = 25
    case incident = 26
    case heartbeat = 27
    case ignorable = 28
    case rowsQuery = 29
    case writeRowsV2 = 30
    case updateRowsV2 = 31
    case deleteRowsV2 = 32
    case gtid = 33
    case anonymousGTID = 34
    case previousGTIDs = 35
    case transactionContext = 36
    case viewChange = 37
    case xaPrepare = 38
    case partialUpdateRows = 39
    case transactionPayload = 40
    case heartbeatV2 = 41
    // MariaDB
    case annotateRows = 160
    case binlogCheckpoint = 161
    case mariadbGTID = 162
    case mariadbGTIDList = 163
    case startEncryption = 164
    case queryCompressed = 165
    case writeRowsCompressedV1 = 166
    case updateRowsCompressedV1 = 167
    case deleteRowsCompressedV1 = 168
    case writeRowsCompressedV2 = 169
    case updateRowsCompressedV2 = 170
    case deleteRowsCompressedV2 = 171
}

/// The kind of row change a rows event carries.
public enum RowsEventKind: Sendable, Equatable {
    case write
    case update
    /// MySQL PARTIAL_UPDATE_ROWS: an update whose JSON columns may be diffs.
    case partialUpdate
    case delete
}

extension BinlogEventType {
    /// For rows events: kind, whether the v2 extra-data header is present, and whether the
    /// row data is zlib-compressed (MariaDB `log_bin_compress`).
    var rowsLayout: (kind: RowsEventKind, hasExtraData: Bool, compressed: Bool)? {
        switch self {
        case .writeRowsV1: (.write, false, false)
        case .updateRowsV1: (.update, false, false)
        case .deleteRowsV1: (.delete, false, false)
        case .writeRowsV2: (.write, true, false)
        case .updateRowsV2: (.update, true, false)
        case .deleteRowsV2: (.delete, true, false)
        case .partialUpdateRows: (.partialUpdate, true, false)
        case .writeRowsCompressedV1: (.write, false, true)
        case .updateRowsCompressedV1: (.update, false, true)
        case .deleteRowsCompressedV1: (.delete, false, true)
        case .writeRowsCompressedV2: (.write, true, true)
        case .updateRowsCompressedV2: (.update, true, true)
        case .deleteRowsCompressedV2: (.delete, true, true)
        default: nil
        }
    }
}

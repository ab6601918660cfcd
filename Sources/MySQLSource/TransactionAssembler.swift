import FerryCore
import MySQLBinlog

/// Groups binlog events into committed transactions and stamps each change with its
/// transaction's commit position — a pure state machine fed by the source in stream order.
///
/// A transaction opens at a GTID event (or `BEGIN` without GTIDs) and ends at XID, `COMMIT`, or —
/// for a standalone group such as DDL — at its single statement. `ROLLBACK` discards it. The
/// position after a transaction is the current file and the commit event's `log_pos`: where the
/// binlog continues, a safe place to resume from.
public struct TransactionAssembler {
    public enum Output {
        case transaction(Transaction)
        /// A statement outside any row transaction (DDL); the transaction holds one `.ddl` event.
        case schemaChange(Transaction, database: String, statement: String)
    }

    private struct OpenTransaction {
        var gtid: String?
        var mariadbGTID: MariaDBGTID?
        var mysqlGTID: MySQLGTIDEvent?
        var standalone: Bool
        var serverID: UInt32
        var timestamp: UInt32
        var sawBegin = false
    }

    /// A GTID group whose first statement was a schema change and that goes on with rows
    /// (`CREATE TABLE … SELECT`: GTID, CREATE, rows, XID): the rows belong to that GTID.
    private var groupAfterSchemaChange: OpenTransaction?

    public let sourceName: String
    /// Current binlog file (from ROTATE events).
    public private(set) var file: String?
    /// GTID state after the last committed transaction.
    public private(set) var gtidPosition: GTIDPosition?
    /// Where a reconnect resumes: after the last committed transaction or other boundary event.
    public private(set) var resumePosition: BinlogPosition?
    private var open: OpenTransaction?
    /// The open transaction's changes; kept outside `open` so appends stay in place.
    private var openEvents: [ChangeEvent] = []
    /// How many changes the last row transaction had: the next one's array is made that large at
    /// once (up to a bound), not grown and copied a doubling at a time.
    private var lastTransactionSize = 0

    /// - Parameters:
    ///   - start: where the stream starts, when known as coordinates.
    ///   - gtidPosition: the GTID state at the start (from the start position or the server).
    public init(sourceName: String, start: BinlogPosition?, gtidPosition: GTIDPosition? = nil) {
        self.sourceName = sourceName
        self.file = start?.coordinates.file
        self.gtidPosition = gtidPosition ?? start?.gtidPosition
        self.resumePosition = start
    }

    /// True while a transaction's events are being collected.
    public var isInTransaction: Bool { open != nil }

    /// Forgets a half-received transaction (after a lost connection).
    public mutating func discardOpenTransaction() {
        open = nil
        openEvents.removeAll()
    }

    // MARK: - Inputs

    public mutating func rotateReceived(_ event: RotateEvent) {
        file = event.nextFile
        if open == nil {
            resumePosition = BinlogPosition(coordinates: BinlogCoordinates(file: event.nextFile, offset: event.position),
                                            gtidPosition: gtidPosition)
        }
    }

    /// The GTID state at the start of a binlog file; adopted only when Ferry knows none yet.
    public mutating func gtidListReceived(_ event: MariaDBGTIDListEvent) {
        if gtidPosition == nil {
            gtidPosition = .mariadb(MariaDBGTIDPosition(event.gtids))
        }
    }

    public mutating func previousGTIDsReceived(_ event: PreviousGTIDsEvent) {
        if gtidPosition == nil { gtidPosition = .mysql(event.set) }
    }

    public mutating func mariadbGTIDReceived(_ event: MariaDBGTIDEvent, header: BinlogEventHeader) {
        openEvents.removeAll(keepingCapacity: true)
        groupAfterSchemaChange = nil
        open = OpenTransaction(gtid: event.gtid.description, mariadbGTID: event.gtid, standalone: event.isStandalone,
                               serverID: header.serverID, timestamp: header.timestamp)
    }

    public mutating func mysqlGTIDReceived(_ event: MySQLGTIDEvent, header: BinlogEventHeader) {
        openEvents.removeAll(keepingCapacity: true)
        groupAfterSchemaChange = nil
        open = OpenTransaction(gtid: event.isAnonymous ? nil : event.text, mysqlGTID: event.isAnonymous ? nil : event,
                               standalone: false, serverID: header.serverID, timestamp: header.timestamp)
    }

    public mutating func queryReceived(_ event: QueryEvent, header: BinlogEventHeader) -> Output? {
        let statement = event.statement
        let keyword = Self.leadingKeyword(statement)
        switch keyword {
        case "BEGIN":
            groupAfterSchemaChange = nil
            if open == nil {
                open = OpenTransaction(standalone: false, serverID: header.serverID, timestamp: header.timestamp)
            }
            open?.sawBegin = true
            return nil
        case "COMMIT":
            return commit(header: header).map { .transaction($0) }
        case "ROLLBACK":
            discardOpenTransaction()
            advanceBoundary(header)
            return nil
        default:
            if let transaction = open, !transaction.standalone, transaction.sawBegin || !openEvents.isEmpty {
                return nil  // a statement inside a row transaction (e.g. SAVEPOINT) is not a schema change
            }
            if keyword == "XA" || keyword == "SAVEPOINT" || Self.dataKeywords.contains(keyword) {
                return commit(header: header).map { .transaction($0) }
            }
            if open == nil {
                open = OpenTransaction(standalone: true, serverID: header.serverID, timestamp: header.timestamp)
            }
            // MariaDB marks a GTID group that is only the statement standalone; MySQL's groups
            // end at the next GTID, so rows right after the statement are the same group.
            let group = open.flatMap { $0.gtid != nil && !$0.standalone ? $0 : nil }
            guard var transaction = commit(header: header) else { return nil }
            groupAfterSchemaChange = group
            let ddl = ChangeEvent(operation: .ddl, table: TableName(database: event.database, table: ""), schema: nil,
                                  before: nil, after: nil, statement: statement,
                                  source: ChangeSource(name: sourceName, serverID: transaction.serverID, gtid: transaction.gtid,
                                                       position: transaction.position, row: 0,
                                                       timestampMillis: transaction.timestampMillis))
            transaction.events = [ddl]
            return .schemaChange(transaction, database: event.database, statement: statement)
        }
    }

    /// Rows of one included table, in event order.
    public mutating func rowsReceived(kind: RowsEventKind, schema: TableSchema, changes: [RowsEvent.RowChange], header: BinlogEventHeader) {
        openRowTransaction(header)
        let placeholder = ChangeSource(name: sourceName, serverID: header.serverID, gtid: nil,
                                       position: .binlog(file: "", offset: 0),
                                       row: 0, timestampMillis: 0)
        let operation: ChangeOperation = switch kind {
        case .write: .create
        case .update, .partialUpdate: .update
        case .delete: .delete
        }
        if openEvents.isEmpty { openEvents.reserveCapacity(max(changes.count, min(lastTransactionSize, 65_536))) }
        for change in changes {
            openEvents.append(ChangeEvent(operation: operation, table: schema.name, schema: schema,
                                          before: change.before, after: change.after, source: placeholder))
        }
    }

    /// A rows event of an excluded table: opens a transaction if needed, records nothing.
    public mutating func filteredRowsReceived(header: BinlogEventHeader) {
        openRowTransaction(header)
    }

    /// Rows outside any open transaction: the rest of a `CREATE … SELECT` group, or a group of
    /// their own.
    private mutating func openRowTransaction(_ header: BinlogEventHeader) {
        guard open == nil else { return }
        open = groupAfterSchemaChange ?? OpenTransaction(standalone: false, serverID: header.serverID, timestamp: header.timestamp)
        groupAfterSchemaChange = nil
    }

    public mutating func xidReceived(header: BinlogEventHeader) -> Output? {
        commit(header: header).map { .transaction($0) }
    }

    /// Any other event with a real position: outside a transaction it is a safe resume point.
    public mutating func otherEventReceived(header: BinlogEventHeader) {
        if open == nil { advanceBoundary(header) }
    }

    // MARK: - Commit

    /// Moves the resume point forward only: artificial events a server sends at the start of a
    /// dump may carry positions from before the requested one.
    private mutating func advanceBoundary(_ header: BinlogEventHeader) {
        guard let file, header.logPosition > 0 else { return }
        let coordinates = BinlogCoordinates(file: file, offset: UInt64(header.logPosition))
        if let current = resumePosition?.coordinates, coordinates < current { return }
        resumePosition = BinlogPosition(coordinates: coordinates, gtidPosition: gtidPosition)
    }

    private mutating func commit(header: BinlogEventHeader) -> Transaction? {
        groupAfterSchemaChange = nil
        guard let transaction = open else {
            advanceBoundary(header)
            return nil
        }
        open = nil
        if let gtid = transaction.mariadbGTID {
            var state: MariaDBGTIDPosition
            if case .mariadb(let existing) = gtidPosition { state = existing } else { state = MariaDBGTIDPosition() }
            state.advance(to: gtid)
            gtidPosition = .mariadb(state)
        } else if let gtid = transaction.mysqlGTID {
            var set: MySQLGTIDSet
            if case .mysql(let existing) = gtidPosition { set = existing } else { set = MySQLGTIDSet() }
            set.add(uuid: gtid.uuid, transaction: gtid.transactionNumber)
            gtidPosition = .mysql(set)
        }
        let position = BinlogPosition(coordinates: BinlogCoordinates(file: file ?? "", offset: UInt64(header.logPosition)),
                                      gtidPosition: gtidPosition)
        if header.logPosition > 0 { resumePosition = position }
        let millis = Int64(transaction.timestamp) * 1000
        var events: [ChangeEvent] = []
        swap(&events, &openEvents)
        if events.count > 0 { lastTransactionSize = events.count }
        // Sized for a larger transaction than this one turned out to be: the buffer counts
        // events, not capacity, so the spare room is not carried along.
        if events.capacity > 2 * events.count + 16 {
            var fitted: [ChangeEvent] = []
            fitted.reserveCapacity(events.count)
            fitted.append(contentsOf: events)
            events = fitted
        }
        var source = ChangeSource(name: sourceName, serverID: transaction.serverID, gtid: transaction.gtid,
                                  position: .binlog(position), row: 0, timestampMillis: millis)
        events.withUnsafeMutableBufferPointer { events in
            for index in events.indices {
                source.row = index
                events[index].source = source
            }
        }
        return Transaction(gtid: transaction.gtid, position: .binlog(position), serverID: transaction.serverID,
                           timestampMillis: millis, events: events)
    }

    /// Statements that change rows: in a ROW-format binlog they appear only for what the server
    /// chose to log as a statement, and are never schema changes.
    public static let dataKeywords: Set<String> = ["INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"]

    /// The first word of a statement, upper-cased, skipping whitespace and leading comments.
    static func leadingKeyword(_ statement: String) -> String {
        let bytes = Array(statement.utf8.prefix(4096))
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                index += 1
            } else if byte == UInt8(ascii: "/"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "*") {
                index += 2
                while index + 1 < bytes.count, !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) { index += 1 }
                index += 2
            } else if byte == UInt8(ascii: "#") || (byte == UInt8(ascii: "-") && index + 2 < bytes.count && bytes[index + 1] == byte && bytes[index + 2] == 0x20) {
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
            } else {
                break
            }
        }
        var end = index
        while end < bytes.count, (bytes[end] | 0x20) >= UInt8(ascii: "a") && (bytes[end] | 0x20) <= UInt8(ascii: "z") || (end < bytes.count && bytes[end] == UInt8(ascii: "_")) {
            end += 1
        }
        return String(decoding: bytes[min(index, bytes.count)..<min(end, bytes.count)], as: UTF8.self).uppercased()
    }
}

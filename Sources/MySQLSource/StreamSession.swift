import FerryCore
import Logging
import MySQLBinlog
import MySQLWire
import NIOCore

/// The state that survives reconnects while following one binlog: the transaction assembler
/// (positions), and the table decoders. Each `stream` call is one replication connection.
struct StreamSession {
    let configuration: MySQLSourceConfiguration
    let server: ServerFacts
    let logger: Logger
    /// Where the stream has read to, for live lag figures.
    let logEnd: SourceLogEnd
    private(set) var assembler: TransactionAssembler
    private let initialGTID: GTIDPosition?
    private var decoders: [UInt64: CachedTable] = [:]
    private var fallbackMetadata: [TableName: TableDecoder.FallbackMetadata] = [:]
    private var warnedAboutMetadata = Set<TableName>()
    private let textRepairs: TextRepairReporter
    /// Snapshot windows fed by this stream, the table their watermarks are written to, and how
    /// to have tables read again whose rows a DDL statement rewrote (`nil`: they are not).
    /// Asks for tables to be read again after a DDL statement: those whose rows it rewrote, and
    /// the tables it renamed (old name, new name).
    typealias Reread = @Sendable (_ rewritten: [TableName], _ renamed: [(from: TableName, to: TableName)]) async throws -> Void
    private let snapshot: (windows: SnapshotWindows, signalTable: TableName, reread: Reread?)?

    /// Schemas of the tables met so far, so that rebuilding a decoder after a rotation or a
    /// reconnect does not make a new schema object for an unchanged table.
    private var schemas = TableSchemaInterner()

    private struct CachedTable {
        var map: TableMapEvent
        var included: Bool
        var isSignal: Bool
        var decoder: TableDecoder?
    }

    init(configuration: MySQLSourceConfiguration, server: ServerFacts, start: MySQLSource.ResolvedStart,
         snapshot: (windows: SnapshotWindows, signalTable: TableName, reread: Reread?)? = nil,
         logEnd: SourceLogEnd, logger: Logger) {
        self.configuration = configuration
        self.logEnd = logEnd
        self.server = server
        self.snapshot = snapshot
        self.logger = logger
        self.textRepairs = TextRepairReporter(source: configuration.name, logger: logger)
        self.initialGTID = start.gtid
        self.assembler = TransactionAssembler(
            sourceName: configuration.name,
            start: start.coordinates.map { BinlogPosition(coordinates: $0, gtidPosition: start.gtid) },
            gtidPosition: start.gtid)
    }

    mutating func prepareReconnect() {
        assembler.discardOpenTransaction()
        decoders.removeAll()
    }

    /// One replication connection: set up, dump, and handle events until stopped or lost.
    mutating func stream(stopAt: BinlogCoordinates?, shouldStop: () throws -> Bool, deliver: (Transaction) async throws -> Void,
                         onConnected: () -> Void) async throws -> MySQLSource.Completion {
        let configuration = self.configuration
        return try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            try await MySQLConnection.withConnection(configuration.connection, logger: logger) { binlog in
                try await startDump(binlog)
                onConnected()
                let waker = binlog.waker
                snapshot?.windows.setWaker { waker.wake() }
                defer { snapshot?.windows.setWaker(nil) }
                return try await follow(binlog, query: query, stopAt: stopAt, shouldStop: shouldStop, deliver: deliver)
            }
        }
    }

    private func startDump(_ binlog: MySQLConnection) async throws {
        try await binlog.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
        let heartbeatNanoseconds = UInt64(configuration.heartbeatSeconds * 1_000_000_000)
        try await binlog.execute("SET @master_heartbeat_period = \(heartbeatNanoseconds)")
        if server.isMariaDB {
            try await binlog.execute("SET @mariadb_slave_capability = 4")
        }
        try await binlog.registerReplica(serverID: configuration.serverID, hostname: "ferry", port: 0)
        if let resume = assembler.resumePosition {
            let offset = UInt32(clamping: resume.coordinates.offset)
            try await binlog.startBinlogDump(.binlogDump(position: max(offset, 4), flags: 0, serverID: configuration.serverID,
                                                         file: resume.coordinates.file))
        } else {
            switch initialGTID {
            case .mariadb(let position):
                try await binlog.execute("SET @slave_connect_state = '\(position.description)'")
                try await binlog.execute("SET @slave_gtid_strict_mode = 1")
                try await binlog.execute("SET @slave_gtid_ignore_duplicates = 0")
                try await binlog.startBinlogDump(.binlogDump(position: 4, flags: 0, serverID: configuration.serverID, file: ""))
            case .mysql(let set):
                try await binlog.startBinlogDump(.binlogDumpGTID(flags: 0, serverID: configuration.serverID, file: "", position: 4, gtidSet: set))
            case nil:
                throw FerryError(code: .sourcePosition, message: "no start position")
            }
        }
        try await binlog.enableReadTimeout(seconds: configuration.readTimeoutSeconds)
    }

    private mutating func follow(_ binlog: MySQLConnection, query: MySQLConnection, stopAt: BinlogCoordinates?, shouldStop: () throws -> Bool,
                                 deliver: (Transaction) async throws -> Void) async throws -> MySQLSource.Completion {
        var parser = BinlogParser(initialChecksum: server.checksum)
        while true {
            try Task.checkCancellation()
            let item = try await binlog.nextBinlogPacket()
            if case .wake = item {
                logger.trace("binlog reader woken")
                try await deliverReadyChunks(deliver)
                if !assembler.isInTransaction, try shouldStop() { return .snapshotFinished }
                continue
            }
            guard case .event(let bytes) = item else {
                // Ferry never asks for a non-blocking dump, so EOF means the server is going away.
                throw MySQLWireError.connectionClosed("(the server ended the binlog stream, e.g. while shutting down)")
            }
            let record = try parser.parse(bytes, file: assembler.file)
            let header = record.header
            if header.logPosition > 0, let file = assembler.file {
                if case .rotate = record.event {
                    // A real rotation is the file's last event: its end is the file's size.
                    if !header.isArtificial { logEnd.binlogFileEnded(file, size: UInt64(header.logPosition)) }
                } else if !record.event.isInsideTransactionBody {
                    // Not per row event: the transaction's commit event, right after, moves it.
                    logEnd.reached(.binlog(file: file, offset: UInt64(header.logPosition)))
                }
            }
            switch record.event {
            case .rotate(let rotate):
                assembler.rotateReceived(rotate)
            case .formatDescription:
                decoders.removeAll(keepingCapacity: true)
            case .mariadbGTIDList(let list):
                assembler.gtidListReceived(list)
                assembler.otherEventReceived(header: header)
            case .previousGTIDs(let previous):
                assembler.previousGTIDsReceived(previous)
                assembler.otherEventReceived(header: header)
            case .mariadbGTID(let gtid):
                assembler.mariadbGTIDReceived(gtid, header: header)
            case .mysqlGTID(let gtid):
                assembler.mysqlGTIDReceived(gtid, header: header)
            case .tableMap(let map):
                try await cacheTable(map, query: query)
            case .rows(let rows):
                try handleRows(rows, header: header, parser: parser)
            case .xid:
                if let output = assembler.xidReceived(header: header) { try await emit(output, deliver: deliver) }
            case .query(let statement):
                if TransactionAssembler.dataKeywords.contains(TransactionAssembler.leadingKeyword(statement.statement)) {
                    logger.warning("the binlog holds a statement-based row change, which carries no row images and is not captured",
                                   metadata: [LoggingKeys.source: "\(configuration.name)", LoggingKeys.position: "\(position(of: header))",
                                              "ferry.statement": "\(statement.statement.prefix(200))"])
                }
                if let output = assembler.queryReceived(statement, header: header) { try await emit(output, deliver: deliver) }
            case .heartbeat, .binlogCheckpoint, .rowsQuery, .stop, .unsupported:
                if case .unsupported(let code, _) = record.event {
                    logger.debug("skipping binlog event", metadata: ["ferry.event_type": "\(code)"])
                }
                if !record.header.isArtificial { assembler.otherEventReceived(header: header) }
                if case .heartbeat = record.event { try await deliverReadyChunks(deliver) }
            }
            if let stopAt, !assembler.isInTransaction, let position = assembler.resumePosition, position.coordinates >= stopAt {
                return .reachedStopPosition(position)
            }
            if !assembler.isInTransaction, try shouldStop() { return .snapshotFinished }
        }
    }

    private mutating func emit(_ output: TransactionAssembler.Output, deliver: (Transaction) async throws -> Void) async throws {
        switch output {
        case .transaction(var transaction):
            guard let windows = snapshot?.windows else {
                try await deliver(transaction)
                return
            }
            let closed = windows.absorb(&transaction, sourceName: configuration.name)
            try await deliver(transaction)
            if !closed.isEmpty { windows.delivered(closed, position: transaction.position) }
            try await deliverReadyChunks(deliver)
        case .schemaChange(var transaction, let database, let statement):
            fallbackMetadata = fallbackMetadata.filter { $0.key.database != database }
            let (changes, rewritten) = DDLParser.analyze(statement, defaultDatabase: database)
            if let windows = snapshot?.windows {
                _ = windows.absorb(&transaction, sourceName: configuration.name)
                windows.schemaChanged(changes.flatMap { change -> [TableName] in
                    if case .renameTable(let from, let to) = change { return [from, to] }
                    return [change.table]
                })
            }
            if configuration.includeDDL {
                // Only changes to replicated tables travel; a rename counts when either name is.
                let filter = configuration.filter
                transaction.events[0].schemaChanges = changes.filter { change in
                    if case .renameTable(let from, let to) = change { return filter.includes(from) || filter.includes(to) }
                    return filter.includes(change.table)
                }
                if let first = transaction.events[0].schemaChanges.first { transaction.events[0].table = first.table }
            } else {
                transaction.events = []
            }
            // Requested before the statement is delivered, so no position past it is saved
            // without the request.
            if let reread = snapshot?.reread {
                let tables = rewritten.filter(configuration.filter.includes)
                let renamed = changes.compactMap { change -> (from: TableName, to: TableName)? in
                    guard case .renameTable(let from, let to) = change, configuration.filter.includes(to) else { return nil }
                    return (from, to)
                }
                if !tables.isEmpty || !renamed.isEmpty { try await reread(tables, renamed) }
            }
            try await deliver(transaction)
        }
    }

    /// Snapshot chunks read with binlog-position watermarks that the stream has now passed, as a
    /// transaction of their own right after the current boundary; and signal-table windows whose
    /// high watermark the stream passed without seeing end, to be read again.
    private func deliverReadyChunks(_ deliver: (Transaction) async throws -> Void) async throws {
        guard let windows = snapshot?.windows, !assembler.isInTransaction, let boundary = assembler.resumePosition else { return }
        windows.endLostWatermarks(at: boundary.coordinates)
        guard let (transaction, ids) = windows.chunksReady(at: boundary, sourceName: configuration.name) else { return }
        try await deliver(transaction)
        windows.delivered(ids, position: transaction.position)
    }

    private mutating func cacheTable(_ map: TableMapEvent, query: MySQLConnection) async throws {
        if let cached = decoders[map.tableID], cached.map == map { return }
        let name = TableName(database: map.database, table: map.table)
        let included = configuration.filter.includes(name)
        let isSignal = snapshot?.signalTable == name
        var decoder: TableDecoder? = nil
        if included || isSignal {
            var map = map
            (map.hiresTemporalColumns, map.mariadbDataTypes) = try await columnFacts(of: map, query: query)
            var fallback: TableDecoder.FallbackMetadata? = nil
            if map.optional.columnNames == nil {
                fallback = try await loadFallback(name, query: query)
            }
            var made = TableDecoder(tableMap: map, mariadb: server.isMariaDB, collations: server.collations, fallback: fallback)
            made.intern(in: &schemas)
            decoder = made
        }
        decoders[map.tableID] = CachedTable(map: map, included: included && !isSignal, isSignal: isSignal, decoder: decoder)
    }

    private mutating func handleRows(_ rows: RowsEvent, header: BinlogEventHeader, parser: BinlogParser) throws {
        guard rows.tableID != RowsEvent.dummyTableID else { return }
        guard let cached = decoders[rows.tableID] else {
            throw FerryError(code: .sourceBinlogUndecodableEvent, message: "rows event for table id \(rows.tableID) without its TABLE_MAP",
                             context: [("source", configuration.name), ("position", position(of: header))])
        }
        if cached.isSignal, let decoder = cached.decoder, let windows = snapshot?.windows {
            // Ferry's own watermarks: they mark places in the stream and are not replicated.
            let schema = decoder.schema
            if rows.kind == .write, let id = schema.columns.firstIndex(where: { $0.name == "id" }),
               let kind = schema.columns.firstIndex(where: { $0.name == "kind" }) {
                for change in (try? rows.decodeRows(using: decoder)) ?? [] {
                    if let after = change.after, case .string("high") = after[kind], case .string(let windowID) = after[id] {
                        windows.highWatermarkSeen(windowID)
                    }
                }
            }
            assembler.filteredRowsReceived(header: header)
            return
        }
        guard cached.included, let decoder = cached.decoder else {
            assembler.filteredRowsReceived(header: header)
            return
        }
        let changes: [RowsEvent.RowChange]
        do {
            changes = try rows.decodeRows(using: decoder)
        } catch let error as BinlogDecodingError {
            let code: FerryError.Code = if case .unsupportedColumn = error.kind { .sourceBinlogUnsupportedColumn } else { .sourceBinlogUndecodableRow }
            throw FerryError(code: code, message: "cannot decode a row of \(decoder.schema.name): \(error)",
                             context: [("source", configuration.name), ("table", decoder.schema.name.description),
                                       ("position", position(of: header))],
                             fix: code == .sourceBinlogUnsupportedColumn ? nil : "report this with the binlog file; the stream stops here so nothing is skipped")
        }
        textRepairs.report(decoder, position: position(of: header))
        assembler.rowsReceived(kind: rows.kind, schema: decoder.schema, changes: changes, header: header)
    }

    private func position(of header: BinlogEventHeader) -> String {
        let start = header.logPosition >= header.eventSize ? header.logPosition - header.eventSize : header.logPosition
        return "\(assembler.file ?? "?"):\(start)"
    }

    /// What TABLE_MAP cannot say, from information_schema, asked only for tables that need it:
    /// MariaDB's pre-10.1 temporal columns with fractional seconds are written as plain
    /// TIME/DATETIME/TIMESTAMP with no metadata (the column precision tells them apart), and its
    /// UUID/INET4/INET6 columns as BINARY(16)/BINARY(4) (DATA_TYPE names them).
    private func columnFacts(of map: TableMapEvent, query: MySQLConnection) async throws -> (hires: [Int], dataTypes: [Int: MariaDBDataType]) {
        let old: Set<UInt8> = [ColumnType.time.rawValue, ColumnType.datetime.rawValue, ColumnType.timestamp.rawValue]
        let mayBePlugin = map.columnTypes.indices.contains { index in
            guard map.columnTypes[index] == ColumnType.string.rawValue else { return false }
            let length = TableDecoder.stringLength(Int(map.columnMetadata[index])).length
            return length == 4 || length == 16
        }
        guard server.isMariaDB, mayBePlugin || map.columnTypes.contains(where: old.contains) else { return (map.hiresTemporalColumns, map.mariadbDataTypes) }
        let result = try await query.query("""
            SELECT DATETIME_PRECISION, DATA_TYPE FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = '\(map.database.replacingSingleQuotes)' AND TABLE_NAME = '\(map.table.replacingSingleQuotes)'
            ORDER BY ORDINAL_POSITION
            """)
        guard result.rows.count == map.columnCount else { return (map.hiresTemporalColumns, map.mariadbDataTypes) }
        let hires = map.columnTypes.indices.filter { index in
            old.contains(map.columnTypes[index]) && (result.rows[index][0].flatMap { Int($0) } ?? 0) > 0
        }
        var dataTypes: [Int: MariaDBDataType] = [:]
        for index in map.columnTypes.indices where map.columnTypes[index] == ColumnType.string.rawValue {
            if let type = result.rows[index][1].flatMap({ MariaDBDataType(rawValue: $0.lowercased()) }) { dataTypes[index] = type }
        }
        return (hires, dataTypes)
    }

    private mutating func loadFallback(_ name: TableName, query: MySQLConnection) async throws -> TableDecoder.FallbackMetadata? {
        if let cached = fallbackMetadata[name] { return cached }
        if warnedAboutMetadata.insert(name).inserted {
            logger.warning("TABLE_MAP has no column names (binlog_row_metadata is not FULL); reading them from information_schema, which is wrong for binlog written before a later DDL",
                           metadata: [LoggingKeys.source: "\(configuration.name)", LoggingKeys.table: "\(name)"])
        }
        let db = name.database.replacingSingleQuotes, table = name.table.replacingSingleQuotes
        let result = try await query.query("""
            SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY, DATA_TYPE FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = '\(db)' AND TABLE_NAME = '\(table)' ORDER BY ORDINAL_POSITION
            """)
        guard !result.rows.isEmpty else { return nil }
        var metadata = TableDecoder.FallbackMetadata(columnNames: [], unsigned: [], charsets: [], enumValues: [:], setValues: [:], primaryKey: [])
        for (index, row) in result.rows.enumerated() {
            let columnType = row[1] ?? ""
            metadata.columnNames.append(row[0] ?? "col_\(index + 1)")
            metadata.unsigned.append(columnType.lowercased().contains("unsigned"))
            metadata.charsets.append(row[2])
            let dataType = (row[4] ?? "").lowercased()
            if dataType == "enum" { metadata.enumValues[index] = Self.members(columnType) }
            if dataType == "set" { metadata.setValues[index] = Self.members(columnType) }
        }
        let keys = try await query.query("""
            SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
            WHERE TABLE_SCHEMA = '\(db)' AND TABLE_NAME = '\(table)' AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION
            """)
        metadata.primaryKey = keys.rows.compactMap { row in row[0].flatMap { metadata.columnNames.firstIndex(of: $0) } }
        fallbackMetadata[name] = metadata
        return metadata
    }

    /// Member names of `enum('a','b')` / `set('x','y')` column types (`''` is a quote inside a name).
    static func members(_ columnType: String) -> [String] {
        guard let open = columnType.firstIndex(of: "("), let close = columnType.lastIndex(of: ")") else { return [] }
        let characters = Array(columnType[columnType.index(after: open)..<close])
        var names: [String] = []
        var current = ""
        var inQuote = false
        var index = 0
        while index < characters.count {
            let ch = characters[index]
            if inQuote {
                if ch == "'" {
                    if index + 1 < characters.count, characters[index + 1] == "'" {
                        current.append("'")
                        index += 1
                    } else {
                        inQuote = false
                        names.append(current)
                        current = ""
                    }
                } else {
                    current.append(ch)
                }
            } else if ch == "'" {
                inQuote = true
            }
            index += 1
        }
        return names
    }
}

extension BinlogEvent {
    /// Row and table-map events: the bulk of a transaction, followed by its commit event.
    var isInsideTransactionBody: Bool {
        switch self {
        case .rows, .tableMap: true
        default: false
        }
    }
}

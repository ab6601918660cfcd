import FerryCore
import Logging
import MySQLBinlog
import MySQLWire
import NIOConcurrencyHelpers
import NIOCore

/// Reads one source table for `ferry verify`: in key order chunk by chunk, or by keys, decoded
/// exactly as snapshot rows are.
struct MySQLTableReader: SourceTableReader {
    let table: SnapshotTable
    let connection: MySQLConnectionConfiguration
    let logger: Logger

    var schema: TableSchema { table.schema }
    /// The key columns rows are ordered and looked up by; empty when the table has none.
    var keyColumns: [Int] { table.keyColumns }

    /// Up to `rows` rows after `lower` (a key; `nil` from the start), in key order.
    func rows(after lower: [Value]?, limit: Int) async throws -> [Row] {
        let queries = ChunkQueries(table: table)
        var sql = queries.read(lower: lower.map(ChunkQueries.literals), upper: nil)
        if !table.keyColumns.isEmpty { sql += " LIMIT \(limit)" }
        return try await read(sql)
    }

    /// The rows with these keys that the table has now.
    func rows(keys: [[Value]]) async throws -> [Row] {
        guard !keys.isEmpty else { return [] }
        return try await read(ChunkQueries(table: table).read(keys: keys.map(ChunkQueries.literals)))
    }

    /// Every key of the table.
    func keys() async throws -> [[Value]] {
        let sql = "SELECT \(table.quotedKeyColumns.joined(separator: ", ")) FROM \(table.quotedName)"
        return try await MySQLConnection.withConnection(connection, logger: logger) { query in
            try await Snapshotter.prepareSession(query)
            var keys: [[Value]] = []
            try await query.query(sql) { row in keys.append(try table.decoder.decodeKeyText(row.values, keyColumns: table.keyColumns)) }
            return keys
        }
    }

    private func read(_ sql: String) async throws -> [Row] {
        try await MySQLConnection.withConnection(connection, logger: logger) { query in
            try await Snapshotter.prepareSession(query)
            var rows: [Row] = []
            _ = try await query.query(sql) { payload, _ in rows.append(try table.decoder.decodeText(payload: payload)) }
            return rows
        }
    }
}

extension MySQLSource: VerifiableSource {
    public func verifiedTables(signalTable: TableName) async throws -> [TableName] {
        try await includedTables(signalTable: signalTable)
    }

    public func verifyReader(_ name: TableName, keyOverride: [String]?) async throws -> any SourceTableReader {
        let table = try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            let server = try await ServerFacts.load(query)
            return try await SnapshotTable.load(name, keyOverride: keyOverride, query: query, server: server)
        }
        return MySQLTableReader(table: table, connection: configuration.connection, logger: logger)
    }

    /// The server's current end of log.
    public func verifyPosition() async throws -> SourcePosition {
        let coordinates = try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            try await ServerFacts.currentCoordinates(query)
        }
        return .binlog(BinlogPosition(coordinates: coordinates, gtidPosition: nil))
    }

    public func repairKey(_ key: [Value]) -> [String] { MySQLLiteral.literals(key) }

    public func isLostConnection(_ error: any Error) -> Bool { Self.isLostConnection(error) }

    /// Base tables this source's filter includes (what an initial snapshot reads).
    public func includedTables(signalTable: TableName) async throws -> [TableName] {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            try await Snapshotter.includedTables(query, filter: configuration.filter, signalTable: signalTable)
        }
    }

    /// Reads a whole table as a snapshot does — the schema and values a streamed row of the same
    /// data has — in key order, without watermarks.
    public func readTable(_ name: TableName, keyOverride: [String]? = nil) async throws -> (schema: TableSchema, rows: [Row]) {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { connection in
            let server = try await ServerFacts.load(connection)
            try await Snapshotter.prepareSession(connection)
            let table = try await SnapshotTable.load(name, keyOverride: keyOverride, query: connection, server: server)
            var rows: [Row] = []
            _ = try await connection.query(ChunkQueries(table: table).read(lower: nil, upper: nil)) { payload, _ in
                rows.append(try table.decoder.decodeText(payload: payload))
            }
            return (table.schema, rows)
        }
    }
}

/// Reads tables in key-range chunks, in parallel, through the watermark windows, and records each
/// delivered chunk so a restart goes on at the first chunk not yet delivered.
struct Snapshotter: Sendable {
    let job: SnapshotJob
    let configuration: MySQLSourceConfiguration
    let server: ServerFacts
    let windows: SnapshotWindows
    let logger: Logger
    let textRepairs: TextRepairReporter

    init(job: SnapshotJob, configuration: MySQLSourceConfiguration, server: ServerFacts, windows: SnapshotWindows, logger: Logger) {
        self.job = job
        self.configuration = configuration
        self.server = server
        self.windows = windows
        self.logger = logger
        self.textRepairs = TextRepairReporter(source: configuration.name, logger: logger)
    }

    var pipeline: String { job.pipeline }
    var settings: SnapshotSettings { job.settings }
    var store: any SnapshotStore { job.store }

    /// Snapshots what is requested; with `untilDone` returns when nothing is left, else keeps
    /// looking for new requests until cancelled. `useSignalTable` is what `prepare()` returned.
    func run(untilDone: Bool, useSignalTable: Bool) async throws {
        var backoff = ReconnectBackoff(configuration)
        while true {
            let open = try await store.snapshotTables(pipeline: pipeline).filter { $0.state != .done }
            if open.isEmpty {
                if untilDone { return }
                try await Task.sleep(for: settings.pollInterval)
                continue
            }
            for record in open {
                let deliveredBefore = try await deliveredChunks(of: record.table)
                do {
                    try await snapshot(record, useSignalTable: useSignalTable)
                    backoff.reset()
                } catch let superseded as SnapshotSuperseded {
                    // The loop finds the new request and starts the table over.
                    logger.notice("snapshot of table starts over: \(superseded.reason)",
                                  metadata: [LoggingKeys.table: "\(superseded.table)"])
                } catch let error where MySQLSource.isLostConnection(error) && !Task.isCancelled {
                    // Delivered chunks are recorded and the open windows were cancelled: the
                    // table goes on at its first chunk not delivered, as after a restart.
                    let wait = try backoff.delay(after: error, progressed: try await deliveredChunks(of: record.table) > deliveredBefore)
                    logger.warning("lost a snapshot connection; the table goes on at its first chunk not delivered", metadata: [
                        LoggingKeys.source: "\(configuration.name)", LoggingKeys.table: "\(record.table)", LoggingKeys.error: .error(error),
                        LoggingKeys.retryIn: .seconds(wait),
                    ])
                    try await ReconnectBackoff.wait(wait)
                    break
                }
            }
        }
    }

    /// How many of the table's chunks are delivered: a lost connection after progress waits the
    /// first delay again.
    private func deliveredChunks(of table: TableName) async throws -> Int {
        try await store.snapshotChunks(pipeline: pipeline, table: table).count { $0.deliveredAt != nil }
    }

    /// Chooses the watermarks (creating the signal table), marks chunks delivered after the resume
    /// position as not done, and requests the initial snapshot. Returns whether the signal table
    /// is used. Runs before the stream delivers anything: whether this is the first start is
    /// decided by "no position yet", so the initial request must be saved before any position can
    /// be — else a kill in between would start the next run without the snapshot.
    func prepare() async throws -> Bool {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            let useSignalTable = try await chooseWatermarks(query)
            let tables = try await store.snapshotTables(pipeline: pipeline)
            let now = WallClock.millisecondsSinceEpoch()
            if job.resnapshotAll || (tables.isEmpty && job.resume == nil && settings.mode != .never) {
                let names = try await includedTables(query)
                try await store.requestSnapshot(pipeline: pipeline, tables: names, reason: job.resnapshotAll ? "purged" : "initial", atMillis: now)
                logger.notice("snapshot requested", metadata: [LoggingKeys.source: "\(configuration.name)", "ferry.tables": "\(names.count)",
                                                                "ferry.reason": "\(job.resnapshotAll ? "saved position purged" : "first start")"])
            }
            for (table, chunks) in try await store.reopenChunks(deliveredAfter: job.resume, pipeline: pipeline) {
                logger.notice("snapshot chunks delivered after the resume position are read again",
                              metadata: [LoggingKeys.table: "\(table)", "ferry.chunks": "\(chunks)"])
            }
            return useSignalTable
        }
    }

    private func chooseWatermarks(_ query: MySQLConnection) async throws -> Bool {
        switch settings.watermarks {
        case .signalTable:
            if let filter = try await signalTableFilter(query) {
                throw FerryError(code: .snapshotSignalTable,
                                 message: "the server leaves the signal table \(settings.signalTable) out of its binlog (\(filter)): its watermarks would never reach the stream and every snapshot chunk would wait for ever",
                                 context: [("source", configuration.name)],
                                 fix: "log the database \(settings.signalTable.database) (binlog_do_db / binlog_ignore_db in the server's configuration), set snapshot.signal_table to a table of a logged database, or set snapshot: { watermarks: binlog }")
            }
            try await createSignalTable(query)
            return true
        case .binlog:
            return false
        case .auto:
            if let filter = try await signalTableFilter(query) {
                logger.notice("the server leaves the signal table's database out of its binlog; snapshots use binlog positions as watermarks",
                              metadata: [LoggingKeys.source: "\(configuration.name)", "ferry.signal_table": "\(settings.signalTable)", "ferry.filter": "\(filter)"])
                return false
            }
            do {
                try await createSignalTable(query)
                // Creating needs CREATE; writing needs INSERT and DELETE: try both once.
                let probe = Self.windowID()
                try await query.execute("INSERT INTO \(signalTableName) (id, pipeline, kind) VALUES (\(literal(probe)), \(literal(pipeline)), 'probe')")
                try await query.execute("DELETE FROM \(signalTableName) WHERE id = \(literal(probe))")
                return true
            } catch let error as FerryError where error.code == .snapshotSignalTable {
                logger.notice("the source user may not write the signal table; snapshots use binlog positions as watermarks",
                              metadata: [LoggingKeys.source: "\(configuration.name)", "ferry.signal_table": "\(settings.signalTable)"])
                return false
            } catch let error as MySQLWireError {
                logger.notice("the source user may not write the signal table; snapshots use binlog positions as watermarks",
                              metadata: [LoggingKeys.source: "\(configuration.name)", "ferry.signal_table": "\(settings.signalTable)",
                                         LoggingKeys.error: .error(error)])
                return false
            }
        }
    }

    /// The server's binlog filter that leaves the signal table out (`binlog_ignore_db=ferry`), or
    /// nil when its rows are logged. With row-based logging the filters apply to the database of
    /// the table written.
    private func signalTableFilter(_ query: MySQLConnection) async throws -> String? {
        let status = try await query.query("SHOW MASTER STATUS")
        return Self.binlogFilter(leavingOut: settings.signalTable.database, doDB: status.value("Binlog_Do_DB") ?? "",
                                 ignoreDB: status.value("Binlog_Ignore_DB") ?? "")
    }

    /// Which of `binlog_do_db` (comma-separated; empty logs every database) and `binlog_ignore_db`
    /// leaves `database` out of the binlog, as the setting would be written; nil when neither does.
    static func binlogFilter(leavingOut database: String, doDB: String, ignoreDB: String) -> String? {
        func names(_ list: String) -> [String] {
            list.split(separator: ",").map { name in String(name.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }.filter { !$0.isEmpty }
        }
        let logged = names(doDB)
        if !logged.isEmpty, !logged.contains(database) { return "binlog_do_db=\(logged.joined(separator: ","))" }
        if names(ignoreDB).contains(database) { return "binlog_ignore_db=\(database)" }
        return nil
    }

    private func createSignalTable(_ query: MySQLConnection) async throws {
        let table = "\(backquoted(settings.signalTable.database)).\(backquoted(settings.signalTable.table))"
        // A table an administrator created needs no CREATE privilege: IF NOT EXISTS is still
        // refused without it.
        let existing = try await query.query("""
            SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '\(settings.signalTable.database.replacingSingleQuotes)'
            AND TABLE_NAME = '\(settings.signalTable.table.replacingSingleQuotes)'
            """)
        if !existing.rows.isEmpty { return }
        do {
            try await query.execute("CREATE DATABASE IF NOT EXISTS \(backquoted(settings.signalTable.database))")
            try await query.execute("""
                CREATE TABLE IF NOT EXISTS \(table) (id VARCHAR(64) NOT NULL PRIMARY KEY, pipeline VARCHAR(255) NOT NULL,
                kind VARCHAR(16) NOT NULL, detail VARCHAR(1024), created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB
                """)
        } catch let error as MySQLWireError {
            let account = await Prerequisites.account(query, user: configuration.connection.username)
            throw FerryError(code: .snapshotSignalTable, message: "cannot create the snapshot signal table \(settings.signalTable): \(error.ferryError.message)",
                             context: [("source", configuration.name), ("table", settings.signalTable.description)],
                             fix: "create it once as an administrator: CREATE DATABASE IF NOT EXISTS \(backquoted(settings.signalTable.database)); CREATE TABLE \(table) (id VARCHAR(64) NOT NULL PRIMARY KEY, pipeline VARCHAR(255) NOT NULL, kind VARCHAR(16) NOT NULL, detail VARCHAR(1024), created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)); GRANT SELECT, INSERT, DELETE ON \(table) TO \(account)")
        }
    }

    func includedTables(_ query: MySQLConnection) async throws -> [TableName] {
        try await Self.includedTables(query, filter: configuration.filter, signalTable: settings.signalTable)
    }

    /// Base tables the filter includes, without the signal table.
    static func includedTables(_ query: MySQLConnection, filter: TableFilter, signalTable: TableName) async throws -> [TableName] {
        let result = try await query.query("""
            SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'
            AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY TABLE_SCHEMA, TABLE_NAME
            """)
        return result.rows.compactMap { row -> TableName? in
            guard let database = row[0], let table = row[1] else { return nil }
            let name = TableName(database: database, table: table)
            return name != signalTable && filter.includes(name) ? name : nil
        }
    }

    func keyOverride(for table: TableName) -> [String]? { settings.keyOverride(for: table) }

    // MARK: - One table

    private func snapshot(_ initial: SnapshotTableRecord, useSignalTable: Bool) async throws {
        var record = initial
        let name = record.table
        let described: (SnapshotTable, Int)
        do {
            described = try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
                let table = try await SnapshotTable.load(name, keyOverride: keyOverride(for: name), query: query, server: server)
                let estimate = try await query.query("""
                    SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '\(name.database.replacingSingleQuotes)' AND TABLE_NAME = '\(name.table.replacingSingleQuotes)'
                    """).rows.first?[0].flatMap { Int($0) } ?? 0
                return (table, estimate)
            }
        } catch let error as FerryError where error.code == .snapshotTableMissing {
            return try await skipGoneTable(record)
        }
        let table = described.0
        if let override = keyOverride(for: name), table.keyColumns.contains(where: { table.schema.columns[$0].nullable }) {
            throw FerryError(code: .snapshotKeyNullable, message: "the key configured for \(name) (\(override.joined(separator: ", "))) has a nullable column; rows with NULL there cannot be split into chunks",
                             context: [("table", name.description)], fix: "make the columns NOT NULL or configure other key columns")
        }
        if record.state == .requested {
            record.state = .running
            record.estimatedRows = described.1
            if record.reason == "repair" {
                record.estimatedRows = try await store.snapshotChunks(pipeline: pipeline, table: name).reduce(0) { $0 + ($1.keys?.count ?? 0) }
            }
            record.startedMillis = Self.nowMillis()
            record.key = table.keyColumns.isEmpty ? "none: read whole, again if it changes meanwhile"
                : table.keyColumns.map { table.schema.columnName($0) }.joined(separator: ", ") + " (\(table.keySource.rawValue))"
            try await save(record)
            logger.notice("snapshot of table started", metadata: [LoggingKeys.table: "\(name)", "ferry.estimated_rows": "\(record.estimatedRows)",
                                                                   "ferry.key": "\(record.key)"])
        }
        let chunks = try await store.snapshotChunks(pipeline: pipeline, table: name)
        let pending = chunks.filter { $0.deliveredAt == nil }
        let queue = ChunkQueue(pending: pending, nextIndex: (chunks.map(\.index).max() ?? -1) + 1,
                               nextLower: chunks.last?.upper, planComplete: record.planComplete || table.keyColumns.isEmpty && !chunks.isEmpty)
        if pending.count < chunks.count {
            logger.notice("snapshot resumes", metadata: [LoggingKeys.table: "\(name)", "ferry.first_chunk": "\(pending.first?.index ?? chunks.count)",
                                                          "ferry.chunks_done": "\(chunks.count - pending.count)",
                                                          "ferry.rows_done": "\(chunks.reduce(0) { $0 + $1.rows })"])
        }
        let otherTablesWait = try await store.snapshotTables(pipeline: pipeline).contains { $0.state != .done && $0.table != name }
        windows.tableStarted(name, undelivered: Set(pending.map(\.index)), planComplete: await queue.planComplete, lastTable: !otherTablesWait)
        defer { windows.tableEnded(name) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let request = record.requestedMillis
                group.addTask { try await plan(table, queue: queue, request: request) }
                for _ in 0..<max(1, settings.parallelism) {
                    group.addTask { try await read(table, queue: queue, useSignalTable: useSignalTable, request: request) }
                }
                try await group.waitForAll()
            }
        } catch MySQLWireError.server(let packet, _) where packet.errorCode == 1146 {
            // Renamed or dropped while it was read, by a statement the stream has yet to reach.
            return try await skipGoneTable(record)
        } catch MySQLWireError.server(let packet, _) where packet.errorCode == 1054 {
            // A key column was renamed or dropped while the chunks were planned.
            throw SnapshotSuperseded(table: name, reason: "its columns changed while it was read: \(packet.message)")
        }
        record.planComplete = true
        record.state = .done
        record.finishedMillis = Self.nowMillis()
        try await save(record)
        let rows = try await store.snapshotChunks(pipeline: pipeline, table: name).reduce(0) { $0 + $1.rows }
        logger.notice("snapshot of table done", metadata: [LoggingKeys.table: "\(name)", "ferry.rows": "\(rows)"])
        if useSignalTable {
            try? await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
                try await query.execute("DELETE FROM \(signalTableName) WHERE pipeline = \(literal(pipeline))")
            }
        }
    }

    /// Ends the snapshot of a table that no longer exists under its name: dropped or renamed
    /// since it was asked for or while it was read (a replay behind the source, or DDL during the
    /// read). Its rows are not there to read; the stream carries the DROP or RENAME, and a rename
    /// asks for the new name to be read.
    private func skipGoneTable(_ initial: SnapshotTableRecord) async throws {
        var record = initial
        record.state = .done
        record.finishedMillis = Self.nowMillis()
        try await save(record)
        logger.notice("snapshot of table skipped: it no longer exists on the source (dropped or renamed later in the log)",
                      metadata: [LoggingKeys.table: "\(record.table)", "ferry.reason": "\(record.reason)"])
    }

    var signalTableName: String { "\(backquoted(settings.signalTable.database)).\(backquoted(settings.signalTable.table))" }

    func literal(_ text: String) -> String {
        var out = ""
        MySQLLiteral.appendQuoted(text, to: &out)
        return out
    }

    /// Finds chunk boundaries ahead of the readers and records each planned chunk.
    private func plan(_ table: SnapshotTable, queue: ChunkQueue, request: Int64) async throws {
        guard await !queue.planComplete else { return }
        if table.keyColumns.isEmpty {
            let chunk = SnapshotChunkRecord(table: table.name, index: 0, lower: nil, upper: nil)
            try await save(chunk, request: request)
            windows.chunkPlanned(table.name, index: 0, last: true)
            await queue.planned(chunk, last: true)
            try await markPlanComplete(table.name, request: request)
            return
        }
        let queries = ChunkQueries(table: table)
        do {
            try await planChunks(table, queries: queries, queue: queue, request: request)
        } catch {
            // Readers waiting for the next chunk must not wait for a planner that is gone.
            await queue.abandon()
            throw error
        }
        try await markPlanComplete(table.name, request: request)
    }

    private func planChunks(_ table: SnapshotTable, queries: ChunkQueries, queue: ChunkQueue, request: Int64) async throws {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
            try await Self.prepareSession(query)
            var lower = await queue.nextLower
            var index = await queue.nextIndex
            while true {
                try Task.checkCancellation()
                await queue.waitForRoom(settings.parallelism * 2)
                try Task.checkCancellation()
                var keys: [[String]] = []
                try await query.query(queries.boundary(after: lower, rows: settings.chunkRows)) { row in
                    keys.append(ChunkQueries.literals(try table.decoder.decodeKeyText(row.values, keyColumns: table.keyColumns)))
                }
                // Without a row after the boundary this chunk is the last, open-ended: the final
                // chunk is never planned empty, so a row of it can end the table's snapshot.
                let upper = keys.count == 2 ? keys[0] : nil
                let chunk = SnapshotChunkRecord(table: table.name, index: index, lower: lower, upper: upper)
                try await save(chunk, request: request)
                windows.chunkPlanned(table.name, index: index, last: upper == nil)
                await queue.planned(chunk, last: upper == nil)
                if upper == nil { break }
                lower = upper
                index += 1
            }
        }
    }

    private func markPlanComplete(_ name: TableName, request: Int64) async throws {
        guard var record = try await store.snapshotTables(pipeline: pipeline).first(where: { $0.table == name }) else { return }
        guard record.requestedMillis == request else { throw SnapshotSuperseded(table: name) }
        record.planComplete = true
        try await save(record)
    }

    /// Saves the record of the request being worked on; throws `SnapshotSuperseded` when a newer
    /// request for the table replaced it.
    private func save(_ record: SnapshotTableRecord) async throws {
        guard try await store.saveSnapshotTable(record, pipeline: pipeline) else { throw SnapshotSuperseded(table: record.table) }
    }

    /// Saves a chunk of the request made at `request`; throws `SnapshotSuperseded` when a newer
    /// request for the table replaced it.
    private func save(_ chunk: SnapshotChunkRecord, request: Int64) async throws {
        guard try await store.saveSnapshotChunk(chunk, pipeline: pipeline, requestedMillis: request) else { throw SnapshotSuperseded(table: chunk.table) }
    }

    /// Reads chunks through watermark windows until the queue is empty.
    private func read(_ initialTable: SnapshotTable, queue: ChunkQueue, useSignalTable: Bool, request: Int64) async throws {
        try await MySQLConnection.withConnection(configuration.connection, logger: logger) { connection in
            try await Self.prepareSession(connection)
            var table = initialTable
            while var chunk = try await queue.next() {
                var attempt = 0
                var lostWatermarks = 0
                while true {
                    attempt += 1
                    let generation = windows.generation(of: table.name)
                    if attempt > 1 {
                        table = try await SnapshotTable.load(table.name, keyOverride: keyOverride(for: table.name), query: connection, server: server)
                    }
                    let id = Self.windowID()
                    windows.open(id, table: table.name, chunk: chunk.index, keyColumns: table.keyColumns.map { table.schema.columnName($0) }, generation: generation)
                    let outcome: SnapshotWindows.Outcome
                    do {
                        func absentKeys(_ rows: [Row]) -> [[Value]] {
                            guard let keys = chunk.keys else { return [] }
                            let found = Set(rows.map { MySQLLiteral.keyText(table.key(of: $0)) })
                            return keys.map { $0.map(MySQLLiteral.value(parsing:)) }.filter { !found.contains(MySQLLiteral.keyText($0)) }
                        }
                        if useSignalTable {
                            try await signal(connection, id: id + "-low", kind: "low", chunk: chunk)
                            let rows = try await readRows(connection, table: table, chunk: chunk)
                            windows.setRows(id, rows: rows, absentKeys: absentKeys(rows), schema: table.schema, keyIndexes: table.keyColumns)
                            try await signal(connection, id: id, kind: "high", chunk: chunk)
                            // Without it the window is only waited for, as before it was known.
                            if let end = try? await ServerFacts.currentCoordinates(connection) { windows.highWatermarkWritten(id, before: end) }
                        } else {
                            // One consistent read; the server says which binlog position it saw.
                            try await connection.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                            let readAt = try await snapshotPosition(connection)
                            let rows = try await readRows(connection, table: table, chunk: chunk)
                            try await connection.execute("COMMIT")
                            windows.setRows(id, rows: rows, absentKeys: absentKeys(rows), schema: table.schema, keyIndexes: table.keyColumns, readAt: readAt)
                        }
                        outcome = await windows.outcome(id)
                    } catch MySQLWireError.server(let packet, _) where packet.errorCode == 1054 {
                        // A column was renamed or dropped after the table was described (a
                        // schema change the stream has yet to reach): describe it again and re-read.
                        windows.cancel(id)
                        try? await connection.execute("ROLLBACK")
                        try Task.checkCancellation()
                        logger.info("snapshot chunk read again", metadata: [LoggingKeys.table: "\(table.name)", "ferry.chunk": "\(chunk.index)",
                                                                            "ferry.reason": "its columns changed while it was read: \(packet.message)"])
                        continue
                    } catch {
                        windows.cancel(id)
                        throw error
                    }
                    switch outcome {
                    case .delivered(let position, let rows):
                        logger.debug("snapshot chunk delivered", metadata: [LoggingKeys.table: "\(table.name)", "ferry.chunk": "\(chunk.index)",
                                                                             "ferry.rows": "\(rows)", LoggingKeys.position: "\(position)"])
                        chunk.rows = rows
                        chunk.deliveredAt = position
                        try await save(chunk, request: request)
                    case .retry(let reason), .watermarkLost(let reason):
                        try Task.checkCancellation()
                        let lost = outcome == .watermarkLost(reason)
                        if lost {
                            // Once is a crash that lost the binlog's tail; every time means the
                            // stream never sees this table's watermarks.
                            lostWatermarks += 1
                            guard lostWatermarks < Self.lostWatermarkLimit else {
                                throw FerryError(code: .snapshotSignalTable,
                                                 message: "the stream passed the high watermark of \(table.name) chunk \(chunk.index) \(lostWatermarks) times without seeing it: \(reason)",
                                                 context: [("table", table.name.description), ("signal table", settings.signalTable.description)],
                                                 fix: "check that rows written to \(settings.signalTable) reach the binlog this pipeline reads (binlog filters, a replica that does not log them), or set snapshot: { watermarks: binlog }")
                            }
                        }
                        logger.log(level: lost ? .warning : .info, "snapshot chunk read again",
                                   metadata: [LoggingKeys.table: "\(table.name)", "ferry.chunk": "\(chunk.index)", "ferry.reason": "\(reason)"])
                        continue
                    }
                    break
                }
            }
        }
    }

    private func readRows(_ connection: MySQLConnection, table: SnapshotTable, chunk: SnapshotChunkRecord) async throws -> [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(settings.chunkRows)
        let queries = ChunkQueries(table: table)
        let sql = chunk.keys.map { queries.read(keys: $0) } ?? queries.read(lower: chunk.lower, upper: chunk.upper)
        do {
            _ = try await connection.query(sql) { payload, _ in rows.append(try table.decoder.decodeText(payload: payload)) }
        } catch let error as BinlogDecodingError {
            throw FerryError(code: .snapshotUndecodableRow, message: "cannot read a row of \(table.name): \(error)",
                             context: [("source", configuration.name), ("table", table.name.description), ("chunk", "\(chunk.index)")])
        }
        textRepairs.report(table.decoder, position: "snapshot chunk \(chunk.index)")
        return rows
    }

    /// The binlog position a consistent-snapshot transaction reads at: exact on MariaDB
    /// (`binlog_snapshot_file/position`); on MySQL the end of log, read just after the snapshot
    /// started (a commit between the two is possible; the signal table has no such gap).
    private func snapshotPosition(_ connection: MySQLConnection) async throws -> BinlogCoordinates {
        if server.isMariaDB {
            let status = try await connection.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            var values: [String: String] = [:]
            for row in status.rows { if let name = row[0], let value = row[1] { values[name.lowercased()] = value } }
            if let file = values["binlog_snapshot_file"], let position = values["binlog_snapshot_position"].flatMap({ UInt64($0) }), !file.isEmpty {
                return BinlogCoordinates(file: file, offset: position)
            }
        }
        return try await ServerFacts.currentCoordinates(connection)
    }

    private func signal(_ connection: MySQLConnection, id: String, kind: String, chunk: SnapshotChunkRecord) async throws {
        try await connection.execute("INSERT INTO \(signalTableName) (id, pipeline, kind, detail) VALUES (\(literal(id)), \(literal(pipeline)), \(literal(kind)), \(literal("\(chunk.table) chunk \(chunk.index)")))")
    }

    /// UTC for TIMESTAMP text; utf8mb4 results; no statement timeout on long chunk reads.
    static func prepareSession(_ connection: MySQLConnection) async throws {
        try await connection.execute("SET time_zone = '+00:00', character_set_results = 'utf8mb4', sql_mode = ''")
        try await connection.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    }

    /// Times a chunk's high watermark may be lost before the snapshot stops.
    static let lostWatermarkLimit = 3

    static func windowID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "")
    }

    static func nowMillis() -> Int64 { WallClock.millisecondsSinceEpoch() }
}

/// A table's snapshot was requested again while it ran: the run stops, and the new request
/// starts the table over.
struct SnapshotSuperseded: Error {
    var table: TableName
    var reason = "it was requested again while it ran"
}

/// Chunks waiting to be read: unfinished ones from an earlier run first, then new ones as the
/// planner finds them. Readers wait while it is empty and planning goes on.
actor ChunkQueue {
    private(set) var pending: [SnapshotChunkRecord]
    private(set) var nextIndex: Int
    private(set) var nextLower: [String]?
    private(set) var planComplete: Bool
    private var readers: [CheckedContinuation<Void, Never>] = []
    private var planner: CheckedContinuation<Void, Never>?
    private var abandoned = false

    init(pending: [SnapshotChunkRecord], nextIndex: Int, nextLower: [String]?, planComplete: Bool) {
        self.pending = pending
        self.nextIndex = nextIndex
        self.nextLower = nextLower
        self.planComplete = planComplete
    }


    func planned(_ chunk: SnapshotChunkRecord, last: Bool) {
        pending.append(chunk)
        if last { planComplete = true }
        wakeReaders()
    }

    /// The next chunk, or `nil` when every chunk is taken and planning is over, or the planner
    /// failed (its error, not the readers', is what ends the table's snapshot).
    func next() async throws -> SnapshotChunkRecord? {
        while true {
            try Task.checkCancellation()
            if abandoned { return nil }
            if !pending.isEmpty {
                planner?.resume()
                planner = nil
                return pending.removeFirst()
            }
            if planComplete { return nil }
            // A cancelled reader must not wait for a planner that was cancelled too (a restart
            // during a snapshot would hang on it): cancellation wakes every waiter.
            await withTaskCancellationHandler {
                await withCheckedContinuation { readers.append($0) }
            } onCancel: {
                Task { await self.wakeAll() }
            }
        }
    }

    /// The planner stays at most `limit` chunks ahead of the readers; it stops waiting when
    /// cancelled.
    func waitForRoom(_ limit: Int) async {
        while pending.count >= limit, !Task.isCancelled {
            await withTaskCancellationHandler {
                await withCheckedContinuation { planner = $0 }
            } onCancel: {
                Task { await self.wakeAll() }
            }
        }
    }

    /// The planner failed: readers stop taking chunks (the planner's error ends the snapshot).
    func abandon() {
        abandoned = true
        wakeAll()
    }

    private func wakeAll() {
        planner?.resume()
        planner = nil
        wakeReaders()
    }

    private func wakeReaders() {
        let waiting = readers
        readers.removeAll()
        for reader in waiting { reader.resume() }
    }
}

import FerryCore
import Logging
import PostgresLogical
import PostgresWire

/// One snapshot round: the open tables read in key-range chunks, in parallel, all through one
/// exported snapshot, and delivered where the stream stands at that snapshot's LSN.
///
/// The snapshot is exported by `CREATE_REPLICATION_SLOT` — the pipeline's own slot at its first
/// start, a temporary slot later — and is exactly what the database held at the slot's
/// consistent point: it has every transaction the stream delivers up to that point and none it
/// delivers after. So the stream is taken up to that point (`reach`), the chunks follow as
/// `read` changes, and the stream goes on: no locks, no watermarks, no row compared twice.
///
/// A planner and `parallelism` readers each own a connection that imported the snapshot
/// (`SET TRANSACTION SNAPSHOT`) while the exporter waited. The planner hands jobs to the readers
/// in turn; the round's own task takes the readers' results in the same turn, so chunks are
/// delivered in planned order whatever finishes first. Every hand-off holds one element: a
/// round holds at most two chunks per reader in memory.
struct PgSnapshotRound {
    let source: PostgresSource
    let job: SnapshotJob
    let tables: [SnapshotTableRecord]
    let snapshotName: String
    /// Where the tables' descriptions are kept across streams (`describe`), when anywhere.
    let history: PgSchemaHistory?
    let logger: Logger

    struct Chunk: Sendable {
        let table: PgSnapshotTable
        let record: SnapshotChunkRecord
        let request: Int64
        /// The table's last chunk: delivering it ends the table's snapshot.
        let last: Bool
    }

    enum Job: Sendable {
        /// The table's record, and how the snapshot describes it.
        case start(SnapshotTableRecord, PgSnapshotTable)
        /// Every chunk was delivered before: only the table's record is left to close.
        case finished(SnapshotTableRecord)
        /// Not on the source under its name any more, or no longer published.
        case gone(SnapshotTableRecord)
        case chunk(Chunk)
    }

    enum Result: Sendable {
        case job(Job)
        /// A chunk's rows, and for a repair a key-only row for each key the table no longer has.
        case rows(Chunk, [Row], absent: [Row])
    }

    var pipeline: String { job.pipeline }
    var store: any SnapshotStore { job.store }
    var readerCount: Int { max(1, job.settings.parallelism) }

    /// Opens the readers, calls `imported` once they all hold the snapshot (the exporter may go),
    /// takes the stream to the snapshot's point with `reach` (which returns the position of the
    /// last transaction delivered), then delivers every chunk after it; returns the position of
    /// the last one.
    func run(imported: () async -> Void, reach: () async throws -> WALPosition,
             deliver: (Transaction) async throws -> Void) async throws -> WALPosition {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let inboxes = (0..<readerCount).map { _ in BoundedHandoff<Job>(capacity: 1) }
            let outboxes = (0..<readerCount).map { _ in BoundedHandoff<Result>(capacity: 1) }
            for index in 0..<readerCount {
                let connection = try await openReader()
                group.addTask { try await read(connection, inbox: inboxes[index], outbox: outboxes[index]) }
            }
            let planner = try await openReader()
            group.addTask { try await plan(planner, inboxes: inboxes) }
            await imported()
            let base = try await reach()
            let last = try await consume(outboxes, after: base, deliver: deliver)
            // A planner or reader that failed ended its hand-offs early, and the others may wait
            // on theirs: cancelled, they end, and the failure is thrown here.
            group.cancelAll()
            try await group.waitForAll()
            return last
        }
    }

    /// A schema change on a table the round reads stopped it: the change's `ALTER TABLE` waited
    /// for the round's locks while a reader waited behind it (`lock_timeout`), or it committed
    /// after the snapshot was taken, so the table's columns now are not the snapshot's. The round
    /// ends, its locks go, the change goes through, and a new round reads what is left.
    struct Interrupted: Error, CustomStringConvertible {
        let doing: String
        let cause: String
        var description: String { "\(doing): \(cause)" }
    }

    static let lockTimeoutMilliseconds = 2000

    /// What ends a round instead of failing the pipeline: lock_not_available (the lock
    /// timeout), undefined_column, undefined_table, datatype_mismatch and undefined_function (a
    /// key compared across a retype): the table changed.
    static let interruptingStates: Set<String> = ["55P03", "42703", "42P01", "42804", "42883"]

    /// A planner's or reader's statement, its server errors as `setup` says them, except those
    /// a schema change causes: `Interrupted`.
    private func statement<T>(_ doing: String, _ body: () async throws -> T) async throws -> T {
        try await source.setup(doing) {
            do {
                return try await body()
            } catch PostgresWireError.server(let server) where Self.interruptingStates.contains(server.sqlState) {
                throw Interrupted(doing: doing, cause: "\(server)")
            }
        }
    }

    /// A session in a read-only repeatable-read transaction that sees exactly the snapshot.
    private func openReader() async throws -> PostgresWireConnection {
        let connection = try await source.connect(source.configuration.sessionConnection, purpose: "snapshot")
        do {
            // A reader that waits for a table's lock waits behind a schema change that waits for
            // the round's own locks (the planner's): it gives up, and the round with it.
            _ = try await source.setup("importing snapshot \(snapshotName)") {
                try await connection.simpleQuery("SET lock_timeout = '\(Self.lockTimeoutMilliseconds)ms'; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '\(snapshotName)'")
            }
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    private func read(_ connection: PostgresWireConnection, inbox: BoundedHandoff<Job>, outbox: BoundedHandoff<Result>) async throws {
        defer {
            inbox.close()
            outbox.finish()
        }
        do {
            reading: while let jobs = await inbox.take() {
                for job in jobs {
                    let result: Result
                    if case .chunk(let chunk) = job {
                        let (sql, parameters) = chunk.record.keys.map(chunk.table.keysQuery)
                            ?? chunk.table.readQuery(lower: chunk.record.lower, upper: chunk.record.upper)
                        let answer = try await statement("reading chunk \(chunk.record.index) of \(chunk.table.name)") {
                            try await connection.query(sql, parameters)
                        }
                        if chunk.record.keys != nil {
                            let (rows, absent) = try chunk.table.keyedRows(answer)
                            result = .rows(chunk, rows, absent: absent)
                        } else {
                            result = .rows(chunk, try chunk.table.rows(answer), absent: [])
                        }
                    } else {
                        result = .job(job)
                    }
                    guard await outbox.send(result, weight: 1) else { break reading }
                }
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// The planner: owns its connection, closed however planning ends (an early end too: a
    /// reader that stopped taking jobs ends the round, and a connection left open would hold
    /// its locks, idle in its transaction, for as long as the process runs).
    private func plan(_ connection: PostgresWireConnection, inboxes: [BoundedHandoff<Job>]) async throws {
        defer { for inbox in inboxes { inbox.finish() } }
        do {
            try await planTables(connection, inboxes: inboxes)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// Describes each table in the snapshot's catalog, then hands out its chunks: those planned
    /// before and not delivered, then new ones, each saved before it is handed out. Returns early
    /// once a reader takes no more jobs.
    private func planTables(_ connection: PostgresWireConnection, inboxes: [BoundedHandoff<Job>]) async throws {
        var turn = 0
        func handOut(_ job: Job) async -> Bool {
            defer { turn += 1 }
            return await inboxes[turn % inboxes.count].send(job, weight: 1)
        }
        for record in tables {
            let described = try await statement("describing \(record.table) for its snapshot") {
                try await PgSnapshotTable.load(record.table, publication: source.configuration.publication, keyOverride: job.settings.keyOverride(for: record.table), connection: connection) { catalog, missing in
                    try await source.resolveTypes(missing, into: &catalog, sql: connection)
                }
            }
            guard let table = described else {
                try await followRename(of: record.table, connection: connection)
                guard await handOut(.gone(record)) else { return }
                continue
            }
            try await lockUnlessRewritten(table, connection: connection)
            var started = record
            started.state = .running
            started.startedMillis = started.startedMillis ?? WallClock.millisecondsSinceEpoch()
            started.key = table.keyDescription
            let chunks = try await store.snapshotChunks(pipeline: pipeline, table: record.table).sorted { $0.index < $1.index }
            // A repair reads its keys; a key the table no longer has is deleted.
            let repairKeys = chunks.reduce(0) { $0 + ($1.keys?.count ?? 0) }
            started.estimatedRows = repairKeys > 0 ? repairKeys : table.estimatedRows
            if repairKeys > 0 && chunks.contains(where: { ($0.keys ?? []).contains { $0.count != table.keyColumns.count } }) {
                throw FerryError(code: .snapshotKeyColumn, message: "pipeline \(pipeline): a repair of \(record.table) names keys of another shape than the table's key (\(table.keyDescription))",
                                 context: [(LoggingKeys.table, "\(record.table)")], fix: "snapshot the whole table instead: ferry snapshot \(record.table)")
            }
            guard await handOut(.start(started, table)) else { return }
            let pending = chunks.filter { $0.deliveredAt == nil }
            let planComplete = record.planComplete || chunks.contains { $0.upper == nil }
            for (index, chunk) in pending.enumerated() {
                let last = planComplete && index == pending.count - 1
                guard await handOut(.chunk(Chunk(table: table, record: chunk, request: record.requestedMillis, last: last))) else { return }
            }
            if planComplete {
                if pending.isEmpty { guard await handOut(.finished(started)) else { return } }
                continue
            }
            var lower = chunks.last?.upper
            var index = (chunks.last?.index ?? -1) + 1
            while true {
                var upper: [String]?
                if !table.keyColumns.isEmpty {
                    let (sql, parameters) = table.boundaryQuery(after: lower, rows: job.settings.chunkRows)
                    let found = try await statement("planning the chunks of \(record.table)") { try await connection.query(sql, parameters) }
                    if !found.rows.isEmpty { upper = table.keyColumns.indices.map { found.text(0, $0) ?? "" } }
                }
                let chunk = SnapshotChunkRecord(table: record.table, index: index, lower: lower, upper: upper)
                // False: the table was asked for again meanwhile; the next round reads it anew.
                guard try await store.saveSnapshotChunk(chunk, pipeline: pipeline, requestedMillis: record.requestedMillis) else { break }
                guard await handOut(.chunk(Chunk(table: table, record: chunk, request: record.requestedMillis, last: upper == nil))) else { return }
                guard let upper else { break }
                lower = upper
                index += 1
            }
        }
    }

    /// A table not found under its name may have been renamed: the schema history knows its
    /// relation, and the snapshot's catalog that relation's name now, which is asked for instead
    /// (the stream's rename may come only with the table's next row change, or never).
    private func followRename(of name: TableName, connection: PostgresWireConnection) async throws {
        guard let history else { return }
        let known = try await history.store.schemaHistory(pipeline: pipeline).compactMap(PgDescribedTable.init).filter { $0.schema.name == name }
        for relation in Set(known.map(\.relationID)) {
            let found = try await statement("looking for \(name) under another name") {
                try await connection.query("SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
                                           [.text(String(relation))])
            }
            guard let namespace = found.text(0, 0), let table = found.text(0, 1) else { continue }
            let renamed = TableName(database: namespace, table: table)
            guard renamed != name, source.configuration.filter.includes(renamed) else { continue }
            try await store.requestSnapshot(pipeline: pipeline, tables: [renamed], reason: "renamed", atMillis: WallClock.millisecondsSinceEpoch())
            logger.notice("a table being snapshotted was renamed; it is read under its new name", metadata: [
                LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.table: "\(name)", "ferry.renamed_to": "\(renamed)",
            ])
        }
    }

    /// Locks the table for the round (`ACCESS SHARE`: nothing can rewrite it from now on) and
    /// checks that nothing rewrote it since the export: `ALTER … TYPE`, `TRUNCATE`, `VACUUM FULL`
    /// and the like write a new file the snapshot would read as empty (they are not MVCC-safe).
    private func lockUnlessRewritten(_ table: PgSnapshotTable, connection: PostgresWireConnection) async throws {
        let same = try await statement("locking \(table.name) for its snapshot") {
            try await connection.simpleQuery("LOCK TABLE \(table.quotedName) IN ACCESS SHARE MODE")
            return try await connection.query("SELECT (c.relfilenode = coalesce(pg_relation_filenode(c.oid), 0))::text FROM pg_class c WHERE c.oid = $1",
                                              [.text(String(table.relationID))])
        }
        guard same.text(0, 0) == "true" else {
            throw Interrupted(doing: "reading \(table.name)", cause: "the table was rewritten (or emptied) after the snapshot was taken")
        }
    }

    /// A table the snapshot describes otherwise than the schema history where the round stands
    /// (changed while no stream saw it: the stream meets a table's new description only with its
    /// next row change) has the difference delivered before its rows, and the snapshot's
    /// description kept from there; one the history has no description of gets it kept. A
    /// difference that is a guess (`PgTransactionMapper.compare`) asks for the table again, so
    /// rows delivered before this round are read anew.
    private func describe(_ table: PgSnapshotTable, inEffect: [UInt32: PgDescribedTable], at position: inout WALPosition,
                          deliver: (Transaction) async throws -> Void) async throws {
        guard let history else { return }
        let earlier = inEffect[table.relationID]
        if let earlier, earlier.schema.hasSameShape(as: table.schema) { return }
        if let earlier {
            let (changes, guessed) = PgTransactionMapper.compare(earlier.schema, table.schema)
            if !changes.isEmpty {
                position.snapshotStep += 1
                let at = SourcePosition.wal(position)
                let now = WallClock.millisecondsSinceEpoch()
                let event = PgTransactionMapper.schemaChangeEvent(changes, table: table.schema,
                                                                   source: ChangeSource(name: source.configuration.name, serverID: 0, gtid: nil, position: at, row: 0, timestampMillis: now))
                try await deliver(Transaction(gtid: nil, position: at, serverID: 0, timestampMillis: now, events: [event]))
            }
            if guessed {
                try await store.requestSnapshot(pipeline: pipeline, tables: [table.name], reason: "schema change", atMillis: WallClock.millisecondsSinceEpoch())
            }
        }
        try await history.keep([PgDescribedTable(relationID: table.relationID, schema: table.schema)], at: position)
    }

    /// Delivers the results in planned order at the snapshot steps after `base`, recording each
    /// chunk and table as it goes; returns the position of the last one delivered.
    private func consume(_ outboxes: [BoundedHandoff<Result>], after base: WALPosition,
                         deliver: (Transaction) async throws -> Void) async throws -> WALPosition {
        var position = base
        let inEffect = try await history?.inEffect(at: base) ?? [:]
        var waiting = Array(repeating: [Result](), count: outboxes.count)
        var turn = 0
        var records: [TableName: SnapshotTableRecord] = [:]
        var superseded: Set<TableName> = []
        func close(_ initial: SnapshotTableRecord, rows: Int?) async throws {
            var record = initial
            record.state = .done
            record.planComplete = true
            record.finishedMillis = WallClock.millisecondsSinceEpoch()
            try await store.saveSnapshotTable(record, pipeline: pipeline)
            if let rows {
                logger.notice("snapshot of table done", metadata: [LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.table: "\(record.table)", "ferry.rows": "\(rows)"])
            }
        }
        while true {
            let reader = turn % outboxes.count
            if waiting[reader].isEmpty {
                guard let taken = await outboxes[reader].take() else {
                    try Task.checkCancellation()
                    return position
                }
                waiting[reader] = taken
            }
            let result = waiting[reader].removeFirst()
            turn += 1
            switch result {
            case .job(.start(let record, let table)):
                guard try await store.saveSnapshotTable(record, pipeline: pipeline) else {
                    superseded.insert(record.table)
                    continue
                }
                records[record.table] = record
                try await describe(table, inEffect: inEffect, at: &position, deliver: deliver)
                logger.notice("snapshot of table starts", metadata: [
                    LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.table: "\(record.table)", "ferry.key": "\(record.key)",
                    "ferry.estimated_rows": "\(record.estimatedRows)", LoggingKeys.position: "\(position)",
                ])
            case .job(.finished(let record)):
                if !superseded.contains(record.table) { try await close(record, rows: nil) }
            case .job(.gone(let record)):
                try await close(record, rows: nil)
                logger.notice("snapshot of table skipped: it no longer exists on the source", metadata: [
                    LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.table: "\(record.table)",
                ])
            case .job(.chunk):
                continue
            case .rows(let chunk, let rows, let absent):
                let name = chunk.table.name
                guard !superseded.contains(name), let record = records[name] else { continue }
                position.snapshotStep += 1
                try await deliver(transaction(chunk, rows: rows, absent: absent, at: position, endsSnapshot: chunk.last && name == tables.last?.table))
                var delivered = chunk.record
                delivered.deliveredAt = .wal(position)
                delivered.rows = rows.count
                guard try await store.saveSnapshotChunk(delivered, pipeline: pipeline, requestedMillis: chunk.request) else {
                    superseded.insert(name)
                    continue
                }
                if chunk.last {
                    let total = try await store.snapshotChunks(pipeline: pipeline, table: name).reduce(0) { $0 + $1.rows }
                    try await close(record, rows: total)
                }
            }
        }
    }

    /// A chunk as a transaction of `read` changes (after deletes of a repair's absent keys); a
    /// table without a key is read whole, after a change that replaces whatever rows the targets
    /// had (nothing else could match them).
    private func transaction(_ chunk: Chunk, rows: [Row], absent: [Row], at position: WALPosition, endsSnapshot: Bool) -> Transaction {
        let at = SourcePosition.wal(position)
        let now = WallClock.millisecondsSinceEpoch()
        let name = chunk.table.name
        var events: [ChangeEvent] = []
        events.reserveCapacity(absent.count + rows.count + 1)
        func source() -> ChangeSource {
            ChangeSource(name: self.source.configuration.name, serverID: 0, gtid: nil, position: at, row: events.count, timestampMillis: now)
        }
        if chunk.table.keyColumns.isEmpty {
            events.append(ChangeEvent(operation: .ddl, table: name, schema: nil, before: nil, after: nil,
                                      statement: "TRUNCATE \(chunk.table.quotedName) /* ferry: replaced by the snapshot's rows that follow */",
                                      schemaChanges: [.replaceRows(name)], source: source()))
        }
        for key in absent {
            events.append(ChangeEvent(operation: .delete, table: name, schema: chunk.table.schema, before: key, after: nil, source: source()))
        }
        for row in rows {
            events.append(ChangeEvent(operation: .read, table: name, schema: chunk.table.schema, before: nil, after: row, source: source()))
        }
        if chunk.last, let index = events.indices.last, events[index].operation == .read {
            events[index].source.snapshotMark = endsSnapshot ? .last : .lastInTable
        }
        return Transaction(gtid: nil, position: at, serverID: 0, timestampMillis: now, events: events)
    }
}

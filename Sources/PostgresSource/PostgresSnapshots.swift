import FerryCore
import Logging
import PostgresLogical
import PostgresWire

extension PostgresSource {
    /// A pipeline's run with snapshots: the first start's initial snapshot, `ferry snapshot`
    /// requests, and after a restart the chunks not yet delivered — each a `PgSnapshotRound`
    /// placed in the stream where its exported snapshot stands — and the stream between them.
    /// Returns only under `snapshot: initial_only` (once nothing is left to read; each round is
    /// then a copy as of its own snapshot, and nothing streams), else runs until cancelled or it
    /// throws.
    public func run(_ follow: Follow, snapshot job: SnapshotJob, deliver: (Transaction) async throws -> Void) async throws {
        guard let slot = configuration.slot else {
            throw FerryError(code: .configSource, message: "source \(configuration.name): snapshots need a named replication slot", fix: "name one with ?slot=NAME")
        }
        // Where the stream and the snapshots' steps go on: the last position handed to `deliver`.
        var delivered = job.resume?.wal
        func deliverTracked(_ transaction: Transaction) async throws {
            try await deliver(transaction)
            if let position = transaction.position.wal { delivered = position }
        }
        // Rounds a schema change ended in a row (`interruptible`).
        var interruptedInARow = 0
        let slotExists = try await prepareSnapshots(job, slot: slot)
        // `initial_only` makes no slot of its own that nothing would read again: each round
        // exports through a temporary slot, and nothing streams.
        let streams = job.settings.mode != .initialOnly
        if streams && !slotExists && follow.createSlot {
            // The first start: the slot's own exported snapshot is the initial snapshot, read
            // before anything streams.
            let exporter = try await connect(replicationConnection, purpose: "replication")
            do {
                let (point, snapshotName) = try await createSlot(slot, temporary: false, exportingSnapshot: true, on: exporter)
                // A slot made again begins after the targets, or their position names another
                // WAL (a restored or new cluster): chunks placed before it would be skipped as seen.
                if let targets = job.resume?.wal, point <= targets.lsn {
                    throw FerryError(code: .sourcePostgresSlotLost,
                                     message: "source \(configuration.name): replication slot \(slot) was made again at \(point), before the targets' position \(targets.lsn): the server's WAL is not the one the targets followed (a restored or new cluster)",
                                     context: [("source", configuration.name), ("slot", slot)],
                                     fix: "delete the pipeline's state and its targets' tables (and ferry_offsets rows) and start it again")
                }
                try await follow.slotCreated?(point)
                delivered = WALPosition(lsn: point)
                let open = try await openSnapshotTables(job)
                if !open.isEmpty {
                    let round = PgSnapshotRound(source: self, job: job, tables: open, snapshotName: snapshotName,
                                                history: follow.schemaHistory, logger: logger)
                    delivered = try await interruptible(round, inARow: &interruptedInARow) {
                        try await round.run(imported: { await exporter.close() }, reach: { WALPosition(lsn: point) }, deliver: deliverTracked)
                    } ?? delivered
                }
            } catch {
                await exporter.close()
                throw error
            }
            await exporter.close()
        }
        while true {
            let open = try await openSnapshotTables(job)
            if !open.isEmpty {
                let exporter = try await connect(replicationConnection, purpose: "snapshot export")
                do {
                    let (point, snapshotName) = try await createSlot("ferry_snapshot_\(UInt32.random(in: 0 ... .max))", temporary: true,
                                                                     exportingSnapshot: true, on: exporter)
                    let round = PgSnapshotRound(source: self, job: job, tables: open, snapshotName: snapshotName,
                                                history: follow.schemaHistory, logger: logger)
                    delivered = try await interruptible(round, inARow: &interruptedInARow) {
                        try await round.run(imported: { await exporter.close() }, reach: {
                            if let at = delivered, at.lsn >= point { return at }
                            guard streams else { return WALPosition(lsn: point) }
                            var upToSnapshot = follow
                            upToSnapshot.createSlot = false
                            upToSnapshot.stopAtCurrent = false
                            upToSnapshot.resumeAfter = delivered?.lsn ?? follow.resumeAfter
                            upToSnapshot.resumeStep = delivered?.snapshotStep ?? follow.resumeStep
                            upToSnapshot.stopAt = point
                            if job.settings.rereadAfterSchemaChange { upToSnapshot.rereads = job }
                            _ = try await stream(upToSnapshot, deliver: deliverTracked)
                            // Nothing before the point: the snapshot's steps count from it.
                            return delivered ?? WALPosition(lsn: point)
                        }, deliver: deliverTracked)
                    } ?? delivered
                } catch {
                    await exporter.close()
                    throw error
                }
                await exporter.close()
                continue
            }
            guard streams else { return }
            var streaming = follow
            streaming.createSlot = false
            streaming.resumeAfter = delivered?.lsn ?? follow.resumeAfter
            streaming.resumeStep = delivered?.snapshotStep ?? follow.resumeStep
            streaming.stopWhen = { [job] in try await !job.store.snapshotTables(pipeline: job.pipeline).allSatisfy { $0.state == .done } }
            if job.settings.rereadAfterSchemaChange { streaming.rereads = job }
            if try await stream(streaming, deliver: deliverTracked) == .reachedStop { return }
        }
    }

    /// Runs a round and returns where it ended; nil when a schema change interrupted it: what
    /// it delivered stays delivered (`deliver` tracked it), and the next round reads the rest
    /// after a pause that doubles with each interruption in a row (1 s up to 30 s). The tenth in
    /// a row fails: what keeps ending rounds is not a passing `ALTER TABLE`.
    private func interruptible(_ round: PgSnapshotRound, inARow interrupted: inout Int,
                               _ body: () async throws -> WALPosition) async throws -> WALPosition? {
        do {
            let end = try await body()
            interrupted = 0
            return end
        } catch let interruption as PgSnapshotRound.Interrupted {
            interrupted += 1
            guard interrupted < Self.roundInterruptionLimit else {
                throw FerryError(code: .sourcePostgresStream,
                                 message: "source \(configuration.name): \(interrupted) snapshot rounds in a row ended on a changed table; the last: \(interruption)",
                                 context: [(LoggingKeys.pipeline, round.pipeline)],
                                 fix: "if the table's schema keeps changing, take it out of the snapshot until it settles; else check the statement and SQLSTATE above against the table on the source")
            }
            let pause = Duration.seconds(min(30, 1 << (interrupted - 1)))
            logger.warning("a schema change on a table being snapshotted stopped the round; a new round reads what is left once it is through", metadata: [
                LoggingKeys.pipeline: "\(round.pipeline)", LoggingKeys.error: "\(interruption)", LoggingKeys.retryIn: .seconds(Double(pause.components.seconds)),
            ])
            try await Task.sleep(for: pause)
            return nil
        }
    }

    static let roundInterruptionLimit = 10

    /// Asks for the tables to be read again whose existing rows a schema change gave values no
    /// row change carries, before the change is delivered (so a kill cannot lose the request):
    /// a retyped column (PostgreSQL converted every value, and a target that refuses the
    /// conversion empties the column), a column added with a default (existing rows hold it), and
    /// the new name of a renamed table whose snapshot was not finished (the old name is gone),
    /// and tables whose changes were `guessed` (a rename taken for a drop and an add, or the
    /// other way round, would leave values the source does not have).
    func rereadRewrittenTables(_ changes: [SchemaChange], guessed: Set<TableName>, job: SnapshotJob, sql: PostgresWireConnection) async throws {
        var tables = guessed.filter(configuration.filter.includes).sorted { $0.description < $1.description }
        var unfinished: Set<TableName>?
        for change in changes where configuration.filter.includes(change.table) {
            switch change {
            case .modifyColumn(let table, _, _):
                tables.append(table)
            case .addColumn(let table, let column, _):
                // Read now, the catalog may have moved on: a column no longer there is read again too.
                let found = try await setup("reading the default of \(table).\(column)") {
                    try await sql.query("""
                        SELECT (a.atthasdef OR a.atthasmissing)::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped
                        """, [.text(table.database), .text(table.table), .text(column)])
                }
                if found.text(0, 0) != "false" { tables.append(table) }
            case .renameTable(let from, let to):
                if unfinished == nil {
                    unfinished = Set(try await job.store.snapshotTables(pipeline: job.pipeline).filter { $0.state != .done }.map(\.table))
                }
                if unfinished?.contains(from) == true { tables.append(to) }
            default:
                continue
            }
        }
        var seen: Set<TableName> = []
        tables = tables.filter { seen.insert($0).inserted }
        guard !tables.isEmpty else { return }
        try await job.store.requestSnapshot(pipeline: job.pipeline, tables: tables, reason: "schema change", atMillis: WallClock.millisecondsSinceEpoch())
        logger.notice("a schema change rewrote existing rows, or renamed a table being read; the tables are read again", metadata: [
            LoggingKeys.pipeline: "\(job.pipeline)", "ferry.tables": "\(tables.map(\.description).joined(separator: ", "))",
        ])
    }

    /// Requests the initial snapshot at a first start (before any position can be saved, so a
    /// kill cannot lose the request), and opens again the chunks delivered after the resume
    /// position. Returns whether the slot exists.
    ///
    /// A pipeline that saved a position and streams needs its slot: one that is gone (or
    /// invalidated) lost the changes since, which only a snapshot of every table
    /// (`resnapshotAll`, after `snapshot: when_needed`) can make up for; that drops an
    /// invalidated slot, so the first-start path creates it again and exports the snapshot.
    private func prepareSnapshots(_ job: SnapshotJob, slot: String) async throws -> Bool {
        try await withSession { sql in
            try await checkPublication(sql)
            var condition = try await slotCondition(slot, sql: sql)
            // `initial_only` never reads the pipeline's slot.
            let streams = job.settings.mode != .initialOnly
            if streams && condition == .missing && job.resume != nil && !job.resnapshotAll {
                throw slotLost(slot, invalidated: false, targetsAt: job.resume?.wal?.lsn)
            }
            if streams && condition == .invalidated {
                // At a first start nothing was read from it: it is made again as a new slot.
                guard job.resnapshotAll || job.resume == nil else { throw slotLost(slot, invalidated: true, targetsAt: job.resume?.wal?.lsn) }
                try await dropSlot(slot, sql: sql)
                condition = .missing
            }
            let tables = try await job.store.snapshotTables(pipeline: job.pipeline)
            if job.resnapshotAll || (tables.isEmpty && job.resume == nil && job.settings.mode != .never) {
                let names = try await includedTables(sql)
                try await job.store.requestSnapshot(pipeline: job.pipeline, tables: names, reason: job.resnapshotAll ? "purged" : "initial",
                                                    atMillis: WallClock.millisecondsSinceEpoch())
                logger.notice("snapshot requested", metadata: ["ferry.source": "\(configuration.name)", "ferry.tables": "\(names.count)",
                                                                "ferry.reason": "\(job.resnapshotAll ? "the slot's changes were lost" : "first start")"])
            }
            for (table, chunks) in try await job.store.reopenChunks(deliveredAfter: job.resume, pipeline: job.pipeline) {
                logger.notice("snapshot chunks delivered after the resume position are read again",
                              metadata: [LoggingKeys.table: "\(table)", "ferry.chunks": "\(chunks)"])
            }
            return condition != .missing
        }
    }

    /// After the state store was lost while the sinks kept their positions: an initial snapshot
    /// that was running is not known to have finished, so every table is snapshotted again (rows
    /// are upserted by key, and a keyless table has its target rows replaced, so what the sinks
    /// already hold is harmless) — unless the pipeline never snapshots by itself, or some record
    /// of its snapshots survived.
    public func snapshotAfterLostState(_ job: SnapshotJob) async throws {
        guard job.settings.mode != .never, try await job.store.snapshotTables(pipeline: job.pipeline).isEmpty else { return }
        let tables = try await includedTables()
        try await job.store.requestSnapshot(pipeline: job.pipeline, tables: tables, reason: "state lost", atMillis: WallClock.millisecondsSinceEpoch())
        logger.warning("no record of the pipeline's snapshots survives: every table is snapshotted again so that none stays incomplete", metadata: [
            LoggingKeys.pipeline: "\(job.pipeline)", LoggingKeys.position: "\(job.resume.map { "\($0)" } ?? "")", "ferry.tables": "\(tables.count)",
        ])
    }

    /// The publication's tables this source's filter includes (what an initial snapshot reads).
    public func includedTables() async throws -> [TableName] {
        try await withSession { try await includedTables($0) }
    }

    private func includedTables(_ sql: PostgresWireConnection) async throws -> [TableName] {
        let listed = try await setup("listing the publication's tables") {
            try await sql.query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2",
                                [.text(configuration.publication)])
        }
        return listed.rows.indices.map { TableName(database: listed.text($0, 0) ?? "", table: listed.text($0, 1) ?? "") }
            .filter { configuration.filter.includes($0) }
    }

    private func openSnapshotTables(_ job: SnapshotJob) async throws -> [SnapshotTableRecord] {
        try await job.store.snapshotTables(pipeline: job.pipeline).filter { $0.state != .done }
    }
}

import FerryCore
import Foundation
import Logging
import MySQLSource
import PostgresLogical
import PostgresSource

/// The PostgreSQL source as the engine sees it: a slot of the pipeline's own, created at the
/// first start, whose exported snapshot is the initial snapshot; the stream resumes after the
/// targets' position and confirms to the slot only what every target holds. A lost connection is
/// opened again after the last delivered change.
struct PostgresTransactionSource: TransactionSource {
    let source: PostgresSource
    let pipeline: FerryConfiguration.Pipeline
    let configuration: FerryConfiguration
    let snapshotStore: (any SnapshotStore)?
    /// Keeps the tables' descriptions across streams, so a change made while none was open is
    /// applied (PostgreSQL's stream has no DDL to replay).
    let schemaHistory: (any SchemaHistoryStore)?
    let checkpoints: any CheckpointStore
    let logger: Logger

    /// `ferry_<pipeline>` unless the source URL names a slot (?slot=NAME).
    static func slotName(_ pipeline: String) -> String {
        "ferry_" + String(pipeline.lowercased().unicodeScalars.prefix(57).map { ("a"..."z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" })
    }

    /// The source as `pipeline` reads it: the URL's settings, and the pipeline's own slot
    /// unless the URL names one.
    static func settings(_ source: FerryConfiguration.Source, pipeline: String, filter: TableFilter = TableFilter()) throws -> PostgresSourceConfiguration {
        var settings = try PostgresSourceConfiguration(name: source.name, url: source.url, password: source.password, filter: filter)
        settings.slot = settings.slot ?? slotName(pipeline)
        return settings
    }

    func recoverLostState(sinksAt position: SourcePosition) async throws {
        guard let snapshotStore else { return }
        try await source.snapshotAfterLostState(SnapshotJob(pipeline: pipeline.name, settings: pipeline.snapshot, store: snapshotStore, resume: position))
    }

    func run(after position: SourcePosition?, deliver: @Sendable (Transaction) async throws -> Void) async throws {
        // Where a lost connection goes on: the last position delivered (a snapshot's step too).
        var resume: WALPosition?
        switch position {
        case .wal(let wal)?: resume = wal
        case nil: resume = nil
        case .binlog(let binlog)?:
            throw FerryError(code: .configInvalid,
                             message: "pipeline \(pipeline.name) saved a MySQL position (\(binlog)), which its PostgreSQL source cannot resume from",
                             context: [("pipeline", pipeline.name), ("file", configuration.file)],
                             fix: "the pipeline's source changed kind: give the pipeline a new name so it starts afresh", disposition: .fatal)
        }
        let safePosition: @Sendable () async throws -> LSN? = { [checkpoints, pipeline] in
            try await checkpoints.checkpoint(pipeline: pipeline.name)?.safePosition?.wal?.lsn
        }
        // The first start's slot position becomes the safe position before anything is
        // delivered: a kill before any sink records a position resumes there.
        let slotCreated: @Sendable (LSN) async throws -> Void = { [checkpoints, pipeline, logger] start in
            guard position == nil else { return }
            try await checkpoints.saveSafePosition(.wal(WALPosition(lsn: start)), pipeline: pipeline.name)
            logger.notice("first start: the source begins here", metadata: [LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.position: "\(start)"])
        }
        let documentRows = PostgresDocumentRows(source: source)
        let documents = PipelineDocuments(pipeline, rows: documentRows, isLostConnection: PostgresDocumentRows.isLostConnection, logger: logger)
        try await documents?.validate()
        var wait = Duration.seconds(1)
        // Set when the slot was found lost under `snapshot: when_needed`, for the next attempt
        // only: it requests every table (saved before the slot is made again), so an attempt cut
        // short finds the slot still gone or the request still open.
        var resnapshotAll = false
        // Documents read tables outside the stream: a new stream's table descriptions start
        // afresh, so what they knew of the tables is forgotten too.
        let forgetTables: @Sendable () async -> Void = { await documentRows.forgetAll() }
        while true {
            var follow = PostgresSource.Follow(createSlot: true, resumeAfter: resume?.lsn, safePosition: safePosition, slotCreated: slotCreated,
                                               streamStarted: forgetTables,
                                               schemaHistory: schemaHistory.map { PgSchemaHistory(store: $0, pipeline: pipeline.name) })
            follow.resumeStep = resume?.snapshotStep ?? 0
            let resnapshotting = resnapshotAll
            resnapshotAll = false
            func tracked(_ transaction: Transaction) async throws {
                try await deliver(try await documents?.extend(transaction) ?? transaction)
                if let wal = transaction.position.wal { resume = wal }
                wait = .seconds(1)
            }
            do {
                if let snapshotStore {
                    let job = SnapshotJob(pipeline: pipeline.name, settings: pipeline.snapshot, store: snapshotStore, resume: resume.map(SourcePosition.wal),
                                          resnapshotAll: resnapshotting)
                    try await Verify.whileSweeping(pipeline: pipeline, configuration: configuration, source: source, store: snapshotStore, logger: logger) {
                        try await source.run(follow, snapshot: job, deliver: tracked)
                    }
                } else {
                    try await source.run(follow, deliver: tracked)
                }
                return
            } catch let error as FerryError where error.code == .sourcePostgresSlotLost {
                guard pipeline.snapshot.mode == .whenNeeded, snapshotStore != nil, !resnapshotting else { throw error.adding("pipeline", pipeline.name) }
                logger.warning("the slot's changes are lost; snapshotting every table again (snapshot: when_needed)", metadata: [
                    LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.position: "\(resume.map(\.description) ?? "none")", LoggingKeys.error: .error(error),
                ])
                resnapshotAll = true
            } catch let error as FerryError where error.code == .sourcePostgresUnreachable && !Task.isCancelled {
                logger.warning("lost the PostgreSQL source; connecting again", metadata: [
                    LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.position: "\(resume.map(\.description) ?? "the slot's")",
                    LoggingKeys.error: .error(error), LoggingKeys.retryIn: .seconds(Double(wait.components.seconds)),
                ])
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(30))
            }
        }
    }
}

import Documents
import FerryCore
import Foundation
import Logging
import MySQLSource
import Pipeline

/// The MySQL source as the engine sees it: resume after a position, else start where configured;
/// snapshots run alongside when the pipeline has a snapshot store.
struct MySQLTransactionSource: TransactionSource {
    let source: MySQLSource
    var logEnd: SourceLogEnd? { source.logEnd }
    let pipeline: FerryConfiguration.Pipeline
    let configuration: FerryConfiguration
    let snapshotStore: (any SnapshotStore)?
    let checkpoints: any CheckpointStore
    let logger: Logger

    func recoverLostState(sinksAt position: SourcePosition) async throws {
        guard let snapshotStore else { return }
        try await source.snapshotAfterLostState(SnapshotJob(pipeline: pipeline.name, settings: pipeline.snapshot, store: snapshotStore, resume: position))
    }

    func run(after position: SourcePosition?, deliver plainDeliver: @Sendable (Transaction) async throws -> Void) async throws {
        let from: StartPosition
        switch position {
        case .binlog(let binlog)?: from = .coordinates(binlog.coordinates)
        case nil: from = pipeline.start
        case .wal(let wal)?:
            throw FerryError(code: .configInvalid,
                             message: "pipeline \(pipeline.name) saved a PostgreSQL position (\(wal.lsn)), which its MySQL source cannot resume from",
                             context: [("pipeline", pipeline.name), ("file", configuration.file)],
                             fix: "the pipeline's source changed kind: give the pipeline a new name so it starts afresh, or start it at a binlog position with `ferry run --from FILE:OFFSET`",
                             disposition: .fatal)
        }
        // The first start's "current" becomes the safe position before anything is delivered: a
        // kill before any sink records a position resumes there, instead of at a later "current"
        // that would skip what the first run read (and leave rows it snapshotted undeleted).
        let resolved: (SourcePosition) async throws -> Void = { [checkpoints, pipeline, logger] start in
            guard position == nil else { return }
            try await checkpoints.saveSafePosition(start, pipeline: pipeline.name)
            logger.notice("first start: the source begins here", metadata: [
                LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.position: "\(start)", "ferry.start": "\(pipeline.start)",
            ])
        }
        let documents = PipelineDocuments(pipeline, rows: MySQLDocumentRows(configuration: source.configuration, logger: logger),
                                          isLostConnection: MySQLSource.isLostConnection, logger: logger)
        try await documents?.validate()
        func deliver(_ transaction: Transaction) async throws {
            try await plainDeliver(try await documents?.extend(transaction) ?? transaction)
        }
        guard let snapshotStore else {
            _ = try await source.run(from: from, resolved: resolved) { transaction in try await deliver(transaction) }
            return
        }
        let job = SnapshotJob(pipeline: pipeline.name, settings: pipeline.snapshot, store: snapshotStore, resume: position)
        try await Verify.whileSweeping(pipeline: pipeline, configuration: configuration, source: source, store: snapshotStore, logger: logger) {
            do {
                _ = try await source.run(from: from, snapshot: job, resolved: resolved) { transaction in try await deliver(transaction) }
            } catch let error as FerryError where error.code == .sourceBinlogPurged && pipeline.snapshot.mode != .whenNeeded {
                throw error.adding("pipeline", pipeline.name)
            } catch let error as FerryError where error.code == .sourceBinlogPurged {
                logger.warning("the saved position is no longer on the source; snapshotting every table again (snapshot: when_needed)",
                               metadata: [LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.position: "\(position.map(\.description) ?? "none")"])
                var again = job
                again.resnapshotAll = true
                _ = try await source.run(from: .current, snapshot: again) { transaction in try await deliver(transaction) }
            }
        }
    }
}

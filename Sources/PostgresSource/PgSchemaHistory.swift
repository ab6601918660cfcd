import FerryCore
import PostgresLogical

/// A pipeline's schema history as its PostgreSQL source uses it: the tables' descriptions in
/// effect where a stream starts (so the stream sees a change made while none was open), and
/// each new description kept before the transaction that brought it is delivered (a kill in
/// between finds it; one after never meets that description as new again).
public struct PgSchemaHistory: Sendable {
    public let store: any SchemaHistoryStore
    public let pipeline: String

    public init(store: any SchemaHistoryStore, pipeline: String) {
        self.store = store
        self.pipeline = pipeline
    }

    /// The descriptions in effect at `start`; forgets those replaced at or before `horizon`
    /// (the slot's confirmed position: no stream starts before it again).
    func descriptions(at start: WALPosition, horizon: LSN) async throws -> [PgDescribedTable] {
        try await store.schemaHistory(pipeline: pipeline, at: .wal(start), forgettingBefore: .wal(WALPosition(lsn: min(horizon, start.lsn))))
            .compactMap(PgDescribedTable.init)
    }

    /// The descriptions in effect at `position`, by relation, forgetting nothing.
    func inEffect(at position: WALPosition) async throws -> [UInt32: PgDescribedTable] {
        let records = try await store.schemaHistory(pipeline: pipeline, at: .wal(position))
        return Dictionary(records.compactMap(PgDescribedTable.init).map { ($0.relationID, $0) }) { _, later in later }
    }

    func keep(_ tables: [PgDescribedTable], at position: WALPosition) async throws {
        guard !tables.isEmpty else { return }
        try await store.saveSchemaHistory(try tables.map { try $0.record(at: .wal(WALPosition(lsn: position.lsn, snapshotStep: position.snapshotStep))) }, pipeline: pipeline)
    }
}

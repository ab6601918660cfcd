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
    func descriptions(at start: LSN, horizon: LSN) async throws -> [PgDescribedTable] {
        try await store.schemaHistory(pipeline: pipeline, at: .wal(WALPosition(lsn: start)), forgettingBefore: .wal(WALPosition(lsn: min(horizon, start))))
            .compactMap(PgDescribedTable.init)
    }

    func keep(_ tables: [PgDescribedTable], at position: LSN) async throws {
        guard !tables.isEmpty else { return }
        try await store.saveSchemaHistory(try tables.map { try $0.record(at: .wal(WALPosition(lsn: position))) }, pipeline: pipeline)
    }
}

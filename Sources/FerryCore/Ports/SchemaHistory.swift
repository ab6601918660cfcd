/// One table's description as a source without DDL in its log (PostgreSQL) last gave it, from a
/// position on: what a stream starting later compares the table's next description with.
public struct SchemaHistoryRecord: Sendable, Codable, Equatable {
    /// The source's identity of the table, which a rename keeps (PostgreSQL: the relation's OID).
    public var table: String
    /// Where the description took effect.
    public var position: SourcePosition
    /// The description in the source's own form.
    public var description: String

    public init(table: String, position: SourcePosition, description: String) {
        self.table = table
        self.position = position
        self.description = description
    }
}

/// Where a pipeline keeps its tables' descriptions by position (the state store). A stream reads
/// them for where it starts, so a schema change made while no stream was open is still one.
public protocol SchemaHistoryStore: Sendable {
    /// Every description kept for the pipeline.
    func schemaHistory(pipeline: String) async throws -> [SchemaHistoryRecord]
    /// Keeps the descriptions (one of the same table at the same position is replaced).
    func saveSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws
    /// Forgets the descriptions.
    func forgetSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws
}

extension SchemaHistoryStore {
    /// The descriptions in effect at `position`: each table's latest at or before it. With a
    /// `horizon`, forgets the ones a later description replaced at or before it, where no stream
    /// can start before again (the source's log before it is gone).
    public func schemaHistory(pipeline: String, at position: SourcePosition, forgettingBefore horizon: SourcePosition? = nil) async throws -> [SchemaHistoryRecord] {
        let all = try await schemaHistory(pipeline: pipeline)
        var replaced: [SchemaHistoryRecord] = []
        var current: [SchemaHistoryRecord] = []
        for records in Dictionary(grouping: all, by: \.table).values {
            let sorted = records.sorted { $0.position < $1.position }
            if let inEffect = sorted.last(where: { $0.position <= position }) { current.append(inEffect) }
            if let horizon, let kept = sorted.last(where: { $0.position <= horizon }) {
                replaced += sorted.filter { $0.position < kept.position }
            }
        }
        if !replaced.isEmpty { try await forgetSchemaHistory(replaced, pipeline: pipeline) }
        return current.sorted { $0.table < $1.table }
    }
}

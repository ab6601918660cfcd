/// A target store that change events are delivered to.
///
/// The engine calls `open()` once, then `apply(_:)` with batches of whole source transactions in
/// source order, never concurrently. Replay must be harmless (DESIGN §2.3): a sink that receives a
/// transaction at or before its applied position must leave the target as it is.
public protocol Sink: Sendable {
    /// The user's name for the sink.
    var name: String { get }

    /// Prepares the target (creates the offsets table, checks the connection) and returns the
    /// position of the last transaction it durably applied, as recorded in the target itself —
    /// `nil` when the target has no record.
    func open() async throws -> BinlogPosition?

    /// Applies `transactions` in order. When it returns, their changes and the position of the last
    /// one are durable in the target (in one target transaction where the target has them).
    func apply(_ transactions: [Transaction]) async throws

    /// Releases connections and files.
    func close() async throws

    /// Drops any connection after an `apply` that did not finish in time, so the next attempt
    /// starts clean and the abandoned one can no longer commit.
    func reset() async
}

extension Sink {
    public func reset() async {}
}

/// Where a pipeline keeps its positions between runs.
public protocol CheckpointStore: Sendable {
    func checkpoint(pipeline: String) async throws -> PipelineCheckpoint?
    /// Records that every sink has applied everything at or before `position`.
    func saveSafePosition(_ position: BinlogPosition, pipeline: String) async throws
    /// Records a sink's last queued and last applied position.
    func saveSinkPositions(pipeline: String, sink: String, queued: BinlogPosition?, applied: BinlogPosition?) async throws
    /// Appends to the audit log (runs, operator actions).
    func audit(pipeline: String, action: String, detail: String) async throws
}

/// What a pipeline recorded about its progress.
public struct PipelineCheckpoint: Sendable, Equatable {
    public var safePosition: BinlogPosition?
    public var sinks: [String: SinkCheckpoint]

    public init(safePosition: BinlogPosition?, sinks: [String: SinkCheckpoint]) {
        self.safePosition = safePosition
        self.sinks = sinks
    }
}

public struct SinkCheckpoint: Sendable, Equatable {
    public var queued: BinlogPosition?
    public var applied: BinlogPosition?

    public init(queued: BinlogPosition?, applied: BinlogPosition?) {
        self.queued = queued
        self.applied = applied
    }
}

/// Anything that produces committed transactions in order, from a resume position.
public protocol TransactionSource: Sendable {
    /// Delivers transactions after `position` (or from the configured start when `nil`) until
    /// cancelled. `deliver` may suspend: that is backpressure.
    func run(after position: BinlogPosition?, deliver: @Sendable (Transaction) async throws -> Void) async throws
}

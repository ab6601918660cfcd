/// A target store that change events are delivered to: a `Sendable` factory of sessions that
/// holds only configuration.
///
/// Every connection to a target belongs to one session, and every session to one task (a sink
/// worker, or one lane of it): the engine opens a session, applies batches to it one after
/// another, and closes it. An attempt that does not finish in time is interrupted, awaited, and
/// its session thrown away; the retry runs on a new session (docs/architecture.md, one owner).
public protocol Sink: Sendable {
    /// The user's name for the sink.
    var name: String { get }

    /// A new session, not yet connected; the caller owns it and closes it.
    func makeSession() throws -> any SinkSession
}

/// One sink's connection(s) to its target, owned by one task at a time.
///
/// Replay must be harmless (docs/architecture.md, promise 3): a session that receives a transaction at or before its
/// applied position must leave the target as it is.
public protocol SinkSession: Sendable {
    /// The user's name for the sink.
    var name: String { get }

    /// Prepares the target (creates the offsets table, checks the connection) and returns the
    /// position of the last transaction it durably applied, as recorded in the target itself —
    /// `nil` when the target has no record.
    func open() async throws -> SourcePosition?

    /// Applies `transactions` in order. When it returns, their changes and the position of the last
    /// one are durable in the target (in one target transaction where the target has them; a
    /// target without transactions, whose rows carry versions so that a replay changes nothing,
    /// may record the position later). Never called while another call on the same session is
    /// running.
    func apply(_ transactions: [Transaction]) async throws

    /// Writes `transactions` like `apply`, but may return before they are durable: it then returns
    /// what makes them durable, which the engine runs while it writes the next batch on this
    /// session and awaits before it records the batch's position (a file's fsync need not stall
    /// the encoding of the next batch). That completion must be safe to run beside `write`,
    /// `close` and another session's `open`. The default applies and returns `nil`.
    func write(_ transactions: [Transaction]) async throws -> DurableCompletion?

    /// Releases connections and files.
    func close() async throws

    /// Closes the session's connections now, from any thread, so that an `open` or `apply` in
    /// progress fails promptly instead of waiting on a target that does not answer. Called when an
    /// attempt's deadline passes or its task is cancelled; the session is then closed and
    /// discarded. Sessions whose calls cannot hang (files, memory) need not implement it.
    func interrupt()
}

extension SinkSession {
    public func interrupt() {}

    public func write(_ transactions: [Transaction]) async throws -> DurableCompletion? {
        try await apply(transactions)
        return nil
    }
}

/// Finishes making a written batch durable (`SinkSession.write`).
public typealias DurableCompletion = @Sendable () async throws -> Void

/// A sink that holds no connection: its one instance serves as every session.
public protocol StatelessSink: Sink, SinkSession {}

extension StatelessSink {
    public func makeSession() -> any SinkSession { self }
}

/// Makes a sink's sessions from its configuration.
public struct SinkFactory: Sink {
    public let name: String
    private let make: @Sendable () throws -> any SinkSession

    public init(name: String, make: @escaping @Sendable () throws -> any SinkSession) {
        self.name = name
        self.make = make
    }

    public func makeSession() throws -> any SinkSession { try make() }
}

/// A change a sink rejected for good, with the cause and where it came from (docs/architecture.md, promise 6).
public struct DeadLetter: Sendable {
    public var pipeline: String
    /// The sink that rejected the change.
    public var sink: String
    public var event: ChangeEvent
    public var error: FerryError

    public init(pipeline: String, sink: String, event: ChangeEvent, error: FerryError) {
        self.pipeline = pipeline
        self.sink = sink
        self.event = event
        self.error = error
    }
}

/// A sink that can keep rejected changes (`error_policy: dead-letter`): one session, owned by the
/// pipeline, that its sink workers hand letters to — the one session with several callers, so an
/// implementation serializes calls and does not suspend inside one (an actor
/// method without `await`), so one worker's letters are never interleaved with another's.
public protocol DeadLetterSink: SinkSession {
    /// Stores the letters durably before returning.
    func deadLetter(_ letters: [DeadLetter]) async throws
}

/// Where a pipeline keeps its positions between runs.
public protocol CheckpointStore: Sendable {
    func checkpoint(pipeline: String) async throws -> PipelineCheckpoint?
    /// Records that every sink has applied everything at or before `position`.
    func saveSafePosition(_ position: SourcePosition, pipeline: String) async throws
    /// Records a sink's last queued and last applied position.
    func saveSinkPositions(pipeline: String, sink: String, queued: SourcePosition?, applied: SourcePosition?) async throws
    /// Appends to the audit log (runs, operator actions).
    func audit(pipeline: String, action: String, detail: String) async throws
    /// Replaces the pipeline's live figures (read by `ferry status`).
    func saveProgress(_ progress: PipelineProgress) async throws
    /// Forgets a sink's pending rewind once the sink has applied from it.
    func clearRewind(pipeline: String, sink: String) async throws
}

/// What a pipeline recorded about its progress.
public struct PipelineCheckpoint: Sendable, Equatable {
    public var safePosition: SourcePosition?
    public var sinks: [String: SinkCheckpoint]
    /// Positions operators asked sinks to replay from (`ferry sink rewind`), by sink.
    public var rewinds: [String: SourcePosition]

    public init(safePosition: SourcePosition?, sinks: [String: SinkCheckpoint], rewinds: [String: SourcePosition] = [:]) {
        self.safePosition = safePosition
        self.sinks = sinks
        self.rewinds = rewinds
    }
}

/// A running pipeline's live figures, saved about once a second.
public struct PipelineProgress: Sendable, Codable, Equatable {
    public struct SinkProgress: Sendable, Codable, Equatable {
        public var name: String
        /// Changes applied in this run.
        public var eventsApplied: UInt64
        /// Commit time of the last applied transaction, ms since the epoch.
        public var appliedCommitMillis: Int64?
        /// Changes per second applied over the last few seconds.
        public var eventsPerSecond: Double
        /// Changes read from the source (or buffered on disk by an earlier run) not yet applied.
        public var lagEvents: UInt64
        /// The position after the last transaction applied in this run.
        public var appliedPosition: SourcePosition?
        /// Bytes of source log between the applied position and the end the stream has seen.
        public var lagBytes: UInt64?

        public init(name: String, eventsApplied: UInt64, appliedCommitMillis: Int64?, eventsPerSecond: Double, lagEvents: UInt64,
                    appliedPosition: SourcePosition? = nil, lagBytes: UInt64? = nil) {
            self.name = name
            self.eventsApplied = eventsApplied
            self.appliedCommitMillis = appliedCommitMillis
            self.eventsPerSecond = eventsPerSecond
            self.lagEvents = lagEvents
            self.appliedPosition = appliedPosition
            self.lagBytes = lagBytes
        }
    }

    public var pipeline: String
    /// `memory` or `disk`.
    public var buffer: String
    /// Bytes held by the buffer (in memory, or records on disk).
    public var bufferBytes: Int
    /// Changes read from the source in this run.
    public var eventsRead: UInt64
    /// The position after the last transaction read from the source.
    public var readPosition: String?
    /// Commit time of the last transaction read, ms since the epoch.
    public var readCommitMillis: Int64?
    public var sinks: [SinkProgress]
    /// Changes read per table (`db.table`) in this run; nil in figures saved by older versions.
    public var tables: [String: UInt64]?
    /// When these figures were taken, ms since the epoch.
    public var updatedMillis: Int64
    /// The end of the source's log as the stream has seen it.
    public var sourceEnd: SourcePosition?
    /// The pipeline's safe position as this run last saved it.
    public var safePosition: SourcePosition?

    public init(pipeline: String, buffer: String, bufferBytes: Int, eventsRead: UInt64, readPosition: String?, readCommitMillis: Int64?,
                sinks: [SinkProgress], tables: [String: UInt64]? = nil, updatedMillis: Int64, sourceEnd: SourcePosition? = nil,
                safePosition: SourcePosition? = nil) {
        self.pipeline = pipeline
        self.buffer = buffer
        self.bufferBytes = bufferBytes
        self.eventsRead = eventsRead
        self.readPosition = readPosition
        self.readCommitMillis = readCommitMillis
        self.sinks = sinks
        self.tables = tables
        self.updatedMillis = updatedMillis
        self.sourceEnd = sourceEnd
        self.safePosition = safePosition
    }
}

public struct SinkCheckpoint: Sendable, Equatable {
    public var queued: SourcePosition?
    public var applied: SourcePosition?

    public init(queued: SourcePosition?, applied: SourcePosition?) {
        self.queued = queued
        self.applied = applied
    }
}

/// Anything that produces committed transactions in order, from a resume position.
public protocol TransactionSource: Sendable {
    /// Delivers transactions after `position` (or from the configured start when `nil`) until
    /// cancelled. `deliver` may suspend: that is backpressure.
    func run(after position: SourcePosition?, deliver: @Sendable (Transaction) async throws -> Void) async throws
    /// The log's end as the running stream sees it, for live lag figures; `nil` when the source
    /// cannot tell.
    var logEnd: SourceLogEnd? { get }
    /// Called before `run` when the state store knew nothing of the pipeline while its sinks hold
    /// positions (`sinksAt`, the lowest): the state store was lost or replaced, and with it the
    /// record of any snapshot in progress. The source makes sure no snapshot row stays missing.
    func recoverLostState(sinksAt position: SourcePosition) async throws
}

extension TransactionSource {
    public var logEnd: SourceLogEnd? { nil }

    public func recoverLostState(sinksAt position: SourcePosition) async throws {}
}

import FerryCore

/// What the control plane reads and steers; `ferry run` provides it (FerryApp), tests may too.
/// Every mutating call names who asked (`actor`, a token's name) for the audit log.
public protocol ControlBackend: Sendable {
    /// Every pipeline's latest figures (refreshed about once a second, not per request).
    func pipelines() async -> [PipelineView]
    func pause(pipeline: String, actor: String) async throws
    func resume(pipeline: String, actor: String) async throws
    func restart(pipeline: String, actor: String) async throws
    /// Starts a snapshot of `tables` (`db.table`; empty: every table of the pipeline); returns them.
    func snapshot(pipeline: String, tables: [String], actor: String) async throws -> [String]
    /// Rewinds one sink to `position` (`file:offset`) and restarts the pipeline.
    func rewind(pipeline: String, sink: String, position: String, actor: String) async throws
    /// Newest first; all pipelines when `pipeline` is nil.
    func auditLog(pipeline: String?, limit: Int) async throws -> [AuditEntryView]
    /// Reads the configuration file again and applies what changed (pipelines added, removed or
    /// changed; the rest untouched); returns what it did. An invalid file is refused
    /// (`ControlRequestError.badRequest`) and the running configuration stays.
    func reload(actor: String) async throws -> String
    /// The effective configuration as JSON, secrets replaced by `"<redacted>"`.
    func redactedConfiguration() -> String
    /// The token whose SHA-256 is `hash`, if one exists.
    func token(hash: String) async throws -> APIToken?
    /// Ready: every pipeline is running or paused (not failed, not starting).
    func isReady() async -> Bool
    /// The cluster as this node sees it; nil when ferry runs alone (no `cluster:`).
    func cluster() async throws -> ClusterView?
}

extension ControlBackend {
    public func cluster() async throws -> ClusterView? { nil }
}

/// A request the backend refuses; becomes a 4xx response with this message.
public struct ControlRequestError: Error, Sendable {
    public enum Kind: Sendable { case badRequest, notFound, conflict }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// One pipeline as the API and the web page show it.
public struct PipelineView: Codable, Sendable, Equatable {
    public struct SinkView: Codable, Sendable, Equatable {
        public var name: String
        public var appliedPosition: String?
        public var lagBytes: UInt64?
        public var lagEvents: UInt64?
        public var lagSeconds: Double?
        public var eventsPerSecond: Double?

        public init(name: String, appliedPosition: String?, lagBytes: UInt64?, lagEvents: UInt64?, lagSeconds: Double?, eventsPerSecond: Double?) {
            self.name = name
            self.appliedPosition = appliedPosition
            self.lagBytes = lagBytes
            self.lagEvents = lagEvents
            self.lagSeconds = lagSeconds
            self.eventsPerSecond = eventsPerSecond
        }
    }

    public struct TableView: Codable, Sendable, Equatable {
        public var name: String
        /// Changes read from the source for this table since the pipeline started.
        public var changes: UInt64

        public init(name: String, changes: UInt64) {
            self.name = name
            self.changes = changes
        }
    }

    public struct SnapshotView: Codable, Sendable, Equatable {
        public var table: String
        public var state: String
        /// Why it runs: `initial`, `requested`, `repair`, `schema change`, `state lost`, …
        public var reason: String
        public var rowsDone: Int
        public var estimatedRows: Int
        public var chunksDone: Int
        public var chunksPlanned: Int
        /// 0…1.
        public var fraction: Double
        public var rowsPerSecond: Double?
        public var secondsLeft: Double?

        public init(table: String, state: String, reason: String, rowsDone: Int, estimatedRows: Int, chunksDone: Int, chunksPlanned: Int,
                    fraction: Double, rowsPerSecond: Double?, secondsLeft: Double?) {
            self.table = table
            self.state = state
            self.reason = reason
            self.rowsDone = rowsDone
            self.estimatedRows = estimatedRows
            self.chunksDone = chunksDone
            self.chunksPlanned = chunksPlanned
            self.fraction = fraction
            self.rowsPerSecond = rowsPerSecond
            self.secondsLeft = secondsLeft
        }
    }

    /// How long the source keeps the oldest binlog file the pipeline still needs.
    public struct RetentionView: Codable, Sendable, Equatable {
        public var neededFile: String
        public var expireSeconds: Double
        /// Until the server may purge `neededFile`; 0: it may already.
        public var secondsLeft: Double
        /// Below the warning threshold (half the expiry, at most six hours).
        public var low: Bool

        public init(neededFile: String, expireSeconds: Double, secondsLeft: Double, low: Bool) {
            self.neededFile = neededFile
            self.expireSeconds = expireSeconds
            self.secondsLeft = secondsLeft
            self.low = low
        }
    }

    /// A PostgreSQL source: the WAL the server keeps for the pipeline's slot.
    public struct WALRetentionView: Codable, Sendable, Equatable {
        public var slot: String
        public var retainedBytes: Int64
        /// `max_slot_wal_keep_size`; absent when unlimited.
        public var limitBytes: Int64?
        public var walStatus: String
        /// Past half the limit, or no longer reserved.
        public var high: Bool

        public init(slot: String, retainedBytes: Int64, limitBytes: Int64?, walStatus: String, high: Bool) {
            self.slot = slot
            self.retainedBytes = retainedBytes
            self.limitBytes = limitBytes
            self.walStatus = walStatus
            self.high = high
        }
    }

    public struct ErrorView: Codable, Sendable, Equatable {
        /// ISO 8601, UTC.
        public var at: String
        public var level: String
        public var message: String
        public var code: String?
        public var position: String?
        public var table: String?
        public var sink: String?

        public init(at: String, level: String, message: String, code: String?, position: String?, table: String?, sink: String?) {
            self.at = at
            self.level = level
            self.message = message
            self.code = code
            self.position = position
            self.table = table
            self.sink = sink
        }
    }

    public var name: String
    /// `starting`, `running`, `paused`, `stopping`, `stopped` or `failed`; in cluster mode also
    /// `unowned` (between owners: no node runs it this moment).
    public var state: String
    public var source: String
    /// The source's current end of log.
    public var sourcePosition: String?
    /// The position after the last transaction read.
    public var readPosition: String?
    /// Everything up to here is applied by every sink.
    public var safePosition: String?
    /// `nil` while the safe position is in the source's current file, or binlogs never expire.
    public var binlogRetention: RetentionView?
    /// A PostgreSQL source's slot; `nil` for other sources, or before the slot exists.
    public var walRetention: WALRetentionView?
    public var buffer: String
    public var bufferBytes: Int?
    public var eventsRead: UInt64
    /// Changes per second: the fastest sink's rate (every sink applies the same changes).
    public var eventsPerSecond: Double
    /// `eventsPerSecond` once a second over the last minute, oldest first.
    public var eventsPerSecondHistory: [Double]
    /// The largest lag of any sink, in seconds.
    public var lagSeconds: Double?
    public var sinks: [SinkView]
    public var tables: [TableView]
    public var snapshots: [SnapshotView]
    /// Recent warnings and errors, newest first.
    public var errors: [ErrorView]
    /// Cluster mode: the node that runs the pipeline (absent while none does).
    public var owner: String?
    /// Cluster mode: the owner's claim; a newer claim fences every write of an older one.
    public var epoch: Int64?

    public init(name: String, state: String, source: String, sourcePosition: String?, readPosition: String?, safePosition: String?, buffer: String,
                bufferBytes: Int?, eventsRead: UInt64, eventsPerSecond: Double, eventsPerSecondHistory: [Double], lagSeconds: Double?,
                sinks: [SinkView], tables: [TableView],
                snapshots: [SnapshotView], errors: [ErrorView], binlogRetention: RetentionView? = nil, walRetention: WALRetentionView? = nil) {
        self.name = name
        self.binlogRetention = binlogRetention
        self.walRetention = walRetention
        self.state = state
        self.source = source
        self.sourcePosition = sourcePosition
        self.readPosition = readPosition
        self.safePosition = safePosition
        self.buffer = buffer
        self.bufferBytes = bufferBytes
        self.eventsRead = eventsRead
        self.eventsPerSecond = eventsPerSecond
        self.eventsPerSecondHistory = eventsPerSecondHistory
        self.lagSeconds = lagSeconds
        self.sinks = sinks
        self.tables = tables
        self.snapshots = snapshots
        self.errors = errors
    }
}

/// An audit entry as the API shows it: the record itself.
public typealias AuditEntryView = AuditRecord

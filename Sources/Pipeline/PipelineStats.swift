import FerryCore
import Foundation

/// Counters of one pipeline run, updated on the hot path without an actor hop and read about
/// once a second: kept in memory for the running process's own status page and API, and saved
/// for `ferry status` in another process.
final class PipelineStats: @unchecked Sendable {
    private struct SinkCounters {
        /// Changes written (as the sink's rules made them).
        var events: UInt64 = 0
        /// Changes read from the source that the sink is past, whatever its rules made of them.
        var covered: UInt64 = 0
        var commitMillis: Int64?
        var position: SourcePosition?
        /// (time, events) samples of the last few seconds, for the rate.
        var samples: [(at: ContinuousClock.Instant, events: UInt64)] = []
    }

    private let lock = NSLock()
    private let pipeline: String
    private let bufferKind: String
    private let order: [String]
    private var eventsRead: UInt64 = 0
    /// Changes each sink had still to apply from an earlier run (disk buffer).
    private var backlog: [String: UInt64] = [:]
    private var readPosition: SourcePosition?
    private var readCommitMillis: Int64?
    private var tables: [TableName: UInt64] = [:]
    private var sinks: [String: SinkCounters]
    private var safePosition: SourcePosition?
    private let logEnd: SourceLogEnd?
    private let metrics: PipelineMetrics
    /// The rate is taken over this window.
    static let window: Duration = .seconds(5)

    init(pipeline: String, buffer: BufferSetting, sinks: [String], logEnd: SourceLogEnd?) {
        self.pipeline = pipeline
        self.logEnd = logEnd
        if case .disk = buffer { bufferKind = "disk" } else { bufferKind = "memory" }
        order = sinks
        self.sinks = Dictionary(uniqueKeysWithValues: sinks.map { ($0, SinkCounters()) })
        metrics = PipelineMetrics(pipeline: pipeline)
    }

    func carryOver(_ backlog: [String: UInt64]) {
        lock.withLock { self.backlog = backlog }
    }

    func read(_ transaction: Transaction) {
        metrics.read(transaction)
        lock.lock()
        eventsRead += UInt64(transaction.events.count)
        readPosition = transaction.position
        readCommitMillis = transaction.timestampMillis
        PipelineMetrics.forEachTableRun(transaction.events) { table, count in tables[table, default: 0] += UInt64(count) }
        lock.unlock()
    }

    /// A sink finished the transactions `read` (as the buffer gave them), writing `written` (as
    /// its rules made them — more, fewer or no changes). Lag counts in `read`: a sink whose rules
    /// drop or split changes is caught up once it is past what was read.
    func applied(sink: String, read: [Transaction], written: [Transaction], duration: Duration) {
        if !written.isEmpty { metrics.applied(sink: sink, written, duration: duration) }
        let covered = read.reduce(0) { $0 + UInt64($1.events.count) }
        let events = written.reduce(0) { $0 + UInt64($1.events.count) }
        lock.lock()
        sinks[sink, default: SinkCounters()].events += events
        sinks[sink]!.covered += covered
        sinks[sink]!.commitMillis = read.last?.timestampMillis
        sinks[sink]!.position = read.last?.position
        lock.unlock()
    }

    /// Sink positions recorded before any batch of this run (a sink's own record, a rewind).
    func recorded(sink: String, _ position: SourcePosition) {
        lock.withLock { sinks[sink, default: SinkCounters()].position = position }
    }

    func saved(safe position: SourcePosition) {
        lock.withLock { safePosition = position }
    }

    func progress(bufferBytes: Int, now: ContinuousClock.Instant = .now) -> PipelineProgress {
        lock.lock()
        defer { lock.unlock() }
        var reports: [PipelineProgress.SinkProgress] = []
        for name in order {
            var counters = sinks[name]!
            counters.samples.append((now, counters.events))
            counters.samples.removeAll { now - $0.at > Self.window }
            let first = counters.samples.first!
            let seconds = Double((now - first.at).components.seconds) + Double((now - first.at).components.attoseconds) / 1e18
            let rate = seconds > 0 ? Double(counters.events - first.events) / seconds : 0
            sinks[name] = counters
            let owed = eventsRead + (backlog[name] ?? 0)
            // Caught up is a matter of positions: the sink is at or past the last transaction read.
            let caughtUp = readPosition.map { read in counters.position.map { $0 >= read } ?? false } ?? (owed == counters.covered)
            reports.append(PipelineProgress.SinkProgress(name: name, eventsApplied: counters.events, appliedCommitMillis: counters.commitMillis,
                                                         eventsPerSecond: rate, lagEvents: caughtUp ? 0 : owed > counters.covered ? owed - counters.covered : 0,
                                                         appliedPosition: counters.position,
                                                         lagBytes: counters.position.flatMap { logEnd?.bytes(after: $0) }))
        }
        return PipelineProgress(pipeline: pipeline, buffer: bufferKind, bufferBytes: bufferBytes, eventsRead: eventsRead,
                                readPosition: readPosition?.description, readCommitMillis: readCommitMillis, sinks: reports,
                                tables: Dictionary(uniqueKeysWithValues: tables.map { ($0.key.description, $0.value) }), updatedMillis: Int64(Date().timeIntervalSince1970 * 1000),
                                sourceEnd: logEnd?.position, safePosition: safePosition)
    }
}

/// The latest figures of a pipeline's run, published about once a second by the run and read by
/// the control plane in the same process (no state store round trip, no source connection).
public final class LiveProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var latest: PipelineProgress?

    public init() {}

    func publish(_ progress: PipelineProgress) {
        lock.withLock { latest = progress }
    }

    /// `nil` until the first run published its figures.
    public var progress: PipelineProgress? { lock.withLock { latest } }
}

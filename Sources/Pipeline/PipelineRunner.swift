import DiskLog
import FerryCore
import Foundation
import Logging
import Rules

/// Where a pipeline buffers transactions between the source and the sinks.
public enum BufferSetting: Sendable {
    /// Bounded by `PipelineConfiguration.bufferBytes`; a full buffer stops the source.
    case memory
    /// A segmented log in `directory`; each sink reads it at its own pace.
    case disk(directory: String, options: DiskLog.Options)
}

/// What happens to a change a sink rejects for good.
public enum ErrorPolicy: Sendable {
    /// Stop the pipeline with the error.
    case stop
    /// Hand the change, with its cause, to this sink and go on.
    case deadLetter(any DeadLetterSink)
}

/// How one pipeline runs.
public struct PipelineConfiguration: Sendable {
    public var name: String
    public var buffer: BufferSetting
    /// Bound of the memory buffer in bytes. Default 32 MiB.
    public var bufferBytes: Int
    /// Most transactions a sink applies in one batch. Default 500.
    public var batchTransactions: Int
    /// Most changes in one batch, unless a single transaction has more. Default 10,000.
    public var batchEvents: Int
    /// A batch not applied within this many seconds counts as a transient failure: the attempt is
    /// interrupted and awaited, its session closed, and the batch retried on a new one. Default 300.
    public var applyTimeoutSeconds: Double
    /// The clock deadlines run on. Default `ContinuousClock()` (monotonic).
    public var clock: any Clock<Duration>
    public var retry: RetryPolicy
    public var errorPolicy: ErrorPolicy
    /// Shapes each transaction before it is buffered (column selection, renames, key overrides).
    public var transform: TransactionTransform
    /// The pipeline's `rules:`, applied to each batch a sink is about to write.
    public var rules: RuleSet
    /// How often live figures are saved for `ferry status`. Default 1 s.
    public var progressInterval: Duration
    /// After a stop, how long sinks may take to drain (memory) or finish their batch (disk) before
    /// a sink still retrying is abandoned; its changes are applied on the next start. Default 30 s.
    public var drainTimeout: Duration
    /// How often at most a sink's target is written for transactions that carry no change for it
    /// (tables the pipeline filters out, changes its rules drop): the state store records their
    /// position at once, the target's own record with the next change or after this long. A MySQL
    /// sink on the source's own server would otherwise write its offset for every offset it wrote.
    public var positionOnlyInterval: Duration = .seconds(30)
    /// How long this process may still write to targets (cluster mode: until shortly before its
    /// etcd lease can expire); nil for no limit. Every open and apply ends by then — its
    /// connection closed — and none starts once it is zero.
    public var writeWindow: (@Sendable () -> Duration?)? = nil

    public init(name: String, buffer: BufferSetting = .memory, bufferBytes: Int = 32 << 20, batchTransactions: Int = 500,
                batchEvents: Int = 10_000, applyTimeoutSeconds: Double = 300, retry: RetryPolicy = RetryPolicy(),
                errorPolicy: ErrorPolicy = .stop, transform: TransactionTransform = TransactionTransform(), rules: RuleSet = RuleSet(),
                progressInterval: Duration = .seconds(1), drainTimeout: Duration = .seconds(30), clock: any Clock<Duration> = ContinuousClock()) {
        self.clock = clock
        self.name = name
        self.buffer = buffer
        self.bufferBytes = bufferBytes
        self.batchTransactions = batchTransactions
        self.batchEvents = batchEvents
        self.applyTimeoutSeconds = applyTimeoutSeconds
        self.retry = retry
        self.errorPolicy = errorPolicy
        self.transform = transform
        self.rules = rules
        self.progressInterval = progressInterval
        self.drainTimeout = drainTimeout
    }
}

/// Runs one pipeline: source → buffer → every sink, with durable positions.
///
/// On start every sink reports what it has applied (from the target itself where it can); the
/// source resumes after the lowest of those (or, with a disk buffer, after the newest buffered
/// transaction), and each sink skips what it already has — so a crash at any moment neither loses
/// nor doubles a change. The safe position (everything applied by every sink) is written to the
/// checkpoint store only after the sinks made it durable.
public struct PipelineRunner: Sendable {
    public let configuration: PipelineConfiguration
    let source: any TransactionSource
    let sinks: [any Sink]
    let store: any CheckpointStore
    let logger: Logger
    /// The figures of the current (or last) run, in memory for this process's status page and API.
    public let live = LiveProgress()

    /// The pipeline's sinks, in configuration order.
    public var sinkList: [any Sink] { sinks }
    /// The source's end of log as the stream saw it (fed from the source while the pipeline is idle).
    public var sourceLogEnd: SourceLogEnd? { source.logEnd }

    public init(configuration: PipelineConfiguration, source: any TransactionSource, sinks: [any Sink],
                store: any CheckpointStore, logger: Logger) {
        self.configuration = configuration
        self.source = source
        self.sinks = sinks
        self.store = store
        self.logger = logger
    }

    /// Runs until `stop` fires (then drains and returns) or an error stops the pipeline.
    public func run(stop: StopSignal) async throws {
        let name = configuration.name
        var metadata = logger
        metadata[metadataKey: LoggingKeys.pipeline] = "\(name)"
        let logger = metadata
        let checkpoint = try await store.checkpoint(pipeline: name)
        let deadLetters: (any DeadLetterSink)?
        if case .deadLetter(let session) = configuration.errorPolicy { deadLetters = session } else { deadLetters = nil }
        // A stop (pause, restart, SIGTERM) while a target is still unreachable ends the opening.
        guard let opening = try await Self.untilStopped(stop, { try await openSinks(checkpoint: checkpoint, deadLetters: deadLetters, logger: logger) })
        else {
            try? await deadLetters?.close()
            try await store.audit(pipeline: name, action: "stop", detail: "stopped while opening its sinks")
            return
        }
        var applied = opening.applied
        let opened = opening.sessions
        func closeOpened() async {
            for session in opened.values { try? await session.close() }
            try? await deadLetters?.close()
        }
        var rewound: Set<String> = []
        for (sink, position) in checkpoint?.rewinds ?? [:] where sinks.contains(where: { $0.name == sink }) {
            if let current = applied[sink], position > current {
                await closeOpened()
                throw FerryError(code: .pipelineRewindAhead,
                                 message: "sink \(sink) was asked to rewind to \(position.place), after what it has applied (\(current.place))",
                                 context: [("pipeline", name), ("sink", sink)],
                                 fix: "give `ferry sink rewind` a position at or before \(current.place)")
            }
            applied[sink] = position
            rewound.insert(sink)
            logger.notice("sink rewound", metadata: [LoggingKeys.sink: "\(sink)", LoggingKeys.position: "\(position)"])
        }
        let resume = Self.resumePosition(applied: applied, sinks: sinks.map(\.name), safe: checkpoint?.safePosition)
        // From here each worker owns its session and closes it when it ends.
        do {
            if checkpoint?.safePosition == nil, let resume {
                logger.warning("the state store has no record of this pipeline but its sinks hold positions: it was lost or replaced; resuming where the sinks are",
                               metadata: [LoggingKeys.pipeline: "\(name)", LoggingKeys.position: "\(resume)"])
                try await store.audit(pipeline: name, action: "state-recovered", detail: "state store had no record; sinks resume after \(resume)")
                try await source.recoverLostState(sinksAt: resume)
            }
            try await stream(resume: resume, applied: applied, safe: checkpoint?.safePosition, rewound: rewound, opened: opened,
                             stop: stop, logger: logger)
        } catch {
            // Sessions whose workers never started (the buffer could not be opened) are still
            // the runner's; closing one a worker already closed does nothing.
            await closeOpened()
            throw error
        }
        try? await deadLetters?.close()
        try await store.audit(pipeline: name, action: "stop", detail: "drained and stopped")
    }

    /// What opening the sinks found: each sink's applied position (from the state store, else
    /// from the target) and the sessions opened to learn it.
    struct Opening: Sendable {
        var applied: [String: SourcePosition] = [:]
        var sessions: [String: any SinkSession] = [:]

        func close() async {
            for session in sessions.values { try? await session.close() }
        }
    }

    /// A sink the state store has a position for opens in its own worker, so a target that is
    /// down at start holds up only itself; the target's own record can only be newer. A sink
    /// without one (say, the state file was lost) must say where it is before the source starts:
    /// its session is opened here and handed to its worker. The dead-letter session is opened too.
    private func openSinks(checkpoint: PipelineCheckpoint?, deadLetters: (any DeadLetterSink)?, logger: Logger) async throws -> Opening {
        let name = configuration.name
        var opening = Opening()
        do {
            for sink in sinks {
                if let stored = checkpoint?.sinks[sink.name]?.applied {
                    opening.applied[sink.name] = stored
                    continue
                }
                let owned = OwnedSession(sink: sink, configuration: configuration, session: nil, logger: logger)
                let recorded: SourcePosition?
                do {
                    recorded = try await owned.open()
                } catch {
                    throw FerryError(describing: error, code: .sinkWriteFailed).adding("pipeline", name).adding("sink", sink.name)
                }
                opening.sessions[sink.name] = owned.handOver()
                if let recorded { opening.applied[sink.name] = recorded }
            }
            if let deadLetters {
                do {
                    let configuration = self.configuration
                    _ = try await configuration.retry.run({
                        try configuration.checkWriteWindow(sink: deadLetters.name)
                        return try await deadLetters.open()
                    }) { error, attempt, _ in
                        logger.warning("dead-letter sink not ready; retrying", metadata: [LoggingKeys.sink: "\(deadLetters.name)", LoggingKeys.error: .error(error)])
                    }
                } catch {
                    throw FerryError(describing: error, code: .sinkWriteFailed).adding("pipeline", name).adding("sink", deadLetters.name)
                }
            }
        } catch {
            await opening.close()
            try? await deadLetters?.close()
            throw error
        }
        return opening
    }

    /// Runs `open` until it ends or `stop` fires; on a stop it is cancelled (a session being
    /// opened is interrupted), whatever it opened is closed, and the result is `nil`.
    static func untilStopped(_ stop: StopSignal, _ open: @escaping @Sendable () async throws -> Opening) async throws -> Opening? {
        try await withThrowingTaskGroup(of: Opening?.self) { group in
            group.addTask { try await open() }
            group.addTask {
                await stop.wait()
                return nil
            }
            let first: Opening?
            do {
                first = try await group.next()!
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            if let first { return first }
            // Stopped: the opening ends (cancelled or done); what it opened is closed.
            while let next = try? await group.next() {
                await next?.close()
            }
            return nil
        }
    }

    private func stream(resume: SourcePosition?, applied: [String: SourcePosition], safe: SourcePosition?, rewound: Set<String>,
                        opened: [String: any SinkSession], stop: StopSignal, logger: Logger) async throws {
        let name = configuration.name
        let buffer: any ChangeBuffer
        let bufferBytes: @Sendable () async -> Int
        var sourceResume = resume
        let stats = PipelineStats(pipeline: name, buffer: configuration.buffer, sinks: sinks.map(\.name), logEnd: source.logEnd)
        for (sink, position) in applied { stats.recorded(sink: sink, position) }
        if let safe { stats.saved(safe: safe) }
        switch configuration.buffer {
        case .memory:
            let memory = MemoryBuffer(maximumBytes: configuration.bufferBytes, consumers: sinks.map(\.name))
            buffer = memory
            bufferBytes = { await memory.byteCount }
        case .disk(let directory, let options):
            let starts = Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, applied[$0.name] ?? safe) })
            let disk: DiskBuffer
            do {
                disk = try DiskBuffer(directory: directory, options: options, starts: starts, fallback: resume, pipeline: name, logger: logger)
            } catch {
                throw FerryError(describing: error, code: .bufferDiskUnusable).adding("pipeline", name)
            }
            buffer = disk
            bufferBytes = { await disk.backlogBytes }
            sourceResume = await disk.resumeAfter
            stats.carryOver(await disk.backlogAtOpen)
            if await disk.wasReset {
                logger.warning("disk buffer emptied: a sink needs changes older than it holds; re-reading them from the source",
                               metadata: [LoggingKeys.position: "\(resume.map(\.description) ?? "start")"])
                try await store.audit(pipeline: name, action: "buffer-reset", detail: "disk buffer emptied; source re-read after \(resume.map(\.description) ?? "the configured start")")
            }
        }
        try await store.audit(pipeline: name, action: "start", detail: sourceResume.map { "source resumes after \($0)" } ?? "first start: the source begins at the pipeline's start: setting")
        if let sourceResume {
            logger.notice("pipeline started; the source resumes after this position", metadata: [
                LoggingKeys.position: "\(sourceResume)", "ferry.sinks": "\(sinks.map(\.name).joined(separator: ", "))",
            ])
        } else {
            logger.notice("pipeline started for the first time; the source begins at its start: setting", metadata: [
                "ferry.sinks": "\(sinks.map(\.name).joined(separator: ", "))",
            ])
        }

        let watermark = WatermarkState(LowWatermark(sinks: sinks.map(\.name), applied: applied))
        let transform = configuration.transform
        let sourceStart = sourceResume
        try await withThrowingTaskGroup(of: Void.self) { outer in
            outer.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: configuration.progressInterval)
                    let progress = stats.progress(bufferBytes: await bufferBytes())
                    live.publish(progress)
                    try? await store.saveProgress(progress)
                }
            }
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            try await source.run(after: sourceStart) { transaction in
                                let shaped = try transform.apply(transaction)
                                stats.read(shaped)
                                try await buffer.append(shaped)
                            }
                        }
                        inner.addTask {
                            await stop.wait()
                            throw StopRequested()
                        }
                        do {
                            try await inner.next()
                        } catch is StopRequested {
                        } catch is CancellationError where Task.isCancelled {
                        } catch is CancellationError {
                            // Not stopped, not cancelled: taking this for a stop would end the
                            // pipeline as if it had drained, with the source's work unfinished.
                            throw FerryError(code: .internalError, message: "the source ended with a cancellation nobody asked for",
                                             context: [("pipeline", name)], fix: "restart the pipeline; it resumes where its sinks are. Please report this")
                        }
                        inner.cancelAll()
                    }
                    await buffer.finish()
                    return "the source"
                }
                for sink in sinks {
                    let worker = SinkWorker(sink: sink, opened: opened[sink.name], configuration: configuration, store: store, buffer: buffer,
                                            watermark: watermark, stats: stats, rewound: rewound.contains(sink.name), stop: stop, logger: logger)
                    let start = applied[sink.name]
                    group.addTask {
                        try await worker.run(from: start)
                        return "sink \(sink.name)"
                    }
                }
                let drainTimeout = configuration.drainTimeout
                group.addTask {
                    await stop.wait()
                    try await Task.sleep(for: drainTimeout)
                    throw DrainTimeout()
                }
                // The source task and every sink worker end; then the drain timer is not needed.
                let running = StillRunning(["the source"] + sinks.map { "sink \($0.name)" })
                do {
                    while let done = try await group.next() {
                        if running.finished(done) { group.cancelAll() }
                    }
                } catch is DrainTimeout {
                    logger.warning("a sink did not finish within the drain timeout; what it has not applied is applied on the next start",
                                   metadata: ["ferry.drain_timeout": "\(drainTimeout)", "ferry.waiting_for": "\(running.names)"])
                    group.cancelAll()
                    // Cancelled work should end at once; if some does not, say what, so a stop that
                    // hangs names its culprit.
                    let watchdog = Task {
                        var waited = 0
                        while !Task.isCancelled {
                            try await Task.sleep(for: .seconds(30))
                            waited += 30
                            logger.error("the pipeline has not stopped \(waited) s after its work was cancelled", metadata: ["ferry.waiting_for": "\(running.names)"])
                        }
                    }
                    defer { watchdog.cancel() }
                    while true {
                        do {
                            guard let done = try await group.next() else { break }
                            _ = running.finished(done)
                        } catch {}
                    }
                } catch is CancellationError where running.names.isEmpty {
                }
            }
            outer.cancelAll()
        }
        let progress = stats.progress(bufferBytes: await bufferBytes())
        live.publish(progress)
        try? await store.saveProgress(progress)
    }

    /// The lowest applied position over all sinks; when some sink has none, the stored safe
    /// position (a sink that lost its record replays from there, harmlessly).
    static func resumePosition(applied: [String: SourcePosition], sinks: [String], safe: SourcePosition?) -> SourcePosition? {
        let known = sinks.compactMap { applied[$0] }
        let candidates = known.count == sinks.count ? known : (safe.map { [$0] } ?? []) + (safe == nil ? [] : known)
        return candidates.min()
    }
}

/// Sinks did not drain in time after a stop.
struct DrainTimeout: Error {}

/// The pipeline's stop fired: the source ends without an error.
struct StopRequested: Error {}

/// The pipeline's tasks that have not finished yet, by name (read by the stop watchdog).
final class StillRunning: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [String]

    init(_ names: [String]) {
        waiting = names
    }

    var names: [String] { lock.withLock { waiting } }

    /// Records that `name` finished; true when nothing is left.
    func finished(_ name: String) -> Bool {
        lock.withLock {
            waiting.removeAll { $0 == name }
            return waiting.isEmpty
        }
    }
}

/// The low watermark shared by the sink workers; returns a new safe position when it moved.
actor WatermarkState {
    private var watermark: LowWatermark
    private var saved: SourcePosition?

    init(_ watermark: LowWatermark) {
        self.watermark = watermark
        self.saved = watermark.safePosition
    }

    func record(sink: String, position: SourcePosition) -> SourcePosition? {
        watermark.sinkApplied(sink, position)
        guard let safe = watermark.safePosition, safe != saved else { return nil }
        saved = safe
        return safe
    }
}

/// Fires once; everything waiting on it resumes. Waiting also ends when the waiting task is
/// cancelled.
public actor StopSignal: ParkingActor {
    private var stopped = false
    private var waiterIDs: [Int] = []
    var parking = ParkingLot()

    public init() {}

    public var isStopped: Bool { stopped }

    public func stop() {
        stopped = true
        let waiting = waiterIDs
        waiterIDs.removeAll()
        wake(waiting)
    }

    public func wait() async {
        guard !stopped else { return }
        await park { self.waiterIDs.append($0) }
    }
}


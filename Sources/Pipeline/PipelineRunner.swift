import FerryCore
import Foundation
import Logging

/// How one pipeline runs.
public struct PipelineConfiguration: Sendable {
    public var name: String
    /// Bound of the memory buffer in bytes. Default 64 MiB.
    public var bufferBytes: Int
    /// Most transactions a sink applies in one batch. Default 500.
    public var batchTransactions: Int
    /// Most changes in one batch, unless a single transaction has more. Default 10,000.
    public var batchEvents: Int
    /// A batch not applied within this many seconds counts as a transient failure: the sink's
    /// connection is dropped and the batch retried. Default 300.
    public var applyTimeoutSeconds: Double
    public var retry: RetryPolicy

    public init(name: String, bufferBytes: Int = 64 << 20, batchTransactions: Int = 500, batchEvents: Int = 10_000,
                applyTimeoutSeconds: Double = 300, retry: RetryPolicy = RetryPolicy()) {
        self.name = name
        self.bufferBytes = bufferBytes
        self.batchTransactions = batchTransactions
        self.batchEvents = batchEvents
        self.applyTimeoutSeconds = applyTimeoutSeconds
        self.retry = retry
    }
}

/// Runs one pipeline: source → memory buffer → every sink, with durable positions.
///
/// On start every sink reports what it has applied (from the target itself where it can); the
/// source resumes after the lowest of those, and each sink skips what it already has — so a crash
/// at any moment neither loses nor doubles a change. The safe position (everything applied by
/// every sink) is written to the checkpoint store only after the sinks made it durable.
public struct PipelineRunner: Sendable {
    public let configuration: PipelineConfiguration
    let source: any TransactionSource
    let sinks: [any Sink]
    let store: any CheckpointStore
    let logger: Logger

    /// The pipeline's sinks, in configuration order.
    public var sinkList: [any Sink] { sinks }

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
        var applied: [String: BinlogPosition] = [:]
        for (index, sink) in sinks.enumerated() {
            let recorded: BinlogPosition?
            do {
                recorded = try await configuration.retry.run({ try await sink.open() }) { error, attempt, wait in
                    logger.warning("sink not ready; retrying", metadata: [LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: "\(error)",
                                                                           "ferry.attempt": "\(attempt)", "ferry.retry_in_s": "\(wait)"])
                }
            } catch {
                for opened in sinks[...index] { try? await opened.close() }
                throw FerryError(describing: error, code: "sink.write_failed").adding("pipeline", name).adding("sink", sink.name)
            }
            if let position = recorded ?? checkpoint?.sinks[sink.name]?.applied { applied[sink.name] = position }
        }
        let resume = Self.resumePosition(applied: applied, sinks: sinks.map(\.name), safe: checkpoint?.safePosition)
        try await store.audit(pipeline: name, action: "start", detail: "resume after \(resume.map(\.description) ?? "the configured start")")
        logger.info("pipeline starting", metadata: [LoggingKeys.position: "\(resume.map(\.description) ?? "start")"])

        do {
            try await stream(after: resume, applied: applied, stop: stop, logger: logger)
        } catch {
            for sink in sinks { try? await sink.close() }
            throw error
        }
        for sink in sinks { try? await sink.close() }
        try await store.audit(pipeline: name, action: "stop", detail: "drained and stopped")
    }

    private func stream(after resume: BinlogPosition?, applied: [String: BinlogPosition], stop: StopSignal, logger: Logger) async throws {
        let buffer = MemoryBuffer(maximumBytes: configuration.bufferBytes, consumers: sinks.map(\.name))
        let watermark = WatermarkState(LowWatermark(sinks: sinks.map(\.name), applied: applied))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { inner in
                    inner.addTask {
                        try await source.run(after: resume) { transaction in try await buffer.append(transaction) }
                    }
                    inner.addTask {
                        await stop.wait()
                        throw CancellationError()
                    }
                    do {
                        try await inner.next()
                    } catch is CancellationError {
                    }
                    inner.cancelAll()
                }
                await buffer.finish()
            }
            for sink in sinks {
                let start = applied[sink.name]
                group.addTask {
                    try await runSink(sink, from: start, buffer: buffer, watermark: watermark, logger: logger)
                }
            }
            try await group.waitForAll()
        }
    }

    /// The lowest applied position over all sinks; when some sink has none, the stored safe
    /// position (a sink that lost its record replays from there, harmlessly).
    static func resumePosition(applied: [String: BinlogPosition], sinks: [String], safe: BinlogPosition?) -> BinlogPosition? {
        let known = sinks.compactMap { applied[$0] }
        let candidates = known.count == sinks.count ? known : (safe.map { [$0] } ?? []) + (safe == nil ? [] : known)
        return candidates.min { $0.coordinates < $1.coordinates }
    }

    private func runSink(_ sink: any Sink, from start: BinlogPosition?, buffer: MemoryBuffer, watermark: WatermarkState,
                         logger: Logger) async throws {
        var applied = start
        while true {
            let batch = await buffer.read(consumer: sink.name, limit: configuration.batchTransactions, maximumEvents: configuration.batchEvents)
            if batch.isEmpty { return }
            let fresh = batch.filter { transaction in applied.map { transaction.position.coordinates > $0.coordinates } ?? true }
            guard let last = fresh.last else { continue }
            do {
                try await configuration.retry.run({
                    do {
                        try await applyWithDeadline(sink, fresh)
                    } catch let timeout as ApplyTimeout {
                        await sink.reset()
                        throw timeout
                    }
                }) { error, attempt, wait in
                    logger.warning("sink write failed; retrying", metadata: [
                        LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: "\(error)", LoggingKeys.position: "\(last.position)",
                        "ferry.attempt": "\(attempt)", "ferry.retry_in_s": "\(Int(wait * 1000)) ms",
                    ])
                }
            } catch {
                let failure = FerryError(describing: error, code: "sink.write_failed").adding("pipeline", configuration.name).adding("sink", sink.name)
                    .adding("position", "\(fresh.first!.position.coordinates)…\(last.position.coordinates)")
                try? await store.audit(pipeline: configuration.name, action: "error", detail: failure.description)
                throw failure
            }
            applied = last.position
            try await store.saveSinkPositions(pipeline: configuration.name, sink: sink.name, queued: last.position, applied: last.position)
            if let safe = await watermark.record(sink: sink.name, position: last.position) {
                try await store.saveSafePosition(safe, pipeline: configuration.name)
            }
        }
    }
}

extension PipelineRunner {
    /// Applies a batch, giving up after `applyTimeoutSeconds`. A stuck client library (a lost
    /// connection it never reports) then costs one retry instead of the pipeline: the sink drops
    /// its connection, so the abandoned attempt cannot commit after the retry has started.
    func applyWithDeadline(_ sink: any Sink, _ batch: [Transaction]) async throws {
        let outcome = OneShot()
        let seconds = configuration.applyTimeoutSeconds
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            outcome.arm(continuation)
            let timer = Task {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                outcome.finish(.failure(ApplyTimeout(seconds: seconds, sink: sink.name)))
            }
            Task {
                do {
                    try await sink.apply(batch)
                    outcome.finish(.success(()))
                } catch {
                    outcome.finish(.failure(error))
                }
                timer.cancel()
            }
        }
    }
}

/// Resumes a continuation once, from whichever task gets there first.
final class OneShot: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, any Error>?

    func arm(_ continuation: CheckedContinuation<Void, any Error>) {
        lock.lock()
        self.continuation = continuation
        lock.unlock()
    }

    func finish(_ result: Result<Void, any Error>) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume(with: result)
    }
}

/// A sink did not finish a batch in time; retried after the sink dropped its connection.
struct ApplyTimeout: ClassifiedError, CustomStringConvertible {
    var seconds: Double
    var sink: String
    var isTransient: Bool { true }
    var description: String { "sink \(sink) did not apply a batch within \(Int(seconds)) s" }
}

/// The low watermark shared by the sink workers; returns a new safe position when it moved.
actor WatermarkState {
    private var watermark: LowWatermark
    private var saved: BinlogPosition?

    init(_ watermark: LowWatermark) {
        self.watermark = watermark
        self.saved = watermark.safePosition
    }

    func record(sink: String, position: BinlogPosition) -> BinlogPosition? {
        watermark.sinkApplied(sink, position)
        guard let safe = watermark.safePosition, safe != saved else { return nil }
        saved = safe
        return safe
    }
}

/// Fires once; everything waiting on it resumes. Waiting also ends when the waiting task is
/// cancelled.
public actor StopSignal {
    private var stopped = false
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextID = 0

    public init() {}

    public var isStopped: Bool { stopped }

    public func stop() {
        stopped = true
        let pending = waiters
        waiters.removeAll()
        for waiter in pending.values { waiter.resume() }
    }

    public func wait() async {
        let id = nextID
        nextID += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if stopped || Task.isCancelled { continuation.resume() } else { waiters[id] = continuation }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume()
    }
}

/// Log metadata keys of the engine.
enum LoggingKeys {
    static let pipeline = "ferry.pipeline"
    static let sink = "ferry.sink"
    static let position = "ferry.position"
    static let error = "ferry.error"
}

import FerryCore
import Foundation
import Logging
import Rules

/// Feeds one sink from the buffer: batches, retries transient failures, records positions, and
/// under `error_policy: dead-letter` isolates the changes the sink rejects for good.
struct SinkWorker: Sendable {
    let sink: any Sink
    let configuration: PipelineConfiguration
    let store: any CheckpointStore
    let buffer: any ChangeBuffer
    let watermark: WatermarkState
    let stats: PipelineStats
    /// The sink was rewound: its pending rewind is cleared once it has applied from there.
    let rewound: Bool
    /// The sink is not open yet (the runner started from the state store's position for it).
    let needsOpen: Bool
    let logger: Logger

    func run(from start: BinlogPosition?) async throws {
        var applied = start
        var rewindPending = rewound
        if needsOpen {
            let recorded: BinlogPosition?
            do {
                recorded = try await PipelineRunner.open(sink, retry: configuration.retry, timeoutSeconds: configuration.applyTimeoutSeconds, logger: logger)
            } catch is CancellationError {
                return
            } catch {
                throw FerryError(describing: error, code: "sink.write_failed").adding("pipeline", configuration.name).adding("sink", sink.name)
            }
            if !rewound, let recorded, applied.map({ recorded > $0 }) ?? true {
                applied = recorded
                if let safe = await watermark.record(sink: sink.name, position: recorded) {
                    try await store.saveSafePosition(safe, pipeline: configuration.name)
                }
            }
        }
        while true {
            let batch = try await buffer.read(consumer: sink.name, limit: configuration.batchTransactions, maximumEvents: configuration.batchEvents)
            if batch.isEmpty { return }
            let fresh = try configuration.rules.apply(batch.filter { transaction in applied.map { transaction.position > $0 } ?? true }, sink: sink.name)
            guard let last = fresh.last else {
                try await buffer.acknowledge(consumer: sink.name)
                continue
            }
            let started = ContinuousClock.now
            do {
                try await applyRetrying(fresh)
            } catch let error where error is CancellationError || Task.isCancelled {
                // Stopped (a drain that timed out): not a rejection — nothing is isolated or dead-lettered.
                throw error
            } catch where !ErrorClassifier.isTransient(error) {
                try await applyIsolating(fresh, after: applied, cause: error)
            } catch {
                throw failure(error, fresh)
            }
            applied = last.position
            try await store.saveSinkPositions(pipeline: configuration.name, sink: sink.name, queued: last.position, applied: last.position)
            try await buffer.acknowledge(consumer: sink.name)
            stats.applied(sink: sink.name, fresh, duration: ContinuousClock.now - started)
            if rewindPending {
                try await store.clearRewind(pipeline: configuration.name, sink: sink.name)
                rewindPending = false
            }
            if let safe = await watermark.record(sink: sink.name, position: last.position) {
                try await store.saveSafePosition(safe, pipeline: configuration.name)
            }
        }
    }

    func failure(_ error: any Error, _ batch: [Transaction]) -> FerryError {
        FerryError(describing: error, code: "sink.write_failed").adding("pipeline", configuration.name).adding("sink", sink.name)
            .adding("position", batch.count == 1 ? "\(batch[0].position.coordinates)" : "\(batch.first!.position.coordinates)…\(batch.last!.position.coordinates)")
    }

    /// Applies a batch, retrying transient failures with backoff.
    func applyRetrying(_ batch: [Transaction]) async throws {
        // Each timeout doubles the next attempt's deadline (up to 8×): a batch that is merely slower
        // than the deadline — a long backlog on a busy machine — would otherwise be abandoned and
        // started again forever.
        var timeouts = 0
        try await configuration.retry.run({
            do {
                try await applyWithDeadline(batch, seconds: configuration.applyTimeoutSeconds * Double(1 << min(timeouts, 3)))
            } catch let timeout as ApplyTimeout {
                timeouts += 1
                await sink.reset()
                throw timeout
            }
        }) { error, attempt, wait in
            logger.warning("sink write failed; retrying", metadata: [
                LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: "\(error)", LoggingKeys.position: "\(batch.last!.position)",
                "ferry.attempt": "\(attempt)", "ferry.retry_in_s": "\(Int(wait * 1000)) ms",
            ])
        }
    }

    /// A batch failed for good: applies it transaction by transaction, and a failing transaction
    /// change by change, to find the change the target rejects. Under `dead-letter` each rejected
    /// change goes to the dead-letter sink with its cause and the rest go on; under `stop` the
    /// pipeline stops naming that change's table and position.
    ///
    /// While a transaction is split, its changes are applied stamped with the position before it,
    /// so a crash in the middle replays the whole transaction (harmless: every change sets a whole
    /// row); the last step records the transaction's own position.
    func applyIsolating(_ batch: [Transaction], after start: BinlogPosition?, cause: any Error) async throws {
        var deadLetters: (any DeadLetterSink)? = nil
        if case .deadLetter(let sink) = configuration.errorPolicy { deadLetters = sink }
        logger.warning("sink rejected a batch; finding the change it rejects", metadata: [
            LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: "\(cause)",
        ])
        var previous = start
        for transaction in batch {
            defer { previous = transaction.position }
            do {
                try await applyRetrying([transaction])
                continue
            } catch where !ErrorClassifier.isTransient(error) && !Task.isCancelled {}
            var letters: [DeadLetter] = []
            for event in transaction.events {
                var single = transaction
                single.events = [event]
                single.position = previous ?? transaction.position
                do {
                    try await applyRetrying([single])
                } catch where !ErrorClassifier.isTransient(error) && !Task.isCancelled {
                    let reason = FerryError(describing: error, code: "sink.rejected").adding("pipeline", configuration.name)
                        .adding("sink", sink.name).adding("table", event.table.description).adding("position", "\(transaction.position.coordinates)")
                    guard deadLetters != nil else { throw reason }
                    letters.append(DeadLetter(pipeline: configuration.name, sink: sink.name, event: event, error: reason))
                    logger.error("change sent to the dead-letter sink", metadata: [
                        LoggingKeys.sink: "\(sink.name)", LoggingKeys.table: "\(event.table)", LoggingKeys.position: "\(transaction.position)",
                        LoggingKeys.error: "\(reason.message)",
                    ])
                }
            }
            if let deadLetters, !letters.isEmpty {
                try await configuration.retry.run({ try await deadLetters.deadLetter(letters) }) { error, attempt, _ in
                    logger.warning("dead-letter sink failed; retrying", metadata: [LoggingKeys.sink: "\(deadLetters.name)", LoggingKeys.error: "\(error)"])
                }
                try? await store.audit(pipeline: configuration.name, action: "dead-letter",
                                       detail: "\(letters.count) change(s) of \(transaction.position.coordinates) rejected by sink \(sink.name): \(letters[0].error.message)")
            }
            var marker = transaction
            marker.events = []
            try await applyRetrying([marker])
        }
    }

    /// Applies a batch, giving up after `seconds`.
    func applyWithDeadline(_ batch: [Transaction], seconds: Double) async throws {
        let sink = self.sink
        try await withDeadline(seconds: seconds, sink: sink.name) { try await sink.apply(batch) }
    }
}

/// Runs a sink operation, giving up after `seconds`, or at once when the calling task is
/// cancelled (a drain that timed out must not wait for the apply timeout as well). A stuck client
/// library (a lost connection it never reports — postgres-nio does this when the server goes away
/// mid-connect) then costs one retry instead of the pipeline: the caller resets the sink, so the
/// abandoned attempt cannot commit after the retry has started.
func withDeadline<T: Sendable>(seconds: Double, sink: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let outcome = OneShot<T>()
    let work = Task {
        do {
            outcome.finish(.success(try await body()))
        } catch {
            outcome.finish(.failure(error))
        }
    }
    let timer = Task {
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        outcome.finish(.failure(ApplyTimeout(seconds: seconds, sink: sink)))
    }
    return try await withTaskCancellationHandler {
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            outcome.arm(continuation)
        }
    } onCancel: {
        work.cancel()
        outcome.finish(.failure(CancellationError()))
    }
}

/// Resumes a continuation once, from whichever task gets there first — also when that is before
/// the continuation exists (the result waits for it).
final class OneShot<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var result: Result<T, any Error>?
    private var done = false

    func arm(_ continuation: CheckedContinuation<T, any Error>) {
        lock.lock()
        guard let result else {
            self.continuation = continuation
            lock.unlock()
            return
        }
        lock.unlock()
        continuation.resume(with: result)
    }

    func finish(_ result: Result<T, any Error>) {
        lock.lock()
        guard !done else {
            lock.unlock()
            return
        }
        done = true
        guard let continuation else {
            self.result = result
            lock.unlock()
            return
        }
        self.continuation = nil
        lock.unlock()
        continuation.resume(with: result)
    }
}

/// A sink did not finish in time; retried after the sink dropped its connection.
struct ApplyTimeout: ClassifiedError, CustomStringConvertible {
    var seconds: Double
    var sink: String
    var isTransient: Bool { true }
    var description: String { "sink \(sink) did not answer within \(Int(seconds)) s" }
}

import FerryCore
import Foundation
import Logging
import Rules

/// Feeds one sink from the buffer: batches, retries transient failures, records positions, and
/// under `error_policy: dead-letter` isolates the changes the sink rejects for good.
struct SinkWorker: Sendable {
    let sink: any Sink
    /// A session the runner already opened (to learn the sink's position before the source
    /// starts); the worker takes it over. `nil`: the worker makes and opens its own.
    let opened: (any SinkSession)?
    let configuration: PipelineConfiguration
    let store: any CheckpointStore
    let buffer: any ChangeBuffer
    let watermark: WatermarkState
    let stats: PipelineStats
    /// The sink was rewound: its pending rewind is cleared once it has applied from there.
    let rewound: Bool
    /// Fires on pause, restart and shutdown: a sink waiting to retry stops waiting.
    let stop: StopSignal?
    let logger: Logger

    func run(from start: SourcePosition?) async throws {
        var session = opened
        var recorded: SourcePosition? = nil
        if session == nil {
            // The runner started from the state store's position for this sink; the target's own
            // record can only be newer.
            do {
                guard let first = try await openUnlessStopped() else {
                    logger.notice("sink stopped before it connected; what it has not applied is applied on the next start",
                                  metadata: [LoggingKeys.sink: "\(sink.name)"])
                    return
                }
                (session, recorded) = first
            } catch is CancellationError where Task.isCancelled {
                // The pipeline's work was cancelled (a stop past the drain timeout); any other
                // cancellation is a failure, never a quiet end of this sink.
                return
            } catch {
                throw FerryError(describing: error, code: .sinkWriteFailed).adding("pipeline", configuration.name).adding("sink", sink.name)
            }
        }
        let owned = OwnedSession(sink: sink, configuration: configuration, session: session, stop: stop, logger: logger)
        do {
            try await run(from: start, recordedAtOpen: opened == nil ? recorded : nil, owned: owned)
        } catch let stopped as StoppedWhileRetrying {
            logger.notice("sink stopped while waiting to retry; what it has not applied is applied on the next start",
                          metadata: [LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: .error(stopped.underlying)])
        } catch {
            await owned.close()
            throw error
        }
        await owned.close()
    }

    /// Opens the worker's first session in a task of its own, so that a stop (pause, restart,
    /// SIGTERM) while the target is unreachable or silent ends the attempt at once — the attempt
    /// is cancelled, its connection closed — instead of waiting out connect and apply timeouts.
    /// `nil` when stopped first.
    private func openUnlessStopped() async throws -> (session: any SinkSession, recorded: SourcePosition?)? {
        let sink = self.sink, configuration = self.configuration, stop = self.stop, logger = self.logger
        func open() async throws -> (session: any SinkSession, recorded: SourcePosition?)? {
            let owned = OwnedSession(sink: sink, configuration: configuration, session: nil, stop: stop, logger: logger)
            do {
                let recorded = try await owned.open()
                guard let session = owned.handOver() else { return nil }
                return (session, recorded)
            } catch {
                await owned.close()
                if error is StoppedWhileRetrying { return nil }
                throw error
            }
        }
        guard let stop else { return try await open() }
        return try await withThrowingTaskGroup(of: (session: any SinkSession, recorded: SourcePosition?)?.self) { group in
            group.addTask { try await open() }
            group.addTask {
                await stop.wait()
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            if first != nil { return first }
            // Stopped: the attempt ends (cancelled or done); a session it made is closed.
            while let next = try? await group.next() { try? await next?.session.close() }
            return nil
        }
    }

    /// A written batch, to be settled: made durable (`completion`), then its position recorded
    /// (when the sink moved) and the buffer's records released up to `readEnd`.
    struct Settlement: Sendable {
        let completion: DurableCompletion?
        let read: [Transaction]
        let written: [Transaction]
        let position: SourcePosition?
        let readEnd: SourcePosition
        /// How long the write took; the completion's time is added once it ran.
        let writing: Duration
        let clearRewind: Bool
    }

    private func run(from start: SourcePosition?, recordedAtOpen recorded: SourcePosition?, owned: OwnedSession) async throws {
        var applied = start
        if !rewound, let recorded, applied.map({ recorded > $0 }) ?? true {
            applied = recorded
            stats.recorded(sink: sink.name, recorded)
            try await record(sink: sink.name, position: recorded)
        }
        // A batch settles in a task of its own while the next batch is written: a file's fsync
        // and the state store's commit do not stall the next batch's encoding. One batch settles
        // at a time, in order. A failed settle ends the writer at once (not when the next batch
        // comes); a writer that ends — stopped, failed or done — lets the batch it handed over
        // settle first, and a settle failure then wins over its error (a graceful stop must not
        // hide a failed fsync).
        let settlements = BoundedHandoff<Settlement>(capacity: 1)
        let settled = BoundedHandoff<Bool>(capacity: 1)
        let writerError = try await withThrowingTaskGroup(of: (any Error)?.self) { [applied] group in
            group.addTask {
                try await settle(settlements, reporting: settled)
                return nil
            }
            group.addTask {
                do {
                    try await write(after: applied, owned: owned, settling: settlements, settled: settled)
                    return nil
                } catch {
                    return error
                }
            }
            var writerError: (any Error)?
            while let ended = try await group.next() {
                if let ended { writerError = ended }
            }
            return writerError
        }
        if let writerError { throw writerError }
    }

    /// Reads, shapes and writes batches, handing each written one over to be settled.
    private func write(after start: SourcePosition?, owned: OwnedSession, settling settlements: BoundedHandoff<Settlement>,
                       settled: BoundedHandoff<Bool>) async throws {
        defer { settlements.finish() }
        var applied = start
        var rewindPending = rewound
        var deadline = ApplyDeadline(seconds: configuration.applyTimeoutSeconds)
        var targetWritten: ContinuousClock.Instant? = nil
        var unsettled = false
        func awaitSettled() async throws {
            guard unsettled else { return }
            guard await settled.take() != nil else { throw CancellationError() }
            unsettled = false
        }
        func handOver(_ settlement: Settlement) async throws {
            try await awaitSettled()
            guard await settlements.send(settlement, weight: 1) else { throw CancellationError() }
            unsettled = true
        }
        while true {
            let batch = try await buffer.read(consumer: sink.name, limit: configuration.batchTransactions, maximumEvents: configuration.batchEvents)
            if batch.isEmpty { return }
            let unseen = batch.filter { transaction in applied.map { transaction.position > $0 } ?? true }
            let fresh = try configuration.rules.apply(unseen, sink: sink.name)
            let onlyPositions = !fresh.contains { !$0.events.isEmpty }
            let writeTarget = !onlyPositions || targetWritten.map { ContinuousClock.now - $0 >= configuration.positionOnlyInterval } ?? true
            guard let last = fresh.last, writeTarget else {
                // The rules left nothing of these transactions: the sink is past them all the same,
                // so its position (and the pipeline's safe position) moves on and its lag clears.
                if let end = unseen.last { applied = end.position }
                try await handOver(Settlement(completion: nil, read: unseen, written: [], position: unseen.last?.position,
                                              readEnd: batch.last!.position, writing: .zero, clearRewind: false))
                continue
            }
            let started = ContinuousClock.now
            var completion: DurableCompletion?
            do {
                completion = try await writeRetrying(fresh, owned, deadline: &deadline)
            } catch let error where error is CancellationError || error is StoppedWhileRetrying || Task.isCancelled {
                // Stopped (a drain that timed out): not a rejection — nothing is isolated or dead-lettered.
                throw error
            } catch where ErrorClassifier.isFatal(error) {
                // Durability is in doubt: stop at once, never write the batch again.
                throw failure(error, fresh)
            } catch where !ErrorClassifier.isTransient(error) {
                // Isolating writes durably; the batch before settles first, so two fsyncs of one
                // file never run at once (only one of them would see a write-back error).
                try await awaitSettled()
                try await applyIsolating(fresh, after: applied, cause: error, owned, deadline: &deadline)
            } catch {
                throw failure(error, fresh)
            }
            applied = last.position
            targetWritten = ContinuousClock.now
            try await handOver(Settlement(completion: completion, read: unseen, written: fresh, position: last.position,
                                          readEnd: batch.last!.position, writing: ContinuousClock.now - started, clearRewind: rewindPending))
            rewindPending = false
        }
    }

    /// Settles the written batches in order, reporting each one settled.
    private func settle(_ settlements: BoundedHandoff<Settlement>, reporting settled: BoundedHandoff<Bool>) async throws {
        while let taken = await settlements.take() {
            for settlement in taken {
                var syncing = Duration.zero
                if let completion = settlement.completion {
                    let began = ContinuousClock.now
                    do {
                        try await completion()
                    } catch {
                        throw failure(error, settlement.written)
                    }
                    syncing = ContinuousClock.now - began
                }
                if let position = settlement.position {
                    try await store.saveSinkPositions(pipeline: configuration.name, sink: sink.name, queued: position, applied: position)
                }
                try await buffer.acknowledge(consumer: sink.name, through: settlement.readEnd)
                if let position = settlement.position {
                    stats.applied(sink: sink.name, read: settlement.read, written: settlement.written, duration: settlement.writing + syncing)
                    if settlement.clearRewind { try await store.clearRewind(pipeline: configuration.name, sink: sink.name) }
                    try await record(sink: sink.name, position: position)
                }
                _ = await settled.send(true, weight: 1)
            }
        }
    }

    /// The sink is at `position`: saves the pipeline's safe position when that moved it.
    private func record(sink: String, position: SourcePosition) async throws {
        guard let safe = await watermark.record(sink: sink, position: position) else { return }
        try await store.saveSafePosition(safe, pipeline: configuration.name)
        stats.saved(safe: safe)
    }

    func failure(_ error: any Error, _ batch: [Transaction]) -> FerryError {
        FerryError(describing: error, code: .sinkWriteFailed).adding("pipeline", configuration.name).adding("sink", sink.name)
            .adding("position", batch.count == 1 ? "\(batch[0].position.place)" : "\(batch.first!.position.place)…\(batch.last!.position.place)")
    }

    /// Writes a batch, retrying transient failures with backoff; each retry runs on a new session.
    /// Returns what makes the batch durable when the session left that to finish later.
    func writeRetrying(_ batch: [Transaction], _ owned: OwnedSession, deadline: inout ApplyDeadline) async throws -> DurableCompletion? {
        try await configuration.retry.run(stop: stop, {
            let limit = deadline.current
            do {
                var completion: DurableCompletion?
                // Measured on the deadline's own clock, so a test's manual clock steps it too.
                let elapsed = try await elapsedTime(on: configuration.clock) { completion = try await owned.write(batch, deadline: limit) }
                deadline.finished(in: elapsed)
                return completion
            } catch let timeout as ApplyTimeout {
                deadline.timedOut()
                throw timeout
            }
        }) { error, attempt, wait in
            logger.warning("sink write failed; retrying", metadata: [
                LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: .error(error), LoggingKeys.position: "\(batch.last!.position)",
                "ferry.attempt": "\(attempt)", LoggingKeys.retryIn: .seconds(wait),
            ])
        }
    }

    /// `writeRetrying`, and durable before it returns.
    func applyRetrying(_ batch: [Transaction], _ owned: OwnedSession, deadline: inout ApplyDeadline) async throws {
        try await writeRetrying(batch, owned, deadline: &deadline)?()
    }

    /// A batch failed for good: applies it transaction by transaction, and a failing transaction
    /// change by change, to find the change the target rejects. Under `dead-letter` each rejected
    /// change goes to the dead-letter sink with its cause and the rest go on; under `stop` the
    /// pipeline stops naming that change's table and position.
    ///
    /// While a transaction is split, its changes are applied stamped with the position before it,
    /// so a crash in the middle replays the whole transaction (harmless: every change sets a whole
    /// row); the last step records the transaction's own position.
    func applyIsolating(_ batch: [Transaction], after start: SourcePosition?, cause: any Error, _ owned: OwnedSession,
                        deadline: inout ApplyDeadline) async throws {
        var deadLetters: (any DeadLetterSink)? = nil
        if case .deadLetter(let sink) = configuration.errorPolicy { deadLetters = sink }
        logger.warning("sink rejected a batch; finding the change it rejects", metadata: [
            LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: .error(cause),
        ])
        var previous = start
        for transaction in batch {
            defer { previous = transaction.position }
            do {
                try await applyRetrying([transaction], owned, deadline: &deadline)
                continue
            } catch where ErrorClassifier.classify(error) == .reject && !Task.isCancelled {}
            var letters: [DeadLetter] = []
            for event in transaction.events {
                var single = transaction
                single.events = [event]
                single.position = previous ?? transaction.position
                do {
                    try await applyRetrying([single], owned, deadline: &deadline)
                } catch where ErrorClassifier.classify(error) == .reject && !Task.isCancelled {
                    let reason = FerryError(describing: error, code: .sinkRejected).adding("pipeline", configuration.name)
                        .adding("sink", sink.name).adding("table", event.table.description).adding("position", "\(transaction.position.place)")
                    guard deadLetters != nil else { throw reason }
                    letters.append(DeadLetter(pipeline: configuration.name, sink: sink.name, event: event, error: reason))
                    logger.error("change sent to the dead-letter sink", metadata: [
                        LoggingKeys.sink: "\(sink.name)", LoggingKeys.table: "\(event.table)", LoggingKeys.position: "\(transaction.position)",
                        LoggingKeys.error: .error(reason),
                    ])
                }
            }
            if let deadLetters, !letters.isEmpty {
                let configuration = self.configuration
                // The dead-letter session lives as long as the run (no new session per attempt),
                // so it is not interrupted; the write window is still checked before each write.
                try await configuration.retry.run({
                    try configuration.checkWriteWindow(sink: deadLetters.name)
                    try await deadLetters.deadLetter(letters)
                }) { error, attempt, _ in
                    logger.warning("dead-letter sink failed; retrying", metadata: [LoggingKeys.sink: "\(deadLetters.name)", LoggingKeys.error: .error(error)])
                }
                try? await store.audit(pipeline: configuration.name, action: "dead-letter",
                                       detail: "\(letters.count) change(s) of \(transaction.position.place) rejected by sink \(sink.name): \(letters[0].error.message)")
            }
            var marker = transaction
            marker.events = []
            try await applyRetrying([marker], owned, deadline: &deadline)
        }
    }
}

/// The one session a sink worker owns: made and opened on first use, closed and thrown away after
/// an attempt that failed for a transient reason (a timeout, a lost connection), so every retry
/// starts on a new session and no earlier attempt can still be running (docs/architecture.md, one owner).
/// Unchecked `Sendable`: it moves into the worker's writing task, the only one that uses it until
/// that task has ended.
final class OwnedSession: @unchecked Sendable {
    let sink: any Sink
    let configuration: PipelineConfiguration
    let logger: Logger
    /// A stop ends the retrying of `open` (see `RetryPolicy.run`).
    let stop: StopSignal?
    private var session: (any SinkSession)?

    init(sink: any Sink, configuration: PipelineConfiguration, session: (any SinkSession)?, stop: StopSignal? = nil, logger: Logger) {
        self.sink = sink
        self.configuration = configuration
        self.session = session
        self.stop = stop
        self.logger = logger
    }

    /// Opens a new session, retrying while the target is unreachable or does not answer within the
    /// apply timeout; returns what the target recorded.
    func open() async throws -> SourcePosition? {
        await close()
        let configuration = self.configuration
        let sink = self.sink
        return try await configuration.retry.run(stop: stop, {
            let session = try sink.makeSession()
            do {
                try configuration.checkWriteWindow(sink: sink.name)
                let recorded = try await withDeadline(.seconds(configuration.applyTimeoutSeconds), clock: configuration.clock, session: session,
                                                      window: configuration.writeWindow) {
                    try await session.open()
                }
                self.session = session
                return recorded
            } catch {
                try? await session.close()
                throw error
            }
        }) { error, attempt, wait in
            logger.warning("sink not ready; retrying", metadata: [LoggingKeys.sink: "\(sink.name)", LoggingKeys.error: .error(error),
                                                                   "ferry.attempt": "\(attempt)", LoggingKeys.retryIn: .seconds(wait)])
        }
    }

    /// One attempt at `batch` on the current session (a new one when there is none); returns what
    /// finishes making it durable, when the session left that for later. A session that cannot be
    /// opened for a reason other than a transient one stops the pipeline: the batch was never
    /// tried, so none of its changes is isolated or dead-lettered.
    func write(_ batch: [Transaction], deadline: Duration) async throws -> DurableCompletion? {
        if session == nil {
            do {
                _ = try await open()
            } catch where ErrorClassifier.classify(error) == .reject {
                throw SessionUnusable(underlying: error)
            }
        }
        guard let session else { return nil }
        do {
            try configuration.checkWriteWindow(sink: session.name)
            return try await withDeadline(deadline, clock: configuration.clock, session: session, window: configuration.writeWindow) {
                try await session.write(batch)
            }
        } catch where ErrorClassifier.isTransient(error) || error is CancellationError {
            await close()
            throw error
        }
    }

    /// The open session, for another task to own from now on.
    func handOver() -> (any SinkSession)? {
        defer { session = nil }
        return session
    }

    func close() async {
        guard let session else { return }
        self.session = nil
        try? await session.close()
    }
}

/// A new session could not be opened for a reason retrying does not mend (a refused login, a
/// missing privilege): the pipeline stops with the underlying error.
struct SessionUnusable: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    var underlying: any Error
    var isTransient: Bool { false }
    var disposition: ErrorDisposition { .fatal }
    var ferryError: FerryError { FerryError(describing: underlying, code: .sinkWriteFailed) }
}

/// How long `body` took on `clock`.
func elapsedTime<C: Clock<Duration>>(on clock: C, _ body: () async throws -> Void) async throws -> Duration {
    let started = clock.now
    try await body()
    return started.duration(to: clock.now)
}

/// The deadline of one sink's applies. Each timeout doubles it (up to 8× the configured timeout):
/// a batch that is merely slower than the deadline — a long backlog, a busy target — would
/// otherwise be abandoned and started again forever. It stays raised for the next batches, which
/// are likely as slow, and comes down a step after each batch that needed less than half of it.
struct ApplyDeadline {
    let seconds: Double
    private(set) var doublings = 0
    static let maximumDoublings = 3

    init(seconds: Double) { self.seconds = seconds }

    var current: Duration { .seconds(seconds * Double(1 << doublings)) }

    mutating func timedOut() { doublings = min(doublings + 1, Self.maximumDoublings) }

    mutating func finished(in elapsed: Duration) {
        if doublings > 0, elapsed * 2 < current { doublings -= 1 }
    }
}

extension PipelineConfiguration {
    /// Refuses to start a write once the write window has closed.
    func checkWriteWindow(sink: String) throws {
        if let left = writeWindow?(), left <= .zero { throw WriteWindow.closed(context: [("pipeline", name), ("sink", sink)]) }
    }
}

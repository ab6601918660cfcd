import FerryCore
import FerryTestKit
import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import Pipeline
import StateStore
import Testing

/// Opens once; everything waiting on it goes on. Waiting ignores cancellation.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = lock.withLock {
                if !isOpen { waiting.append(continuation) }
                return isOpen
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let resumed = lock.withLock {
            isOpen = true
            defer { waiting = [] }
            return waiting
        }
        for continuation in resumed { continuation.resume() }
    }
}

/// A session whose calls hang until it is interrupted (as a connection does whose server stopped
/// answering), then fail; it ends only once `ending` opens, so a test can hold an interrupted
/// attempt between its interruption and its end.
actor HangingSession: SinkSession {
    nonisolated let name: String
    private nonisolated let interrupted = Gate()
    let ending: Gate
    private(set) var ended = false

    init(name: String = "hanging", ending: Gate) {
        self.name = name
        self.ending = ending
    }

    func open() async throws -> SourcePosition? { nil }
    func close() async throws {}

    func apply(_ transactions: [Transaction]) async throws {
        await interrupted.wait()
        await ending.wait()
        ended = true
        throw MemorySinkError(message: "connection closed", isTransient: true)
    }

    nonisolated func interrupt() { interrupted.open() }
}

@Suite struct DeadlineTests {
    @Test func returnsWhatTheAttemptReturns() async throws {
        let value = try await withDeadline(.seconds(10), clock: ManualClock(), session: HangingSession(ending: Gate())) { 42 }
        #expect(value == 42)
    }

    /// The deadline interrupts the session, and the caller gets `ApplyTimeout` only once the
    /// attempt has ended: nothing can retry beside it.
    @Test func aTimeoutInterruptsTheSessionAndWaitsForTheAttemptToEnd() async throws {
        let clock = ManualClock()
        let ending = Gate()
        let session = HangingSession(ending: ending)
        let outcome = OutcomeBox()
        let waiting = Task {
            do {
                try await withDeadline(.seconds(1), clock: clock, session: session) { try await session.apply([]) }
            } catch {
                outcome.set(error)
            }
        }
        try await eventually("the timer sleeps") { clock.sleeping == 1 }
        clock.advance(by: .seconds(1))
        // Interrupted, but still running: the caller must still be waiting.
        for _ in 0..<50 { await Task.yield() }
        #expect(outcome.error == nil)
        #expect(await !session.ended)
        ending.open()
        await waiting.value
        #expect(outcome.error is ApplyTimeout)
        #expect(await session.ended)
    }

    /// Cluster mode's write window: renewals that move it on let a long attempt go on past the
    /// window it started with; once it closes the attempt is interrupted and the caller gets
    /// `cluster.fenced` (not a timeout to retry) after the attempt has ended.
    @Test func aClosingWriteWindowInterruptsTheAttempt() async throws {
        let clock = ManualClock()
        let ending = Gate()
        let session = HangingSession(ending: ending)
        let outcome = OutcomeBox()
        let window = NIOLockedValueBox<Duration>(.seconds(2))
        let waiting = Task {
            do {
                try await withDeadline(.seconds(60), clock: clock, session: session, window: { window.withLockedValue { $0 } }) {
                    try await session.apply([])
                }
            } catch {
                outcome.set(error)
            }
        }
        try await eventually("the timer sleeps until the window's end") { clock.sleeping == 1 }
        // Renewed meanwhile: at the window's first end it is open for 2 s more.
        clock.advance(by: .seconds(2))
        try await eventually("the timer sleeps again") { clock.sleeping == 1 }
        window.withLockedValue { $0 = .zero }
        clock.advance(by: .seconds(2))
        for _ in 0..<50 { await Task.yield() }
        #expect(outcome.error == nil)
        ending.open()
        await waiting.value
        #expect((outcome.error as? FerryError)?.code == .clusterFenced)
        #expect(await session.ended)
    }

    /// A drain that timed out cancels its sink workers: the attempt is interrupted and awaited,
    /// and the caller sees the cancellation, not a timeout.
    @Test func cancellationInterruptsTheSessionAndWaits() async throws {
        let ending = Gate()
        ending.open()
        let session = HangingSession(ending: ending)
        let waiting = Task { try await withDeadline(.seconds(120), clock: ManualClock(), session: session) { try await session.apply([]) } }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(await session.ended)
    }
}

/// The first error a task saw.
final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?

    var error: (any Error)? { lock.withLock { stored } }
    func set(_ error: any Error) { lock.withLock { stored = error } }
}

/// Sessions of one in-memory target that count how many applies run at once across all of them;
/// the first session's first apply hangs until interrupted and ends only when `release` opens.
final class CountingSink: Sink, @unchecked Sendable {
    let name = "counting"
    let target = MemoryTableSink(name: "counting")
    let release = Gate()
    private let lock = NSLock()
    private var running = 0
    private(set) var mostAtOnce = 0
    private(set) var sessions = 0
    private(set) var closed = 0

    func makeSession() throws -> any SinkSession {
        let number = lock.withLock {
            sessions += 1
            return sessions
        }
        return CountingSession(sink: self, hangs: number == 1)
    }

    func started() {
        lock.withLock {
            running += 1
            mostAtOnce = max(mostAtOnce, running)
        }
    }

    func finished() { lock.withLock { running -= 1 } }
    func sessionClosed() { lock.withLock { closed += 1 } }
}

actor CountingSession: SinkSession {
    let sink: CountingSink
    let hangs: Bool
    private nonisolated let interrupted = Gate()
    nonisolated var name: String { sink.name }

    init(sink: CountingSink, hangs: Bool) {
        self.sink = sink
        self.hangs = hangs
    }

    func open() async throws -> SourcePosition? { try await sink.target.open() }
    func close() async throws { sink.sessionClosed() }
    nonisolated func interrupt() { interrupted.open() }

    func apply(_ transactions: [Transaction]) async throws {
        sink.started()
        defer { sink.finished() }
        if hangs {
            await interrupted.wait()
            await sink.release.wait()
            throw MemorySinkError(message: "connection closed", isTransient: true)
        }
        try await sink.target.apply(transactions)
    }
}

@Suite struct SessionOwnershipTests {
    /// A batch that times out is retried on a new session only after the first attempt ended:
    /// the target never sees two applies at once, and the interrupted session is closed.
    @Test func aTimedOutBatchIsRetriedOnANewSessionAfterTheAttemptEnded() async throws {
        let store = try await SQLiteCheckpointStore.open(path: temporaryDirectory() + "/state.sqlite", logger: Logger(label: "test"))
        let clock = ManualClock()
        let sink = CountingSink()
        let configuration = PipelineConfiguration(name: "p", applyTimeoutSeconds: 1, retry: RetryPolicy(initialDelaySeconds: 0.001, maximumDelaySeconds: 0.001),
                                                  clock: clock)
        let runner = PipelineRunner(configuration: configuration, source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
        let stop = StopSignal()
        let run = Task { try await runner.run(stop: stop) }
        try await eventually("the first apply hangs") { clock.sleeping == 1 && sink.mostAtOnce == 1 }
        clock.advance(by: .seconds(1))
        for _ in 0..<50 { await Task.yield() }
        #expect(sink.sessions == 1, "a retry started while the interrupted attempt was still running")
        sink.release.open()
        try await eventually("the retry applied every row") { await sink.target.rows("shop.items").count == 3 }
        await stop.stop()
        try await run.value
        #expect(sink.mostAtOnce == 1)
        #expect(sink.sessions == 2 && sink.closed == 2)
        try await store.close()
    }
}

/// A target whose writes hang until its connection is closed (the session interrupted).
actor StuckSink: StatelessSink {
    nonisolated let name: String
    private nonisolated let interrupted = Gate()
    private(set) var started = false

    init(name: String) {
        self.name = name
    }

    func open() async throws -> SourcePosition? { nil }
    func close() async throws {}
    nonisolated func interrupt() { interrupted.open() }

    func apply(_ transactions: [Transaction]) async throws {
        started = true
        await interrupted.wait()
        throw MemorySinkError(message: "connection closed", isTransient: true)
    }
}

@Suite struct StopTimeoutTests {
    /// A stop whose drain times out cancels the sink's batch: the run ends, and the cancelled
    /// batch is not mistaken for a rejection (nothing is dead-lettered; it is applied next start).
    @Test func aDrainThatTimesOutEndsTheRunAndDeadLettersNothing() async throws {
        let store = try await SQLiteCheckpointStore.open(path: temporaryDirectory() + "/state.sqlite", logger: Logger(label: "test"))
        let stuck = StuckSink(name: "target")
        let letters = MemoryTableSink(name: "letters")
        let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", errorPolicy: .deadLetter(letters), drainTimeout: .milliseconds(200)),
                                    source: ListSource(inserts(1...3)), sinks: [stuck], store: store, logger: Logger(label: "test"))
        let stop = StopSignal()
        let run = Task { try await runner.run(stop: stop) }
        try await eventually("the sink is writing") { await stuck.started }
        await stop.stop()
        try await run.value
        #expect(await letters.letters.isEmpty)
        try await store.close()
    }
}

@Suite struct ApplyDeadlineTests {
    /// Doubled after each timeout up to 8×, kept for the next batches, lowered a step after a
    /// batch that needed less than half of it.
    @Test func raisedByTimeoutsLoweredByQuickBatches() {
        var deadline = ApplyDeadline(seconds: 2)
        #expect(deadline.current == .seconds(2))
        deadline.timedOut()
        deadline.timedOut()
        #expect(deadline.current == .seconds(8))
        deadline.finished(in: .seconds(5))
        #expect(deadline.current == .seconds(8), "a batch that needed more than half keeps it")
        for _ in 0..<5 { deadline.timedOut() }
        #expect(deadline.current == .seconds(16))
        deadline.finished(in: .seconds(1))
        #expect(deadline.current == .seconds(8))
        deadline.finished(in: .seconds(1))
        deadline.finished(in: .seconds(1))
        deadline.finished(in: .seconds(0))
        #expect(deadline.current == .seconds(2))
    }
}

/// A target that goes down when its first session fails: every later session fails to open, for a
/// reason worth retrying.
final class DownAfterFirstFailureSink: Sink, @unchecked Sendable {
    let name = "down"
    private let lock = NSLock()
    private var made = 0

    var sessions: Int { lock.withLock { made } }

    func makeSession() throws -> any SinkSession {
        let number = lock.withLock {
            made += 1
            return made
        }
        return DownSession(opens: number == 1)
    }
}

actor DownSession: SinkSession {
    let opens: Bool
    nonisolated let name = "down"

    init(opens: Bool) { self.opens = opens }

    func open() async throws -> SourcePosition? {
        guard opens else { throw MemorySinkError(message: "connection refused", isTransient: true) }
        return nil
    }

    func close() async throws {}

    func apply(_ transactions: [Transaction]) async throws {
        throw MemorySinkError(message: "connection reset", isTransient: true)
    }
}

@Suite struct StopWhileReopeningTests {
    /// A stop while the worker retries opening a new session (the target went down mid-batch) is
    /// a graceful stop, not a session that cannot be used: the run ends without an error.
    @Test func aStopWhileReopeningASessionEndsTheRunGracefully() async throws {
        try await withStore { store in
            let sink = DownAfterFirstFailureSink()
            let configuration = PipelineConfiguration(name: "p", retry: RetryPolicy(initialDelaySeconds: 0.01, maximumDelaySeconds: 0.02))
            let runner = PipelineRunner(configuration: configuration, source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
            let stop = StopSignal()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await runner.run(stop: stop) }
                try await eventually("the worker retries opening sessions") { sink.sessions >= 3 }
                await stop.stop()
                try await group.next()
            }
            #expect(try await store.checkpoint(pipeline: "p")?.sinks["down"]?.applied == nil)
        }
    }
}

import FerryCore
import FerryTestKit
import Foundation
import Logging
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

/// A sink operation that ignores cancellation until `release` opens, as a stuck client library does.
private func stuck(until release: Gate) async -> Int {
    await release.wait()
    return 7
}

@Suite struct DeadlineTests {
    @Test func returnsWhatTheOperationReturns() async throws {
        let value = try await withDeadline(seconds: 10, sink: "s") { 42 }
        #expect(value == 42)
    }

    /// The operation never ends by itself: only the deadline ends the wait.
    @Test func givesUpAfterTheDeadline() async throws {
        let release = Gate()
        defer { release.open() }
        await #expect(throws: ApplyTimeout.self) {
            _ = try await withDeadline(seconds: 0.2, sink: "s") { await stuck(until: release) }
        }
    }

    /// A drain that timed out cancels its sink workers; they must end then, not after the apply
    /// timeout of an operation that ignores cancellation (which would end this wait with
    /// `ApplyTimeout` instead).
    @Test func cancellationEndsTheWait() async throws {
        let release = Gate()
        defer { release.open() }
        let waiting = Task { try await withDeadline(seconds: 120, sink: "s") { await stuck(until: release) } }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
    }
}

/// A target whose writes hang, ignoring cancellation, until released.
actor StuckSink: Sink {
    nonisolated let name: String
    let release: Gate
    private(set) var started = false

    init(name: String, release: Gate) {
        self.name = name
        self.release = release
    }

    func open() async throws -> BinlogPosition? { nil }
    func close() async throws {}

    func apply(_ transactions: [Transaction]) async throws {
        started = true
        _ = await stuck(until: release)
    }
}

@Suite struct StopTimeoutTests {
    /// A stop whose drain times out cancels the sink's batch: the run ends, and the cancelled
    /// batch is not mistaken for a rejection (nothing is dead-lettered; it is applied next start).
    @Test func aDrainThatTimesOutEndsTheRunAndDeadLettersNothing() async throws {
        let store = try await SQLiteCheckpointStore.open(path: temporaryDirectory() + "/state.sqlite", logger: Logger(label: "test"))
        let release = Gate()
        defer { release.open() }
        let stuck = StuckSink(name: "target", release: release)
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

import DiskLog
import FerryCore
import FerryTestKit
import Foundation
import Logging
@testable import Pipeline
import StateStore
import Synchronization
import Testing

/// Which batches may become durable; a waiter resumes when released or cancelled, so a failed
/// test cannot leave the pipeline waiting for ever.
final class DurabilityGate: Sendable {
    private struct State {
        var released = 0
        var waiters: [(batch: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    func release(through batch: Int) {
        let ready = state.withLock { state in
            state.released = max(state.released, batch)
            let ready = state.waiters.filter { $0.batch <= batch }
            state.waiters.removeAll { $0.batch <= batch }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    func wait(for batch: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    if batch <= state.released || Task.isCancelled { return true }
                    state.waiters.append((batch, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            release(through: .max)
        }
    }
}

/// A target that writes a batch at once and makes it durable only when the test releases it (a
/// file's fsync, held), or fails to.
actor HeldDurabilitySink: StatelessSink {
    nonisolated let name = "held"
    nonisolated let gate = DurabilityGate()
    private(set) var written: [SourcePosition] = []
    private var failing: Int?
    private var failingWritesFrom: Int?
    private(set) var failedWrites = 0

    func open() async throws -> SourcePosition? { nil }
    func close() async throws {}

    func apply(_ transactions: [Transaction]) async throws {
        try await write(transactions)?()
    }

    func write(_ transactions: [Transaction]) async throws -> DurableCompletion? {
        if let from = failingWritesFrom, written.count + 1 >= from {
            failedWrites += 1
            throw FerryError(code: .sinkWriteFailed, message: "target busy", disposition: .retry)
        }
        written.append(transactions.last!.position)
        let batch = written.count
        let fails = batch == failing
        return { [gate] in
            await gate.wait(for: batch)
            if fails {
                throw FerryError(code: .sinkFileFsync, message: "fsync of /data/held.jsonl failed: Input/output error", disposition: .fatal)
            }
        }
    }

    /// Batch `batch`'s durability fails (an fsync error) once released.
    func failDurability(of batch: Int) { failing = batch }

    /// Writes of batch `batch` and later fail, for a reason worth retrying.
    func failWrites(from batch: Int) { failingWritesFrom = batch }
}

@Suite struct TrailingDurabilityTests {
    /// The next batch is written while the last one is made durable, and a position is recorded
    /// only once its batch is durable.
    @Test func theNextBatchIsWrittenWhileThePositionWaitsForDurability() async throws {
        try await withStore { store in
            let sink = HeldDurabilitySink()
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", batchTransactions: 1),
                                        source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
            func applied() async throws -> SourcePosition? { try await store.checkpoint(pipeline: "p")?.sinks["held"]?.applied }
            try await run(runner, until: "all three durable and recorded") {
                try await eventually("batch 2 written") { await sink.written.count == 2 }
                // Batch 2 went out while batch 1 was not yet durable: nothing is recorded.
                #expect(try await applied() == nil)
                sink.gate.release(through: 1)
                // Batch 3 waits for batch 1 to settle, not for batch 2.
                try await eventually("batch 1 recorded, batch 3 written") {
                    let recorded = try await applied()
                    let written = await sink.written.count
                    return recorded == position(100) && written == 3
                }
                #expect(try await applied() == position(100))
                sink.gate.release(through: 3)
                try await eventually("batch 3 recorded") { try await applied() == position(300) }
                return true
            }
            #expect(await sink.written == [position(100), position(200), position(300)])
        }
    }

    /// A batch whose durability fails stops the pipeline and its position is never recorded —
    /// also the last batch, after which the worker only waits for more changes.
    @Test(arguments: [2, 3]) func aFailedDurabilityStopsThePipelineBeforeItsPositionIsRecorded(failing: Int) async throws {
        try await withStore { store in
            let sink = HeldDurabilitySink()
            await sink.failDurability(of: failing)
            sink.gate.release(through: 3)
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", batchTransactions: 1),
                                        source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
            await #expect(throws: FerryError.self) { try await runner.run(stop: StopSignal()) }
            let applied = try await store.checkpoint(pipeline: "p")?.sinks["held"]?.applied
            #expect(applied == position(UInt64(failing - 1) * 100))
        }
    }

    /// A stop that ends the retrying of one batch lets the batch before it settle, and its failed
    /// fsync is what the pipeline reports — not a graceful stop.
    @Test func aStopWhileRetryingDoesNotHideAFailedFsync() async throws {
        try await withStore { store in
            let sink = HeldDurabilitySink()
            await sink.failDurability(of: 1)
            await sink.failWrites(from: 2)
            let stop = StopSignal()
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", batchTransactions: 1,
                                                                             retry: RetryPolicy(initialDelaySeconds: 0.01, maximumDelaySeconds: 0.02)),
                                        source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await runner.run(stop: stop) }
                try await eventually("batch 2 retried while batch 1 is not durable") { await sink.failedWrites >= 2 }
                await stop.stop()
                sink.gate.release(through: 1)
                await #expect(throws: FerryError.self) { try await group.next() }
            }
            #expect(try await store.checkpoint(pipeline: "p")?.sinks["held"]?.applied == nil)
        }
    }

    /// A disk buffer releases only what was acknowledged, though its reader has read further.
    @Test func aDiskBufferKeepsWhatWasReadButNotAcknowledged() async throws {
        let directory = temporaryDirectory()
        let records = (1...400).map { number in
            transaction(UInt64(number * 100), [(.create, nil, [.int(Int64(number)), .string(String(repeating: "x", count: 10_000)), .null])])
        }
        let buffer = try DiskBuffer(directory: directory, options: DiskLog.Options(segmentBytes: 1 << 20), starts: ["only": nil], fallback: nil)
        for record in records { try await buffer.append(record) }
        let first = try await buffer.read(consumer: "only", limit: 200, maximumEvents: .max)
        let second = try await buffer.read(consumer: "only", limit: 200, maximumEvents: .max)
        #expect(first.last?.position == position(20_000))
        #expect(second.last?.position == position(40_000))
        func origin() throws -> SourcePosition? {
            let text = try String(contentsOfFile: directory + "/origin.json", encoding: .utf8)
            return SourcePosition(persistedJSON: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try await buffer.acknowledge(consumer: "only", through: position(20_000))
        #expect(try origin() == position(20_000))
        try await buffer.acknowledge(consumer: "only", through: position(40_000))
        #expect(try origin() == position(40_000))
    }
}

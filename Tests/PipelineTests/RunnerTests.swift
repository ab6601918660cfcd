import DiskLog
import FerryCore
import FerryTestKit
import Foundation
import Logging
import NIOConcurrencyHelpers
import Rules
@testable import Pipeline
import StateStore
import Testing

/// Waits for `condition` with a deadline, polling.
func eventually(_ what: String, seconds: Double = 90, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}

/// Runs a pipeline until `condition` holds, then stops it gracefully and returns.
func run(_ runner: PipelineRunner, until what: String, _ condition: () async throws -> Bool) async throws {
    let stop = StopSignal()
    let finished = Flag()
    let task = Task {
        defer { finished.set() }
        try await runner.run(stop: stop)
    }
    do {
        // A pipeline that stops early (with an error) ends the wait at once.
        try await eventually(what) { try await condition() || finished.isSet }
        if finished.isSet { try await task.value }
    } catch {
        await stop.stop()
        _ = try? await task.value
        throw error
    }
    await stop.stop()
    try await task.value
}

/// A flag one task sets and another polls.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

func inserts(_ range: ClosedRange<Int>, name: (Int) -> String = { "item \($0)" }) -> [Transaction] {
    range.map { transaction(UInt64($0 * 100), [(.create, nil, [.int(Int64($0)), .string(name($0)), .decimal("1.00")])]) }
}

/// A fresh state store, closed after `body` (SQLiteNIO asserts on unclosed connections).
func withStore(_ body: (SQLiteCheckpointStore) async throws -> Void) async throws {
    let store = try await SQLiteCheckpointStore.open(path: temporaryDirectory() + "/state.sqlite", logger: Logger(label: "test"))
    do {
        try await body(store)
    } catch {
        try await store.close()
        throw error
    }
    try await store.close()
}

@Suite struct RunnerTests {
    let logger = Logger(label: "test")


    /// The running process reads its figures from memory: positions, lag and the source's end;
    /// they are saved for `ferry status` too.
    @Test func liveFiguresCarryPositionsAndLag() async throws {
        try await withStore { store in
            let target = MemoryTableSink(name: "target")
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", progressInterval: .milliseconds(10)),
                                        source: ListSource(inserts(1...20)), sinks: [target], store: store, logger: logger)
            try await run(runner, until: "live figures of every change") {
                runner.live.progress?.sinks.first?.appliedPosition == position(2000) && runner.live.progress?.safePosition == position(2000)
            }
            let progress = try #require(runner.live.progress)
            #expect(progress.eventsRead == 20)
            #expect(progress.buffer == "memory")
            #expect(progress.readPosition == position(2000).description)
            #expect(progress.sourceEnd == position(2000))
            #expect(progress.sinks.map(\.lagBytes) == [0])
            #expect(progress.sinks.map(\.lagEvents) == [0])
            #expect(progress.tables == ["shop.items": 20])
            // The same figures are saved for `ferry status` in another process.
            try await eventually("progress saved") { try await store.progress(pipeline: "p")?.sinks.first?.eventsApplied == 20 }
        }
    }

    /// A source that ends with a cancellation nobody asked for (a part of it cancelled another
    /// by mistake) fails the pipeline: taken for a stop, it ended `ferry run` with exit 0 as if
    /// it had drained, its work unfinished.
    @Test func aSourceEndingWithAnUnaskedCancellationFailsThePipeline() async throws {
        struct SelfCancellingSource: TransactionSource {
            let transactions: [Transaction]
            func run(after position: SourcePosition?, deliver: @Sendable (Transaction) async throws -> Void) async throws {
                for transaction in transactions { try await deliver(transaction) }
                throw CancellationError()
            }
            func recoverLostState(sinksAt position: SourcePosition) async throws {}
        }
        try await withStore { store in
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p"), source: SelfCancellingSource(transactions: inserts(1...3)),
                                        sinks: [MemoryTableSink(name: "target")], store: store, logger: logger)
            let error = await #expect(throws: FerryError.self) { try await runner.run(stop: StopSignal()) }
            #expect(error?.code == .internalError)
            #expect(error?.context.contains { $0.0 == "pipeline" && $0.1 == "p" } == true)
        }
    }

    /// Cluster mode's write window: open and apply run while it is open; once it has closed
    /// (the node's lease was not renewed in time) nothing more is written and the pipeline
    /// stops with `cluster.fenced`.
    @Test func aClosedWriteWindowStopsWritesAndThePipeline() async throws {
        try await withStore { store in
            let target = MemoryTableSink(name: "target")
            let open = NIOLockedValueBox(true)
            var configuration = PipelineConfiguration(name: "p", batchTransactions: 1)
            configuration.writeWindow = { open.withLockedValue { $0 } ? .seconds(5) : .zero }
            let runner = PipelineRunner(configuration: configuration, source: ListSource(inserts(1...3)), sinks: [target], store: store, logger: logger)
            try await run(runner, until: "the first rows while the window is open") { await target.rows("shop.items").count == 3 }

            open.withLockedValue { $0 = false }
            let closed = PipelineRunner(configuration: configuration, source: ListSource(inserts(1...6)), sinks: [target], store: store, logger: logger)
            let error = await #expect(throws: FerryError.self) { try await closed.run(stop: StopSignal()) }
            #expect(error?.code == .clusterFenced)
            #expect(await target.rows("shop.items").count == 3)
        }
    }

    /// A sink whose rules route every change it reads elsewhere is past it all the same: its
    /// position and the safe position move on, and it shows no lag (lag is a matter of positions).
    @Test func aSinkWhoseRulesDropEverythingKeepsUp() async throws {
        try await withStore { store in
            let target = MemoryTableSink(name: "target")
            let everything = MemoryTableSink(name: "everything")
            let rules = RuleSet(rules: [Rule(tables: ["shop.items"], sinks: ["everything"], location: "test:1")], pipeline: "p")
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", rules: rules, progressInterval: .milliseconds(10)),
                                        source: ListSource(inserts(1...20)), sinks: [target, everything], store: store, logger: logger)
            try await run(runner, until: "both sinks past every change") {
                runner.live.progress?.sinks.allSatisfy { $0.appliedPosition == position(2000) } == true
                    && runner.live.progress?.safePosition == position(2000)
            }
            #expect(await target.rows("shop.items").isEmpty)
            #expect(await everything.rows("shop.items").count == 20)
            let progress = try #require(runner.live.progress)
            #expect(progress.sinks.map(\.lagEvents) == [0, 0])
            #expect(progress.sinks.map(\.eventsApplied) == [0, 20])
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(2000))
        }
    }

    @Test func deadLetterPolicyKeepsRejectedChangesAndGoesOn() async throws {
        try await withStore { store in
            let rejecting = MemoryTableSink(name: "target") { event in
                event.after?[1] == .string("bad") ? "value too long for column name" : nil
            }
            let letters = MemoryTableSink(name: "letters")
            let source = ListSource(inserts(1...20) { $0 == 7 || $0 == 15 ? "bad" : "item \($0)" })
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", errorPolicy: .deadLetter(letters)),
                                        source: source, sinks: [rejecting], store: store, logger: logger)
            try await run(runner, until: "all applied") { await rejecting.position == position(2000) }
            #expect(await rejecting.rows("shop.items").count == 18)
            let kept = await letters.letters
            #expect(kept.map { $0.event.after![0] } == [.int(7), .int(15)])
            #expect(kept[0].sink == "target")
            #expect(kept[0].pipeline == "p")
            #expect(kept[0].error.message.contains("value too long"))
            #expect(kept[0].error.context.contains { $0.key == "position" && $0.value == "b.000001:700" })
            #expect(kept[0].error.context.contains { $0.key == "table" && $0.value == "shop.items" })
            #expect(try await store.auditLog(pipeline: "p", limit: 10).contains { $0.action == "dead-letter" })
        }
    }

    @Test func deadLetteringSplitsATransactionAndKeepsItsOtherChanges() async throws {
        try await withStore { store in
            let rejecting = MemoryTableSink(name: "target") { $0.after?[1] == .string("bad") ? "rejected" : nil }
            let letters = MemoryTableSink(name: "letters")
            let mixed = transaction(100, [(.create, nil, [.int(101), .string("a"), .null]), (.create, nil, [.int(102), .string("bad"), .null]),
                                          (.create, nil, [.int(103), .string("c"), .null])])
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", errorPolicy: .deadLetter(letters)),
                                        source: ListSource([mixed] + inserts(2...3)), sinks: [rejecting], store: store, logger: logger)
            try await run(runner, until: "all applied") { await rejecting.position == position(300) }
            let ids = Set(await rejecting.rows("shop.items").map { $0[1] })
            #expect(ids == [.string("a"), .string("c"), .string("item 2"), .string("item 3")])
            #expect(await letters.letters.count == 1)
        }
    }

    @Test func stopPolicyStopsWithTheWhere() async throws {
        try await withStore { store in
            let rejecting = MemoryTableSink(name: "target") { $0.after?[1] == .string("bad") ? "constraint violated" : nil }
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p"),
                                        source: ListSource(inserts(1...3) { $0 == 2 ? "bad" : "ok" }), sinks: [rejecting], store: store, logger: logger)
            await #expect {
                try await runner.run(stop: StopSignal())
            } throws: { error in
                guard let ferry = error as? FerryError else { return false }
                return ferry.message.contains("constraint violated") && ferry.context.contains { $0 == ("pipeline", "p") }
                    && ferry.context.contains { $0 == ("sink", "target") } && ferry.context.contains { $0 == ("table", "shop.items") }
                    && ferry.context.contains { $0 == ("position", "b.000001:200") }
            }
        }
    }

    @Test func transientFailuresAreRetried() async throws {
        try await withStore { store in
            let sink = MemoryTableSink(name: "target")
            await sink.failNext(3)
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", retry: RetryPolicy(initialDelaySeconds: 0.01)),
                                        source: ListSource(inserts(1...5)), sinks: [sink], store: store, logger: logger)
            try await run(runner, until: "applied") { await sink.position == position(500) }
            #expect(await sink.rows("shop.items").count == 5)
        }
    }

    @Test func diskBufferLetsEachSinkGoAtItsOwnPaceAndResumesFromTheLog() async throws {
        try await withStore { store in
            let directory = temporaryDirectory()
            let fast = MemoryTableSink(name: "fast")
            let slow = MemoryTableSink(name: "slow")
            await slow.failNext(1_000_000)
            let source = ListSource(inserts(1...300))
            let configuration = PipelineConfiguration(name: "p", buffer: .disk(directory: directory, options: DiskLog.Options(segmentBytes: 1 << 20)),
                                                      batchTransactions: 7, retry: RetryPolicy(initialDelaySeconds: 0.01, maximumDelaySeconds: 0.02),
                                                      drainTimeout: .milliseconds(200))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [fast, slow], store: store, logger: logger),
                          until: "the fast sink has everything while the slow one is stuck") { await fast.position == position(30_000) }
            #expect(await slow.position == nil)
            // Second run: the source resumes after the newest buffered transaction, not after the
            // slow sink's (empty) position — the slow sink is served from the log.
            await slow.failNext(0)
            source.add(inserts(301...310))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [fast, slow], store: store, logger: logger),
                          until: "both sinks have everything") {
                let (f, l) = (await fast.position, await slow.position)
                return f == position(31_000) && l == position(31_000)
            }
            #expect(source.resumedAfter.count == 2)
            #expect(source.resumedAfter[1] == position(30_000))
            #expect(await slow.rows("shop.items").count == 310)
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(31_000))
        }
    }

    @Test func aTargetDownAtStartHoldsUpOnlyItsOwnSink() async throws {
        try await withStore { store in
            let up = MemoryTableSink(name: "up")
            let down = MemoryTableSink(name: "down")
            let source = ListSource(inserts(1...10))
            let configuration = PipelineConfiguration(name: "p", buffer: .disk(directory: temporaryDirectory(), options: DiskLog.Options(segmentBytes: 1 << 20)),
                                                      retry: RetryPolicy(initialDelaySeconds: 0.01, maximumDelaySeconds: 0.02), drainTimeout: .milliseconds(100))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [up, down], store: store, logger: logger),
                          until: "both applied") {
                let (u, d) = (await up.position, await down.position)
                return u == position(1_000) && d == position(1_000)
            }
            await down.failOpen(1_000_000)
            source.add(inserts(11...20))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [up, down], store: store, logger: logger),
                          until: "the reachable sink moved on") { await up.position == position(2_000) }
            #expect(await down.position == position(1_000))
            await down.failOpen(0)
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [up, down], store: store, logger: logger),
                          until: "the other sink caught up from the log") { await down.position == position(2_000) }
        }
    }

    /// A stop while a sink waits out a long backoff (its target refuses connections) ends the
    /// wait at once; it does not hold the shutdown until the drain timeout.
    @Test func aStopEndsASinksRetryAtOnce() async throws {
        try await withStore { store in
            let up = MemoryTableSink(name: "up")
            let down = MemoryTableSink(name: "down")
            let source = ListSource(inserts(1...10))
            let configuration = PipelineConfiguration(name: "p", retry: RetryPolicy(initialDelaySeconds: 3600, maximumDelaySeconds: 3600),
                                                      drainTimeout: .seconds(600))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [up, down], store: store, logger: logger),
                          until: "both applied") {
                let (u, d) = (await up.position, await down.position)
                return u == position(1_000) && d == position(1_000)
            }
            await down.failOpen(1_000_000)
            source.add(inserts(11...20))
            let stop = StopSignal()
            let runner = PipelineRunner(configuration: configuration, source: source, sinks: [up, down], store: store, logger: logger)
            let task = Task { try await runner.run(stop: stop) }
            try await eventually("the reachable sink moved on") { await up.position == position(2_000) }
            let stopped = ContinuousClock.now
            await stop.stop()
            try await task.value
            #expect(ContinuousClock.now - stopped < .seconds(60), "the stop waited for the sink's backoff")
            #expect(await down.position == position(1_000))
        }
    }

    /// Transactions with nothing for a sink (tables filtered out) move its position in the state
    /// store at once, but write its target only with the next change (or after the interval):
    /// a MySQL sink on the source's own server would otherwise read back and record each of its
    /// own offset writes, forever.
    @Test func positionOnlyTransactionsDoNotWriteTheTargetEachTime() async throws {
        try await withStore { store in
            let sink = MemoryTableSink(name: "own")
            let empty = (11...210).map { Transaction(gtid: nil, position: position(UInt64($0 * 100)), serverID: 1, timestampMillis: 0, events: []) }
            let source = ListSource(inserts(1...10) + empty)
            var configuration = PipelineConfiguration(name: "p")
            configuration.positionOnlyInterval = .seconds(3600)
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [sink], store: store, logger: logger),
                          until: "the state store has the last position") {
                try await store.checkpoint(pipeline: "p")?.sinks["own"]?.applied == position(21_000)
            }
            let batches = await sink.batches
            #expect(batches <= 3, "the target was written \(batches) times")
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(21_000))
            source.add(inserts(300...300))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [sink], store: store, logger: logger),
                          until: "the next change") { await sink.position == position(30_000) }
        }
    }

    @Test func consumedSegmentsAreDeletedAndTheOriginMoves() async throws {
        try await withStore { store in
            let directory = temporaryDirectory()
            let sink = MemoryTableSink(name: "only")
            let big = (1...400).map { number in
                transaction(UInt64(number * 100), [(.create, nil, [.int(Int64(number)), .string(String(repeating: "x", count: 10_000)), .null])])
            }
            let configuration = PipelineConfiguration(name: "p", buffer: .disk(directory: directory, options: DiskLog.Options(segmentBytes: 1 << 20)))
            try await run(PipelineRunner(configuration: configuration, source: ListSource(big), sinks: [sink], store: store, logger: logger),
                          until: "applied") { await sink.position == position(40_000) }
            let segments = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }
            #expect(segments.count <= 2, "4 MB of records in 1 MiB segments, all applied: \(segments)")
            let origin = try String(contentsOfFile: directory + "/origin.json", encoding: .utf8)
            #expect(SourcePosition(persistedJSON: origin.trimmingCharacters(in: .whitespacesAndNewlines))?.binlog.map { $0.coordinates.offset > 0 } == true)
        }
    }

    @Test func aSinkOlderThanTheLogEmptiesItAndRereadsTheSource() async throws {
        try await withStore { store in
            let directory = temporaryDirectory()
            let first = MemoryTableSink(name: "first")
            let big = (1...300).map { number in
                transaction(UInt64(number * 100), [(.create, nil, [.int(Int64(number)), .string(String(repeating: "x", count: 10_000)), .null])])
            }
            let source = ListSource(big)
            let disk = BufferSetting.disk(directory: directory, options: DiskLog.Options(segmentBytes: 1 << 20))
            try await run(PipelineRunner(configuration: PipelineConfiguration(name: "p", buffer: disk), source: source, sinks: [first], store: store, logger: logger),
                          until: "applied") { await first.position == position(30_000) }
            // Applied segments were deleted, so the log no longer reaches back to 1000.
            let late = MemoryTableSink(name: "late", position: position(1_000))
            try await run(PipelineRunner(configuration: PipelineConfiguration(name: "p", buffer: disk), source: source, sinks: [first, late], store: store, logger: logger),
                          until: "the older sink caught up") { await late.position == position(30_000) }
            #expect(await late.rows("shop.items").count == 290)
            #expect(source.resumedAfter.last! == position(1_000))
            #expect(try await store.auditLog(pipeline: "p", limit: 20).contains { $0.action == "buffer-reset" })
        }
    }

    @Test func rewindReplaysOneSinkFromTheLog() async throws {
        try await withStore { store in
            let directory = temporaryDirectory()
            let a = MemoryTableSink(name: "a")
            let b = MemoryTableSink(name: "b")
            let source = ListSource(inserts(1...30))
            let configuration = PipelineConfiguration(name: "p", buffer: .disk(directory: directory, options: DiskLog.Options(segmentBytes: 1 << 20)),
                                                      batchTransactions: 1)
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [a, b], store: store, logger: logger),
                          until: "applied") {
                let (x, y) = (await a.position, await b.position)
                return x == position(3_000) && y == position(3_000)
            }
            let batchesBefore = (await a.batches, await b.batches)
            try await store.requestRewind(pipeline: "p", sink: "b", position: position(2_000))
            try await run(PipelineRunner(configuration: configuration, source: source, sinks: [a, b], store: store, logger: logger),
                          until: "rewound sink replayed") {
                let batches = await b.batches
                return batches >= batchesBefore.1 + 10
            }
            #expect(await b.batches == batchesBefore.1 + 10, "ten transactions after the rewind position, one per batch")
            #expect(await a.batches == batchesBefore.0, "the other sink replays nothing")
            #expect(source.resumedAfter.last! == position(3_000), "the source is not re-read: the log has it")
            #expect(try await store.checkpoint(pipeline: "p")?.rewinds.isEmpty == true)
            await #expect(throws: FerryError.self) {
                try await store.requestRewind(pipeline: "p", sink: "b", position: position(9_000))
                try await PipelineRunner(configuration: configuration, source: source, sinks: [a, b], store: store, logger: logger).run(stop: StopSignal())
            }
        }
    }

    @Test func mappingShapesRowsBeforeTheSinks() async throws {
        try await withStore { store in
            let sink = MemoryTableSink(name: "target")
            let transform = TransactionTransform(mappings: [TableMapping(tables: "shop.items", columns: ColumnProjection(excludeColumns: ["price"], renameColumns: ["name": "title"]))],
                                                 pipeline: "p")
            let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", transform: transform),
                                        source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: logger)
            try await run(runner, until: "applied") { await sink.position == position(300) }
            #expect(await sink.rows("shop.items") == [[.int(1), .string("item 1")], [.int(2), .string("item 2")], [.int(3), .string("item 3")]])
        }
    }
}

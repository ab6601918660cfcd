import FerryCore
import FerryTestKit
import Foundation
import Logging
@testable import Pipeline
@testable import StateStore
import Testing

@Suite struct StateStoreTests {
    let table = TableName(database: "shop", table: "items")

    /// Two pipelines request their first snapshots at once while positions are saved: every write
    /// lands (before, a request's transaction swallowed the other calls and its ROLLBACK or a
    /// nested BEGIN failed with "cannot start a transaction within a transaction").
    @Test func concurrentSnapshotRequestsAndPositionWritesAllPersist() async throws {
        try await withStore { store in
            let tables = (1...20).map { TableName(database: "shop", table: "t\($0)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pipeline in ["a", "b"] {
                    group.addTask { try await store.requestSnapshot(pipeline: pipeline, tables: tables, reason: "initial", atMillis: 1) }
                }
                for index in 1...50 {
                    group.addTask {
                        try await store.saveSinkPositions(pipeline: "p\(index % 5)", sink: "s\(index)", queued: position(UInt64(index)), applied: position(UInt64(index)))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.snapshotTables(pipeline: "a").count == 20)
            #expect(try await store.snapshotTables(pipeline: "b").count == 20)
            var saved = 0
            for pipeline in 0..<5 { saved += try await store.checkpoint(pipeline: "p\(pipeline)")?.sinks.count ?? 0 }
            #expect(saved == 50)
        }
    }

    /// A full file system holds writers until space returns, while reads go on; nothing is lost.
    /// `max_page_count` makes SQLite answer `SQLITE_FULL` exactly as a full disk does.
    @Test func aFullFileSystemHoldsWritesUntilSpaceReturns() async throws {
        try await withStore { store in
            try await store.saveSafePosition(position(100), pipeline: "p")
            _ = try await store.execute("PRAGMA max_page_count = 1")
            let detail = String(repeating: "x", count: 100_000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await store.audit(pipeline: "p", action: "big", detail: detail)
                    try await store.saveSafePosition(position(200), pipeline: "p")
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while await store.outOfSpaceSince == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                #expect(await store.outOfSpaceSince != nil)
                #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(100))
                _ = try await store.execute("PRAGMA max_page_count = 1000000")
                try await group.waitForAll()
            }
            #expect(await store.outOfSpaceSince == nil)
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(200))
            #expect(try await store.auditLog(pipeline: "p", limit: 5).map(\.action).contains("big"))
        }
    }

    /// Sink workers report the safe position in any order; the stored one never moves backwards.
    @Test func theSafePositionNeverMovesBackwards() async throws {
        try await withStore { store in
            try await store.saveSafePosition(position(500), pipeline: "p")
            try await store.saveSafePosition(position(300), pipeline: "p")
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(500))
            try await store.saveSafePosition(position(700), pipeline: "p")
            #expect(try await store.checkpoint(pipeline: "p")?.safePosition == position(700))
        }
    }

    /// After a restart, chunks delivered after the resume position are read again (the targets
    /// may not hold them) and their finished table runs again; those at or before it stay done.
    @Test func chunksDeliveredAfterTheResumePositionAreReadAgain() async throws {
        try await withStore { store in
            try await store.requestSnapshot(pipeline: "p", tables: [table], reason: "initial", atMillis: 1_000)
            var done = try await store.snapshotTables(pipeline: "p")[0]
            for (index, offset) in [100, 101, 102].enumerated() {
                let chunk = SnapshotChunkRecord(table: table, index: index, lower: nil, upper: nil, rows: 5, deliveredAt: position(UInt64(offset)))
                #expect(try await store.saveSnapshotChunk(chunk, pipeline: "p", requestedMillis: done.requestedMillis))
            }
            done.state = .done
            done.finishedMillis = 2_000
            #expect(try await store.saveSnapshotTable(done, pipeline: "p"))

            #expect(try await store.reopenChunks(deliveredAfter: position(100), pipeline: "p") == [table: 2])
            let chunks = try await store.snapshotChunks(pipeline: "p", table: table).sorted { $0.index < $1.index }
            #expect(chunks.map(\.deliveredAt) == [position(100), nil, nil])
            #expect(chunks.map(\.rows) == [5, 0, 0])
            let reopened = try await store.snapshotTables(pipeline: "p")[0]
            #expect(reopened.state == .running && reopened.finishedMillis == nil)

            // Without a resume position nothing delivered is known to be held.
            #expect(try await store.reopenChunks(deliveredAfter: nil, pipeline: "p") == [table: 1])
            #expect(try await store.reopenChunks(deliveredAfter: nil, pipeline: "p") == [:])
        }
    }

    /// A snapshot requested while the table's snapshot runs is a new request: the running one can
    /// no longer save its chunks or mark the table done over it.
    @Test func aSnapshotRequestedWhileTheTableIsSnapshottedIsNotLost() async throws {
        try await withStore { store in
            try await store.requestSnapshot(pipeline: "p", tables: [table], reason: "initial", atMillis: 1_000)
            var running = try await store.snapshotTables(pipeline: "p")[0]
            running.state = .running
            #expect(try await store.saveSnapshotTable(running, pipeline: "p"))
            let chunk = SnapshotChunkRecord(table: table, index: 0, lower: nil, upper: ["10"])
            #expect(try await store.saveSnapshotChunk(chunk, pipeline: "p", requestedMillis: running.requestedMillis))

            // Asked again in the same millisecond: still a newer request.
            try await store.requestSnapshot(pipeline: "p", tables: [table], reason: "requested", atMillis: 1_000, actor: "cli")
            let requested = try await store.snapshotTables(pipeline: "p")[0]
            #expect(requested.state == .requested && requested.requestedMillis > running.requestedMillis)
            #expect(try await store.snapshotChunks(pipeline: "p", table: table).isEmpty)

            // The old run finishes: refused, and the request stays.
            #expect(try await !store.saveSnapshotChunk(SnapshotChunkRecord(table: table, index: 1, lower: ["10"], upper: nil), pipeline: "p",
                                                        requestedMillis: running.requestedMillis))
            running.state = .done
            #expect(try await !store.saveSnapshotTable(running, pipeline: "p"))
            #expect(try await store.snapshotTables(pipeline: "p")[0] == requested)
            #expect(try await store.snapshotChunks(pipeline: "p", table: table).isEmpty)
        }
    }
}

/// Requests in any order against the pipeline's lifecycle.
@Suite struct PipelineLifecycleTests {
    func running() -> PipelineLifecycle {
        var lifecycle = PipelineLifecycle()
        #expect(lifecycle.runStarting() == .run)
        return lifecycle
    }

    @Test func pauseDrainsThenHoldsAndResumeRunsAgain() throws {
        var lifecycle = running()
        #expect(try lifecycle.pauseRequested() == .stopRun)
        #expect(lifecycle.runEnded() == .hold)
        #expect(lifecycle.name == "paused")
        #expect(try lifecycle.resumeRequested() == .releaseToRun)
        #expect(lifecycle.runStarting() == .run)
        #expect(lifecycle.name == "running")
    }

    /// A pause that arrives after a resume released the pipeline, before its run started, is
    /// honoured: the run does not start.
    @Test func aPauseDuringAResumeIsHonoured() throws {
        var lifecycle = running()
        _ = try lifecycle.pauseRequested()
        _ = lifecycle.runEnded()
        #expect(try lifecycle.resumeRequested() == .releaseToRun)
        #expect(try lifecycle.pauseRequested() == .stopRun)
        #expect(lifecycle.runStarting() == .hold)
        #expect(lifecycle.name == "paused")
    }

    /// A resume that arrives while a pause is still draining runs the pipeline again.
    @Test func aResumeDuringAPauseRunsAgain() throws {
        var lifecycle = running()
        _ = try lifecycle.pauseRequested()
        #expect(try lifecycle.resumeRequested() == .none)
        #expect(lifecycle.runEnded() == .run)
        #expect(lifecycle.name == "running")
    }

    @Test func restartWhileRunningOrPausedAndShutdownWhilePaused() throws {
        var lifecycle = running()
        #expect(try lifecycle.restartRequested() == .stopRun)
        #expect(try lifecycle.restartRequested() == .none)
        #expect(lifecycle.runEnded() == .run)
        _ = try lifecycle.pauseRequested()
        _ = lifecycle.runEnded()
        #expect(try lifecycle.restartRequested() == .releaseToRun)
        _ = try lifecycle.pauseRequested()
        #expect(lifecycle.runStarting() == .hold)
        #expect(lifecycle.shutdownRequested() == .releaseToStop)
        #expect(lifecycle.name == "stopped")
        #expect(throws: PipelineLifecycle.Conflict.self) { try lifecycle.resumeRequested() }
    }

    @Test func shutdownWinsOverAPendingPauseAndRefusesLaterRequests() throws {
        var lifecycle = running()
        _ = try lifecycle.pauseRequested()
        #expect(lifecycle.shutdownRequested() == .stopRun)
        #expect(throws: PipelineLifecycle.Conflict.self) { try lifecycle.pauseRequested() }
        #expect(lifecycle.runEnded() == .finish)
        #expect(lifecycle.name == "stopped")
    }
}

/// A target whose fsync fails: the batch is written once, and the pipeline stops at once.
actor FailingFsyncSink: StatelessSink {
    nonisolated let name = "files"
    private(set) var writes = 0

    func open() async throws -> SourcePosition? { nil }
    func close() async throws {}

    func apply(_ transactions: [Transaction]) async throws {
        writes += 1
        throw FerryError(code: .sinkFileFsync, message: "fsync of /data/files.jsonl failed: Input/output error", disposition: .fatal)
    }
}

@Suite struct FatalErrorTests {
    @Test func anFsyncFailureStopsThePipelineWithoutASecondWrite() async throws {
        let store = try await SQLiteCheckpointStore.open(path: temporaryDirectory() + "/state.sqlite", logger: Logger(label: "test"))
        let sink = FailingFsyncSink()
        let letters = MemoryTableSink(name: "letters")
        let runner = PipelineRunner(configuration: PipelineConfiguration(name: "p", errorPolicy: .deadLetter(letters)),
                                    source: ListSource(inserts(1...3)), sinks: [sink], store: store, logger: Logger(label: "test"))
        await #expect(throws: FerryError.self) { try await runner.run(stop: StopSignal()) }
        #expect(await sink.writes == 1)
        #expect(await letters.letters.isEmpty)
        try await store.close()
    }
}

import FerryCore
import Foundation
@testable import FileSink
@testable import Pipeline
import SQLiteSink
import StateStore
import Logging
import Testing

func position(_ offset: UInt64, file: String = "b.000001") -> SourcePosition {
    SourcePosition.binlog(file: file, offset: offset)
}

let itemsSchema = TableSchema(name: TableName(database: "shop", table: "items"),
                              columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                        ColumnSchema(name: "name", typeName: "varchar", nullable: true),
                                        ColumnSchema(name: "price", typeName: "decimal(10,2)", nullable: true)],
                              primaryKey: [0])

func transaction(_ offset: UInt64, _ changes: [(ChangeOperation, Row?, Row?)]) -> Transaction {
    let at = position(offset)
    let events = changes.enumerated().map { index, change in
        ChangeEvent(operation: change.0, table: itemsSchema.name, schema: itemsSchema, before: change.1, after: change.2,
                    source: ChangeSource(name: "s", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
    }
    return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: events)
}

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "ferry-test-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct EngineTests {
    @Test func lowWatermarkIsTheSlowestSink() {
        var watermark = LowWatermark(sinks: ["a", "b"])
        watermark.sinkApplied("a", position(500))
        #expect(watermark.safePosition == nil)
        watermark.sinkApplied("b", position(300))
        #expect(watermark.safePosition == position(300))
        watermark.sinkApplied("b", position(200))
        #expect(watermark.applied("b") == position(300))
        watermark.sinkApplied("b", position(900))
        #expect(watermark.safePosition == position(500))
    }

    @Test func resumeFromTheLowestSink() {
        #expect(PipelineRunner.resumePosition(applied: ["a": position(50), "b": position(40)], sinks: ["a", "b"], safe: position(10)) == position(40))
        #expect(PipelineRunner.resumePosition(applied: ["a": position(50)], sinks: ["a", "b"], safe: position(10)) == position(10))
        #expect(PipelineRunner.resumePosition(applied: ["a": position(50)], sinks: ["a", "b"], safe: nil) == nil)
        #expect(PipelineRunner.resumePosition(applied: [:], sinks: ["a"], safe: nil) == nil)
    }

    @Test func memoryBufferAppliesBackpressureAndFansOut() async throws {
        let one = MemoryBuffer.estimatedBytes(transaction(10, [(.create, nil, [.int(1), .string("x"), .decimal("1.00")])]))
        let buffer = MemoryBuffer(maximumBytes: one * 2, consumers: ["fast", "slow"])
        try await buffer.append(transaction(10, [(.create, nil, [.int(1), .string("x"), .decimal("1.00")])]))
        try await buffer.append(transaction(20, [(.create, nil, [.int(2), .string("x"), .decimal("1.00")])]))
        let writer = Task { try await buffer.append(transaction(30, [(.create, nil, [.int(3), .string("x"), .decimal("1.00")])])) }
        #expect(await buffer.read(consumer: "fast", limit: 10).map(\.position) == [position(10), position(20)])
        #expect(await buffer.count == 2, "held until the slow sink reads")
        #expect(await buffer.read(consumer: "slow", limit: 1).map(\.position) == [position(10)])
        try await writer.value
        #expect(await buffer.read(consumer: "fast", limit: 10).map(\.position) == [position(30)])
        #expect(await buffer.read(consumer: "slow", limit: 10).map(\.position) == [position(20), position(30)])
        await buffer.finish()
        #expect(await buffer.read(consumer: "slow", limit: 10).isEmpty)
        #expect(await buffer.byteCount == 0)
    }

    @Test func sqliteSinkAppliesAndRecordsItsPosition() async throws {
        let directory = temporaryDirectory()
        let path = directory + "/target.sqlite"
        let sink = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path), logger: Logger(label: "test"))
        #expect(try await sink.open() == nil)
        try await sink.apply([
            transaction(100, [(.create, nil, [.int(1), .string("a"), .decimal("1.50")]), (.create, nil, [.int(2), .string("b"), .null])]),
            transaction(200, [(.update, [.int(2), .string("b"), .null], [.int(3), .string("b"), .decimal("3.00")]),
                              (.delete, [.int(1), .string("a"), .decimal("1.50")], nil)]),
            transaction(300, [(.update, [.int(3), .absent, .absent], [.int(3), .string("c"), .absent])]),
        ])
        try await sink.close()
        let reopened = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path), logger: Logger(label: "test"))
        #expect(try await reopened.open() == position(300))
        try await reopened.close()
        let rows = try sqliteRows(path, "SELECT id, name, price FROM items ORDER BY id")
        #expect(rows == [["3", "c", "3.00"]])
    }

    @Test(arguments: [EventJSONWriter.Format.debezium, .debeziumSchema]) func jsonLinesSinkCutsATornTransaction(format: EventJSONWriter.Format) async throws {
        let directory = temporaryDirectory()
        let sink = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: format))
        #expect(try await sink.open() == nil)
        try await sink.apply([transaction(100, [(.create, nil, [.int(1), .string("a"), .null])]),
                              transaction(200, [(.create, nil, [.int(2), .string("b"), .null]), (.create, nil, [.int(3), .string("c"), .null])])])
        try await sink.close()
        let path = directory + "/files.jsonl"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 3)
        // A crash after the first line of the second transaction and half of the next line:
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        text = lines[0] + "\n" + lines[1] + "\n" + lines[2].prefix(20)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let reopened = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: format))
        #expect(try await reopened.open() == position(100))
        try await reopened.close()
        let kept = try String(contentsOfFile: path, encoding: .utf8)
        #expect(kept.split(separator: "\n").count == 1)
        #expect(kept.contains("\"payload\":{") == (format == .debeziumSchema))
    }

    /// A rotation that fails after closing the file (the current file was moved away by someone
    /// else, so it cannot be renamed) keeps no stale descriptor: the next batch opens a current
    /// file again, and nothing is written through a number the kernel may have given another file.
    @Test func jsonLinesSinkRotationThatFailsOpensAFreshFile() async throws {
        let directory = temporaryDirectory()
        let sink = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 1, maximumFileAgeSeconds: 3600, format: .debezium))
        _ = try await sink.open()
        try await sink.apply([transaction(100, [(.create, nil, [.int(1), .string("a"), .null])])])
        let path = directory + "/files.jsonl"
        try FileManager.default.moveItem(atPath: path, toPath: directory + "/elsewhere.txt")
        // Another file takes the lowest free descriptor the failed rotation released.
        let bystander = directory + "/bystander"
        FileManager.default.createFile(atPath: bystander, contents: nil)
        let other = try FileHandle(forWritingTo: URL(fileURLWithPath: bystander))
        defer { try? other.close() }
        await #expect(throws: (any Error).self) { try await sink.apply([transaction(200, [(.create, nil, [.int(2), .string("b"), .null])])]) }
        try await sink.apply([transaction(300, [(.create, nil, [.int(3), .string("c"), .null])])])
        try await sink.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: bystander)).isEmpty)
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 1)
    }

    /// Transactions as rules shape them — a change split in two (both parts carry the source
    /// change's row), changes dropped so rows skip — are whole after a restart; a torn one is cut.
    @Test func jsonLinesSinkKnowsWholeTransactionsWhateverRulesMadeOfThem() async throws {
        let directory = temporaryDirectory()
        let sink = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: .debezium))
        _ = try await sink.open()
        var split = transaction(100, [(.delete, [.int(1), .string("a"), .null], nil), (.create, nil, [.int(1), .string("b"), .null])])
        for index in split.events.indices { split.events[index].source.row = 0 }
        var thinned = transaction(200, [(.create, nil, [.int(22), .string("c"), .null]), (.create, nil, [.int(23), .string("d"), .null])])
        thinned.events[0].source.row = 1
        thinned.events[1].source.row = 2
        try await sink.apply([split, thinned])
        try await sink.close()
        let reopened = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: .debezium))
        #expect(try await reopened.open() == position(200))
        try await reopened.close()
        let path = directory + "/files.jsonl"
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 4)
        // The second transaction torn after its first line: cut back to the first, whole.
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        try (lines[0...2].joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let again = JSONLinesSink(configuration: .init(name: "files", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: .debezium))
        #expect(try await again.open() == position(100))
        try await again.close()
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 2)
    }

    /// Lines written before `txn_index` existed are read by their row.
    @Test func jsonLinesOfEarlierReleasesStayReadable() throws {
        let line = #"{"id":"b.000001:300:1","txn_events":2,"op":"c","source":{"file":"b.000001","pos":300,"row":1}}"#
        let parsed = try #require(JSONLinesSink.parse(Data(line.utf8)))
        #expect(parsed.index == 1 && parsed.events == 2 && parsed.position == position(300))
    }

    @Test func stateStoreRoundTripAndCorruption() async throws {
        let directory = temporaryDirectory()
        let path = directory + "/state.sqlite"
        let store = try await SQLiteCheckpointStore.open(path: path, logger: Logger(label: "test"))
        #expect(try await store.checkpoint(pipeline: "p") == nil)
        let gtid = SourcePosition.binlog(BinlogPosition(coordinates: BinlogCoordinates(file: "b.000002", offset: 77),
                                  gtidPosition: .mariadb(MariaDBGTIDPosition(parsing: "0-1-5,1-2-9")!)))
        try await store.saveSinkPositions(pipeline: "p", sink: "a", queued: gtid, applied: gtid)
        try await store.saveSafePosition(gtid, pipeline: "p")
        try await store.audit(pipeline: "p", action: "start", detail: "test")
        #expect(try await store.checkpoint(pipeline: "p") == PipelineCheckpoint(safePosition: gtid, sinks: ["a": SinkCheckpoint(queued: gtid, applied: gtid)]))
        #expect(try await store.checkpoint(pipeline: "p")?.safePosition?.binlog?.gtidPosition == gtid.binlog?.gtidPosition)
        try await store.close()
        #expect(gtid.persistedJSON == #"{"file":"b.000002","pos":77,"gtid_pos":"0-1-5,1-2-9","flavor":"mariadb"}"#)
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        try? FileManager.default.removeItem(atPath: path + "-wal")
        try? FileManager.default.removeItem(atPath: path + "-shm")
        do {
            _ = try await SQLiteCheckpointStore.open(path: path, logger: Logger(label: "test"))
            Issue.record("opened a corrupt state file")
        } catch let error as FerryError {
            #expect(error.code == .stateCorrupt)
            #expect(error.fix?.contains("ferry_offsets") == true)
        }
    }
}

/// Reads rows through the sqlite3 command line tool-free path: SQLiteNIO via the sink's own module.
func sqliteRows(_ path: String, _ sql: String) throws -> [[String]] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print('|'.join('' if v is None else str(v) for v in r)) for r in c.execute(sys.argv[2])]", path, sql]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
}

import FerryCore
import Foundation
import Logging
import SQLiteSink
import StateStore
import Testing

/// A new release reads what the previous one wrote: positions, snapshot records and a sink's
/// `ferry_offsets`, from real files (`Tests/Fixtures/release-1561737`).
@Suite struct EarlierReleaseFilesTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/release-1561737").path

    static func copyFixtures() throws -> String {
        let directory = temporaryDirectory()
        for name in ["ferry-state.sqlite", "target.sqlite"] {
            try FileManager.default.copyItem(atPath: fixtures + "/" + name, toPath: directory + "/" + name)
        }
        return directory
    }

    static func at(_ offset: UInt64) -> SourcePosition { .binlog(file: "mariadb-bin.000001", offset: offset) }

    @Test func stateFileAndSinkOffsetsOfTheEarlierReleaseReadBack() async throws {
        let directory = try Self.copyFixtures()
        let store = try await SQLiteCheckpointStore.open(path: directory + "/ferry-state.sqlite", logger: Logger(label: "test"))
        let checkpoint = try #require(try await store.checkpoint(pipeline: "legacy"))
        #expect(checkpoint.safePosition == Self.at(7885))
        #expect(checkpoint.safePosition?.description == "mariadb-bin.000001:7885 (gtid 0-1-26)")
        #expect(checkpoint.sinks["lite"]?.applied?.description == "mariadb-bin.000001:7885 (gtid 0-1-26)")
        #expect(checkpoint.sinks["lite"]?.queued == Self.at(7885))

        let tables = try await store.snapshotTables(pipeline: "legacy")
        #expect(tables.map(\.state) == [.done])
        let chunks = try await store.snapshotChunks(pipeline: "legacy", table: TableName(database: "legacy", table: "t"))
        #expect(chunks.map(\.deliveredAt) == [Self.at(4589), Self.at(5507), Self.at(6425)])
        #expect(chunks.map { $0.deliveredAt?.binlog?.gtidPosition?.description } == ["0-1-18", "0-1-20", "0-1-22"])
        #expect(chunks.map(\.rows) == [2, 2, 1])

        // The file keeps working: a newer position is saved over the old form and reads back.
        let next = SourcePosition.binlog(BinlogPosition(coordinates: BinlogCoordinates(file: "mariadb-bin.000002", offset: 342),
                                                        gtidPosition: .mariadb(MariaDBGTIDPosition(parsing: "0-1-27")!)))
        try await store.saveSafePosition(next, pipeline: "legacy")
        #expect(try await store.checkpoint(pipeline: "legacy")?.safePosition?.description == next.description)
        try await store.close()

        let sink = SQLiteSink(configuration: .init(name: "lite", pipeline: "legacy", path: directory + "/target.sqlite"), logger: Logger(label: "test"))
        let applied = try await sink.open()
        #expect(applied?.description == "mariadb-bin.000001:7885 (gtid 0-1-26)")
        try await sink.close()
    }
}

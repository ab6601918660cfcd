import FerryCore
import MySQLBinlog
@testable import MySQLSource
import NIOCore
import Testing

@Suite struct SnapshotTests {
    static let table = TableName(database: "shop", table: "pairs")
    static let schema = TableSchema(name: table, columns: [
        ColumnSchema(name: "a", typeName: "varchar(10)", nullable: false), ColumnSchema(name: "b", typeName: "int", nullable: false),
        ColumnSchema(name: "v", typeName: "text", nullable: true),
    ], primaryKey: [0, 1])

    /// With row-based logging the binlog filters apply to the written table's database: a signal
    /// table left out would make every window wait for ever, so it is found before any is opened.
    @Test func binlogFiltersThatLeaveTheSignalTableOut() {
        #expect(Snapshotter.binlogFilter(leavingOut: "ferry", doDB: "", ignoreDB: "") == nil)
        #expect(Snapshotter.binlogFilter(leavingOut: "ferry", doDB: "", ignoreDB: "mysql,ferry") == "binlog_ignore_db=ferry")
        #expect(Snapshotter.binlogFilter(leavingOut: "ferry", doDB: "shop, crm", ignoreDB: "") == "binlog_do_db=shop,crm")
        #expect(Snapshotter.binlogFilter(leavingOut: "ferry", doDB: "shop,ferry", ignoreDB: "") == nil)
        #expect(Snapshotter.binlogFilter(leavingOut: "ferry", doDB: "", ignoreDB: "ferry_old") == nil, "whole names, not prefixes")
        #expect(Snapshotter.binlogFilter(leavingOut: "Ferry", doDB: "ferry", ignoreDB: "") == "binlog_do_db=ferry", "names compare as the server stores them")
    }

    @Test func compositeKeyRangesUseEveryKeyColumn() {
        #expect(ChunkQueries.after(["`a`", "`b`"], ["'k1'", "5"]) == "((`a` > 'k1') OR (`a` = 'k1' AND `b` > 5))")
        #expect(ChunkQueries.atOrBefore(["`a`", "`b`"], ["'k9'", "7"]) == "((`a` < 'k9') OR (`a` = 'k9' AND `b` <= 7))")
        #expect(ChunkQueries.after(["`id`"], ["10"]) == "`id` > 10")
        #expect(ChunkQueries.atOrBefore(["`id`"], ["20"]) == "`id` <= 20")
        #expect(ChunkQueries.literals([.string("it's"), .int(-3), .bytes([0, 255]), .decimal("1.50")]) == ["'it\\'s'", "-3", "X'00FF'", "1.50"])
    }

    @Test func chunkStatements() throws {
        var builder = TableMapBuilder(name: Self.table, mariadb: true, collationIDs: ["utf8mb4_general_ci": 45])
        try builder.add(name: "a", dataType: "varchar", columnType: "varchar(10)", nullable: false, octetLength: 40, precision: nil, scale: nil,
                        fsp: nil, collation: "utf8mb4_general_ci")
        try builder.add(name: "b", dataType: "int", columnType: "int(11)", nullable: false, octetLength: nil, precision: 10, scale: 0, fsp: nil, collation: nil)
        try builder.add(name: "f", dataType: "float", columnType: "float", nullable: true, octetLength: nil, precision: 12, scale: nil, fsp: nil, collation: nil)
        let decoder = TableDecoder(tableMap: builder.tableMap(primaryKey: [0, 1]), mariadb: true)
        let table = SnapshotTable(name: Self.table, decoder: decoder, keyColumns: [0, 1], keySource: .primaryKey,
                                  selectList: (0..<3).map { decoder.selectExpression($0, quotedName: "`\(decoder.schema.columnName($0))`") }.joined(separator: ", "))
        let queries = ChunkQueries(table: table)
        #expect(queries.boundary(after: nil, rows: 100) == "SELECT `a`, `b` FROM `shop`.`pairs` ORDER BY `a`, `b` LIMIT 2 OFFSET 99")
        #expect(queries.read(lower: ["'k1'", "5"], upper: nil)
                == "SELECT `a`, `b`, CAST(`f` AS DOUBLE) FROM `shop`.`pairs` WHERE ((`a` > 'k1') OR (`a` = 'k1' AND `b` > 5)) ORDER BY `a`, `b`")
    }

    /// The synthesised TABLE_MAP gives the type names the binlog's gives (checked against the real
    /// server in the type fidelity test); here the encodings that are easy to get wrong.
    @Test func synthesisedTableMapTypeNames() throws {
        var builder = TableMapBuilder(name: Self.table, mariadb: true, collationIDs: ["utf8mb4_general_ci": 45, "latin1_swedish_ci": 8])
        try builder.add(name: "c", dataType: "char", columnType: "char(255)", nullable: false, octetLength: 1020, precision: nil, scale: nil,
                        fsp: nil, collation: "utf8mb4_general_ci")
        try builder.add(name: "l", dataType: "char", columnType: "char(200)", nullable: true, octetLength: 200, precision: nil, scale: nil,
                        fsp: nil, collation: "latin1_swedish_ci")
        try builder.add(name: "e", dataType: "enum", columnType: "enum('x','it''s')", nullable: true, octetLength: 16, precision: nil, scale: nil,
                        fsp: nil, collation: "utf8mb4_general_ci")
        try builder.add(name: "bits", dataType: "bit", columnType: "bit(33)", nullable: true, octetLength: nil, precision: 33, scale: nil,
                        fsp: nil, collation: nil)
        try builder.add(name: "d", dataType: "decimal", columnType: "decimal(12,3) unsigned", nullable: true, octetLength: nil, precision: 12,
                        scale: 3, fsp: nil, collation: nil)
        try builder.add(name: "t", dataType: "datetime", columnType: "datetime(4)", nullable: true, octetLength: nil, precision: nil, scale: nil,
                        fsp: 4, collation: nil)
        let schema = TableDecoder(tableMap: builder.tableMap(primaryKey: [0]), mariadb: true).schema
        #expect(schema.columns.map(\.typeName) == ["char(255)", "char(200)", "enum('x','it''s')", "bit(33)", "decimal(12,3) unsigned", "datetime(4)"])
        #expect(schema.columns.map(\.charset) == ["utf8mb4", "latin1", nil, nil, nil, nil])
        #expect(schema.primaryKey == [0])
        #expect(throws: FerryError.self) {
            try builder.add(name: "v", dataType: "vector", columnType: "vector(3)", nullable: true, octetLength: nil, precision: nil, scale: nil,
                            fsp: nil, collation: nil)
        }
    }

    @Test func textRowsDecodeToExactValues() throws {
        var builder = TableMapBuilder(name: Self.table, mariadb: true, collationIDs: ["utf8mb4_general_ci": 45])
        let columns: [(String, String, Int?, Int?)] = [("bigint", "bigint(20) unsigned", nil, nil), ("time", "time(3)", nil, 3),
                                                       ("timestamp", "timestamp(6)", nil, 6), ("set", "set('a','b','c')", nil, nil),
                                                       ("float", "float", nil, nil), ("year", "year(4)", nil, nil), ("bigint", "bigint(20)", nil, nil)]
        for (index, column) in columns.enumerated() {
            try builder.add(name: "c\(index)", dataType: column.0, columnType: column.1, nullable: true, octetLength: column.2, precision: nil,
                            scale: nil, fsp: column.3, collation: column.0 == "set" ? "utf8mb4_general_ci" : nil)
        }
        let decoder = TableDecoder(tableMap: builder.tableMap(primaryKey: []), mariadb: true)
        let row = try decoder.decodeText(payload: Self.payload(["18446744073709551615", "-838:59:58.999", "2038-01-19 03:14:07.999999", "a,c",
                                                                "0.10000000149011612", "0000", "-9223372036854775808"]))
        #expect(row == [.uint(.max), .time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 999_000, fsp: 3)),
                        .timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 999_999, fsp: 6)), .set(["a", "c"]), .float(0.1),
                        .year(0), .int(.min)])
        let zero = try decoder.decodeText(payload: Self.payload([nil, "00:00:00.000", "0000-00-00 00:00:00.000000", "", "1", nil, "1"]))
        #expect(zero[2] == .timestamp(TimestampValue(seconds: 0, microseconds: 0, fsp: 6)))
        #expect(zero[3] == .set([]))
        #expect(throws: BinlogDecodingError.self) { try decoder.decodeText(payload: Self.payload(["12x", nil, nil, nil, nil, nil, nil])) }
        #expect(throws: BinlogDecodingError.self) { try decoder.decodeText(payload: Self.payload([nil, nil, nil, nil, nil, nil, "9223372036854775808"])) }
        #expect(throws: BinlogDecodingError.self, "fewer fields than columns") { try decoder.decodeText(payload: Self.payload(["1"])) }
        #expect(throws: BinlogDecodingError.self, "more fields than columns") {
            try decoder.decodeText(payload: Self.payload([nil, nil, nil, nil, nil, nil, nil, nil]))
        }
    }

    /// Fields longer than 250 bytes carry a 3-byte length (0xFC); a field cut short is an error.
    @Test func textRowPayloadsWithLongAndCutFields() throws {
        var builder = TableMapBuilder(name: Self.table, mariadb: true, collationIDs: ["utf8mb4_general_ci": 45])
        try builder.add(name: "id", dataType: "int", columnType: "int(11)", nullable: false, octetLength: nil, precision: nil, scale: nil,
                        fsp: nil, collation: nil)
        try builder.add(name: "v", dataType: "varchar", columnType: "varchar(400)", nullable: true, octetLength: 1600, precision: nil, scale: nil,
                        fsp: nil, collation: "utf8mb4_general_ci")
        let decoder = TableDecoder(tableMap: builder.tableMap(primaryKey: [0]), mariadb: true)
        let long = String(repeating: "é", count: 150)
        #expect(try decoder.decodeText(payload: Self.payload(["7", long])) == [.int(7), .string(long)])
        var cut = Self.payload(["7", long])
        cut.moveWriterIndex(to: cut.writerIndex - 1)
        #expect(throws: BinlogDecodingError.self) { try decoder.decodeText(payload: cut) }
    }

    /// A text-protocol row packet's payload: each field length-encoded, 0xFB for NULL.
    static func payload(_ fields: [String?]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for field in fields {
            guard let field else {
                buffer.writeInteger(UInt8(0xFB))
                continue
            }
            let count = field.utf8.count
            if count < 0xFB {
                buffer.writeInteger(UInt8(count))
            } else {
                buffer.writeInteger(UInt8(0xFC))
                buffer.writeInteger(UInt16(count), endianness: .little)
            }
            buffer.writeString(field)
        }
        return buffer
    }

    func transaction(_ events: [ChangeEvent], offset: UInt64) -> Transaction {
        let position = SourcePosition.binlog(file: "b.000001", offset: offset)
        return Transaction(gtid: nil, position: position, serverID: 1, timestampMillis: 1000, events: events)
    }

    func change(_ op: ChangeOperation, before: Row?, after: Row?, offset: UInt64) -> ChangeEvent {
        let position = SourcePosition.binlog(file: "b.000001", offset: offset)
        return ChangeEvent(operation: op, table: Self.table, schema: Self.schema, before: before, after: after,
                           source: ChangeSource(name: "src", serverID: 1, gtid: nil, position: position, row: 0, timestampMillis: 1000))
    }

    /// Rows whose key changed between the window's opening and its high watermark are left out:
    /// the stream already delivered their newer state.
    @Test func windowLeavesOutKeysChangedInIt() async throws {
        let windows = SnapshotWindows()
        windows.open("w1", table: Self.table, keyColumns: ["a", "b"], generation: 0)
        var update = transaction([change(.update, before: [.string("k"), .int(2), .string("old")], after: [.string("k"), .int(3), .string("new")],
                                         offset: 100)], offset: 100)
        #expect(windows.absorb(&update).isEmpty)
        windows.setRows("w1", rows: [[.string("k"), .int(1), .null], [.string("k"), .int(2), .string("old")], [.string("k"), .int(3), .null],
                                     [.string("k"), .int(4), .null]], schema: Self.schema, keyIndexes: [0, 1])
        var other = transaction([change(.delete, before: [.string("z"), .int(4), .null], after: nil, offset: 150)], offset: 150)
        #expect(windows.absorb(&other).isEmpty)
        windows.highWatermarkSeen("w1")
        var high = transaction([], offset: 200)
        let closed = windows.absorb(&high, sourceName: "shop")
        #expect(closed == ["w1"])
        #expect(high.events.map { $0.after?[1] } == [.int(1), .int(4)])
        #expect(high.events.map(\.operation) == [.read, .read])
        #expect(high.events.map(\.source.row) == [0, 1])
        #expect(high.events.allSatisfy { $0.source.name == "shop" }, "snapshot rows name their source even when the watermark's transaction has no other change")
        windows.delivered(closed, position: high.position)
        #expect(await windows.outcome("w1") == .delivered(high.position, rows: 2))
        #expect(windows.isEmpty)
    }

    /// The last row of a table's last undelivered chunk ends its snapshot (Debezium's
    /// `last_in_data_collection`), and `last` when no other table waits — whatever order the
    /// parallel readers deliver chunks in, and never on a chunk planned after it.
    @Test func theLastDeliveredChunkEndsTheSnapshot() async throws {
        for lastTable in [true, false] {
            let windows = SnapshotWindows()
            windows.tableStarted(Self.table, undelivered: [0], planComplete: false, lastTable: lastTable)
            windows.chunkPlanned(Self.table, index: 1, last: false)
            windows.chunkPlanned(Self.table, index: 2, last: true)
            func deliver(_ id: String, chunk: Int, keys: [Int64], offset: UInt64) async -> [SnapshotRowMark] {
                windows.open(id, table: Self.table, chunk: chunk, keyColumns: ["a", "b"], generation: 0)
                windows.setRows(id, rows: keys.map { [.string("k"), .int($0), .null] }, schema: Self.schema, keyIndexes: [0, 1])
                windows.highWatermarkSeen(id)
                var high = transaction([], offset: offset)
                let closed = windows.absorb(&high, sourceName: "shop")
                windows.delivered(closed, position: high.position)
                _ = await windows.outcome(id)
                return high.events.map(\.source.snapshotMark)
            }
            #expect(await deliver("w2", chunk: 2, keys: [5, 6], offset: 100) == [.within, .within])
            #expect(await deliver("w0", chunk: 0, keys: [1, 2], offset: 200) == [.within, .within])
            #expect(await deliver("w1", chunk: 1, keys: [3, 4], offset: 300) == [.within, lastTable ? .last : .lastInTable])
            // The table's snapshot is over: a later read (a repair) is not counted.
            #expect(await deliver("w3", chunk: 3, keys: [7], offset: 400) == [.within])
        }
    }

    /// A table without a key is read whole; its rows replace the target's, which nothing else
    /// could match them against (rows the stream replayed, an earlier read's).
    @Test func keylessWindowReplacesTheTargetRows() async throws {
        let windows = SnapshotWindows()
        windows.open("w", table: Self.table, keyColumns: [], generation: 0)
        windows.setRows("w", rows: [[.string("k"), .int(1), .null], [.string("k"), .int(1), .null]], schema: Self.schema, keyIndexes: [])
        windows.highWatermarkSeen("w")
        var high = transaction([], offset: 400)
        let closed = windows.absorb(&high, sourceName: "shop")
        #expect(high.events.map(\.operation) == [.ddl, .read, .read])
        #expect(high.events[0].schemaChanges == [.replaceRows(Self.table)])
        #expect(high.events[0].statement?.hasPrefix("TRUNCATE TABLE `\(Self.table.database)`.`\(Self.table.table)`") == true)
        #expect(high.events.map(\.source.row) == [0, 1, 2])
        windows.delivered(closed, position: high.position)
        #expect(await windows.outcome("w") == .delivered(high.position, rows: 2))
    }

    @Test func schemaChangeInTheWindowMeansReadAgain() async throws {
        let windows = SnapshotWindows()
        windows.open("w", table: Self.table, keyColumns: ["a", "b"], generation: windows.generation(of: Self.table))
        windows.setRows("w", rows: [[.string("k"), .int(1), .null]], schema: Self.schema, keyIndexes: [0, 1])
        windows.schemaChanged([Self.table])
        windows.highWatermarkSeen("w")
        var high = transaction([], offset: 300)
        let closed = windows.absorb(&high)
        #expect(high.events.isEmpty)
        windows.delivered(closed, position: high.position)
        guard case .retry = await windows.outcome("w") else {
            Issue.record("a window whose table changed was delivered")
            return
        }
    }

    /// A high watermark the source lost (its binlog's tail, in a crash) is never seen: once the
    /// stream is past the binlog's end read right after writing it, the chunk is read again
    /// instead of waited for for ever — and not a moment before, nor when it was seen.
    @Test func aHighWatermarkTheStreamPassedWithoutSeeingIsReadAgain() async throws {
        let windows = SnapshotWindows()
        for id in ["lost", "seen"] {
            windows.open(id, table: Self.table, keyColumns: ["a", "b"], generation: 0)
            windows.setRows(id, rows: [[.string("k"), .int(1), .null]], schema: Self.schema, keyIndexes: [0, 1])
            windows.highWatermarkWritten(id, before: BinlogCoordinates(file: "b.000001", offset: 500))
        }
        // Not yet there: the stream may still reach it.
        windows.endLostWatermarks(at: BinlogCoordinates(file: "b.000001", offset: 400))
        windows.highWatermarkSeen("seen")
        var high = transaction([], offset: 480)
        let closed = windows.absorb(&high)
        #expect(closed == ["seen"] && high.events.count == 1)
        windows.delivered(closed, position: high.position)
        // The source came back with a new binlog file: the stream is past the end, and "lost"
        // never came.
        windows.endLostWatermarks(at: BinlogCoordinates(file: "b.000002", offset: 4))
        #expect(await windows.outcome("seen") == .delivered(high.position, rows: 1))
        #expect(await windows.outcome("lost") == .watermarkLost("the stream reached b.000002:4 without the chunk's high watermark, written before the binlog ended at b.000001:500: the source lost it (a crash?)"))
        #expect(windows.isEmpty)
    }

    @Test func cancelledWaitEnds() async throws {
        let windows = SnapshotWindows()
        windows.open("w", table: Self.table, keyColumns: ["a"], generation: 0)
        let waiter = Task { await windows.outcome("w") }
        waiter.cancel()
        #expect(await waiter.value == .retry("cancelled"))
    }
}

extension SnapshotTests {
    /// Binlog-position watermarks: a chunk read at position P is delivered once the stream is at or
    /// past P, as its own transaction right after the boundary, numbered by snapshot step.
    @Test func binlogWatermarkChunksFollowTheBoundary() async throws {
        let windows = SnapshotWindows()
        var first = transaction([], offset: 500)
        _ = windows.absorb(&first)
        windows.open("w", table: Self.table, keyColumns: ["a", "b"], generation: 0)
        var update = transaction([change(.update, before: [.string("k"), .int(2), .null], after: [.string("k"), .int(2), .string("x")], offset: 600)],
                                 offset: 600)
        _ = windows.absorb(&update)
        windows.setRows("w", rows: [[.string("k"), .int(1), .null], [.string("k"), .int(2), .null]], absentKeys: [[.string("k"), .int(9)]],
                        schema: Self.schema, keyIndexes: [0, 1], readAt: BinlogCoordinates(file: "b.000001", offset: 550))
        let boundary = BinlogPosition(coordinates: BinlogCoordinates(file: "b.000001", offset: 540), gtidPosition: nil)
        #expect(windows.chunksReady(at: boundary, sourceName: "src") == nil)
        let later = BinlogPosition(coordinates: BinlogCoordinates(file: "b.000001", offset: 600), gtidPosition: nil)
        let (chunk, ids) = try #require(windows.chunksReady(at: later, sourceName: "src"))
        #expect(ids == ["w"])
        #expect(chunk.position == .binlog(BinlogPosition(coordinates: later.coordinates, gtidPosition: nil, snapshotStep: 1)))
        #expect(chunk.events.map(\.operation) == [.delete, .read])
        #expect(chunk.events[0].before?[1] == .int(9))
        #expect(chunk.events[1].after?[1] == .int(1))
        windows.delivered(ids, position: chunk.position)
        #expect(await windows.outcome("w") == .delivered(chunk.position, rows: 2))
    }

    /// A stream already past the consistent read's position when the window opened has not
    /// recorded the changes in between: the chunk is read again.
    @Test func binlogWatermarkBehindTheStreamIsReadAgain() async throws {
        let windows = SnapshotWindows()
        var seen = transaction([], offset: 900)
        _ = windows.absorb(&seen)
        windows.open("w", table: Self.table, keyColumns: ["a", "b"], generation: 0)
        windows.setRows("w", rows: [], absentKeys: [], schema: Self.schema, keyIndexes: [0, 1], readAt: BinlogCoordinates(file: "b.000001", offset: 800))
        guard case .retry = await windows.outcome("w") else {
            Issue.record("a chunk read behind the stream was delivered")
            return
        }
    }
}

/// A restart during a snapshot cancels the planner and the readers together: none may go on
/// waiting for the other.
@Suite struct ChunkQueueCancellationTests {
    @Test func aWaitingReaderEndsWhenCancelled() async throws {
        let queue = ChunkQueue(pending: [], nextIndex: 0, nextLower: nil, planComplete: false)
        let reader = Task { try await queue.next() }
        reader.cancel()
        await #expect(throws: CancellationError.self) { _ = try await reader.value }
    }

    @Test func aPlannerWaitingForRoomEndsWhenCancelled() async throws {
        let chunk = SnapshotChunkRecord(table: TableName(database: "shop", table: "t"), index: 0, lower: nil, upper: nil)
        let queue = ChunkQueue(pending: [chunk, chunk], nextIndex: 2, nextLower: nil, planComplete: false)
        let planner = Task { await queue.waitForRoom(1) }
        planner.cancel()
        await planner.value
        #expect(await queue.pending.count == 2, "nothing was taken: the planner stopped because it was cancelled")
    }

    /// Released without an error of their own: the planner's error is the one that ends the
    /// table's snapshot (a reader's cancellation, arriving first, once ended the pipeline as if
    /// it had been stopped).
    @Test func aFailedPlannerReleasesItsReaders() async throws {
        let queue = ChunkQueue(pending: [], nextIndex: 0, nextLower: nil, planComplete: false)
        let reader = Task { try await queue.next() }
        await queue.abandon()
        #expect(try await reader.value == nil)
        #expect(try await queue.next() == nil)
    }

    @Test func readersStillGetChunksPlannedLater() async throws {
        let queue = ChunkQueue(pending: [], nextIndex: 0, nextLower: nil, planComplete: false)
        let reader = Task { try await queue.next() }
        let chunk = SnapshotChunkRecord(table: TableName(database: "shop", table: "t"), index: 0, lower: nil, upper: nil)
        await queue.planned(chunk, last: true)
        #expect(try await reader.value == chunk)
        #expect(try await queue.next() == nil)
    }
}

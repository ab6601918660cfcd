import FerryCore
import Foundation
import MySQLBinlog
import MySQLSource
import MySQLWire
import NIOCore
import StateStore
import Testing

extension Integration {
    @Suite struct Streaming {
        static let database = "streaming"

        func resetTable(_ table: String) async throws {
            try await admin([
                "CREATE DATABASE IF NOT EXISTS \(Self.database)",
                "DROP TABLE IF EXISTS \(Self.database).\(table)",
                "CREATE TABLE \(Self.database).\(table) (id INT PRIMARY KEY, v VARCHAR(40))",
            ])
        }

        func ids(_ events: [ChangeEvent]) -> [Int64] {
            events.compactMap { event in
                guard case .int(let id)? = (event.after ?? event.before)?.first else { return nil }
                return id
            }
        }

        /// Resume after the last printed position, in both position forms: nothing missing, nothing repeated.
        @Test func resumeAfterTheLastPosition() async throws {
            try await resetTable("resume")
            let start = try await currentPosition()
            try await admin((1...30).map { "INSERT INTO \(Self.database).resume VALUES (\($0), 'a')" })
            let first = try await collectChanges(from: start, include: ["\(Self.database).resume"])
            #expect(ids(first) == Array(1...30))
            let last = try #require(first.last?.source.position.binlog)
            try await admin((31...60).map { "INSERT INTO \(Self.database).resume VALUES (\($0), 'b')" }
                + ["UPDATE \(Self.database).resume SET v = 'c' WHERE id <= 5", "DELETE FROM \(Self.database).resume WHERE id > 55"])
            let byCoordinates = try await collectChanges(from: .coordinates(last.coordinates), include: ["\(Self.database).resume"])
            let gtid = try #require(last.gtidPosition)
            let byGTID = try await collectChanges(from: .gtid(gtid), include: ["\(Self.database).resume"])
            for resumed in [byCoordinates, byGTID] {
                #expect(ids(resumed.filter { $0.operation == .create }) == Array(31...60))
                #expect(ids(resumed.filter { $0.operation == .update }) == Array(1...5))
                #expect(ids(resumed.filter { $0.operation == .delete }) == Array(56...60))
            }
            #expect(byCoordinates.map(\.source.position.description) == byGTID.map(\.source.position.description))
        }

        /// Restart MariaDB while changes stream: the source reconnects and delivers every row exactly once.
        @Test func reconnectsAfterServerRestart() async throws {
            try await resetTable("reconnect")
            let start = try await currentPosition()
            let total = 600
            let received = ReceivedIDs()
            let source = MySQLSource(configuration: try TestEnvironment.sourceConfiguration(include: ["\(Self.database).reconnect"]),
                                     logger: TestEnvironment.logger)
            let follower = Task {
                try await source.run(from: start) { transaction in
                    for event in transaction.events { if case .int(let id)? = event.after?.first { await received.add(id) } }
                }
            }
            defer { follower.cancel() }
            try await insertRetrying(1...(total / 2))
            try await waitUntil("the first half", seconds: 60) { await received.count >= total / 2 }
            let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/services").path
            #expect(system("'\(script)' restart mariadb >/dev/null 2>&1") == 0, "scripts/services restart mariadb failed")
            try await insertRetrying((total / 2 + 1)...total)
            try await waitUntil("all rows after the restart", seconds: 90) { await received.count >= total }
            let all = await received.all
            #expect(all.count == total, "duplicates or extras: \(all.count)")
            #expect(Set(all) == Set((1...total).map(Int64.init)))
        }

        /// Restart MariaDB while a snapshot reads a table: the snapshot's connections are lost too.
        /// It goes on at its first chunk not delivered, the stream reconnects on its own, and the
        /// run neither ends nor stops at the snapshot's error: every row arrives. Before, the
        /// snapshot's lost connection stopped the stream, which took it for its own and reconnected
        /// for ever (or ended the pipeline as if it had drained).
        @Test func snapshotSurvivesARestartWhileItReads() async throws {
            let rows = 20_000
            try await resetTable("snapshot_restart")
            try await admin(["INSERT INTO \(Self.database).snapshot_restart SELECT seq, CONCAT('row ', seq) FROM \(Self.database).seq_1_to_\(rows)"])
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-snapshot-restart-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try await SQLiteCheckpointStore.open(path: directory.appendingPathComponent("state.sqlite").path, logger: TestEnvironment.logger)
            let job = SnapshotJob(pipeline: "restart", settings: SnapshotSettings(mode: .initial, chunkRows: 100, parallelism: 2), store: store, resume: nil)
            let read = ReceivedIDs()
            let created = ReceivedIDs()
            let source = MySQLSource(configuration: try TestEnvironment.sourceConfiguration(include: ["\(Self.database).snapshot_restart"]),
                                     logger: TestEnvironment.logger)
            let follower = Task {
                try await source.run(from: .current, snapshot: job) { transaction in
                    for event in transaction.events {
                        guard case .int(let id)? = event.after?.first else { continue }
                        if event.operation == .read { await read.add(id) } else if event.operation == .create { await created.add(id) }
                    }
                }
            }
            defer { follower.cancel() }
            try await waitUntil("a tenth of the snapshot", seconds: 120) { await read.count >= rows / 10 }
            let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/services").path
            #expect(system("'\(script)' restart mariadb >/dev/null 2>&1") == 0, "scripts/services restart mariadb failed")
            let readBeforeRestart = await read.count
            #expect(readBeforeRestart < rows, "the snapshot ended before the restart; the test needs a bigger table")
            try await insertRetrying(table: "snapshot_restart", (rows + 1)...(rows + 50))
            try await waitUntil("every snapshot row and the rows inserted after the restart", seconds: 180) {
                // The open-ended last chunk may also read rows inserted after the restart.
                let snapshotted = await read.all.filter { $0 <= rows }
                let streamed = await created.all
                return Set(snapshotted).count == rows && Set(streamed).count == 50
            }
            let streamed = await created.all.sorted()
            #expect(streamed == ((rows + 1)...(rows + 50)).map(Int64.init), "streamed rows lost or doubled")
            // The table is recorded done after its last chunk's rows are delivered and its readers end.
            try await waitUntil("the table's snapshot recorded done", seconds: 60) {
                try await store.snapshotTables(pipeline: "restart").map(\.state) == [.done]
            }
            follower.cancel()
            _ = await follower.result
            try await store.close()
        }

        /// INSERT IGNORE, retried until the server accepts it: idempotent, so exactly one row per id.
        func insertRetrying(table: String = "reconnect", _ ids: ClosedRange<Int>) async throws {
            var next = ids.lowerBound
            while next <= ids.upperBound {
                do {
                    try await MySQLConnection.withConnection(try TestEnvironment.adminConfiguration(), logger: TestEnvironment.logger) { connection in
                        while next <= ids.upperBound {
                            try await connection.execute("INSERT IGNORE INTO \(Self.database).\(table) VALUES (\(next), 'x')")
                            next += 1
                        }
                    }
                } catch {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }

        /// DDL is reported with `--ddl`, and rows after it use the new column list.
        @Test func ddlAndRowsAfterIt() async throws {
            try await resetTable("ddl")
            let start = try await currentPosition()
            try await admin([
                "INSERT INTO \(Self.database).ddl VALUES (1, 'before')",
                "ALTER TABLE \(Self.database).ddl ADD COLUMN extra INT DEFAULT 7",
                "INSERT INTO \(Self.database).ddl VALUES (2, 'after', 8)",
            ])
            let events = try await collectChanges(from: start, include: ["\(Self.database).ddl"], ddl: true)
            #expect(events.map(\.operation) == [.create, .ddl, .create])
            #expect(events[1].statement?.contains("ADD COLUMN extra") == true)
            #expect(events[0].schema?.columns.map(\.name) == ["id", "v"])
            #expect(events[2].schema?.columns.map(\.name) == ["id", "v", "extra"])
            #expect(events[2].after == [.int(2), .string("after"), .int(8)])
        }

        /// Server settings that change the binlog's shape: compressed events, no checksums, minimal metadata.
        @Test func compressedEventsNoChecksumsAndMinimalMetadata() async throws {
            try await resetTable("settings")
            let start = try await currentPosition()
            try await admin(["SET GLOBAL log_bin_compress = ON", "SET GLOBAL log_bin_compress_min_len = 10"])
            try await admin(["INSERT INTO \(Self.database).settings VALUES (1, REPEAT('z', 40))",
                             "UPDATE \(Self.database).settings SET v = 'compressed' WHERE id = 1"])
            try await admin(["SET GLOBAL log_bin_compress = OFF", "SET GLOBAL binlog_checksum = NONE"])
            try await admin(["INSERT INTO \(Self.database).settings VALUES (2, 'no checksum')"])
            try await admin(["SET GLOBAL binlog_checksum = CRC32", "SET GLOBAL binlog_row_metadata = MINIMAL"])
            try await admin(["INSERT INTO \(Self.database).settings VALUES (3, 'minimal')"])
            try await admin(["SET GLOBAL binlog_row_metadata = FULL"])
            let events = try await collectChanges(from: start, include: ["\(Self.database).settings"])
            #expect(events.map(\.operation) == [.create, .update, .create, .create])
            #expect(events[0].after == [.int(1), .string(String(repeating: "z", count: 40))])
            #expect(events[1].after == [.int(1), .string("compressed")])
            #expect(events[2].after == [.int(2), .string("no checksum")])
            #expect(events[3].after == [.int(3), .string("minimal")])
            #expect(events[3].schema?.columns.map(\.name) == ["id", "v"], "names come from information_schema without metadata")
            #expect(events[3].schema?.primaryKey == [0])
        }

        /// MariaDB's pre-10.1 temporal format with fractional seconds stops with the fix named.
        @Test func hiresTemporalColumnIsAClearError() async throws {
            try await admin(["CREATE DATABASE IF NOT EXISTS \(Self.database)", "DROP TABLE IF EXISTS \(Self.database).hires",
                             "SET GLOBAL mysql56_temporal_format = OFF"])
            try await admin(["CREATE TABLE \(Self.database).hires (id INT PRIMARY KEY, t TIME(3))", "SET GLOBAL mysql56_temporal_format = ON"])
            let start = try await currentPosition()
            try await admin(["INSERT INTO \(Self.database).hires VALUES (1, '12:00:00.123')"])
            do {
                _ = try await collectChanges(from: start, include: ["\(Self.database).hires"])
                Issue.record("hires column decoded")
            } catch let error as FerryError {
                #expect(error.code == .sourceBinlogUnsupportedColumn)
                #expect(error.description.contains("column t of \(Self.database).hires"))
                #expect(error.description.contains("ALTER TABLE \(Self.database).hires FORCE"))
                #expect(error.description.contains("position=mariadb-bin."))
            }
            try await admin(["ALTER TABLE \(Self.database).hires FORCE"])
            let after = try await currentPosition()
            try await admin(["INSERT INTO \(Self.database).hires VALUES (2, '12:00:00.456')"])
            let events = try await collectChanges(from: after, include: ["\(Self.database).hires"])
            #expect(events.first?.after?[1] == .time(TimeValue(negative: false, hours: 12, minutes: 0, seconds: 0, microseconds: 456_000, fsp: 3)))
        }

        /// The same parser reads the server's binlog files from disk.
        @Test func binlogFilesParseWithTheSameDecoder() async throws {
            try await resetTable("files")
            try await admin(["INSERT INTO \(Self.database).files VALUES (1, 'in a closed file')", "FLUSH BINARY LOGS"])
            let directory = try TestEnvironment.value("FERRY_MARIADB_BINLOG_DIR")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.range(of: #"\.\d{6}$"#, options: .regularExpression) != nil }.sorted()
            #expect(files.count >= 2)
            var rows = 0
            for file in files.dropLast() {
                let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(file))
                var events = try BinlogParser.events(inFile: ByteBuffer(bytes: data))
                var parser = BinlogParser()
                var decoders: [UInt64: TableDecoder] = [:]
                while let bytes = try events.next() {
                    let record = try parser.parse(bytes, file: file)
                    switch record.event {
                    case .tableMap(let map): decoders[map.tableID] = TableDecoder(tableMap: map, mariadb: true)
                    case .rows(let event):
                        guard let decoder = decoders[event.tableID] else { continue }
                        if decoder.schema.name.table == "hires" { continue }
                        rows += try event.decodeRows(using: decoder).count
                    default: break
                    }
                }
            }
            #expect(rows > 0)
        }
    }
}

actor ReceivedIDs {
    private(set) var all: [Int64] = []
    var count: Int { all.count }
    func add(_ id: Int64) { all.append(id) }
}

import FerryCore
import FerryTestKit
import FileSink
import Foundation
import Logging
import Pipeline
import PostgresSink
import StateStore
import Testing

extension Integration {
    /// Every value kind through the PostgreSQL sink into a real PostgreSQL, read back as text.
    @Suite struct PostgresSinkTypes {
        static let columns: [(name: String, type: String)] = [
            ("id", "int"), ("ti", "tinyint"), ("us", "smallint unsigned"), ("ui", "int unsigned"), ("ub", "bigint unsigned"),
            ("f", "float"), ("d", "double"), ("dec", "decimal(30,10)"), ("y", "year"), ("dt", "date"), ("tm", "time(6)"),
            ("dtm", "datetime(6)"), ("ts", "timestamp(3)"), ("vc", "varchar(40)"), ("tx", "text"), ("js", "json"), ("bin", "varbinary(8)"),
            ("en", "enum('a','b')"), ("st", "set('x','y')"), ("b5", "bit(5)"), ("b64", "bit(64)"), ("geo", "geometry"),
        ]

        static let schema = TableSchema(name: TableName(database: "it", table: "pg_types"),
                                        columns: columns.map { ColumnSchema(name: $0.name, typeName: $0.type, nullable: $0.name != "id") },
                                        primaryKey: [0])

        static let full: Row = [
            .int(1), .int(-128), .uint(65535), .uint(4_294_967_295), .uint(18_446_744_073_709_551_615),
            .float(1.1), .double(-2.5e-300), .decimal("-12345678901234567890.0123456789"), .year(2155),
            .date(DateValue(year: 2024, month: 2, day: 29)),
            .time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 999_999, fsp: 6)),
            .datetime(DateTimeValue(date: DateValue(year: 1000, month: 1, day: 1), hour: 0, minute: 0, second: 1, microseconds: 5, fsp: 6)),
            .timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 123_000, fsp: 3)),
            .string("naïve ☃ 'quoted' \\ back"), .string(String(repeating: "long ", count: 2_000)), .json("{\"a\": [1, 2.5, null], \"b\": \"☃\"}"),
            .bytes([0, 1, 0xFE, 0xFF]), .enumeration("b"), .set(["x", "y"]), .bit(0x15, width: 5), .bit(UInt64.max, width: 64),
            .geometry(GeometryValue(srid: 4326, wkb: [1, 1, 0, 0, 0])),
        ]

        static let expected = [
            "1", "-128", "65535", "4294967295", "18446744073709551615", "1.1", "-2.5e-300", "-12345678901234567890.0123456789", "2155",
            "2024-02-29", "-838:59:58.999999", "1000-01-01 00:00:01.000005", "2038-01-19 03:14:07.123+00", "naïve ☃ 'quoted' \\ back",
            String(repeating: "long ", count: 2_000), "{\"a\": [1, 2.5, null], \"b\": \"☃\"}", "\\x0001feff", "b", "x,y", "21",
            "18446744073709551615", "\\xe61000000101000000",
        ]

        func psql(_ sql: String) async throws -> String {
            let port = try TestEnvironment.value("FERRY_POSTGRES_PORT")
            let result = try await runProcess("/usr/bin/psql", ["-h", "127.0.0.1", "-p", port, "-U", "ferry", "-d", "replica", "-At", "-F", "\u{1}", "-c", sql],
                                        environment: ["PGPASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), "PGOPTIONS": "-c timezone=UTC"],
                                        timeoutSeconds: 30)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }

        func transaction(_ offset: UInt64, _ changes: [(ChangeOperation, Row?, Row?)]) -> Transaction {
            let at = SourcePosition.binlog(file: "it.000001", offset: offset)
            return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: changes.enumerated().map { index, change in
                ChangeEvent(operation: change.0, table: Self.schema.name, schema: Self.schema, before: change.1, after: change.2,
                            source: ChangeSource(name: "it", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
            })
        }

        /// Every kind lands exactly, in a small group and in one of 1,000 rows more (one statement
        /// binding one `text[]` per column), with tabs, newlines and backslashes in text.
        @Test(arguments: [false, true]) func everyKindLandsExactly(large: Bool) async throws {
            _ = try await psql("DROP TABLE IF EXISTS pg_types")
            let sink = PostgresSink(configuration: try .init(name: "pg", pipeline: "types", url: try TestEnvironment.value("FERRY_POSTGRES_URL"),
                                                             password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), targetTable: { $0.table }),
                                    logger: TestEnvironment.logger)
            _ = try await sink.open()
            var nulls = Self.full.map { _ in Value.null }
            nulls[0] = .int(2)
            var zero = nulls
            zero[0] = .int(3)
            zero[9] = .date(DateValue(year: 0, month: 0, day: 0))
            zero[11] = .datetime(DateTimeValue(date: DateValue(year: 0, month: 0, day: 0), hour: 0, minute: 0, second: 0, microseconds: 0, fsp: 6))
            var special = nulls
            special[0] = .int(4)
            special[5] = .float(.nan)
            special[6] = .double(-.infinity)
            var gone = nulls
            gone[0] = .int(5)
            let filler = large ? (1_000..<2_000).map { id -> (ChangeOperation, Row?, Row?) in
                var row = nulls
                row[0] = .int(Int64(id))
                row[13] = .string("tab\tline\nreturn\rback\\slash \(id)")
                row[16] = .bytes([0x5C, 0x09, UInt8(id % 256)])
                return (.create, nil, row)
            } : []
            try await sink.apply([
                transaction(100, [(.create, nil, Self.full), (.create, nil, nulls), (.create, nil, zero), (.create, nil, special), (.create, nil, gone)] + filler),
                transaction(200, [(.delete, gone, nil)]),
            ])
            try await sink.close()
            if large {
                let texts = try await psql("SELECT count(*), count(DISTINCT vc), min(length(vc)), bool_and(vc = 'tab' || chr(9) || 'line' || chr(10) || 'return' || chr(13) || 'back\\slash ' || id), bool_and(bin = '\\x5c09'::bytea || set_byte('\\x00'::bytea, 0, id % 256)) FROM pg_types WHERE id >= 1000")
                #expect(texts == "1000\u{1}1000\u{1}31\u{1}t\u{1}t\n", "tab, newline, return and backslash arrive as sent")
                _ = try await psql("DELETE FROM pg_types WHERE id >= 1000")
            }
            let names = Self.columns.map { "\($0.name)::text" }.joined(separator: ", ")
            let rows = try await psql("SELECT \(names) FROM pg_types ORDER BY id").split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.isEmpty }.map { $0.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init) }
            #expect(rows.count == 4)
            for (index, value) in rows[0].enumerated() {
                #expect(value == Self.expected[index], "column \(Self.columns[index].name)")
            }
            #expect(rows[1].dropFirst().allSatisfy { $0.isEmpty }, "NULLs stay NULL: \(rows[1])")
            #expect(rows[2][9] == "" && rows[2][11] == "", "zero dates are NULL")
            #expect(rows[3][5] == "NaN" && rows[3][6] == "-Infinity")
            let types = try await psql("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'pg_types'")
            #expect(types.contains("dec numeric") && types.contains("ts timestamp with time zone") && types.contains("js jsonb") && types.contains("bin bytea"))
        }
    }
}

extension Integration.PostgresSinkTypes {
    func items(_ name: String) -> TableSchema {
        TableSchema(name: TableName(database: "it", table: name),
                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "v", typeName: "varchar(20)", nullable: true)],
                    primaryKey: [0])
    }

    func inserts(_ schema: TableSchema, _ offset: UInt64, _ rows: [(Int64, String)]) -> Transaction {
        let at = SourcePosition.binlog(file: "it.000001", offset: offset)
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: rows.enumerated().map { index, row in
            ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: [.int(row.0), .string(row.1)],
                        source: ChangeSource(name: "it", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
        })
    }

    func sink() throws -> PostgresSink {
        try factory().makeSession() as! PostgresSink
    }

    func factory() throws -> SinkFactory {
        let settings = try PostgresSink.Configuration(name: "pg", pipeline: "bad", url: try TestEnvironment.value("FERRY_POSTGRES_URL"),
                                                      password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), targetTable: { $0.table })
        return SinkFactory(name: "pg") { PostgresSink(configuration: settings, logger: TestEnvironment.logger) }
    }

    /// Cluster mode's fence in the target: the new owner's session marks ferry_offsets with its
    /// epoch when it opens; from then on the former owner's transactions — data and position —
    /// are rolled back with `cluster.fenced`, and a session of the former epoch cannot open.
    @Test func aFormerOwnersWritesAreRefusedByEpoch() async throws {
        _ = try await psql("""
            DROP TABLE IF EXISTS fenced_rows;
            DO $$ BEGIN IF to_regclass('ferry_offsets') IS NOT NULL THEN DELETE FROM ferry_offsets WHERE pipeline = 'fenced'; END IF; END $$
            """)
        let schema = items("fenced_rows")
        func session(epoch: Int64) throws -> PostgresSink {
            let settings = try PostgresSink.Configuration(name: "pg", pipeline: "fenced", url: try TestEnvironment.value("FERRY_POSTGRES_URL"),
                                                          password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"),
                                                          targetTable: { $0.table }, epoch: epoch)
            return PostgresSink(configuration: settings, logger: TestEnvironment.logger)
        }
        let former = try session(epoch: 40)
        _ = try await former.open()
        try await former.apply([inserts(schema, 100, [(1, "former")])])

        let current = try session(epoch: 41)
        #expect(try await current.open() == SourcePosition.binlog(file: "it.000001", offset: 100))
        await #expect {
            try await former.apply([inserts(schema, 200, [(1, "late"), (2, "late")])])
        } throws: { error in
            (error as? FerryError)?.code == .clusterFenced && "\(error)".contains("holds epoch 41")
        }
        try await current.apply([inserts(schema, 300, [(3, "current")])])
        await #expect(try psql("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM fenced_rows") == "1=former,3=current\n")
        await #expect(try psql("SELECT epoch, position LIKE '%\"pos\":300%' FROM ferry_offsets WHERE pipeline = 'fenced'") == "41\u{1}t\n")
        await #expect(throws: FerryError.self) { _ = try await session(epoch: 40).open() }
        try await former.close()
        try await current.close()
    }

    /// A large group of which some keys exist already updates those and inserts the rest.
    @Test func largeGroupsUpsertOverExistingKeys() async throws {
        _ = try await psql("DROP TABLE IF EXISTS copied")
        let schema = items("copied")
        let sink = try sink()
        _ = try await sink.open()
        try await sink.apply([inserts(schema, 100, (1...1_500).map { ($0, "first") })])
        try await sink.apply([inserts(schema, 200, (1_001...2_500).map { ($0, "second") }), inserts(schema, 300, [(5_000, "after")])])
        try await sink.close()
        await #expect(try psql("SELECT count(*), count(*) FILTER (WHERE v = 'first'), count(*) FILTER (WHERE v = 'second') FROM copied") == "2501\u{1}1000\u{1}1500\n")
        await #expect(try psql("SELECT position FROM ferry_offsets WHERE pipeline = 'bad'").contains("\"pos\":300"))
    }

    /// A target column of an incompatible type and a value PostgreSQL cannot store (NUL in text):
    /// under `stop` a clear error naming pipeline, sink, table and position; under `dead-letter`
    /// the rejected changes land in the dead-letter file and every other change is applied.
    @Test func rejectedRowsStopOrGoToTheDeadLetterSink() async throws {
        _ = try await psql("DROP TABLE IF EXISTS bad_typed, good_rows; DELETE FROM ferry_offsets WHERE pipeline = 'bad'; CREATE TABLE bad_typed (id integer PRIMARY KEY, v integer)")
        let typed = items("bad_typed"), good = items("good_rows")
        let stream = [inserts(good, 100, [(1, "one"), (2, "two")]), inserts(typed, 200, [(1, "not a number")]),
                      inserts(good, 300, [(3, "three"), (4, "nul \u{0} inside"), (5, "five")])]
        let store = try await SQLiteCheckpointStore.open(path: NSTemporaryDirectory() + "ferry-bad-\(UUID().uuidString).sqlite", logger: TestEnvironment.logger)
        do {
            try await rejectedRows(stream, store: store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    func rejectedRows(_ stream: [Transaction], store: SQLiteCheckpointStore) async throws {
        let stopping = PipelineRunner(configuration: PipelineConfiguration(name: "bad"), source: ListSource(stream), sinks: [try factory()],
                                      store: store, logger: TestEnvironment.logger)
        do {
            try await stopping.run(stop: StopSignal())
            Issue.record("the pipeline did not stop")
        } catch let error as FerryError {
            #expect(error.context.contains { $0 == ("pipeline", "bad") } && error.context.contains { $0 == ("sink", "pg") })
            #expect(error.context.contains { $0 == ("table", "it.bad_typed") } && error.context.contains { $0 == ("position", "it.000001:200") }, "\(error)")
            #expect(error.message.contains("42804") || error.message.contains("integer"), "\(error)")
        }

        let directory = NSTemporaryDirectory() + "ferry-dead-\(UUID().uuidString)"
        let letters = JSONLinesSink(configuration: .init(name: "rejects", directory: directory, maximumFileBytes: 128 << 20, maximumFileAgeSeconds: 3600, format: .debezium))
        let lettering = PipelineRunner(configuration: PipelineConfiguration(name: "bad", errorPolicy: .deadLetter(letters)),
                                       source: ListSource(stream), sinks: [try factory()], store: store, logger: TestEnvironment.logger)
        let stop = StopSignal()
        let run = Task { try await lettering.run(stop: stop) }
        try await waitUntil("applied", seconds: 30) { try await psql("SELECT count(*) FROM good_rows").trimmingCharacters(in: .whitespacesAndNewlines) == "4" }
        await stop.stop()
        try await run.value
        let lines = try String(contentsOfFile: directory + "/rejects.dead-letters.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let letter = first["dead_letter"] as! [String: Any]
        #expect(letter["table"] as? String == "it.bad_typed" && letter["position"] as? String == "it.000001:200" && letter["sink"] as? String == "pg")
        #expect((letter["error"] as? String)?.contains("error[sink.postgres.rejected]") == true)
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        #expect(second["id"] as? String == "it.000001:300:1")
        await #expect(try psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM good_rows").trimmingCharacters(in: .whitespacesAndNewlines) == "1,2,3,5")
    }
}

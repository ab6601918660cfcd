import ClickHouseSink
import FerryCore
import Foundation
import Logging
import Testing

extension Integration {
    /// The ClickHouse sink against the real server of `scripts/services` (Debian's 18.16).
    @Suite struct ClickHouseSinkAgainstTheServer {
        static let columns: [(name: String, type: String)] = [
            ("id", "int"), ("ti", "tinyint"), ("us", "smallint unsigned"), ("ub", "bigint unsigned"), ("f", "float"), ("d", "double"),
            ("dec", "decimal(30,10)"), ("wide", "decimal(65,2)"), ("y", "year"), ("dt", "date"), ("tm", "time(6)"), ("dtm", "datetime"),
            ("dtm6", "datetime(6)"), ("ts", "timestamp"), ("vc", "varchar(40)"), ("js", "json"), ("bin", "varbinary(8)"),
            ("en", "enum('a','b')"), ("st", "set('x','y')"), ("b64", "bit(64)"),
        ]

        static func schema(_ table: String, extra: [(String, String)] = []) -> TableSchema {
            TableSchema(name: TableName(database: "it", table: table),
                        columns: (columns + extra).map { ColumnSchema(name: $0.name, typeName: $0.type, nullable: $0.name != "id") }, primaryKey: [0])
        }

        static let full: Row = [
            .int(1), .int(-128), .uint(65535), .uint(18_446_744_073_709_551_615), .float(1.1), .double(-2.5e-300),
            .decimal("-12345678901234567890.0123456789"), .decimal("12345678901234567890123456789012345678901234567890.25"), .year(2155),
            .date(DateValue(year: 2024, month: 2, day: 29)),
            .time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 999_999, fsp: 6)),
            .datetime(DateTimeValue(date: DateValue(year: 2024, month: 2, day: 29), hour: 12, minute: 34, second: 56, microseconds: 0, fsp: 0)),
            .datetime(DateTimeValue(date: DateValue(year: 1000, month: 1, day: 1), hour: 0, minute: 0, second: 1, microseconds: 5, fsp: 6)),
            .timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 0, fsp: 0)),
            .string("naïve ☃ 'quoted' \\ back\ttab"), .json("{\"a\": [1, 2.5, null]}"), .bytes([0, 1, 0xFE, 0xFF]), .enumeration("b"),
            .set(["x", "y"]), .bit(UInt64.max, width: 64),
        ]

        static let expected: [String?] = [
            "1", "-128", "65535", "18446744073709551615", "1.1", "-2.5e-300", "-12345678901234567890.0123456789",
            "12345678901234567890123456789012345678901234567890.25", "2155", "2024-02-29", "-838:59:58.999999", "2024-02-29 12:34:56",
            "1000-01-01T00:00:01.000005", "2038-01-19 03:14:07", "naïve ☃ 'quoted' \\ back\ttab", "{\"a\": [1, 2.5, null]}", "0001FEFF", "b", "x,y",
            "18446744073709551615",
        ]

        static func sink(_ database: String, password: String? = nil, url: String? = nil, timeoutSeconds: Int = 10,
                         recordInterval: Duration = .seconds(1)) throws -> ClickHouseSink {
            var configuration = try ClickHouseSink.Configuration(name: "olap", pipeline: "it", url: (url ?? TestEnvironment.value("FERRY_CLICKHOUSE_URL")) + "/" + database,
                                                                 password: password ?? TestEnvironment.value("FERRY_CLICKHOUSE_PASSWORD"), timeoutSeconds: timeoutSeconds)
            configuration.recordInterval = recordInterval
            return ClickHouseSink(configuration: configuration, logger: TestEnvironment.logger)
        }

        /// A query's rows, every value as text (`toString` in the query) or nil for NULL.
        static func query(_ sql: String) async throws -> [[String?]] {
            let result = try await runProcess("/usr/bin/curl", ["-sS", "-f", "-H", "X-ClickHouse-User: ferry", "-H", "X-ClickHouse-Key: \(try TestEnvironment.value("FERRY_CLICKHOUSE_PASSWORD"))",
                                                          "--data-binary", sql + " FORMAT JSONCompact", "http://127.0.0.1:\(try TestEnvironment.value("FERRY_CLICKHOUSE_PORT"))/"])
            #expect(result.status == 0, "\(sql): \(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return (object?["data"] as? [[Any]] ?? []).map { $0.map { $0 is NSNull ? nil : "\($0)" } }
        }

        static func execute(_ sql: String) async throws {
            let result = try await runProcess("/usr/bin/curl", ["-sS", "-f", "-H", "X-ClickHouse-User: ferry", "-H", "X-ClickHouse-Key: \(try TestEnvironment.value("FERRY_CLICKHOUSE_PASSWORD"))",
                                                          "--data-binary", sql, "http://127.0.0.1:\(try TestEnvironment.value("FERRY_CLICKHOUSE_PORT"))/"])
            #expect(result.status == 0, "\(sql): \(result.stderr)")
        }

        static func transaction(_ offset: UInt64, _ schema: TableSchema, _ changes: [(ChangeOperation, Row?, Row?)], ddl: [SchemaChange] = []) -> Transaction {
            let at = SourcePosition.binlog(file: "it.000001", offset: offset)
            let source = { (row: Int) in ChangeSource(name: "it", serverID: 1, gtid: nil, position: at, row: row, timestampMillis: 0) }
            var events = changes.enumerated().map { index, change in
                ChangeEvent(operation: change.0, table: schema.name, schema: schema, before: change.1, after: change.2, source: source(index))
            }
            if !ddl.isEmpty {
                events.insert(ChangeEvent(operation: .ddl, table: schema.name, schema: nil, before: nil, after: nil, statement: "ALTER …",
                                          schemaChanges: ddl, source: source(0)), at: 0)
            }
            return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: events)
        }

        static func row(_ id: Int64, _ text: String) -> Row {
            var row = full
            row[0] = .int(id)
            row[14] = .string(text)
            return row
        }

        @Test func everyValueKindLandsExactlyInTheTypesFerryCreates() async throws {
            try await Self.execute("DROP DATABASE IF EXISTS it_types")
            let sink = try Self.sink("it_types")
            #expect(try await sink.open() == nil)
            var nulls = Row(repeating: .null, count: Self.columns.count)
            nulls[0] = .int(2)
            try await sink.apply([Self.transaction(100, Self.schema("types"), [(.create, nil, Self.full), (.create, nil, nulls)])])
            try await sink.close()

            let types = try await Self.query("SELECT name, type FROM system.columns WHERE database = 'it_types' AND table = 'types'")
            #expect(types.map { $0[1]! } == [
                "Int32", "Nullable(Int8)", "Nullable(UInt16)", "Nullable(UInt64)", "Nullable(Float32)", "Nullable(Float64)", "Nullable(Decimal(30, 10))",
                "Nullable(String)", "Nullable(UInt16)", "Nullable(Date)", "Nullable(String)", "Nullable(DateTime('UTC'))", "Nullable(String)",
                "Nullable(DateTime('UTC'))", "Nullable(String)", "Nullable(String)", "Nullable(String)", "Nullable(String)", "Nullable(String)",
                "Nullable(UInt64)", "UInt64", "UInt8",
            ])
            let select = Self.columns.map { $0.name == "bin" ? "hex(bin)" : "toString(`\($0.name)`)" }.joined(separator: ", ")
            let rows = try await Self.query("SELECT \(select) FROM it_types.types FINAL ORDER BY id")
            #expect(rows.count == 2)
            for (index, column) in Self.columns.enumerated() {
                #expect(rows.first?[index] == Self.expected[index], "\(column.name)")
            }
            #expect(rows.last?.dropFirst().allSatisfy { $0 == nil || $0 == "" } == true, "NULLs stay NULL: \(rows.last ?? [])")
        }

        @Test func replaysKeyChangesDeletesAndSchemaChangesKeepOneRowPerKey() async throws {
            try await Self.execute("DROP DATABASE IF EXISTS it_replay")
            let schema = Self.schema("t")
            let wider = Self.schema("t", extra: [("extra", "int")])
            let batch = [
                Self.transaction(100, schema, [(.create, nil, Self.row(1, "one")), (.create, nil, Self.row(2, "two")), (.create, nil, Self.row(3, "three"))]),
                Self.transaction(200, schema, [(.update, Self.row(2, "two"), Self.row(2, "two v2")), (.update, Self.row(2, "two v2"), Self.row(2, "two v3")),
                                               (.update, Self.row(3, "three"), Self.row(4, "three as four")), (.delete, Self.row(1, "one"), nil)]),
                Self.transaction(300, wider, [(.create, nil, Self.row(5, "five") + [.int(55)])],
                                 ddl: [.addColumn(schema.name, column: "extra", type: "int")]),
            ]
            let sink = try Self.sink("it_replay")
            #expect(try await sink.open() == nil)
            try await sink.apply(batch)
            // Replays after a crash before the state store saved the position: a part, then the whole batch again.
            try await sink.apply([batch[0]])
            try await sink.apply(batch)
            try await sink.close()

            let rows = try await Self.query("SELECT toString(id), vc, toString(extra) FROM it_replay.t FINAL WHERE _deleted = 0 ORDER BY id")
            #expect(rows == [["2", "two v3", nil], ["4", "three as four", nil], ["5", "five", "55"]])
            let deleted = try await Self.query("SELECT toString(id) FROM it_replay.t FINAL WHERE _deleted = 1 ORDER BY id")
            #expect(deleted == [["1"], ["3"]])
            try await Self.execute("OPTIMIZE TABLE it_replay.t FINAL")
            await #expect(try Self.query("SELECT count() FROM it_replay.t") == [["5"]], "merges keep one row per key")

            let reopened = try Self.sink("it_replay")
            #expect(try await reopened.open() == .binlog(file: "it.000001", offset: 300))
            try await reopened.close()
        }

        /// The position is written at most once per interval, after a schema change, and at close.
        @Test func theOffsetsRowIsWrittenAtMostOncePerIntervalAndAtClose() async throws {
            try await Self.execute("DROP DATABASE IF EXISTS it_offsets")
            let schema = Self.schema("t")
            let sink = try Self.sink("it_offsets", recordInterval: .seconds(3600))
            #expect(try await sink.open() == nil)
            func recorded() async throws -> SourcePosition? {
                let reader = try Self.sink("it_offsets")
                let position = try await reader.open()
                try await reader.close()
                return position
            }
            try await sink.apply([Self.transaction(100, schema, [(.create, nil, Self.row(1, "one"))])])
            #expect(try await recorded() == .binlog(file: "it.000001", offset: 100), "the first batch is recorded")
            try await sink.apply([Self.transaction(200, schema, [(.create, nil, Self.row(2, "two"))])])
            #expect(try await recorded() == .binlog(file: "it.000001", offset: 100), "within the interval: not yet")
            await #expect(try Self.query("SELECT toString(id) FROM it_offsets.t FINAL ORDER BY id") == [["1"], ["2"]], "the rows are there")
            let wider = Self.schema("t", extra: [("extra", "int")])
            try await sink.apply([Self.transaction(300, wider, [(.create, nil, Self.row(3, "three") + [.int(3)])], ddl: [.addColumn(schema.name, column: "extra", type: "int")])])
            #expect(try await recorded() == .binlog(file: "it.000001", offset: 300), "a schema change is recorded at once")
            try await sink.apply([Self.transaction(400, wider, [(.create, nil, Self.row(4, "four") + [.int(4)])])])
            try await sink.close()
            #expect(try await recorded() == .binlog(file: "it.000001", offset: 400), "close records the rest")
        }

        /// A row the table cannot hold, late in a large batch, refuses the insert whole: none of
        /// the batch's rows lands. (A body streamed in chunks would not give this: ClickHouse
        /// 18.16 takes a chunked body cut short as complete and inserts the rows it got.)
        @Test func aRowRefusedMidStreamInsertsNothingOfItsBatch() async throws {
            try await Self.execute("DROP DATABASE IF EXISTS it_midstream")
            let sink = try Self.sink("it_midstream")
            _ = try await sink.open()
            let schema = Self.schema("t")
            var rows = (1...20_000).map { Self.row(Int64($0), String(repeating: "x", count: 40)) }
            rows[rows.count - 1][9] = .date(DateValue(year: 1960, month: 5, day: 1))
            let rejected = await #expect(throws: (any Error).self) {
                try await sink.apply([Self.transaction(700, schema, rows.map { (.create, nil, $0) })])
            }
            #expect((rejected as? any FerryErrorConvertible)?.ferryError.code == .sinkClickHouseRejected, "\(String(describing: rejected))")
            await #expect(try Self.query("SELECT toString(count()) FROM it_midstream.t") == [["0"]])
            rows[rows.count - 1][9] = .date(DateValue(year: 1990, month: 5, day: 1))
            try await sink.apply([Self.transaction(800, schema, rows.map { (.create, nil, $0) })])
            await #expect(try Self.query("SELECT toString(count()) FROM it_midstream.t FINAL") == [["20000"]])
            try await sink.close()
        }

        @Test func badInputAndBadServersAreClearErrors() async throws {
            try await Self.execute("DROP DATABASE IF EXISTS it_bad")
            let sink = try Self.sink("it_bad")
            _ = try await sink.open()
            var old = Self.row(1, "old")
            old[9] = .date(DateValue(year: 1960, month: 5, day: 1))
            let rejected = await #expect(throws: (any Error).self) {
                try await sink.apply([Self.transaction(400, Self.schema("dates"), [(.create, nil, old)])])
            }
            let error = (rejected as? any FerryErrorConvertible)?.ferryError
            #expect(error?.code == .sinkClickHouseRejected)
            #expect(error?.message.contains("it.dates") == true && error?.message.contains("1960-05-01 is outside ClickHouse's Date range") == true, "\(String(describing: error))")
            #expect(error?.context.contains { $0.0 == "position" && $0.1 == "it.000001:400" } == true, "\(String(describing: error))")
            #expect((rejected as? any ClassifiedError)?.isTransient == false)

            // The user's own table with a String column takes the same date as exact text.
            try await Self.execute("CREATE TABLE it_bad.strings (id Int32, dt String, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id")
            let narrow = TableSchema(name: TableName(database: "it", table: "strings"),
                                     columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "dt", typeName: "date", nullable: true)],
                                     primaryKey: [0])
            try await sink.apply([Self.transaction(500, narrow, [(.create, nil, [.int(1), .date(DateValue(year: 1960, month: 5, day: 1))])])])
            await #expect(try Self.query("SELECT dt FROM it_bad.strings FINAL") == [["1960-05-01"]])

            let keyless = TableSchema(name: TableName(database: "it", table: "keyless"), columns: [ColumnSchema(name: "v", typeName: "int", nullable: true)], primaryKey: [])
            let noKey = await #expect(throws: (any Error).self) { try await sink.apply([Self.transaction(600, keyless, [(.create, nil, [.int(1)])])]) }
            #expect((noKey as? any FerryErrorConvertible)?.ferryError.fix?.contains("key") == true)
            try await sink.close()

            let wrongPassword = try Self.sink("it_bad", password: "not-the-password")
            let auth = await #expect(throws: (any Error).self) { _ = try await wrongPassword.open() }
            #expect((auth as? any FerryErrorConvertible)?.ferryError.code == .sinkClickHouseAuth)
            #expect((auth as? any ClassifiedError)?.isTransient == false)
            #expect(!"\(String(describing: auth))".contains("not-the-password"), "no password in the error")
            try await wrongPassword.close()

            let closedPort = try Self.sink("it_bad", url: "http://ferry@127.0.0.1:1", timeoutSeconds: 1)
            let unreachable = await #expect(throws: (any Error).self) { _ = try await closedPort.open() }
            #expect((unreachable as? any ClassifiedError)?.isTransient == true, "an unreachable server is retried")
            try await closedPort.close()
        }
    }
}

import FerryCore
import FerryTestKit
import Testing

@Suite struct TransactionCodecTests {
    static let schema = TableSchema(
        name: TableName(database: "shop", table: "everything"),
        columns: [ColumnSchema(name: "id", typeName: "bigint unsigned", nullable: false),
                  ColumnSchema(name: nil, typeName: "varchar(20)", nullable: true, charset: "utf8mb4"),
                  ColumnSchema(name: "ü", typeName: "json", nullable: true)],
        primaryKey: [0])

    static let values: [Value] = [
        .null, .absent, .int(Int64.min), .int(-1), .uint(UInt64.max), .float(-0.0), .float(.nan), .double(1e308), .double(-.infinity),
        .decimal("-12345678901234567890.123456789"), .string(""), .string("naïve ☃ 𝄞"), .illFormedText([0x61, 0xED, 0xA0, 0xBD]), .bytes([]), .bytes([0, 255, 10]),
        .year(1901), .date(DateValue(year: 0, month: 0, day: 0)), .date(DateValue(year: 9999, month: 12, day: 31)),
        .time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 59, microseconds: 999_999, fsp: 6)),
        .datetime(DateTimeValue(date: DateValue(year: 2024, month: 2, day: 29), hour: 23, minute: 59, second: 58, microseconds: 120_000, fsp: 2)),
        .timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 1, fsp: 6)), .json("{\"a\":[1,2,null]}"),
        .enumeration(""), .enumeration("red"), .set([]), .set(["a", "b"]), .bit(0x1F, width: 5),
        .geometry(GeometryValue(srid: 4326, wkb: [1, 1, 0, 0, 0])), .bool(true), .bool(false), .sourceText("1 year 2 mons"),
    ]

    static func sample() -> Transaction {
        let at = SourcePosition.binlog(BinlogPosition(coordinates: BinlogCoordinates(file: "mariadb-bin.000042", offset: 123_456),
                                gtidPosition: .mariadb(MariaDBGTIDPosition(parsing: "0-1-99,1-2-3")!)))
        var events: [ChangeEvent] = []
        for (index, value) in values.enumerated() {
            let before: Row? = index % 3 == 0 ? nil : [.uint(UInt64(index)), value, .null]
            let after: Row? = index % 3 == 1 ? nil : [.uint(UInt64(index)), .string("x"), value]
            let operation: ChangeOperation = before == nil ? .create : (after == nil ? .delete : .update)
            events.append(ChangeEvent(operation: operation, table: schema.name, schema: schema, before: before, after: after,
                                      source: ChangeSource(name: "shop", serverID: 7, gtid: "0-1-99", position: at, row: index, timestampMillis: 1_700_000_000_123)))
        }
        for mark in [SnapshotRowMark.within, .lastInTable, .last] {
            var source = ChangeSource(name: "shop", serverID: 7, gtid: "0-1-99", position: at, row: events.count, timestampMillis: 1_700_000_000_123)
            source.snapshotMark = mark
            events.append(ChangeEvent(operation: .read, table: schema.name, schema: schema, before: nil, after: [.uint(1), .string("r"), .null], source: source))
        }
        events.append(ChangeEvent(operation: .ddl, table: TableName(database: "shop", table: ""), schema: nil, before: nil, after: nil,
                                  statement: "ALTER TABLE t ADD c INT",
                                  schemaChanges: [.addColumn(TableName(database: "shop", table: "t"), column: "c", type: "int"),
                                                  .renameTable(from: TableName(database: "a", table: "b"), to: TableName(database: "c", table: "d")),
                                                  .createTable(TableName(database: "shop", table: "n")), .dropTable(TableName(database: "shop", table: "n")),
                                                  .truncateTable(TableName(database: "shop", table: "n")), .dropColumn(TableName(database: "shop", table: "t"), column: "x"),
                                                  .renameColumn(TableName(database: "shop", table: "t"), from: "x", to: "y"),
                                                  .modifyColumn(TableName(database: "shop", table: "t"), column: "y", type: "bigint unsigned"),
                                                  .unrecognized(TableName(database: "shop", table: "t"), reason: "PARTITION BY"),
                                                  .replaceRows(TableName(database: "shop", table: "keyless"))],
                                  source: ChangeSource(name: "shop", serverID: 7, gtid: "0-1-99", position: at, row: events.count, timestampMillis: 1_700_000_000_123)))
        return Transaction(gtid: "0-1-99", position: at, serverID: 7, timestampMillis: 1_700_000_000_123, events: events)
    }

    /// Values compared by their bits, so NaN and -0.0 count as kept exactly.
    static func same(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)): x.bitPattern == y.bitPattern
        case (.double(let x), .double(let y)): x.bitPattern == y.bitPattern
        default: a == b
        }
    }

    @Test func everyValueComesBackExactly() throws {
        let original = Self.sample()
        var decoder = TransactionDecoder()
        let decoded = try decoder.decode(TransactionCodec.encode(original))
        #expect(decoded.position == original.position)
        #expect(decoded.gtid == "0-1-99")
        #expect(decoded.serverID == 7)
        #expect(decoded.timestampMillis == 1_700_000_000_123)
        #expect(decoded.events.count == original.events.count)
        for (a, b) in zip(original.events, decoded.events) {
            #expect(a.operation == b.operation)
            #expect(a.table == b.table)
            #expect(a.statement == b.statement)
            #expect(a.schemaChanges == b.schemaChanges)
            #expect(a.source == b.source)
            #expect(a.schema?.columns == b.schema?.columns)
            #expect(a.schema?.primaryKey == b.schema?.primaryKey)
            #expect(a.before.map { $0.count } == b.before.map { $0.count })
            #expect(a.after.map { $0.count } == b.after.map { $0.count })
            for (x, y) in zip(a.before ?? [], b.before ?? []) { #expect(Self.same(x, y), "\(x) vs \(y)") }
            for (x, y) in zip(a.after ?? [], b.after ?? []) { #expect(Self.same(x, y), "\(x) vs \(y)") }
        }
        let summary = try TransactionCodec.summary(of: TransactionCodec.encode(original))
        #expect(summary.position == original.position)
        #expect(summary.events == original.events.count)
    }

    @Test func oneSchemaObjectPerDistinctSchema() throws {
        var decoder = TransactionDecoder()
        let first = try decoder.decode(TransactionCodec.encode(Self.sample()))
        let second = try decoder.decode(TransactionCodec.encode(Self.sample()))
        #expect(first.events[0].schema === first.events[1].schema)
        #expect(first.events[0].schema === second.events[0].schema, "sinks group rows by schema identity")
    }

    @Test func mysqlGTIDSetsSurvive() throws {
        let set = MySQLGTIDSet(parsing: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7")!
        var transaction = Self.sample()
        transaction.position = .binlog(BinlogPosition(coordinates: try #require(transaction.position.binlog).coordinates, gtidPosition: .mysql(set)))
        var decoder = TransactionDecoder()
        #expect(try decoder.decode(TransactionCodec.encode(transaction)).position.binlog?.gtidPosition == .mysql(set))
    }

    @Test func damagedRecordsAreErrorsNotCrashes() throws {
        let bytes = TransactionCodec.encode(Self.sample())
        var decoder = TransactionDecoder()
        for length in 0..<bytes.count {
            #expect(throws: TransactionCodecError.self) { _ = try decoder.decode(Array(bytes[..<length])) }
        }
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<2_000 {
            var damaged = bytes
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            _ = try? decoder.decode(damaged)
        }
    }
}

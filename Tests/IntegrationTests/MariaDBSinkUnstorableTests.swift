import FerryCore
import MariaDBSink
import MySQLWire
import Testing

extension Integration {
    /// Values a MariaDB column cannot hold — a NaN or infinite float, a PostgreSQL numeric NaN or
    /// an infinite date kept as text in a numeric or temporal column — are refused with the
    /// column and the fix, never stored as the zero or NULL the sink's lax session would make of
    /// them; the same text in a text column, and a PostgreSQL instant of any year, land exactly.
    @Suite struct MariaDBSinkUnstorable {
        let schema = TableSchema(name: TableName(database: "public", table: "odd_values"),
                                 columns: [ColumnSchema(name: "id", typeName: "int", nullable: false, nativeType: "integer"),
                                           ColumnSchema(name: "amount", typeName: "decimal(10,2)", nullable: true, nativeType: "numeric(10,2)"),
                                           ColumnSchema(name: "ratio", typeName: "double", nullable: true, nativeType: "double precision"),
                                           ColumnSchema(name: "note", typeName: "longtext", nullable: true, charset: "utf8mb4", nativeType: "interval"),
                                           ColumnSchema(name: "at", typeName: "datetime(6)", nullable: true, nativeType: "timestamp with time zone")],
                                 primaryKey: [0])

        func insert(_ offset: UInt64, _ row: Row) -> Transaction {
            let at = SourcePosition.wal(WALPosition(lsn: LSN(offset), xid: 7))
            return Transaction(gtid: nil, position: at, serverID: 0, timestampMillis: 0, events: [
                ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: row,
                            source: ChangeSource(name: "pg", serverID: 0, gtid: nil, position: at, row: 0, timestampMillis: 0)),
            ])
        }

        @Test func refusedNotZeroed() async throws {
            try await admin(["DROP DATABASE IF EXISTS odd_target", "CREATE DATABASE odd_target"])
            var connection = try TestEnvironment.adminConfiguration()
            connection.database = "odd_target"
            let sink = MariaDBSink(configuration: MariaDBSink.Configuration(name: "maria", pipeline: "odd", connection: connection), logger: TestEnvironment.logger)
            _ = try await sink.open()
            // 2040 and 1901: outside MariaDB's TIMESTAMP, inside DATETIME.
            try await sink.apply([insert(100, [.int(1), .decimal("12.50"), .double(0.5), .sourceText("1 year 2 mons"),
                                               .timestamp(TimestampValue(seconds: 2_208_988_800, microseconds: 5, fsp: 6))]),
                                  insert(200, [.int(2), .null, .null, .sourceText("NaN"),
                                               .timestamp(TimestampValue(seconds: -2_177_452_800, microseconds: 0, fsp: 6))])])
            for (value, column) in [(Value.sourceText("NaN"), 1), (.double(.nan), 2), (.double(-.infinity), 2), (.sourceText("infinity"), 4)] {
                var row: Row = [.int(3), .null, .null, .null, .null]
                row[column] = value
                await #expect {
                    try await sink.apply([insert(300, row)])
                } throws: { error in
                    let text = "\(error)"
                    return (error as? FerryError)?.code == .sinkMariaDBRejected && text.contains("column odd_values.\(schema.columnName(column)) ")
                        && text.contains("ALTER TABLE")
                }
            }
            try await sink.close()
            let rows = try await adminQuery("SELECT id, amount, ratio, note, at FROM odd_target.odd_values ORDER BY id").rows
            #expect(rows.map { row in (0..<row.count).map { row[$0] ?? "NULL" } } == [["1", "12.50", "0.5", "1 year 2 mons", "2040-01-01 00:00:00.000005"],
                                                         ["2", "NULL", "NULL", "NaN", "1901-01-01 00:00:00.000000"]])
        }
    }
}

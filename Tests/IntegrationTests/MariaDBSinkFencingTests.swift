import FerryCore
import MariaDBSink
import MySQLWire
import Testing

extension Integration {
    /// Cluster mode's fence in a MariaDB target, on the real server: the new owner's session
    /// marks ferry_offsets with its epoch when it opens; from then on the former owner's
    /// transactions — rows and position — are refused before they write (`cluster.fenced`), and a
    /// session of the former epoch cannot open. A ferry_offsets made before cluster mode gets
    /// the column.
    @Suite struct MariaDBSinkFencing {
        let schema = TableSchema(name: TableName(database: "it", table: "fenced_rows"),
                                 columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                           ColumnSchema(name: "v", typeName: "varchar(20)", nullable: true)],
                                 primaryKey: [0])

        func inserts(_ offset: UInt64, _ rows: [(Int64, String)]) -> Transaction {
            let at = SourcePosition.binlog(file: "it.000001", offset: offset)
            return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: rows.enumerated().map { index, row in
                ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: [.int(row.0), .string(row.1)],
                            source: ChangeSource(name: "it", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
            })
        }

        func session(epoch: Int64) throws -> MariaDBSink {
            var connection = try TestEnvironment.adminConfiguration()
            connection.database = "fenced_target"
            return MariaDBSink(configuration: MariaDBSink.Configuration(name: "maria", pipeline: "fenced", connection: connection, epoch: epoch),
                               logger: TestEnvironment.logger)
        }

        @Test func aFormerOwnersWritesAreRefusedByEpoch() async throws {
            // The offsets table as a ferry before cluster mode made it: no epoch column.
            try await admin(["DROP DATABASE IF EXISTS fenced_target", "CREATE DATABASE fenced_target", """
                CREATE TABLE fenced_target.ferry_offsets (pipeline VARCHAR(190) NOT NULL, sink VARCHAR(190) NOT NULL, lane INT NOT NULL,
                  position TEXT NOT NULL, updated_at DATETIME(6) NOT NULL, PRIMARY KEY (pipeline, sink, lane)) ENGINE=InnoDB
                """])
            let former = try session(epoch: 40)
            #expect(try await former.open() == nil, "a row marked before any position holds none")
            try await former.apply([inserts(100, [(1, "former")])])

            let current = try session(epoch: 41)
            #expect(try await current.open() == SourcePosition.binlog(file: "it.000001", offset: 100))
            await #expect {
                try await former.apply([inserts(200, [(1, "late"), (2, "late")])])
            } throws: { error in
                (error as? FerryError)?.code == .clusterFenced && "\(error)".contains("holds epoch 41")
            }
            try await current.apply([inserts(300, [(3, "current")])])
            let rows = try await adminQuery("SELECT GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id) FROM fenced_target.fenced_rows").rows
            #expect(rows.first?[0] == "1=former,3=current")
            let offsets = try await adminQuery("SELECT epoch, position LIKE '%\"pos\":300%' FROM fenced_target.ferry_offsets WHERE pipeline = 'fenced'").rows
            #expect(offsets.first.map { [$0[0], $0[1]] } == ["41", "1"])
            await #expect(throws: FerryError.self) { _ = try await session(epoch: 40).open() }
            try await former.close()
            try await current.close()
            try await admin(["DROP DATABASE fenced_target"])
        }
    }
}

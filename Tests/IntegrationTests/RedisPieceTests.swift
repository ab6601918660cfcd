import FerryCore
import Foundation
import Logging
import RedisSink
import Testing

extension Integration {
    /// The Redis sink writes a batch in pieces of whole MULTI … EXEC units while it encodes the
    /// next, against the real server: a batch far larger than a piece (a transaction spanning
    /// several pieces, small ones sharing one) lands whole, the position is the batch's last, and
    /// applying the batch again from an earlier position (a replay after a crash) changes nothing.
    @Suite struct RedisPieces {
        static let schema = TableSchema(name: TableName(database: "it", table: "pieces"),
                                        columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                                  ColumnSchema(name: "v", typeName: "varchar(200)", nullable: true)],
                                        primaryKey: [0])

        func transaction(_ offset: UInt64, _ rows: [(Int64, String?)]) -> Transaction {
            let position = SourcePosition.binlog(file: "it.000001", offset: offset)
            let events = rows.enumerated().map { index, row in
                ChangeEvent(operation: .update, table: Self.schema.name, schema: Self.schema,
                            before: [.int(row.0), .string("old")], after: [.int(row.0), row.1.map(Value.string) ?? .null],
                            source: ChangeSource(name: "it", serverID: 1, gtid: nil, position: position, row: index, timestampMillis: 0))
            }
            return Transaction(gtid: nil, position: position, serverID: 1, timestampMillis: 0, events: events)
        }

        func redis(_ arguments: [String]) async throws -> String {
            let url = URLComponents(string: try TestEnvironment.value("FERRY_REDIS_URL"))!
            return try await runProcess("/usr/bin/redis-cli", ["-h", url.host!, "-p", "\(url.port!)", "-a", try TestEnvironment.value("FERRY_REDIS_PASSWORD"),
                                                         "--no-auth-warning"] + arguments).stdout
        }

        @Test func aBatchLargerThanAPieceLandsWholeAndAReplayChangesNothing() async throws {
            _ = try await redis(["FLUSHALL"])
            let wide = String(repeating: "w", count: 150)
            // 3,000 rows of about 200 bytes of commands each: one transaction spans about three
            // pieces; 200 one-row transactions share pieces; the last rewrites rows of the first.
            let batch = [transaction(100, (1...3000).map { (Int64($0), "\(wide) \($0)") })]
                + (1...200).map { transaction(200 + UInt64($0), [(Int64(5000 + $0), "small \($0)")]) }
                + [transaction(1000, (1...500).map { (Int64($0 * 2), $0 % 50 == 0 ? nil : "rewritten \($0)") })]
            let configuration = try RedisSink.Configuration(name: "cache", pipeline: "it", url: try TestEnvironment.value("FERRY_REDIS_URL"),
                                                            password: try TestEnvironment.value("FERRY_REDIS_PASSWORD"),
                                                            rules: [RedisSink.TableRule(tables: "it.*", mode: .hash, key: "p:{id}")])
            let sink = RedisSink(configuration: configuration, logger: TestEnvironment.logger)
            #expect(try await sink.open() == nil)
            try await sink.apply(batch)
            func expectFinalState() async throws {
                #expect(try await redis(["DBSIZE"]) == "3201\n")
                #expect(try await redis(["HGET", "p:1", "v"]) == "\(wide) 1\n")
                #expect(try await redis(["HGET", "p:2", "v"]) == "rewritten 1\n")
                #expect(try await redis(["HGETALL", "p:100"]) == "id\n100\n", "a column set to NULL leaves the hash")
                #expect(try await redis(["HGET", "p:2999", "v"]) == "\(wide) 2999\n")
                #expect(try await redis(["HGET", "p:5200", "v"]) == "small 200\n")
            }
            try await expectFinalState()
            #expect(try await sink.open() == SourcePosition.binlog(file: "it.000001", offset: 1000))
            // A crash before the worker recorded the batch replays it from its start.
            try await sink.apply(batch)
            try await expectFinalState()
            #expect(try await sink.open() == SourcePosition.binlog(file: "it.000001", offset: 1000))
            try await sink.close()
        }

        /// Cluster mode's fence in Redis: the new owner's session marks the epoch key when it
        /// opens; the former owner's next batch is refused whole, nothing of it written, and a
        /// session of the former epoch cannot open.
        @Test func aFormerOwnersBatchesAreRefusedByEpoch() async throws {
            _ = try await redis(["FLUSHALL"])
            func session(epoch: Int64) throws -> RedisSink {
                RedisSink(configuration: try RedisSink.Configuration(
                    name: "cache", pipeline: "fenced", url: try TestEnvironment.value("FERRY_REDIS_URL"),
                    password: try TestEnvironment.value("FERRY_REDIS_PASSWORD"),
                    rules: [RedisSink.TableRule(tables: "it.*", mode: .hash, key: "f:{id}")], epoch: epoch), logger: TestEnvironment.logger)
            }
            let former = try session(epoch: 40)
            #expect(try await former.open() == nil)
            try await former.apply([transaction(100, [(1, "former")])])
            let current = try session(epoch: 41)
            #expect(try await current.open() == SourcePosition.binlog(file: "it.000001", offset: 100))
            await #expect(try await redis(["GET", "ferry:epoch:fenced:cache"]) == "41\n")
            await #expect {
                try await former.apply([transaction(200, [(1, "late"), (2, "late")])])
            } throws: { error in
                (error as? FerryError)?.code == .clusterFenced && "\(error)".contains("holds epoch 41")
            }
            try await current.apply([transaction(300, [(3, "current")])])
            await #expect(try await redis(["HGET", "f:1", "v"]) == "former\n")
            await #expect(try await redis(["EXISTS", "f:2"]) == "0\n", "nothing of the refused batch")
            await #expect(try await redis(["HGET", "f:3", "v"]) == "current\n")
            #expect(try await current.open() == SourcePosition.binlog(file: "it.000001", offset: 300))
            await #expect(throws: FerryError.self) { _ = try await session(epoch: 40).open() }
            try await former.close()
            try await current.close()
        }
    }
}

import FerryCore
import Foundation
import Logging
import MariaDBSink
import MySQLWire
@testable import Pipeline
import PostgresSink
import SQLiteSink
import Testing

extension Integration {
    /// A deadline that interrupts an apply at any moment — before, during or after its commit —
    /// never leaves a table sink with its offset recorded without the batch's rows, or rows
    /// without the offset: the interrupt closes the session's connection, and the deadline waits
    /// for the attempt to end before a new session looks.
    @Suite struct InterruptedApplies {
        static let runs = 60
        static let rowsPerBatch = 2_000
        static let schema = TableSchema(name: TableName(database: "it", table: "interrupted"),
                                        columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                                  ColumnSchema(name: "v", typeName: "varchar(40)", nullable: true)],
                                        primaryKey: [0])

        static func batch(_ run: Int) -> [Transaction] {
            let at = SourcePosition.binlog(file: "it.000001", offset: UInt64(1_000 + run))
            let events = (0..<rowsPerBatch).map { index in
                ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil,
                            after: [.int(Int64(run * rowsPerBatch + index)), .string("run \(run) row \(index)")],
                            source: ChangeSource(name: "it", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
            }
            return [Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: events)]
        }

        /// Runs `runs` batches, each under a deadline drawn between 0 and a little more than an
        /// uninterrupted apply takes; after each, a new session checks offset and rows agree.
        func check(_ makeSession: () throws -> any VerifiableSink) async throws {
            let timing = try makeSession()
            _ = try await timing.open()
            let started = ContinuousClock.now
            try await timing.apply(Self.batch(0))
            let applyTime = ContinuousClock.now - started
            try await timing.close()
            var committed = 1
            var interrupted = 0
            var bad: [String] = []
            for run in 1...Self.runs {
                let session = try makeSession()
                _ = try await session.open()
                let limit = applyTime * Double.random(in: 0...1.3)
                do {
                    try await withDeadline(limit, clock: ContinuousClock(), session: session) { try await session.apply(Self.batch(run)) }
                } catch {
                    interrupted += 1
                }
                try? await session.close()
                let checker = try makeSession()
                let position = try await checker.open()
                let rows = try await checker.rowCount(table: "interrupted") ?? 0
                try await checker.close()
                if position == Self.batch(run)[0].position { committed += 1 }
                let expected = committed * Self.rowsPerBatch
                if rows != expected || (position != Self.batch(run)[0].position && position != Self.batch(run - 1)[0].position) {
                    bad.append("run \(run): offset \(position?.place ?? "none"), \(rows) rows, expected \(expected)")
                    committed = rows / Self.rowsPerBatch
                }
                if position != Self.batch(run)[0].position {
                    // Not committed: apply it whole so the next run starts from it.
                    let retry = try makeSession()
                    _ = try await retry.open()
                    try await retry.apply(Self.batch(run))
                    try await retry.close()
                    committed += 1
                }
            }
            #expect(bad.isEmpty, "\(bad.count) of \(Self.runs) interrupted applies left offset and rows apart: \(bad.prefix(5))")
            print("interrupted applies: \(Self.runs) runs, \(interrupted) interrupted, \(Self.runs - interrupted) finished; apply takes \(applyTime)")
        }

        @Test func sqlite() async throws {
            let path = NSTemporaryDirectory() + "ferry-interrupted-\(UUID().uuidString).sqlite"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let settings = SQLiteSink.Configuration(name: "lite", pipeline: "interrupted", path: path)
            try await check { SQLiteSink(configuration: settings, logger: TestEnvironment.logger) }
        }

        @Test func postgres() async throws {
            // A pipeline name of its own: no offset of an earlier run applies.
            let settings = try PostgresSink.Configuration(name: "pg", pipeline: "interrupted-\(UUID().uuidString)", url: try TestEnvironment.value("FERRY_POSTGRES_URL"),
                                                          password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), targetTable: { $0.table })
            try await dropPostgresTable()
            try await check { PostgresSink(configuration: settings, logger: TestEnvironment.logger) }
        }

        @Test func mariadb() async throws {
            try await admin(["DROP DATABASE IF EXISTS interrupted_target", "CREATE DATABASE interrupted_target"])
            var connection = try TestEnvironment.adminConfiguration()
            connection.database = "interrupted_target"
            let settings = MariaDBSink.Configuration(name: "maria", pipeline: "interrupted", connection: connection)
            try await check { MariaDBSink(configuration: settings, logger: TestEnvironment.logger) }
        }

        func dropPostgresTable() async throws {
            let port = try TestEnvironment.value("FERRY_POSTGRES_PORT")
            let result = try await runProcess("/usr/bin/psql", ["-h", "127.0.0.1", "-p", port, "-U", "ferry", "-d", "replica", "-c",
                                                          "DROP TABLE IF EXISTS interrupted"],
                                        environment: ["PGPASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD")], timeoutSeconds: 30)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }
}

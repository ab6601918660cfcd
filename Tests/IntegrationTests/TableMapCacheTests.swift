import FerryCore
import MySQLSource
import MySQLWire
import Testing

extension Integration {
    /// A table whose TABLE_MAP needs facts from information_schema (a UUID column, logged as a
    /// 16-byte string, when the binlog carries no type names: `binlog_row_metadata` below FULL, the
    /// server's default) asks for them once per stream, not once per transaction: the cache
    /// compares the next transaction's map with the map as received, not with the map the facts
    /// completed.
    @Suite struct TableMapCacheAgainstTheServer {
        static let user = "tablemaps"

        /// SELECT statements the test user has run, from MariaDB's user statistics (updated as its
        /// connections end).
        func selects() async throws -> Int {
            let result = try await adminQuery("SELECT SELECT_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = '\(Self.user)'")
            return result.rows.first?[0].flatMap { Int($0) } ?? 0
        }

        func stream(from start: StartPosition) async throws -> Int {
            var configuration = try TestEnvironment.sourceConfiguration(include: ["it_maps.t"])
            configuration.connection.username = Self.user
            configuration.connection.password = "tablemaps-pass"
            let source = MySQLSource(configuration: configuration, logger: TestEnvironment.logger)
            var transactions = 0
            _ = try await source.run(from: start, stopAtCurrent: true) { _ in transactions += 1 }
            return transactions
        }

        @Test func aMapCompletedFromInformationSchemaIsAskedForOncePerStream() async throws {
            try await admin([
                "SET GLOBAL userstat = 1",
                "DROP USER IF EXISTS '\(Self.user)'@'%'",
                "CREATE USER '\(Self.user)'@'%' IDENTIFIED BY 'tablemaps-pass'",
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '\(Self.user)'@'%'",
                "DROP DATABASE IF EXISTS it_maps",
                "CREATE DATABASE it_maps",
                "CREATE TABLE it_maps.t (id INT PRIMARY KEY, u UUID)",
            ])
            let start = try await currentPosition()
            // Global, so only for these statements (the test servers log FULL metadata).
            try await admin(["SET GLOBAL binlog_row_metadata = MINIMAL", "INSERT INTO it_maps.t VALUES (0, UUID())", "SET GLOBAL binlog_row_metadata = FULL"])
            let before = try await selects()
            #expect(try await stream(from: start) == 1)
            let forOne = try await selects() - before
            try await admin(["SET GLOBAL binlog_row_metadata = MINIMAL"] + (1..<40).map { "INSERT INTO it_maps.t VALUES (\($0), UUID())" }
                            + ["SET GLOBAL binlog_row_metadata = FULL"])
            #expect(try await stream(from: start) == 40)
            let forForty = try await selects() - before - forOne
            #expect(forOne > 0, "the first map is completed from information_schema")
            #expect(forForty < forOne + 5, "40 transactions of the same table: \(forForty) SELECTs, one transaction: \(forOne)")
            try await admin(["DROP USER '\(Self.user)'@'%'", "SET GLOBAL userstat = 0"])
        }
    }
}

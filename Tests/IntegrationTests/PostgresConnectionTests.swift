import Foundation
import Logging
import NIOCore
import PostgresWire
import Testing
import WireTLS

extension Integration {
    /// Ferry's own PostgreSQL client against the real server: SCRAM login, queries with
    /// parameters, errors that leave the connection usable, COPY, and cancellation that closes.
    @Suite struct PostgresConnection {
        static func configuration(password: String? = nil, tls: TLSMode = .disable) throws -> PostgresWireConfiguration {
            PostgresWireConfiguration(host: "127.0.0.1", port: Int(try TestEnvironment.value("FERRY_POSTGRES_PORT"))!, user: "ferry",
                                      password: try password ?? TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), database: "replica", tls: tls)
        }

        static func connect() async throws -> PostgresWireConnection {
            try await PostgresWireConnection.connect(configuration(), logger: Logger(label: "test"))
        }

        @Test func loginAndQueries() async throws {
            let connection = try await Self.connect()
            #expect(connection.serverVersion.hasPrefix("15"))
            let result = try await connection.query("SELECT $1::int + 1, $2::text IS NULL, $3::text", [.text("41"), .text(nil), .text("naïve ☃")])
            #expect(result.text(0, 0) == "42")
            #expect(result.text(0, 1) == "t")
            #expect(result.text(0, 2) == "naïve ☃")
            let many = try await connection.simpleQuery("SELECT 1; SELECT g FROM generate_series(1, 50000) g")
            #expect(many.rows.count == 50_000)
            #expect(many.text(49_999, 0) == "50000")
            await connection.close()
            #expect(connection.isClosed)
        }

        @Test func wrongPasswordSaysSo() async throws {
            do {
                _ = try await PostgresWireConnection.connect(Self.configuration(password: "wrong"), logger: Logger(label: "test"))
                Issue.record("logged in with a wrong password")
            } catch PostgresWireError.authentication(let text) {
                #expect(text.contains("28P01"))
            }
        }

        /// The test server offers TLS with a certificate from a throwaway CA (`scripts/services`).
        @Test func tlsModes() async throws {
            var required = try Self.configuration(tls: .require)
            let encrypted = try await PostgresWireConnection.connect(required, logger: Logger(label: "test"))
            #expect(try await encrypted.simpleQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").text(0, 0) == "t")
            await encrypted.close()
            var plain = try Self.configuration(tls: .disable)
            let unencrypted = try await PostgresWireConnection.connect(plain, logger: Logger(label: "test"))
            #expect(try await unencrypted.simpleQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").text(0, 0) == "f")
            await unencrypted.close()
            // verify-full: the CA's certificate for localhost / 127.0.0.1 is accepted; without the CA it is not.
            required.tls = .verifyFull
            required.tlsCAFile = try TestEnvironment.value("FERRY_POSTGRES_CA")
            let verified = try await PostgresWireConnection.connect(required, logger: Logger(label: "test"))
            #expect(try await verified.simpleQuery("SELECT 1").text(0, 0) == "1")
            await verified.close()
            plain.tls = .verifyFull
            do {
                _ = try await PostgresWireConnection.connect(plain, logger: Logger(label: "test"))
                Issue.record("a certificate from an unknown CA was accepted with verify-full")
            } catch PostgresWireError.tls {}
        }

        @Test func serverErrorsLeaveTheConnectionUsable() async throws {
            let connection = try await Self.connect()
            await #expect(throws: PostgresWireError.self) { try await connection.simpleQuery("SELEKT 1") }
            try await connection.simpleQuery("BEGIN")
            #expect(connection.transactionStatus == UInt8(ascii: "T"))
            do {
                try await connection.query("SELECT 1/0")
                Issue.record("division by zero succeeded")
            } catch PostgresWireError.server(let error) {
                #expect(error.sqlState == "22012")
            }
            #expect(connection.transactionStatus == UInt8(ascii: "E"))
            try await connection.simpleQuery("ROLLBACK")
            #expect(try await connection.query("SELECT 2").text(0, 0) == "2")
            await connection.close()
        }

        @Test func copyStreamsRowsAndReportsAnExistingKey() async throws {
            let connection = try await Self.connect()
            try await connection.simpleQuery("CREATE TEMPORARY TABLE copied (id int PRIMARY KEY, v text)")
            func rows(_ ids: [Int]) -> (inout ByteBuffer) throws -> Bool {
                var next = 0
                return { piece in
                    let end = min(ids.count, next + 7_000)
                    while next < end {
                        piece.writeString("\(ids[next])\trow \(ids[next])\n")
                        next += 1
                    }
                    return next < ids.count
                }
            }
            let copied = try await connection.copyIn("COPY copied (id, v) FROM STDIN", rows(Array(1...100_000)))
            #expect(copied.commandTag == "COPY 100000")
            do {
                _ = try await connection.copyIn("COPY copied (id, v) FROM STDIN", rows(Array(100_001...150_000) + [5] + Array(150_001...200_000)))
                Issue.record("a COPY with an existing key succeeded")
            } catch PostgresWireError.server(let error) {
                #expect(error.sqlState == "23505")
            }
            #expect(try await connection.query("SELECT count(*), max(id) FROM copied").rows.first?.compactMap { $0.map { String(buffer: $0) } } == ["100000", "100000"])
            // Notices while the rows stream (a trigger's RAISE NOTICE) are no refusal: every row lands.
            try await connection.simpleQuery("""
                CREATE TEMPORARY TABLE noisy (id int PRIMARY KEY, v text);
                CREATE FUNCTION pg_temp.shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'row %', NEW.id; RETURN NEW; END $$;
                CREATE TRIGGER shout BEFORE INSERT ON noisy FOR EACH ROW EXECUTE FUNCTION pg_temp.shout();
                SET client_min_messages = notice
                """)
            let noisy = try await connection.copyIn("COPY noisy (id, v) FROM STDIN", rows(Array(1...30_000)))
            #expect(noisy.commandTag == "COPY 30000")
            #expect(try await connection.query("SELECT count(*) FROM noisy").text(0, 0) == "30000")
            await connection.close()
        }

        @Test func cancellationClosesTheConnectionPromptly() async throws {
            let started = ContinuousClock.now
            let closed = try await withThrowingTaskGroup(of: Bool?.self) { group in
                group.addTask {
                    let connection = try await Self.connect()
                    await #expect(throws: PostgresWireError.self) { try await connection.simpleQuery("SELECT pg_sleep(30) AS cancelled_by_test") }
                    return connection.isClosed
                }
                group.addTask {
                    let watcher = try await Self.connect()
                    try await waitUntil("the sleep runs", seconds: 10) {
                        try await watcher.simpleQuery("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%AS cancelled_by_test' AND pid <> pg_backend_pid()").text(0, 0) == "1"
                    }
                    await watcher.close()
                    return nil
                }
                _ = try await group.next()
                group.cancelAll()
                return try await group.next()
            }
            #expect(closed == true)
            #expect(ContinuousClock.now - started < .seconds(15))
        }
    }
}

import FerryCore
import MySQLWire
import Testing
@testable import MySQLSource

@Suite struct ReconnectBackoffTests {
    static func configuration(attempts: Int?) throws -> MySQLSourceConfiguration {
        MySQLSourceConfiguration(name: "db", connection: try MySQLConnectionConfiguration(url: "mysql://ferry@127.0.0.1:3306", password: "x"),
                                 serverID: 1, initialReconnectDelaySeconds: 1, maximumReconnectDelaySeconds: 8, maximumReconnectAttempts: attempts)
    }

    struct Lost: Error {}

    /// Delays double from the first up to the largest (each within ±20%), and the attempts run out.
    @Test func delaysGrowAndAttemptsRunOut() throws {
        var backoff = ReconnectBackoff(try Self.configuration(attempts: 5))
        let delays = try (0..<5).map { _ in try backoff.delay(after: Lost()) }
        for (delay, base) in zip(delays, [1.0, 2, 4, 8, 8]) {
            #expect(delay >= base * 0.8 && delay <= base * 1.2, "\(delays)")
        }
        #expect(throws: Lost.self) { try backoff.delay(after: Lost()) }
    }

    /// A job that moves between losses (a long snapshot) waits the first delay again after each,
    /// and never spends its attempts; without progress it gives up.
    @Test func progressBetweenLossesStartsTheCountOver() throws {
        var moving = ReconnectBackoff(try Self.configuration(attempts: 2))
        for _ in 0..<10 {
            let delay = try moving.delay(after: Lost(), progressed: true)
            #expect(delay >= 0.8 && delay <= 1.2)
        }
        var stuck = ReconnectBackoff(try Self.configuration(attempts: 2))
        _ = try stuck.delay(after: Lost(), progressed: true)
        _ = try stuck.delay(after: Lost(), progressed: false)
        #expect(throws: Lost.self) { try stuck.delay(after: Lost(), progressed: false) }
    }

    /// Which server refusals a reconnect cures: among them a replica with the same server_id
    /// still registered (a former cluster owner's connection the server has not dropped yet);
    /// not a refused password or a purged position.
    @Test func lostConnectionsAreTheOnesAReconnectCures() {
        func refused(_ code: UInt16) -> MySQLWireError {
            .server(ERRPacket(errorCode: code, sqlState: "HY000", message: "refused"), context: "the binlog dump")
        }
        #expect([1053, 1927, 2013, 1040, 1205, 4052].allSatisfy { MySQLSource.isLostConnection(refused($0)) })
        #expect(![1045, 1236, 1227].contains { MySQLSource.isLostConnection(refused($0)) })
        #expect(MySQLSource.isLostConnection(MySQLWireError.connectionClosed("reset")))
    }
}

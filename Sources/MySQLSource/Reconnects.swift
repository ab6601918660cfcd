import FerryCore
import Logging
import MySQLWire

/// The wait before the next attempt after a lost connection to the source: doubling from the
/// configured first delay up to the maximum, ±20 % so replicas restarted together do not
/// reconnect in step. The binlog stream, the snapshot and the start of `ferry run` share it.
struct ReconnectBackoff {
    let configuration: MySQLSourceConfiguration
    private(set) var failures = 0

    init(_ configuration: MySQLSourceConfiguration) {
        self.configuration = configuration
    }

    /// After a success: the next loss waits the first delay again.
    mutating func reset() { failures = 0 }

    /// Seconds to wait after `error` when the failed attempt made progress (or not): progress
    /// counts as a success, so a long job that keeps moving between losses never spends its
    /// attempts.
    mutating func delay(after error: any Error, progressed: Bool) throws -> Double {
        if progressed { reset() }
        return try delay(after: error)
    }

    /// Seconds to wait after `error`; throws it when the attempts allowed are spent.
    mutating func delay(after error: any Error) throws -> Double {
        failures += 1
        if let limit = configuration.maximumReconnectAttempts, failures > limit { throw error }
        let delay = min(configuration.maximumReconnectDelaySeconds,
                        configuration.initialReconnectDelaySeconds * Double(1 << min(failures - 1, 16)))
        return delay * Double.random(in: 0.8...1.2)
    }

    /// Sleeps `seconds`; cancellation ends the wait with `CancellationError`.
    static func wait(_ seconds: Double) async throws {
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
    }
}

extension MySQLSource {
    /// Connection-level failures that a reconnect can cure.
    public static func isLostConnection(_ error: any Error) -> Bool {
        guard let wire = error as? MySQLWireError else { return false }
        switch wire {
        case .connectionClosed, .readTimeout, .connectFailed: return true
        case .server(let packet, _):
            // Server shutting down (1053), killed connection (1927, 2013), too many connections (1040),
            // and MariaDB's "a replica with the same server_id is already connected" (4052): a
            // previous connection of this pipeline — before a reconnect, or a former cluster
            // owner's — that the server has not dropped yet.
            return [1053, 1927, 2013, 1040, 1205, 4052].contains(packet.errorCode)
        default: return false
        }
    }

    /// Runs `body` again after each lost connection to the source, waiting as the reconnect
    /// settings say: a source that is down or restarting while `ferry run` starts is waited for,
    /// as it is while streaming. Other errors, cancellation and the attempt limit end it.
    /// `doing` completes "lost the source connection while …" in the warning.
    public func retryingLostConnections<T: Sendable>(_ doing: String, _ body: () async throws -> T) async throws -> T {
        var backoff = ReconnectBackoff(configuration)
        while true {
            do {
                return try await body()
            } catch let error where Self.isLostConnection(error) && !Task.isCancelled {
                let wait = try backoff.delay(after: error)
                logger.warning("lost the source connection while \(doing); retrying", metadata: [
                    LoggingKeys.source: "\(configuration.name)", LoggingKeys.error: .error(error), LoggingKeys.retryIn: .seconds(wait),
                ])
                try await ReconnectBackoff.wait(wait)
            }
        }
    }
}

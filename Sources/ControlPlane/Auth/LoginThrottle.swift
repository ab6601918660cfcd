import NIOConcurrencyHelpers

/// Failed logins per client address: after `limit` failures within `window` seconds the address
/// is refused (429) until the oldest of them is `window` seconds old. Time is passed in, so the
/// rule is tested without a clock.
public struct LoginFailures: Sendable {
    public var limit: Int
    public var window: Double
    private var failures: [String: [Double]] = [:]

    public init(limit: Int = 10, window: Double = 60) {
        self.limit = limit
        self.window = window
    }

    /// Seconds until `address` may try again; nil when it may now.
    public mutating func blockedFor(_ address: String, now: Double) -> Double? {
        prune(address, now: now)
        guard let times = failures[address], times.count >= limit else { return nil }
        return times[times.count - limit] + window - now
    }

    public mutating func failed(_ address: String, now: Double) {
        prune(address, now: now)
        failures[address, default: []].append(now)
        // Keep the table small under a flood of addresses.
        if failures.count > 10_000 { failures = failures.filter { !$0.value.isEmpty } }
    }

    private mutating func prune(_ address: String, now: Double) {
        guard var times = failures[address] else { return }
        times.removeAll { now - $0 >= window }
        failures[address] = times.isEmpty ? nil : times
    }
}

/// `LoginFailures` shared by concurrent requests.
final class LoginThrottle: Sendable {
    private let state: NIOLockedValueBox<LoginFailures>

    init(limit: Int, window: Double) {
        state = NIOLockedValueBox(LoginFailures(limit: limit, window: window))
    }

    func blockedFor(_ address: String, now: Double) -> Double? { state.withLockedValue { $0.blockedFor(address, now: now) } }

    func failed(_ address: String, now: Double) { state.withLockedValue { $0.failed(address, now: now) } }
}

import NIOConcurrencyHelpers

/// Failed logins per client address: after `limit` failures within `window` seconds the address
/// is refused (429) until the oldest of them is `window` seconds old. Time is passed in, so the
/// rule is tested without a clock.
public struct LoginFailures: Sendable {
    public var limit: Int
    public var window: Double
    private var failures: [String: [Double]] = [:]
    /// Checks under way per address: they count as failures until they end, so requests sent at
    /// once cannot all pass the check before any failure is recorded.
    private var pending: [String: Int] = [:]

    public init(limit: Int = 10, window: Double = 60) {
        self.limit = limit
        self.window = window
    }

    /// Seconds until `address` may try again; nil when it may now.
    public mutating func blockedFor(_ address: String, now: Double) -> Double? {
        prune(address, now: now)
        let times = failures[address] ?? []
        let inFlight = pending[address] ?? 0
        guard times.count + inFlight >= limit else { return nil }
        // Checks under way hold the remaining tries: wait for them (at least a second).
        guard times.count >= limit else { return 1 }
        return times[times.count - limit] + window - now
    }

    /// Starts a check for `address`: nil when it may go ahead (end it with `finished`), else the
    /// seconds to wait.
    public mutating func begin(_ address: String, now: Double) -> Double? {
        if let wait = blockedFor(address, now: now) { return wait }
        pending[address, default: 0] += 1
        return nil
    }

    /// Ends a check begun with `begin`; a failed one counts against the address.
    public mutating func finished(_ address: String, succeeded: Bool, now: Double) {
        if let count = pending[address] { pending[address] = count > 1 ? count - 1 : nil }
        if !succeeded { failed(address, now: now) }
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

    func begin(_ address: String, now: Double) -> Double? { state.withLockedValue { $0.begin(address, now: now) } }

    func finished(_ address: String, succeeded: Bool, now: Double) { state.withLockedValue { $0.finished(address, succeeded: succeeded, now: now) } }
}

import FerryCore

/// Decides, in one place, whether a failure is worth retrying (DESIGN: one classifier).
public enum ErrorClassifier {
    /// Transient: connection and I/O trouble, busy or locked targets. Everything else (decode,
    /// configuration, constraint and type errors) stops the pipeline or goes to the dead letter.
    public static func isTransient(_ error: any Error) -> Bool {
        if let classified = error as? any ClassifiedError { return classified.isTransient }
        if let ferry = error as? FerryError { return ferry.code.hasSuffix(".unavailable") || ferry.code.hasSuffix(".busy") }
        return false
    }
}


/// Exponential backoff with jitter and a budget.
public struct RetryPolicy: Sendable {
    /// Default 0.2 s.
    public var initialDelaySeconds: Double
    /// Default 30 s.
    public var maximumDelaySeconds: Double
    /// Give up after this many attempts in a row; `nil` retries forever. Default nil.
    public var maximumAttempts: Int?

    public init(initialDelaySeconds: Double = 0.2, maximumDelaySeconds: Double = 30, maximumAttempts: Int? = nil) {
        self.initialDelaySeconds = initialDelaySeconds
        self.maximumDelaySeconds = maximumDelaySeconds
        self.maximumAttempts = maximumAttempts
    }

    /// The delay before attempt `attempt` (1-based), with ±20 % jitter.
    public func delay(attempt: Int) -> Double {
        let base = min(maximumDelaySeconds, initialDelaySeconds * Double(1 << min(max(attempt - 1, 0), 20)))
        return base * Double.random(in: 0.8...1.2)
    }

    /// Runs `body`, retrying transient failures; calls `onRetry` before each wait.
    public func run<T>(_ body: () async throws -> T, onRetry: (any Error, Int, Double) -> Void) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard ErrorClassifier.isTransient(error), maximumAttempts.map({ attempt < $0 }) ?? true else { throw error }
                let wait = delay(attempt: attempt)
                onRetry(error, attempt, wait)
                try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
            }
        }
    }
}

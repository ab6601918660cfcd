import FerryCore

/// Decides, in one place, what a failure means, from the error's type.
public enum ErrorClassifier {
    /// Retry: connection and I/O trouble, busy or locked targets, deadlines. Fatal: lost
    /// durability. Everything else (decode, configuration, constraint and type errors) is a
    /// rejection: it stops the pipeline or goes to the dead letter.
    public static func classify(_ error: any Error) -> ErrorDisposition {
        (error as? any ClassifiedError)?.disposition ?? .reject
    }

    public static func isTransient(_ error: any Error) -> Bool { classify(error) == .retry }

    public static func isFatal(_ error: any Error) -> Bool { classify(error) == .fatal }
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

    /// Runs `body`, retrying transient failures; calls `onRetry` before each wait. Once `stop`
    /// fires, a failed attempt is not tried again and a wait ends at once, with
    /// `StoppedWhileRetrying`: a pause, restart or SIGTERM never waits out a backoff on a target
    /// that is down (what was not applied is applied on the next start).
    public func run<T>(stop: StopSignal? = nil, _ body: () async throws -> T, onRetry: (any Error, Int, Double) -> Void) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard ErrorClassifier.isTransient(error), maximumAttempts.map({ attempt < $0 }) ?? true else { throw error }
                if let stop, await stop.isStopped { throw StoppedWhileRetrying(underlying: error) }
                let wait = delay(attempt: attempt)
                onRetry(error, attempt, wait)
                try await Self.pause(seconds: wait, unless: stop, after: error)
            }
        }
    }

    private static func pause(seconds: Double, unless stop: StopSignal?, after error: any Error) async throws {
        guard let stop else { return try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
        let stopped = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return false
            }
            group.addTask {
                await stop.wait()
                return true
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        if stopped { throw StoppedWhileRetrying(underlying: error) }
    }
}

/// The pipeline was stopped while a sink waited to try again; `underlying` is the last failure.
/// Transient, never a rejection: what was not applied is tried again on the next start.
public struct StoppedWhileRetrying: ClassifiedError {
    public var underlying: any Error
    public var isTransient: Bool { true }
}

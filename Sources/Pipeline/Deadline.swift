import FerryCore

/// Runs one attempt of a session operation against the clock (docs/architecture.md, one owner).
///
/// The attempt and a timer race as two child tasks. When the timer wins, or the calling task is
/// cancelled (a drain that timed out), the attempt's task is cancelled and the session interrupted —
/// its connection closed — so its I/O fails promptly; then this waits for the attempt to end.
/// Only after that does it return or throw, so the caller can discard the session and retry on
/// a new one with no earlier attempt still running beside it.
///
/// - Throws: `ApplyTimeout` when the deadline passed first; `CancellationError` when the caller
///   was cancelled; otherwise what the attempt threw.
func withDeadline<T: Sendable>(_ duration: Duration, clock: any Clock<Duration>, session: any SinkSession,
                               _ attempt: @escaping @Sendable () async throws -> T) async throws -> T {
    return try await withTaskCancellationHandler {
        let (result, expired) = await withTaskGroup(of: DeadlineRace<T>.self) { group in
            group.addTask {
                do {
                    return .attempt(.success(try await attempt()))
                } catch {
                    return .attempt(.failure(error))
                }
            }
            group.addTask {
                do {
                    try await clock.sleep(for: duration)
                    return .expired
                } catch {
                    return .timerCancelled
                }
            }
            var result: Result<T, any Error>? = nil
            var expired = false
            switch await group.next()! {
            case .attempt(let outcome): result = outcome
            case .expired:
                expired = true
                session.interrupt()
            case .timerCancelled: break
            }
            group.cancelAll()
            // The attempt's end, whichever child came first: nothing returns while it runs.
            while let next = await group.next() {
                if case .attempt(let outcome) = next { result = outcome }
            }
            return (result!, expired)
        }
        if expired { throw ApplyTimeout(duration: duration, sink: session.name) }
        if Task.isCancelled, case .failure = result { throw CancellationError() }
        return try result.get()
    } onCancel: {
        session.interrupt()
    }
}

/// What ended first in `withDeadline`: the attempt, the timer, or the timer's cancellation.
private enum DeadlineRace<T: Sendable>: Sendable {
    case attempt(Result<T, any Error>)
    case expired
    case timerCancelled
}

/// A session did not answer in time; the batch is retried on a new session.
struct ApplyTimeout: ClassifiedError, CustomStringConvertible {
    var duration: Duration
    var sink: String
    var isTransient: Bool { true }
    var description: String { "sink \(sink) did not answer within \(duration.components.seconds) s" }
}

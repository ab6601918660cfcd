import FerryCore

/// Runs one attempt of a session operation against the clock (docs/architecture.md, one owner).
///
/// The attempt and a timer race as two child tasks. When the timer wins, or the calling task is
/// cancelled (a drain that timed out), the attempt's task is cancelled and the session interrupted —
/// its connection closed — so its I/O fails promptly; then this waits for the attempt to end.
/// Only after that does it return or throw, so the caller can discard the session and retry on
/// a new one with no earlier attempt still running beside it.
///
/// With a `window` (cluster mode: how long this node may still write), the attempt is also
/// interrupted the moment the window closes — not when it merely shrinks, since renewals of the
/// node's lease during the attempt move it on.
///
/// - Throws: `ApplyTimeout` when the deadline passed first; `cluster.fenced` when the write
///   window closed first; `CancellationError` when the caller was cancelled; otherwise what the
///   attempt threw.
func withDeadline<T: Sendable>(_ duration: Duration, clock: any Clock<Duration>, session: any SinkSession,
                               window: (@Sendable () -> Duration?)? = nil,
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
                    var left = duration
                    while true {
                        let open = window?()
                        if let open, open <= .zero { return .windowClosed }
                        let step = min(left, open ?? left)
                        try await clock.sleep(for: step)
                        left -= step
                        if left <= .zero { return .expired }
                    }
                } catch {
                    return .timerCancelled
                }
            }
            var result: Result<T, any Error>? = nil
            var expired: DeadlineRace<T>? = nil
            let first = await group.next()!
            switch first {
            case .attempt(let outcome): result = outcome
            case .expired, .windowClosed:
                expired = first
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
        switch expired {
        case .expired?: throw ApplyTimeout(duration: duration, sink: session.name)
        case .windowClosed?: throw WriteWindow.closed()
        default: break
        }
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
    case windowClosed
    case timerCancelled
}

/// Cluster mode's write window (`PipelineConfiguration.writeWindow`).
enum WriteWindow {
    /// The error when the window has closed: this node's lease was not renewed in time.
    /// Context (pipeline, sink) is given where the caller adds none.
    static func closed(context: [(key: String, value: String)] = []) -> FerryError {
        .fenced("this node may no longer write: its cluster lease was not renewed in time", context: context)
    }
}

/// A session did not answer in time; the batch is retried on a new session.
struct ApplyTimeout: ClassifiedError, CustomStringConvertible {
    var duration: Duration
    var sink: String
    var isTransient: Bool { true }
    var description: String { "sink \(sink) did not answer within \(duration.components.seconds) s" }
}

import Synchronization

/// Hands elements from one producing task to one consuming task in order, so that the two run
/// on separate cores (decoding beside encoding). The producer waits while the elements not yet
/// taken weigh `capacity` or more — an element is always accepted into an empty queue, however
/// heavy — and the consumer takes everything waiting at once, so a stream of small elements
/// costs one lock per element and one wake-up per batch.
///
/// Either side can end it: `finish()` (the producer is done; the consumer still gets what is
/// queued) and `close()` (the consumer is gone; `send` returns `false` from then on). A
/// cancelled wait returns as if the other side had ended, so neither side can hang.
public final class BoundedHandoff<Element: Sendable>: Sendable {
    private struct State {
        var elements: [Element] = []
        var weight = 0
        var finished = false
        var closed = false
        var waitingProducer: CheckedContinuation<Void, Never>?
        var waitingConsumer: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Queues `element`, first waiting for room. Returns `false`, without queueing, when the
    /// consumer has closed the hand-off or the producer's task is cancelled.
    public func send(_ element: Element, weight: Int) async -> Bool {
        while true {
            let (accepted, consumer) = state.withLock { state -> (Bool?, CheckedContinuation<Void, Never>?) in
                if state.closed { return (false, nil) }
                guard state.elements.isEmpty || state.weight < capacity else { return (nil, nil) }
                state.elements.append(element)
                state.weight += weight
                defer { state.waitingConsumer = nil }
                return (true, state.waitingConsumer)
            }
            if let accepted {
                consumer?.resume()
                return accepted
            }
            if Task.isCancelled { return false }
            await wait(in: \.waitingProducer) { state in
                state.closed || state.elements.isEmpty || state.weight < self.capacity
            }
        }
    }

    /// Everything queued, in order, waiting while nothing is; `nil` once the producer finished
    /// and all was taken, or when the consumer's task is cancelled.
    public func take() async -> [Element]? {
        while true {
            let (taken, producer, finished) = state.withLock { state -> ([Element]?, CheckedContinuation<Void, Never>?, Bool) in
                if state.elements.isEmpty { return (nil, nil, state.finished) }
                let taken = state.elements
                state.elements.removeAll(keepingCapacity: true)
                state.weight = 0
                defer { state.waitingProducer = nil }
                return (taken, state.waitingProducer, false)
            }
            if let taken {
                producer?.resume()
                return taken
            }
            if finished || Task.isCancelled { return nil }
            await wait(in: \.waitingConsumer) { state in state.finished || !state.elements.isEmpty }
        }
    }

    /// Waits in `slot` until the other side resumes it, unless `ready` already holds. Checked
    /// under the lock together with cancellation, so a cancellation is seen here or by the
    /// handler, never by neither.
    private func wait(in slot: any WritableKeyPath<State, CheckedContinuation<Void, Never>?> & Sendable, unless ready: @escaping @Sendable (State) -> Bool) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if ready(state) || Task.isCancelled { return true }
                    state[keyPath: slot] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state in
                defer { state[keyPath: slot] = nil }
                return state[keyPath: slot]
            }?.resume()
        }
    }

    /// The producer is done: the consumer gets what is queued, then `nil`.
    public func finish() {
        state.withLock { state in
            state.finished = true
            defer { state.waitingConsumer = nil }
            return state.waitingConsumer
        }?.resume()
    }

    /// The consumer is gone: a waiting or later `send` returns `false`.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.elements.removeAll()
            defer { state.waitingProducer = nil }
            return state.waitingProducer
        }?.resume()
    }
}

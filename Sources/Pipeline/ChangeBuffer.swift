import FerryCore

/// What sits between a pipeline's source and its sinks (docs/architecture.md, data flow): the bounded memory queue or
/// the disk log. Each sink reads at its own cursor.
protocol ChangeBuffer: Sendable {
    /// Adds a transaction; may suspend (backpressure).
    func append(_ transaction: Transaction) async throws
    /// No more transactions will come; readers drain what is left and then get an empty batch.
    func finish() async
    /// Up to `limit` transactions (and, beyond the first, no more than `maximumEvents` changes)
    /// after the consumer's cursor, waiting until at least one is there. Empty only when finished
    /// and drained for this consumer.
    func read(consumer: String, limit: Int, maximumEvents: Int) async throws -> [Transaction]
    /// The consumer durably applied what it has read up to the transaction at `position` (it may
    /// have read further meanwhile).
    func acknowledge(consumer: String, through position: SourcePosition) async throws
}

/// An actor whose tasks wait for each other: parked tasks are woken by id, and a cancelled task
/// wakes itself.
protocol ParkingActor: Actor {
    var parking: ParkingLot { get set }
}

struct ParkingLot {
    fileprivate var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    fileprivate var nextID = 0

    init() {}
}

extension ParkingActor {
    /// Waits until woken or cancelled; `register` files the waiter's id.
    func park(_ register: (Int) -> Void) async {
        let id = parking.nextID
        parking.nextID += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume()
                } else {
                    parking.waiters[id] = continuation
                    register(id)
                }
            }
        } onCancel: {
            Task { await self.wake(id) }
        }
    }

    func wake(_ id: Int) {
        parking.waiters.removeValue(forKey: id)?.resume()
    }

    func wake(_ ids: some Sequence<Int>) {
        for id in ids { wake(id) }
    }
}

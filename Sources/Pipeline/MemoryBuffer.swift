import FerryCore

/// The bounded in-memory queue between a source and its sinks (docs/architecture.md, promise 5).
///
/// Every sink reads every transaction at its own cursor; a transaction is released once all
/// sinks have read it. `append` suspends while the buffered bytes exceed the bound — that is the
/// backpressure that stops the source from reading (the database keeps its binlog meanwhile).
/// A single transaction larger than the bound is still admitted, alone.
public actor MemoryBuffer: ChangeBuffer, ParkingActor {
    public let maximumBytes: Int
    private var entries: [(sequence: Int, transaction: Transaction, bytes: Int)] = []
    private var firstSequence = 0
    private var nextSequence = 0
    private var bufferedBytes = 0
    private var cursors: [String: Int]
    private var finished = false
    var parking = ParkingLot()
    private var writerIDs: [Int] = []
    private var readerIDs: [String: Int] = [:]

    /// - Parameter consumers: the names of the sinks that read the buffer.
    public init(maximumBytes: Int, consumers: [String]) {
        self.maximumBytes = maximumBytes
        self.cursors = Dictionary(uniqueKeysWithValues: consumers.map { ($0, 0) })
    }

    public var byteCount: Int { bufferedBytes }
    public var count: Int { entries.count }

    /// Adds a transaction, waiting while the buffer is full. Throws `CancellationError` when the
    /// waiting task is cancelled.
    public func append(_ transaction: Transaction) async throws {
        let bytes = Self.estimatedBytes(transaction)
        while !entries.isEmpty && bufferedBytes + bytes > maximumBytes {
            try Task.checkCancellation()
            await park { self.writerIDs.append($0) }
        }
        entries.append((nextSequence, transaction, bytes))
        nextSequence += 1
        bufferedBytes += bytes
        wakeReaders()
    }

    public func finish() {
        finished = true
        wakeReaders()
    }

    public func read(consumer: String, limit: Int, maximumEvents: Int = .max) async -> [Transaction] {
        while true {
            let cursor = cursors[consumer] ?? nextSequence
            if cursor < nextSequence {
                let start = cursor - firstSequence
                var end = start + 1
                var events = entries[start].transaction.events.count
                while end < entries.count, end - start < limit, events + entries[end].transaction.events.count <= maximumEvents {
                    events += entries[end].transaction.events.count
                    end += 1
                }
                let batch = entries[start..<end].map(\.transaction)
                cursors[consumer] = cursor + batch.count
                release()
                return batch
            }
            if finished || Task.isCancelled { return [] }
            await park { self.readerIDs[consumer] = $0 }
        }
    }

    public func acknowledge(consumer: String, through position: SourcePosition) {}

    private func release() {
        let lowest = cursors.values.min() ?? nextSequence
        var released = 0
        while firstSequence < lowest, !entries.isEmpty {
            bufferedBytes -= entries[released].bytes
            released += 1
            firstSequence += 1
        }
        if released > 0 {
            entries.removeFirst(released)
            let writers = writerIDs
            writerIDs.removeAll()
            wake(writers)
        }
    }

    private func wakeReaders() {
        let readers = readerIDs
        readerIDs.removeAll()
        wake(readers.values)
    }

    /// An estimate of a transaction's memory: values' payload sizes plus the overheads measured
    /// for events, rows and values (about 200, 32 and 40 bytes).
    static func estimatedBytes(_ transaction: Transaction) -> Int {
        // Read in place through buffer pointers: this runs on the source's task for every change,
        // and copies of events and values (reference counting) would cost more than the sums.
        transaction.events.withUnsafeBufferPointer { events in
            var total = 256
            for index in events.indices {
                total += 200 + estimatedBytes(events[index].before) + estimatedBytes(events[index].after)
            }
            return total
        }
    }

    private static func estimatedBytes(_ row: Row?) -> Int {
        guard let row else { return 0 }
        return row.withUnsafeBufferPointer { values in
            var total = 32 + values.count * 40
            for index in values.indices {
                switch values[index] {
                case .string(let text), .decimal(let text), .json(let text), .enumeration(let text), .sourceText(let text):
                    total += text.utf8.count > 15 ? text.utf8.count + 32 : 0
                case .bytes(let bytes), .illFormedText(let bytes): total += bytes.count
                case .geometry(let geometry): total += geometry.wkb.count
                default: break
                }
            }
            return total
        }
    }
}

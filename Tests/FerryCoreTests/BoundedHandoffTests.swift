import FerryCore
import Testing

@Suite struct BoundedHandoffTests {
    /// Everything arrives once, in order, and a batch never weighs more than the capacity.
    @Test func keepsOrderAndBound() async {
        let handoff = BoundedHandoff<Int>(capacity: 8)
        let producer = Task {
            for value in 0..<10_000 { _ = await handoff.send(value, weight: 1) }
            handoff.finish()
        }
        var received: [Int] = []
        var largest = 0
        while let batch = await handoff.take() {
            received += batch
            largest = max(largest, batch.count)
        }
        await producer.value
        #expect(received == Array(0..<10_000))
        #expect(largest <= 8)
    }

    /// An element heavier than the capacity still goes into an empty queue (a 10,000-row
    /// transaction is never refused); the next one waits until it is taken.
    @Test func aHeavyElementFitsAnEmptyQueue() async {
        let handoff = BoundedHandoff<String>(capacity: 1)
        #expect(await handoff.send("big", weight: 100))
        let second = Task { await handoff.send("next", weight: 1) }
        #expect(await handoff.take() == ["big"])
        #expect(await second.value)
        #expect(await handoff.take() == ["next"])
        handoff.finish()
        #expect(await handoff.take() == nil)
    }

    /// A producer waiting for room is released when the consumer goes away.
    @Test func closeReleasesAWaitingProducer() async {
        let handoff = BoundedHandoff<Int>(capacity: 1)
        #expect(await handoff.send(1, weight: 1))
        let waiting = Task { await handoff.send(2, weight: 1) }
        handoff.close()
        #expect(await waiting.value == false)
        #expect(await handoff.send(3, weight: 1) == false)
    }

    /// Cancelled waits end on both sides instead of hanging.
    @Test func cancelledWaitsEnd() async {
        let full = BoundedHandoff<Int>(capacity: 1)
        #expect(await full.send(1, weight: 1))
        let producer = Task { await full.send(2, weight: 1) }
        producer.cancel()
        #expect(await producer.value == false)
        let empty = BoundedHandoff<Int>(capacity: 1)
        let consumer = Task { await empty.take() }
        consumer.cancel()
        #expect(await consumer.value == nil)
    }

    /// What was queued before `finish` is still delivered.
    @Test func finishDeliversWhatIsQueued() async {
        let handoff = BoundedHandoff<Int>(capacity: 10)
        for value in 1...3 { #expect(await handoff.send(value, weight: 1)) }
        handoff.finish()
        #expect(await handoff.take() == [1, 2, 3])
        #expect(await handoff.take() == nil)
    }
}

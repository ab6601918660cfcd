import Foundation
@testable import Pipeline
import Testing

/// A sink operation that ignores cancellation until `release` is set, as a stuck client library does.
private func stuck(until release: Flag) async -> Int {
    while !release.isSet { try? await Task.sleep(for: .milliseconds(5)) }
    return 7
}

@Suite struct DeadlineTests {
    @Test func returnsWhatTheOperationReturns() async throws {
        let value = try await withDeadline(seconds: 10, sink: "s") { 42 }
        #expect(value == 42)
    }

    @Test func givesUpAfterTheDeadline() async throws {
        let release = Flag()
        defer { release.set() }
        let started = ContinuousClock.now
        await #expect(throws: ApplyTimeout.self) {
            _ = try await withDeadline(seconds: 0.2, sink: "s") { await stuck(until: release) }
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// A drain that timed out cancels its sink workers; they must end at once, not after the
    /// apply timeout (300 s by default) of an operation that ignores cancellation.
    @Test func cancellationEndsTheWaitAtOnce() async throws {
        let release = Flag()
        defer { release.set() }
        let waiting = Task { try await withDeadline(seconds: 300, sink: "s") { await stuck(until: release) } }
        let started = ContinuousClock.now
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

import Foundation
@testable import Pipeline
import Testing

/// A sink operation that ignores cancellation until `release` is set, as a stuck client library does.
private func stuck(until release: Flag) async -> Int {
    while !release.isSet { try? await Task.sleep(for: .milliseconds(50)) }
    return 7
}

@Suite struct DeadlineTests {
    @Test func returnsWhatTheOperationReturns() async throws {
        let value = try await withDeadline(seconds: 10, sink: "s") { 42 }
        #expect(value == 42)
    }

    /// The operation never ends by itself: only the deadline ends the wait.
    @Test func givesUpAfterTheDeadline() async throws {
        let release = Flag()
        defer { release.set() }
        await #expect(throws: ApplyTimeout.self) {
            _ = try await withDeadline(seconds: 0.2, sink: "s") { await stuck(until: release) }
        }
    }

    /// A drain that timed out cancels its sink workers; they must end then, not after the apply
    /// timeout of an operation that ignores cancellation (which would end this wait with
    /// `ApplyTimeout` instead).
    @Test func cancellationEndsTheWait() async throws {
        let release = Flag()
        defer { release.set() }
        let waiting = Task { try await withDeadline(seconds: 120, sink: "s") { await stuck(until: release) } }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
    }
}

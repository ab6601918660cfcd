import ControlPlane
import FerryCore
@testable import FerryApp
import Logging
import Testing

/// Warnings and errors kept for the web page carry the error's code as typed data, never parsed
/// from its text.
@Suite struct RecentProblemsTests {
    struct Plain: Error, CustomStringConvertible {
        var description: String { "error[looks.like.a.code]: but is only text" }
    }

    @Test func codeTravelsWithTheError() {
        let recent = RecentProblems()
        let full = FerryError(code: .bufferDiskFull, message: "the disk buffer's file system is full")
        recent.record(level: .warning, message: "the disk buffer's file system is full",
                      metadata: [LoggingKeys.pipeline: "orders", LoggingKeys.error: .error(full)])
        recent.record(level: .warning, message: "something else", metadata: [LoggingKeys.pipeline: "orders", LoggingKeys.error: .error(Plain())])
        let entries = recent.entries(pipeline: "orders")
        #expect(entries.map(\.code) == [nil, "buffer.disk_full"] || entries.map(\.code) == ["buffer.disk_full", nil])
        #expect(entries.contains { $0.message == "the disk buffer's file system is full: \(full)" })
        #expect(entries.contains { $0.message == "something else: error[looks.like.a.code]: but is only text" && $0.code == nil })
    }
}

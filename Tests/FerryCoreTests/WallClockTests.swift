import FerryCore
import Foundation
import Testing

@Suite struct WallClockTests {
    /// The hand-written form is what ISO8601DateFormatter writes (same second, or the next one).
    @Test func iso8601LikeFoundation() {
        let before = ISO8601DateFormatter().string(from: Date())
        let text = WallClock.iso8601UTC()
        let after = ISO8601DateFormatter().string(from: Date())
        #expect(text == before || text == after)
        let precise = WallClock.iso8601UTC(milliseconds: true)
        #expect(precise.count == 24)
        #expect(precise.hasSuffix("Z") && precise.dropLast(4).last == ".")
        #expect(ISO8601DateFormatter().date(from: String(precise.prefix(19)) + "Z") != nil)
    }
}

import FerryCore
import NIOCore
import Testing
@testable import MySQLSource

@Suite struct BinlogRetentionTests {
    @Test func expiryComesFromSecondsThenDays() {
        #expect(BinlogRetention.expireSeconds(["binlog_expire_logs_seconds": "604800", "expire_logs_days": "7.000000"]) == 604_800)
        #expect(BinlogRetention.expireSeconds(["binlog_expire_logs_seconds": "0", "expire_logs_days": "0.500000"]) == 43_200)
        #expect(BinlogRetention.expireSeconds(["expire_logs_days": "3"]) == 259_200)
        #expect(BinlogRetention.expireSeconds(["binlog_expire_logs_seconds": "0", "expire_logs_days": "0.000000"]) == 0)
        #expect(BinlogRetention.expireSeconds([:]) == 0)
    }

    @Test func onlyAFileBeforeTheCurrentOneCanBePurged() {
        let files = ["mariadb-bin.000007", "mariadb-bin.000008", "mariadb-bin.000009"]
        #expect(BinlogRetention.fileAfter("mariadb-bin.000007", in: files) == "mariadb-bin.000008")
        #expect(BinlogRetention.fileAfter("mariadb-bin.000009", in: files) == nil)
        #expect(BinlogRetention.fileAfter("mariadb-bin.000003", in: files) == nil)
        // The current file, or no expiry: nothing to report.
        #expect(BinlogRetention.report(neededFile: "mariadb-bin.000009", serverFiles: files, expireSeconds: 3600, rotatedAt: 1_000, now: 2_000) == nil)
        #expect(BinlogRetention.report(neededFile: "mariadb-bin.000008", serverFiles: files, expireSeconds: 0, rotatedAt: 1_000, now: 2_000) == nil)
    }

    @Test func timeLeftIsRotationPlusExpiryMinusNow() throws {
        let files = ["b.000001", "b.000002"]
        let week = 604_800.0
        let fresh = try #require(BinlogRetention.report(neededFile: "b.000001", serverFiles: files, expireSeconds: week, rotatedAt: 1_700_000_000,
                                                       now: 1_700_000_000 + 3_600))
        #expect(fresh.secondsLeft == week - 3_600)
        #expect(fresh.warningSeconds == 21_600 && !fresh.isLow)
        #expect(fresh.summary == "b.000001 may be purged in 6 d 23 h (expiry 7 d)")
        let low = try #require(BinlogRetention.report(neededFile: "b.000001", serverFiles: files, expireSeconds: week, rotatedAt: 1_700_000_000,
                                                     now: 1_700_000_000 + week - 5 * 3_600 - 720))
        #expect(low.secondsLeft == 5 * 3_600 + 720 && low.isLow)
        #expect(low.summary == "b.000001 may be purged in 5 h 12 min (expiry 7 d)")
        let gone = try #require(BinlogRetention.report(neededFile: "b.000001", serverFiles: files, expireSeconds: week, rotatedAt: 1_700_000_000,
                                                      now: 1_700_000_000 + week + 10))
        #expect(gone.secondsLeft == 0 && gone.summary == "b.000001 may be purged now (at the server's next rotation) (expiry 7 d)")
        // A short expiry warns at half of it.
        let hour = try #require(BinlogRetention.report(neededFile: "b.000001", serverFiles: files, expireSeconds: 3_600, rotatedAt: 0, now: 1_900))
        #expect(hour.warningSeconds == 1_800 && hour.isLow)
    }

    /// A format description event's header (timestamp, type 15, server id, size, next position,
    /// flags) gives the file's start; an artificial rotate (timestamp 0, type 4) does not.
    @Test func aFileStartsAtItsFormatDescriptionsTimestamp() {
        var description = ByteBuffer(bytes: [0x00, 0xF1, 0x53, 0x65, 15, 1, 0, 0, 0, 0x7A, 0, 0, 0, 0x7E, 0, 0, 0, 0, 0, 4, 0])
        #expect(BinlogRetention.formatDescriptionTime(description) == 1_700_000_000)
        description.moveReaderIndex(forwardBy: 1)
        #expect(BinlogRetention.formatDescriptionTime(description) == nil)
        let rotate = ByteBuffer(bytes: [0, 0, 0, 0, 4, 1, 0, 0, 0, 0x2C, 0, 0, 0, 0, 0, 0, 0, 0x20, 0])
        #expect(BinlogRetention.formatDescriptionTime(rotate) == nil)
        #expect(BinlogRetention.formatDescriptionTime(ByteBuffer(bytes: [0x00, 0xF1, 0x53, 0x65, 15])) == nil)
    }

    @Test func durationsShowTheTwoLargestUnits() {
        #expect(DurationText.span(0) == "0 s")
        #expect(DurationText.span(42.9) == "42 s")
        #expect(DurationText.span(3_725) == "1 h 2 min")
        #expect(DurationText.span(86_401) == "1 d")
        #expect(DurationText.span(259_200 + 4 * 3_600) == "3 d 4 h")
        #expect(DurationText.span(-1) == "—")
    }
}

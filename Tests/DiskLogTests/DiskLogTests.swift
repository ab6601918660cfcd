@testable import DiskLog
import FerryTestKit
import Foundation
import Testing

func scratchDirectory() -> String {
    let path = NSTemporaryDirectory() + "ferry-disklog-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func record(_ number: Int, size: Int = 100) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: number &* 31 &+ $0) }
}

func readAll(_ log: DiskLog, from sequence: UInt64 = 0) throws -> [[UInt8]] {
    var cursor = try log.cursor(at: sequence)
    var records: [[UInt8]] = []
    while let next = try log.next(&cursor) { records.append(next) }
    return records
}

func segmentFiles(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
}

/// Appends raw bytes at the end of the data of a segment file (overwriting preallocated zeros).
func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
}

@Suite struct DiskLogTests {
    static let small = DiskLog.Options(segmentBytes: 1 << 20, fsync: .batch)

    @Test func appendsReadsAndReopens() throws {
        let directory = scratchDirectory()
        do {
            let log = try DiskLog(directory: directory, options: Self.small)
            for number in 0..<50 { #expect(try log.append(record(number)) == UInt64(number)) }
            #expect(try readAll(log).isEmpty, "batch policy: unsynced records are not visible")
            try log.syncForReaders()
            #expect(try readAll(log) == (0..<50).map { record($0) })
            #expect(try readAll(log, from: 42) == (42..<50).map { record($0) })
            #expect(try log.record(at: 7) == record(7))
        }
        let reopened = try DiskLog(directory: directory, options: Self.small)
        #expect(reopened.nextSequence == 50)
        #expect(reopened.truncatedBytes == 0)
        #expect(try readAll(reopened) == (0..<50).map { record($0) })
        #expect(try reopened.append(record(50)) == 50)
    }

    @Test func segmentsAreNamedByTheirFirstRecordAndPreallocated() throws {
        let directory = scratchDirectory()
        let log = try DiskLog(directory: directory, options: Self.small)
        for number in 0..<30 { try log.append(record(number, size: 100_000)) }
        try log.sync()
        let files = segmentFiles(directory)
        #expect(files.count == 3)
        #expect(files[0] == "00000000000000000000.log")
        #expect(files[1] == "00000000000000000010.log", "ten 100 kB records fit in a 1 MiB segment")
        let size = try FileManager.default.attributesOfItem(atPath: directory + "/" + files[2])[.size] as? Int
        #expect(size == 1 << 20)
        #expect(try readAll(log, from: 25) == (25..<30).map { record($0, size: 100_000) })
        let reopened = try DiskLog(directory: directory, options: Self.small)
        #expect(reopened.nextSequence == 30)
        #expect(reopened.segmentCount == 3)
    }

    @Test func aRecordLargerThanASegmentGetsItsOwn() throws {
        let directory = scratchDirectory()
        let log = try DiskLog(directory: directory, options: Self.small)
        try log.append(record(1))
        try log.append(record(2, size: 3 << 20))
        try log.append(record(3))
        try log.sync()
        #expect(try readAll(log) == [record(1), record(2, size: 3 << 20), record(3)])
        #expect(try readAll(DiskLog(directory: directory, options: Self.small)) == [record(1), record(2, size: 3 << 20), record(3)])
    }

    @Test func intervalPolicyShowsRecordsBeforeTheyAreSynced() throws {
        let log = try DiskLog(directory: scratchDirectory(), options: DiskLog.Options(segmentBytes: 1 << 20, fsync: .interval, interval: .seconds(3600)))
        try log.append(record(1))
        #expect(try readAll(log) == [record(1)])
    }

    @Test func tornTailIsCutAtEveryByte() throws {
        // A crash can stop a write after any byte: every prefix of the last record must recover
        // to exactly the records before it.
        let template = scratchDirectory()
        do {
            let log = try DiskLog(directory: template, options: Self.small)
            for number in 0..<3 { try log.append(record(number, size: 40)) }
            try log.sync()
        }
        let file = segmentFiles(template)[0]
        let full = try Data(contentsOf: URL(fileURLWithPath: template + "/" + file))
        let recordBytes = DiskLog.recordHeaderBytes + 40
        let lastStart = DiskLog.headerBytes + 2 * recordBytes
        for cut in lastStart..<(lastStart + recordBytes) {
            let directory = scratchDirectory()
            var bytes = [UInt8](full)
            for index in cut..<bytes.count { bytes[index] = 0 }
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + file))
            let log = try DiskLog(directory: directory, options: Self.small)
            #expect(log.nextSequence == 2, "cut at byte \(cut)")
            #expect(try readAll(log) == [record(0, size: 40), record(1, size: 40)])
            try log.append(record(9, size: 40))
            try log.sync()
            #expect(try readAll(DiskLog(directory: directory, options: Self.small)).count == 3)
        }
    }

    @Test func garbageAfterTheLastRecordIsATornTail() throws {
        let directory = scratchDirectory()
        do {
            let log = try DiskLog(directory: directory, options: Self.small)
            try log.append(record(0))
            try log.sync()
        }
        let path = directory + "/" + segmentFiles(directory)[0]
        try overwrite(path, at: DiskLog.headerBytes + DiskLog.recordHeaderBytes + 100, with: [0x40, 0, 0, 0, 1, 2, 3, 4, 9, 9])
        let log = try DiskLog(directory: directory, options: Self.small)
        #expect(log.nextSequence == 1)
        #expect(log.truncatedBytes > 0)
    }

    @Test func corruptionBeforeValidRecordsRefusesToOpen() throws {
        let directory = scratchDirectory()
        do {
            let log = try DiskLog(directory: directory, options: Self.small)
            for number in 0..<5 { try log.append(record(number)) }
            try log.sync()
        }
        let path = directory + "/" + segmentFiles(directory)[0]
        // Flip a payload byte of record 1; records 2… are intact after it.
        try overwrite(path, at: DiskLog.headerBytes + (DiskLog.recordHeaderBytes + 100) + DiskLog.recordHeaderBytes + 5, with: [0xFF])
        #expect {
            _ = try DiskLog(directory: directory, options: Self.small)
        } throws: { error in
            guard case .corrupt(let file, let offset, let reason) = error as? DiskLogError else { return false }
            return file == path && offset == DiskLog.headerBytes + DiskLog.recordHeaderBytes + 100 && reason.contains("CRC")
        }
    }

    @Test func corruptionInAnOlderSegmentRefusesToOpen() throws {
        let directory = scratchDirectory()
        do {
            let log = try DiskLog(directory: directory, options: Self.small)
            for number in 0..<25 { try log.append(record(number, size: 100_000)) }
            try log.sync()
        }
        let first = directory + "/" + segmentFiles(directory)[0]
        // Damage the last record of the first segment: not the newest segment, so not a torn tail.
        try overwrite(first, at: DiskLog.headerBytes + 9 * (DiskLog.recordHeaderBytes + 100_000) + 20, with: [1, 2, 3])
        #expect(throws: DiskLogError.self) { _ = try DiskLog(directory: directory, options: Self.small) }
    }

    @Test func aMissingSegmentRefusesToOpen() throws {
        let directory = scratchDirectory()
        do {
            let log = try DiskLog(directory: directory, options: Self.small)
            for number in 0..<25 { try log.append(record(number, size: 100_000)) }
            try log.sync()
        }
        try FileManager.default.removeItem(atPath: directory + "/" + segmentFiles(directory)[1])
        #expect {
            _ = try DiskLog(directory: directory, options: Self.small)
        } throws: { error in
            "\(error)".contains("a segment is missing")
        }
    }

    @Test func consumedSegmentsAreDeleted() throws {
        let directory = scratchDirectory()
        let log = try DiskLog(directory: directory, options: Self.small)
        for number in 0..<25 { try log.append(record(number, size: 100_000)) }
        try log.sync()
        #expect(log.oldestSegmentEnd == 10)
        #expect(try log.removeSegments(before: 9) == nil)
        #expect(try log.removeSegments(before: 20) == 19)
        #expect(segmentFiles(directory) == ["00000000000000000020.log"])
        #expect(log.firstSequence == 20)
        #expect(try readAll(log, from: 0).count == 5, "reading from a deleted record starts at the oldest kept one")
        let reopened = try DiskLog(directory: directory, options: Self.small)
        #expect(reopened.firstSequence == 20)
        #expect(reopened.nextSequence == 25)
    }

    @Test func aCursorAtTheEndOfADeletedSegmentMovesOn() throws {
        let log = try DiskLog(directory: scratchDirectory(), options: Self.small)
        for number in 0..<10 { try log.append(record(number, size: 100_000)) }
        try log.sync()
        var cursor = try log.cursor(at: 0)
        for _ in 0..<10 { _ = try log.next(&cursor) }
        try log.append(record(10, size: 100_000))
        try log.sync()
        #expect(try log.removeSegments(before: 10) == 9)
        #expect(try log.next(&cursor) == record(10, size: 100_000))
    }

    @Test func randomDamageNeverCrashes() throws {
        // Seeded: overwrite random bytes anywhere; opening either recovers a prefix or reports
        // corruption, and whatever opens reads back only intact records.
        var generator = SeededGenerator(seed: 7)
        let template = scratchDirectory()
        do {
            let log = try DiskLog(directory: template, options: Self.small)
            for number in 0..<20 { try log.append(record(number, size: Int.random(in: 1...300, using: &generator))) }
            try log.sync()
        }
        let file = segmentFiles(template)[0]
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: template + "/" + file)))
        let used = full.lastIndex { $0 != 0 }! + 1
        for _ in 0..<300 {
            var bytes = full
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<(used + 16), using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let directory = scratchDirectory()
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + file))
            do {
                let log = try DiskLog(directory: directory, options: Self.small)
                let records = try readAll(log)
                #expect(records.count <= 20)
            } catch is DiskLogError {
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

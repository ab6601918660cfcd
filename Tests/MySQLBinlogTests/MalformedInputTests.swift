import FerryCore
import FerryTestKit
@testable import MySQLBinlog
import MySQLTestKit
import NIOCore
import Testing

/// Truncated, bit-flipped and random inputs: the decoder returns typed errors and never traps.
@Suite struct MalformedInputTests {
    /// Valid events covering every decoder: the corpus the mutations start from.
    static func corpus() -> (fde: ByteBuffer, tableMap: ByteBuffer, events: [ByteBuffer]) {
        var encoder = BinlogEventEncoder()
        let fde = encoder.formatDescription()
        let types: [ColumnType] = [.long, .varchar, .newDecimal, .datetime2, .time2, .timestamp2, .blob, .json, .bit, .string, .geometry, .double, .year, .date]
        let metadata: [UInt8] = le(80, 2) + [10, 2] + [6] + [3] + [2] + [2] + [4] + le(0x0203, 2) + [0xF7, 1] + [4] + [8]
        let optional = BinlogEventEncoder.columnNames(types.indices.map { "c\($0)" })
            + BinlogEventEncoder.optionalField(6, [2, 1, 0x61, 1, 0x62])
        let tableMap = encoder.event(.tableMap, body: BinlogEventEncoder.tableMapBody(
            tableID: 5, database: "d", table: "t", types: types, metadata: metadata,
            nullable: Array(repeating: true, count: types.count), optional: optional))
        var decimal = be(12, 4) + [34]
        decimal[0] |= 0x80
        let json: [UInt8] = [0x02, 0x02, 0x00, 0x0A, 0x00, 0x05, 0x01, 0x00, 0x04, 0x01, 0x00]
        let row = BinlogEventEncoder.rowImage([
            le(1, 4), [3, 0x61, 0x62, 0x63], decimal, be(0x8C_B2_C2_00_00 as Int64, 5) + be(1, 3), be(0x80_10_00, 3) + be(5, 2),
            be(1_700_000_000, 4) + [9], le(4, 2) + [1, 2, 3, 4], le(json.count, 4) + json, [0x01, 0x02, 0x03], [1],
            le(9, 4) + le(0, 4) + [1, 1, 0, 0, 0], le(Double(2.5).bitPattern, 8), [124], le(2024 << 9 | 33, 3),
        ])
        let rows = encoder.event(.writeRowsV2, body: BinlogEventEncoder.rowsBody(tableID: 5, columnCount: types.count, rows: [row, row], v2: true))
        let update = encoder.event(.updateRowsV1, body: BinlogEventEncoder.rowsBody(
            tableID: 5, columnCount: types.count, presentAfter: Array(repeating: true, count: types.count), rows: [row + row]))
        let diff: [UInt8] = [0x00, 0x04] + Array("$[0]".utf8) + [0x03, 0x05, 0x05, 0x00]
        let partialValues: [[UInt8]?] = [
            le(1, 4), [3, 0x61, 0x62, 0x63], decimal, be(0x8C_B2_C2_00_00 as Int64, 5) + be(1, 3), be(0x80_10_00, 3) + be(5, 2),
            be(1_700_000_000, 4) + [9], le(4, 2) + [1, 2, 3, 4], le(diff.count, 4) + diff, [0x01, 0x02, 0x03], [1],
            le(9, 4) + le(0, 4) + [1, 1, 0, 0, 0], le(Double(2.5).bitPattern, 8), [124], le(2024 << 9 | 33, 3),
        ]
        let partial = encoder.event(.partialUpdateRows, body: BinlogEventEncoder.rowsBody(
            tableID: 5, columnCount: types.count, presentAfter: Array(repeating: true, count: types.count),
            rows: [row + [0x01, 0x01] + BinlogEventEncoder.rowImage(partialValues)], v2: true))
        let gtid = encoder.event(.mariadbGTID, body: le(UInt64(1), 8) + le(UInt32(0), 4) + [0x02] + le(UInt64(3), 8) + [0, 0, 0, 0, 0, 0])
        let query = encoder.event(.query, body: le(UInt32(5), 4) + le(UInt32(0), 4) + [1] + le(UInt16(0), 2) + le(UInt16(0), 2) + [0x64, 0] + Array("BEGIN".utf8))
        let list = encoder.event(.mariadbGTIDList, body: le(UInt32(1), 4) + le(UInt32(0), 4) + le(UInt32(1), 4) + le(UInt64(7), 8))
        let rotate = encoder.event(.rotate, body: le(UInt64(4), 8) + Array("f.000002".utf8))
        let previous = encoder.event(.previousGTIDs, body: le(UInt64(1), 8) + [UInt8](0..<16) + le(UInt64(1), 8) + le(UInt64(1), 8) + le(UInt64(5), 8))
        return (fde, tableMap, [tableMap, rows, update, partial, gtid, query, list, rotate, previous, encoder.event(.xid, body: le(UInt64(1), 8))])
    }

    /// Parses `bytes` after a valid FDE and TABLE_MAP, decoding rows when it gets them.
    static func feed(_ bytes: ByteBuffer, fde: ByteBuffer, tableMap: ByteBuffer, verifyChecksums: Bool) -> Result<Void, any Error> {
        var parser = BinlogParser()
        parser.verifyChecksums = verifyChecksums
        do {
            _ = try parser.parse(fde)
            _ = try parser.parse(tableMap)
            let record = try parser.parse(bytes)
            if case .rows(let rows) = record.event, let map = parser.tableMap(for: rows.tableID) {
                _ = try rows.decodeRows(using: TableDecoder(tableMap: map, mariadb: true))
            }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    @Test func validCorpusDecodes() throws {
        let (fde, tableMap, events) = Self.corpus()
        for event in events {
            if case .failure(let error) = Self.feed(event, fde: fde, tableMap: tableMap, verifyChecksums: true) {
                Issue.record("valid event failed: \(error)")
            }
        }
    }

    @Test func hundredThousandMutatedInputsNeverCrash() {
        let (fde, tableMap, events) = Self.corpus()
        var random = SeededGenerator(seed: 20_261_122)
        var typedErrors = 0, accepted = 0
        for iteration in 0..<100_000 {
            let original = events[iteration % events.count]
            var bytes = Array(original.readableBytesView)
            switch iteration % 4 {
            case 0:  // truncated
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
            case 1:  // bit flips
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
                }
            case 2:  // random bytes behind a plausible header
                let body = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                bytes = Array(bytes.prefix(19)) + body
                let size = UInt32(bytes.count)
                for offset in 0..<4 where bytes.count >= 13 { bytes[9 + offset] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(offset))) }
            default:  // entirely random
                bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            // Half the time skip the CRC so mutations reach the body decoders.
            switch Self.feed(ByteBuffer(bytes: bytes), fde: fde, tableMap: tableMap, verifyChecksums: iteration % 8 < 4) {
            case .success: accepted += 1
            case .failure(let error):
                if error is BinlogEventError || error is BinlogDecodingError { typedErrors += 1 } else { Issue.record("untyped error \(error)") }
            }
        }
        #expect(typedErrors + accepted == 100_000)
        #expect(typedErrors > 50_000)
    }

    @Test func bitFlipsAreCaughtByTheChecksum() {
        let (fde, tableMap, events) = Self.corpus()
        var random = SeededGenerator(seed: 7)
        for iteration in 0..<2_000 {
            var bytes = Array(events[iteration % events.count].readableBytesView)
            let index = Int.random(in: 19..<(bytes.count - 4), using: &random)
            bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
            guard case .failure(let error as BinlogEventError) = Self.feed(ByteBuffer(bytes: bytes), fde: fde, tableMap: tableMap, verifyChecksums: true),
                  case .checksumMismatch = error.underlying.kind
            else {
                Issue.record("flip at \(index) not reported as a checksum mismatch")
                return
            }
        }
    }
}

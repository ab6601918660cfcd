import FerryCore
@testable import MySQLBinlog
import MySQLTestKit
import NIOCore
import Testing

/// Single-column decoding from hand-built bytes (layouts from the MySQL source and docs).
@Suite struct ColumnDecodingTests {
    func decode(_ decoder: ColumnDecoder, _ bytes: [UInt8], details: ColumnDetails = ColumnDetails()) throws -> Value {
        var buffer = ByteBuffer(bytes: bytes)
        let value = try decoder.read(from: &buffer, details: details)
        #expect(buffer.readableBytes == 0, "bytes left over")
        return value
    }

    @Test func decimalFromTheMySQLDocumentation() throws {
        // decimal2bin's own example: DECIMAL(14,4) 1234567890.1234 and its negation.
        #expect(try decode(.decimal(precision: 14, scale: 4), [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2]) == .decimal("1234567890.1234"))
        #expect(try decode(.decimal(precision: 14, scale: 4), [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D]) == .decimal("-1234567890.1234"))
    }

    @Test func decimalEdgeValues() throws {
        // DECIMAL(10,2) -12.50: integer 8 digits -> 4 bytes, fraction 2 digits -> 1 byte.
        let positive: [UInt8] = [0x80, 0x00, 0x00, 0x0C, 0x32]
        #expect(try decode(.decimal(precision: 10, scale: 2), positive) == .decimal("12.50"))
        #expect(try decode(.decimal(precision: 10, scale: 2), positive.map { $0 ^ 0xFF }) == .decimal("-12.50"))
        #expect(try decode(.decimal(precision: 10, scale: 2), [0x80, 0, 0, 0, 0]) == .decimal("0.00"))
        // DECIMAL(5,5): no integer digits.
        #expect(try decode(.decimal(precision: 5, scale: 5), [0x80 | 0x01, 0x86, 0x9F]) == .decimal("0.99999"))
        // DECIMAL(65,30) of all nines: 35 integer digits = 3 groups + 8 digits, 30 fraction = 3 groups + 3 digits.
        var nines: [UInt8] = be(99_999_999, 4)
        for _ in 0..<3 { nines += be(999_999_999, 4) }
        for _ in 0..<3 { nines += be(999_999_999, 4) }
        nines += be(999, 2)
        nines[0] |= 0x80
        let text = String(repeating: "9", count: 35) + "." + String(repeating: "9", count: 30)
        #expect(try decode(.decimal(precision: 65, scale: 30), nines) == .decimal(text))
        #expect(try decode(.decimal(precision: 65, scale: 30), nines.map { $0 ^ 0xFF }) == .decimal("-" + text))
        #expect(throws: BinlogDecodingError.self) { try decode(.decimal(precision: 66, scale: 0), [0x80]) }
    }

    @Test func integersBySignedness() throws {
        #expect(try decode(.integer(byteCount: 1, unsigned: false), [0xFF]) == .int(-1))
        #expect(try decode(.integer(byteCount: 1, unsigned: true), [0xFF]) == .uint(255))
        #expect(try decode(.integer(byteCount: 3, unsigned: false), [0x00, 0x00, 0x80]) == .int(-8_388_608))
        #expect(try decode(.integer(byteCount: 3, unsigned: true), [0xFF, 0xFF, 0xFF]) == .uint(16_777_215))
        #expect(try decode(.integer(byteCount: 8, unsigned: true), le(UInt64.max, 8)) == .uint(UInt64.max))
        #expect(try decode(.integer(byteCount: 8, unsigned: false), le(UInt64(1) << 63, 8)) == .int(Int64.min))
    }

    @Test func time2() throws {
        // TIME(0) '-00:00:01' stored as 0x800000 - 1.
        #expect(try decode(.time2(fsp: 0), [0x7F, 0xFF, 0xFF])
            == .time(TimeValue(negative: true, hours: 0, minutes: 0, seconds: 1, microseconds: 0, fsp: 0)))
        // TIME(0) '838:59:59'
        let max = 0x80_0000 + (838 << 12 | 59 << 6 | 59)
        #expect(try decode(.time2(fsp: 0), be(max, 3))
            == .time(TimeValue(negative: false, hours: 838, minutes: 59, seconds: 59, microseconds: 0, fsp: 0)))
        // TIME(2) '-00:00:00.01': integer part -1 with fraction 0xFF (borrow).
        #expect(try decode(.time2(fsp: 2), [0x7F, 0xFF, 0xFF, 0xFF])
            == .time(TimeValue(negative: true, hours: 0, minutes: 0, seconds: 0, microseconds: 10_000, fsp: 2)))
        // TIME(6) '-838:59:58.999999': 6-byte packed value offset by 0x800000000000.
        let packed = -((Int64(838 << 12 | 59 << 6 | 58) << 24) + 999_999)
        #expect(try decode(.time2(fsp: 6), be(UInt64(bitPattern: packed + 0x8000_0000_0000), 6))
            == .time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 999_999, fsp: 6)))
        // TIME(4) '12:34:56.7891'
        let value = 0x80_0000 + (12 << 12 | 34 << 6 | 56)
        #expect(try decode(.time2(fsp: 4), be(value, 3) + be(7891, 2))
            == .time(TimeValue(negative: false, hours: 12, minutes: 34, seconds: 56, microseconds: 789_100, fsp: 4)))
    }

    @Test func datetime2AndTimestamp2() throws {
        let ym = Int64(2024 * 13 + 2)
        let intPart = ((ym << 5 | 29) << 17) | (13 << 12 | 14 << 6 | 15)
        let bytes = be(intPart + 0x80_0000_0000, 5) + be(123_456, 3)
        #expect(try decode(.datetime2(fsp: 6), bytes) == .datetime(DateTimeValue(
            date: DateValue(year: 2024, month: 2, day: 29), hour: 13, minute: 14, second: 15, microseconds: 123_456, fsp: 6)))
        #expect(try decode(.datetime2(fsp: 0), be(0x80_0000_0000 as Int64, 5)) == .datetime(DateTimeValue(
            date: DateValue(year: 0, month: 0, day: 0), hour: 0, minute: 0, second: 0, microseconds: 0, fsp: 0)))
        #expect(try decode(.timestamp2(fsp: 3), be(1_700_000_000, 4) + be(1234, 2))
            == .timestamp(TimestampValue(seconds: 1_700_000_000, microseconds: 123_400, fsp: 3)))
        #expect(try decode(.timestamp, le(86_400, 4)) == .timestamp(TimestampValue(seconds: 86_400, microseconds: 0, fsp: 0)))
    }

    @Test func oldTemporalAndDate() throws {
        #expect(try decode(.date, le(2024 << 9 | 2 << 5 | 29, 3)) == .date(DateValue(year: 2024, month: 2, day: 29)))
        #expect(try decode(.datetime, le(UInt64(20240229131415), 8)) == .datetime(DateTimeValue(
            date: DateValue(year: 2024, month: 2, day: 29), hour: 13, minute: 14, second: 15, microseconds: 0, fsp: 0)))
        #expect(try decode(.time, le(0x100_0000 - 102_030, 3)) == .time(TimeValue(negative: true, hours: 10, minutes: 20, seconds: 30, microseconds: 0, fsp: 0)))
        #expect(try decode(.year, [0]) == .year(0))
        #expect(try decode(.year, [255]) == .year(2155))
    }

    @Test func stringsByCharset() throws {
        #expect(try decode(.string(lengthBytes: 1, charset: .utf8, padTo: nil), [4] + Array("😀".utf8)) == .string("😀"))
        #expect(try decode(.string(lengthBytes: 1, charset: .latin1, padTo: nil), [5, 0x63, 0x61, 0x66, 0xE9, 0x80]) == .string("café€"))
        #expect(try decode(.string(lengthBytes: 2, charset: .binary, padTo: 4), [2, 0, 0xAB, 0xCD]) == .bytes([0xAB, 0xCD, 0, 0]))
        // Bytes a lax sql_mode let into a utf8mb4 column are kept exactly, not replaced.
        #expect(try decode(.string(lengthBytes: 1, charset: .utf8, padTo: nil), [5, 0x61, 0xED, 0xA0, 0xBD, 0x62]) == .illFormedText([0x61, 0xED, 0xA0, 0xBD, 0x62]))
        #expect(try decode(.blob(lengthBytes: 2, charset: .utf8), le(3, 2) + [0xF0, 0x9F, 0x98]) == .illFormedText([0xF0, 0x9F, 0x98]))
        let snapshotText: [UInt8] = [0x6F, 0xC0, 0x6B]
        #expect(try snapshotText.withUnsafeBytes { try ColumnDecoder.blob(lengthBytes: 1, charset: .utf8).readText($0, details: ColumnDetails()) } == .illFormedText(snapshotText))
        #expect(try decode(.blob(lengthBytes: 4, charset: .binary), le(3, 4) + [1, 2, 3]) == .bytes([1, 2, 3]))
        #expect(try decode(.blob(lengthBytes: 2, charset: .utf16), le(4, 2) + [0, 0x41, 0, 0x42]) == .string("AB"))
        #expect(throws: BinlogDecodingError.self) { try decode(.blob(lengthBytes: 1, charset: .unsupported), [1, 0x41]) }
        #expect(throws: BinlogDecodingError.self) { try decode(.blob(lengthBytes: 4, charset: .utf8), le(1_000, 4) + [1]) }
    }

    @Test func enumSetBitGeometry() throws {
        let names = ColumnDetails(members: [["x"], ["small", "medium", "large"]])
        #expect(try decode(.enumeration(byteCount: 1, members: 1), [2], details: names) == .enumeration("medium"))
        #expect(try decode(.enumeration(byteCount: 1, members: 1), [0], details: names) == .enumeration(""))
        #expect(try decode(.set(byteCount: 1, members: 1), [0b101], details: names) == .set(["small", "large"]))
        let error = #expect(throws: BinlogDecodingError.self) {
            try decode(.unsupported(note: 0), [], details: ColumnDetails(notes: ["not this one"]))
        }
        #expect(error?.kind == .unsupportedColumn("not this one"))
        #expect(try decode(.bit(bits: 10), [0x02, 0xAA]) == .bit(682, width: 10))
        #expect(try decode(.bit(bits: 64), Array(repeating: 0xFF, count: 8)) == .bit(UInt64.max, width: 64))
        #expect(try decode(.geometry(lengthBytes: 4), le(9, 4) + le(4326, 4) + [1, 2, 3, 4, 5])
            == .geometry(GeometryValue(srid: 4326, wkb: [1, 2, 3, 4, 5])))
    }

    @Test func floats() throws {
        #expect(try decode(.float, le(Float(1.1).bitPattern, 4)) == .float(1.1))
        #expect(try decode(.double, le(Double(-2.5e300).bitPattern, 8)) == .double(-2.5e300))
    }

    /// MariaDB's UUID/INET4/INET6 as SELECT prints them, from stored bytes that lost their
    /// trailing zero bytes in the row image.
    @Test func mariadbPluginTypesPrintAsSelect() throws {
        // A row image holds a length byte and the stored bytes without trailing zeros.
        #expect(try decode(.mariadbType(.inet4), [1, 10]) == .string("10.0.0.0"))
        #expect(try decode(.mariadbType(.uuid), [0]) == .string("00000000-0000-0000-0000-000000000000"))
        #expect(throws: BinlogDecodingError.self) { try decode(.mariadbType(.inet4), [5, 1, 2, 3, 4, 5]) }
        #expect(MariaDBDataType.uuid.text(Array(1...16)) == "01020304-0506-0708-090a-0b0c0d0e0f10")
        #expect(MariaDBDataType.uuid.text([0x12, 0x34]) == "12340000-0000-0000-0000-000000000000")
        #expect(MariaDBDataType.inet4.text([]) == "0.0.0.0")
        #expect(MariaDBDataType.inet4.text([192, 0, 2, 1]) == "192.0.2.1")
        #expect(MariaDBDataType.inet4.text([10]) == "10.0.0.0")
        let v6: [([UInt8], String)] = [
            ([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1], "2001:db8::1"),
            ([], "::"),
            (Array(repeating: 0, count: 15) + [1], "::1"),
            (Array(repeating: 0, count: 15) + [2], "::2"),
            (Array(repeating: 0, count: 12) + [1, 2, 3, 4], "::1.2.3.4"),
            (Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 1], "::ffff:192.0.2.1"),
            (Array(repeating: 0, count: 10) + [0xff, 0xff], "::ffff:0.0.0.0"),
            ([0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4], "1:0:2::3:0:4"),
            ([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], "2001:db8::1:0:0:1"),
            ([0, 1], "1::"),
        ]
        for (bytes, text) in v6 { #expect(MariaDBDataType.inet6.text(bytes) == text) }
    }

    /// National and East Asian character sets through iconv; bytes that are not a character of
    /// the set are an error, never replaced.
    @Test func iconvCharacterSets() throws {
        func text(_ charset: String, _ bytes: [UInt8]) throws -> Value {
            try decode(.string(lengthBytes: 1, charset: CharacterSet.named(charset), padTo: nil), [UInt8(bytes.count)] + bytes)
        }
        #expect(CharacterSet.named("GBK") == .converted(.gbk))
        #expect(ConvertedCharacterSet.sjis.iconvName == "CP932" && ConvertedCharacterSet.ujis.maximumBytes == 3)
        #expect(CharacterSet.named("klingon") == .unsupported)
        #expect(try text("gbk", [214, 208, 206, 196]) == .string("中文"))
        #expect(try text("koi8r", [240, 210, 201, 215, 197, 212]) == .string("Привет"))
        #expect(try text("gb18030", [148, 57, 252, 54]) == .string("😀"))
        #expect(try text("ujis", [198, 252, 203, 220]) == .string("日本"))
        // MySQL's sjis: 0x5C is a backslash, 0x815F too, 0x8160 the wave dash.
        #expect(try text("sjis", [0x5C, 0x81, 0x5F, 0x81, 0x60, 0x7E]) == .string("\\\\〜~"))
        #expect(try text("latin2", Array("plain".utf8)) == .string("plain"))
        #expect(throws: BinlogDecodingError.self) { try text("gbk", [0x41, 0x81]) }
        #expect(try text("gbk", [214, 208, 206, 196]) == .string("中文"), "a converter given back after a failure reads the next value")
    }

    /// A text column in a character set Ferry cannot decode: the error names the column, its
    /// type and the set (from the server's collation table), and only a value is an error.
    @Test func undecodableCharacterSetIsNamedByTheTable() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        var optional = BinlogEventEncoder.columnNames(["id", "name"])
        optional += BinlogEventEncoder.optionalField(3, [10])  // the text column's collation: swe7_swedish_ci
        _ = try parser.parse(encoder.event(.tableMap, body: BinlogEventEncoder.tableMapBody(
            tableID: 4, database: "app", table: "people", types: [.long, .varchar], metadata: [20, 0], nullable: [false, true],
            optional: optional)))
        let map = try #require(parser.tableMap(for: 4))
        let decoder = TableDecoder(tableMap: map, mariadb: true, collations: [10: "swe7"])
        func rows(_ image: [UInt8]) throws -> [RowsEvent.RowChange] {
            let record = try parser.parse(encoder.event(.writeRowsV1, body: BinlogEventEncoder.rowsBody(tableID: 4, columnCount: 2, rows: [image])))
            guard case .rows(let rows) = record.event else { throw BinlogDecodingError(.invalid("not a rows event")) }
            return try rows.decodeRows(using: decoder)
        }
        #expect(try rows(BinlogEventEncoder.rowImage([le(1, 4), nil]))[0].after == [.int(1), .null])
        let error = #expect(throws: BinlogDecodingError.self) { try rows(BinlogEventEncoder.rowImage([le(1, 4), [1, 0x41]])) }
        #expect(error?.kind == .unsupportedColumn("column name of app.people (varchar(5)): character set swe7 cannot be decoded exactly"))
    }

    /// Converters are reused across values and tasks: each value converted alone, exactly.
    @Test func iconvConvertersServeConcurrentDecoders() async throws {
        let words: [(bytes: [UInt8], text: String)] = [([214, 208, 206, 196], "中文"), ([0x41, 0xC4, 0xE3, 0xBA, 0xC3], "A你好"), ([0x41, 0x81], "")]
        let results = await withTaskGroup(of: [Bool].self) { group in
            for task in 0..<8 {
                group.addTask {
                    (0..<300).map { index in
                        let word = words[(index + task) % words.count]
                        let decoded = word.bytes.withUnsafeBytes { CharacterSet.converted(.gbk).decode($0) }
                        return word.text.isEmpty ? decoded == nil : decoded == word.text
                    }
                }
            }
            var all: [Bool] = []
            for await part in group { all += part }
            return all
        }
        #expect(results.count == 2_400 && results.allSatisfy { $0 })
    }

    /// Ill-formed UTF-8 is found whatever its shape, including a 4-byte sequence cut to 3 bytes
    /// (whose U+FFFD has the same length) and runs past the 8-byte steps of the scan.
    @Test func illFormedUTF8IsNoticed() {
        func repaired(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBufferPointer { UTF8Check.wasRepaired(String(decoding: $0, as: UTF8.self), from: $0) }
        }
        #expect(!repaired(Array("plain ascii text, long enough for words".utf8)))
        #expect(!repaired(Array("é ü 中文 😀 🎉 — fine".utf8)))
        #expect(!repaired([]))
        #expect(repaired([0x61, 0xED, 0xA0, 0xBD, 0x62]))
        #expect(repaired([0xF0, 0x9F, 0x98]))
        #expect(repaired(Array("0123456789abcdef".utf8) + [0xF0, 0x9F, 0x98] + Array("xyz".utf8)))
        #expect(repaired([0xC0]))
        #expect(repaired(Array("ok".utf8) + [0xE2, 0x82]))
        for lead in [UInt8(0xF0), 0xF4, 0xFF] {
            #expect(([UInt8](repeating: 0x41, count: 13) + [lead]).withUnsafeBufferPointer(UTF8Check.hasFourByteLead))
        }
        #expect(![UInt8](repeating: 0xEF, count: 17).withUnsafeBufferPointer(UTF8Check.hasFourByteLead))
    }
}

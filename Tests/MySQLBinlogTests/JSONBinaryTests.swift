@testable import MySQLBinlog
import MySQLTestKit
import Testing

/// MySQL binary JSON documents built from the layout in `json_binary.h`.
@Suite struct JSONBinaryTests {
    func text(_ bytes: [UInt8]) throws -> String {
        try bytes.withUnsafeBytes { try JSONBinaryDecoder.decode($0) }
    }

    @Test func nestedObjectWithInlinedAndOffsetValues() throws {
        let array: [UInt8] = [0x03, 0x00, 0x0F, 0x00, 0x05, 0x01, 0x00, 0x04, 0x01, 0x00, 0x0C, 0x0D, 0x00, 0x01, 0x78]
        let object: [UInt8] = [0x01, 0x00, 0x1B, 0x00, 0x0B, 0x00, 0x01, 0x00, 0x02, 0x0C, 0x00, 0x61] + array
        #expect(try text([0x00] + object) == "{\"a\": [1, true, \"x\"]}")
    }

    @Test func scalars() throws {
        #expect(try text([0x04, 0x00]) == "null")
        #expect(try text([0x04, 0x02]) == "false")
        #expect(try text([0x05] + le(UInt16(bitPattern: -2), 2)) == "-2")
        #expect(try text([0x0A] + le(UInt64.max, 8)) == "18446744073709551615")
        #expect(try text([0x09] + le(UInt64(bitPattern: Int64.min), 8)) == "-9223372036854775808")
        #expect(try text([0x0B] + le(Double(1.5).bitPattern, 8)) == "1.5")
        #expect(try text([0x0B] + le(Double(3).bitPattern, 8)) == "3.0")
        #expect(try text([0x0C, 0x03] + Array("a\"b".utf8)) == "\"a\\\"b\"")
        // A 200-byte string: the length takes two 7-bit bytes.
        let long = String(repeating: "z", count: 200)
        #expect(try text([0x0C, 0xC8, 0x01] + Array(long.utf8)) == "\"\(long)\"")
    }

    @Test func opaqueValues() throws {
        // DECIMAL(4,2) 12.34 as opaque: field type 246, length, precision, scale, binary decimal.
        #expect(try text([0x0F, 246, 4, 4, 2, 0x80 | 12, 34]) == "12.34")
        // DATETIME packed: 2015-01-15 23:24:25.000000
        let ymd = Int64((2015 * 13 + 1) << 5 | 15)
        let packed = ((ymd << 17) | (23 << 12 | 24 << 6 | 25)) << 24
        #expect(try text([0x0F, 12, 8] + le(UInt64(packed), 8)) == "\"2015-01-15 23:24:25.000000\"")
        #expect(try text([0x0F, 252, 2, 0xAB, 0xCD]) == "\"base64:type252:q80=\"")
    }

    @Test func largeArrayOfManyElements() throws {
        // A large-format array of 1000 int32 values (inlined in the large form).
        var entries: [UInt8] = []
        for index in 0..<1000 { entries += [0x07] + le(UInt32(index), 4) }
        let size = 8 + entries.count
        let document: [UInt8] = [0x03] + le(1000, 4) + le(size, 4) + entries
        let expected = "[" + (0..<1000).map(String.init).joined(separator: ", ") + "]"
        #expect(try text(document) == expected)
    }

    @Test func malformedDocumentsThrow() {
        #expect(throws: BinlogDecodingError.self) { try text([0x00, 0x05, 0x00, 0xFF, 0xFF]) }
        #expect(throws: BinlogDecodingError.self) { try text([0x0C, 0x80]) }
        #expect(throws: BinlogDecodingError.self) { try text([0x22]) }
        // Deep nesting: arrays that each contain the next one, 200 levels.
        var nested: [UInt8] = [0x00, 0x00, 0x04, 0x00]
        for _ in 0..<200 { nested = le(1, 2) + le(7 + nested.count, 2) + [0x02] + le(7, 2) + nested }
        #expect(throws: BinlogDecodingError.self) { try text([0x02] + nested) }
    }
}

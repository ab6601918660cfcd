@testable import FerryCore
import Foundation
import Testing

@Suite struct ValueJSONTests {
    func json(_ value: Value) -> String {
        var out: [UInt8] = []
        ValueJSON.append(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func integersKeepEveryDigit() {
        #expect(json(.int(Int64.min)) == "-9223372036854775808")
        #expect(json(.int(Int64.max)) == "9223372036854775807")
        #expect(json(.uint(UInt64.max)) == "18446744073709551615")
        #expect(json(.int(0)) == "0")
        #expect(json(.int(-7)) == "-7")
    }

    @Test func floatsUseShortestTextAtTheirOwnWidth() {
        #expect(json(.float(1.1)) == "1.1")
        #expect(json(.double(1.1)) == "1.1")
        #expect(json(.float(-3.4028235e38)) == "-3.4028235e+38")
        #expect(json(.double(.nan)) == "\"NaN\"" && json(.float(-.infinity)) == "\"-Infinity\"" && json(.double(.infinity)) == "\"Infinity\"")
        #expect(json(.bool(true)) == "true" && json(.sourceText("[1,5)")) == "\"[1,5)\"")
    }

    @Test func decimalsAndStrings() {
        #expect(json(.decimal("-12.50")) == "\"-12.50\"")
        #expect(json(.string("a\"b\\c\n\u{1}😀")) == "\"a\\\"b\\\\c\\n\\u0001😀\"")
        #expect(json(.bytes([0, 255, 1])) == "\"AP8B\"")
        #expect(json(.bytes([])) == "\"\"")
        #expect(json(.bytes([0x66])) == "\"Zg==\"")
        #expect(json(.bytes([0x66, 0x6F])) == "\"Zm8=\"")
    }

    @Test func temporalForms() {
        #expect(json(.date(DateValue(year: 2024, month: 2, day: 29))) == "\"2024-02-29\"")
        #expect(json(.date(DateValue(year: 0, month: 0, day: 0))) == "null")
        #expect(json(.date(DateValue(year: 2024, month: 0, day: 1))) == "null")
        #expect(json(.date(DateValue(year: 0, month: 1, day: 1))) == "\"0000-01-01\"")
        #expect(json(.time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 990_000, fsp: 2))) == "\"-838:59:58.99\"")
        #expect(json(.time(TimeValue(negative: false, hours: 1, minutes: 2, seconds: 3, microseconds: 0, fsp: 0))) == "\"01:02:03\"")
        let datetime = DateTimeValue(date: DateValue(year: 9999, month: 12, day: 31), hour: 23, minute: 59, second: 59, microseconds: 999_999, fsp: 6)
        #expect(json(.datetime(datetime)) == "\"9999-12-31T23:59:59.999999\"")
        #expect(json(.timestamp(TimestampValue(seconds: 1, microseconds: 500_000, fsp: 3))) == "\"1970-01-01T00:00:01.500Z\"")
        #expect(json(.timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 0, fsp: 0))) == "\"2038-01-19T03:14:07Z\"")
        #expect(json(.timestamp(TimestampValue(seconds: 0, microseconds: 0, fsp: 0))) == "null")
        #expect(json(.year(0)) == "0")
        #expect(json(.year(2155)) == "2155")
    }

    @Test func otherTypes() {
        #expect(json(.enumeration("")) == "\"\"")
        #expect(json(.set(["a", "c"])) == "\"a,c\"")
        #expect(json(.set([])) == "\"\"")
        #expect(json(.bit(UInt64.max, width: 64)) == "18446744073709551615")
        #expect(json(.json("{\"a\": 1}")) == "\"{\\\"a\\\": 1}\"")
        #expect(json(.geometry(GeometryValue(srid: 4326, wkb: [1, 2]))) == "{\"srid\":4326,\"wkb\":\"AQI=\"}")
        #expect(json(.null) == "null")
        #expect(json(.illFormedText([0x61, 0xED, 0xA0, 0xBD, 0x62])) == "\"a\u{FFFD}\u{FFFD}\u{FFFD}b\"")
        #expect(ValueJSON.plainText(.illFormedText([0xC0])) == Array("\u{FFFD}".utf8))
    }

    @Test func civilTimeMatchesKnownDates() {
        #expect(CivilTime.date(daysSinceEpoch: 0) == DateValue(year: 1970, month: 1, day: 1))
        #expect(CivilTime.date(daysSinceEpoch: 19782) == DateValue(year: 2024, month: 2, day: 29))
        #expect(CivilTime.daysSinceEpoch(year: 2024, month: 2, day: 29) == 19782)
        #expect(CivilTime.date(daysSinceEpoch: -1) == DateValue(year: 1969, month: 12, day: 31))
    }
}

@Suite struct EventJSONWriterTests {
    func event(_ operation: ChangeOperation, before: Row?, after: Row?) -> ChangeEvent {
        let schema = TableSchema(name: TableName(database: "shop", table: "orders"),
                                 columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                           ColumnSchema(name: "note", typeName: "varchar", nullable: true)],
                                 primaryKey: [0])
        let position = SourcePosition.binlog(BinlogPosition(coordinates: BinlogCoordinates(file: "mariadb-bin.000002", offset: 1234),
                                      gtidPosition: .mariadb(MariaDBGTIDPosition([MariaDBGTID(domain: 0, serverID: 1, sequence: 42)]))))
        return ChangeEvent(operation: operation, table: schema.name, schema: schema, before: before, after: after,
                           source: ChangeSource(name: "db1", serverID: 1, gtid: "0-1-42", position: position, row: 3, timestampMillis: 1_700_000_000_000))
    }

    @Test func debeziumEnvelope() {
        var out: [UInt8] = []
        EventJSONWriter(format: .debezium).write(event(.update, before: [.int(1), .null], after: [.int(1), .absent]),
                                                 processedAtMillis: 5, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == """
        {"before":{"id":1,"note":null},"after":{"id":1},"source":{"version":"0.9.0","connector":"mysql","name":"db1","server_id":1,"gtid":"0-1-42","gtid_pos":"0-1-42","file":"mariadb-bin.000002","pos":1234,"row":3,"snapshot":"false","ts_ms":1700000000000,"db":"shop","table":"orders"},"op":"u","ts_ms":5}

        """)
    }

    @Test func snapshotRowsSaySo() {
        var out: [UInt8] = []
        EventJSONWriter(format: .debezium).write(event(.read, before: nil, after: [.int(1), .null]), processedAtMillis: 5, into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("\"row\":3,\"snapshot\":\"true\",\"ts_ms\""))
        #expect(text.hasSuffix("\"op\":\"r\",\"ts_ms\":5}\n"))
        for (mark, word) in [(SnapshotRowMark.lastInTable, "last_in_data_collection"), (.last, "last")] {
            var last = event(.read, before: nil, after: [.int(1), .null])
            last.source.snapshotMark = mark
            out.removeAll()
            EventJSONWriter(format: .debezium).write(last, processedAtMillis: 5, into: &out)
            #expect(String(decoding: out, as: UTF8.self).contains("\"row\":3,\"snapshot\":\"\(word)\",\"ts_ms\""))
        }
    }

    @Test func compactForm() {
        var out: [UInt8] = []
        EventJSONWriter(format: .compact).write(event(.create, before: nil, after: [.int(7), .string("x")]), processedAtMillis: 5, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == """
        {"op":"c","table":"shop.orders","position":"mariadb-bin.000002:1234","gtid_pos":"0-1-42","row":3,"ts_ms":1700000000000,"before":null,"after":{"id":7,"note":"x"}}

        """)
    }

    /// Kafka Connect's JSON with schemas: the payload is the Debezium envelope unchanged, the schema
    /// describes each column as ferry prints it.
    @Test func debeziumWithSchema() throws {
        var plain: [UInt8] = [], framed: [UInt8] = []
        let change = event(.update, before: [.int(1), .null], after: [.int(1), .string("x")])
        EventJSONWriter(format: .debezium).write(change, processedAtMillis: 5, into: &plain)
        EventJSONWriter(format: .debeziumSchema).write(change, processedAtMillis: 5, into: &framed)
        let text = String(decoding: framed, as: UTF8.self)
        #expect(text.hasPrefix("{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":false,\"field\":\"id\"},{\"type\":\"string\",\"optional\":true,\"field\":\"note\"}],\"optional\":true,\"name\":\"db1.shop.orders.Value\",\"field\":\"before\"}"))
        #expect(text.contains("\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}"))
        #expect(text.contains("],\"optional\":false,\"name\":\"db1.shop.orders.Envelope\"},\"payload\":"))
        #expect(text.hasSuffix(",\"payload\":" + String(decoding: plain.dropLast(), as: UTF8.self) + "}\n"))
        #expect(DebeziumSchema.connectType("decimal(10,2)").type == "string" && DebeziumSchema.connectType("bigint unsigned").type == "int64"
                && DebeziumSchema.connectType("tinyint unsigned").type == "int16" && DebeziumSchema.connectType("varbinary(20)").type == "bytes"
                && DebeziumSchema.connectType("timestamp(6)") == ("string", "io.debezium.time.ZonedTimestamp"))
        #expect(DebeziumSchema.members("enum('a','it''s','c')") == "a,it's,c")
    }
}

/// The escaping fast path (eight bytes at a time) against a byte-by-byte reference, for every
/// byte value at every position of the eight-byte steps and in the tail.
@Suite struct JSONEscapingTests {
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x08: out += Array("\\b".utf8)
            case 0x0C: out += Array("\\f".utf8)
            case 0..<0x20: out += Array(String(format: "\\u%04x", Int(byte)).utf8)
            default: out.append(byte)
            }
        }
        return out + [UInt8(ascii: "\"")]
    }

    @Test func everyByteAtEveryPosition() {
        for byte in UInt8.min...UInt8.max {
            for position in 0..<19 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 19)
                bytes[position] = byte
                var out: [UInt8] = []
                bytes.withUnsafeBufferPointer { JSONBuffer.appendString(utf8: $0, to: &out) }
                #expect(out == Self.reference(bytes), "byte \(byte) at \(position)")
            }
        }
    }

    /// Long strings are escaped in parts; the result is the same as in one piece.
    @Test func longStringsInParts() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<50_000).map { _ in UInt8.random(in: 0...127, using: &generator) }
        var out: [UInt8] = []
        bytes.withUnsafeBufferPointer { JSONBuffer.appendString(utf8: $0, to: &out) }
        #expect(out == Self.reference(bytes))
        var base64: [UInt8] = []
        JSONBuffer.appendBase64(bytes, to: &base64)
        #expect(String(decoding: base64, as: UTF8.self) == Data(bytes).base64EncodedString())
    }

    @Test func numbers() {
        for value: UInt64 in [0, 9, 10, 99, 100, 101, 999, 1_000, 12_345, 1_000_000_007, UInt64.max, UInt64.max - 1, 10_000_000_000_000_000_000] {
            var out: [UInt8] = []
            JSONBuffer.appendUnsigned(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
        var out: [UInt8] = []
        JSONBuffer.appendInteger(Int64.min, to: &out)
        JSONBuffer.appendPadded(7, width: 2, to: &out)
        JSONBuffer.appendPadded(7, width: 4, to: &out)
        JSONBuffer.appendPadded(123, width: 2, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "-9223372036854775808070007123")
    }
}

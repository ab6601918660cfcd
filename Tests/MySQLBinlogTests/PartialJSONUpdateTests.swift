@testable import MySQLBinlog
import FerryCore
import MySQLTestKit
import NIOCore
import Testing

/// MySQL PARTIAL_UPDATE_ROWS (binlog_row_value_options=PARTIAL_JSON): the after image carries
/// JSON diffs, applied to the before image.
@Suite struct PartialJSONUpdateTests {
    /// `{"a": 1, "b": [1, 2]}` in MySQL's binary JSON.
    static let document: [UInt8] = [0x00, 0x02, 0x00, 0x1E, 0x00, 0x12, 0x00, 0x01, 0x00, 0x13, 0x00, 0x01, 0x00,
                                    0x05, 0x01, 0x00, 0x02, 0x14, 0x00, 0x61, 0x62,
                                    0x02, 0x00, 0x0A, 0x00, 0x05, 0x01, 0x00, 0x05, 0x02, 0x00]

    static func diff(_ operation: UInt8, _ path: String, _ value: [UInt8]?) -> [UInt8] {
        var bytes = [operation] + BinlogEventEncoder.lengthEncoded(UInt64(path.utf8.count)) + Array(path.utf8)
        if let value { bytes += BinlogEventEncoder.lengthEncoded(UInt64(value.count)) + value }
        return bytes
    }

    func parse(before: [UInt8], presentBefore: [Bool], after: [UInt8]) throws -> [RowsEvent.RowChange] {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription(serverVersion: "8.0.36"))
        _ = try parser.parse(encoder.event(.tableMap, body: BinlogEventEncoder.tableMapBody(
            tableID: 3, database: "app", table: "docs", types: [.long, .json], metadata: [4], nullable: [false, true],
            optional: BinlogEventEncoder.columnNames(["id", "doc"]))))
        let record = try parser.parse(encoder.event(.partialUpdateRows, body: BinlogEventEncoder.rowsBody(
            tableID: 3, columnCount: 2, present: presentBefore, presentAfter: [true, true], rows: [before + after], v2: true)))
        guard case .rows(let rows) = record.event, let map = parser.tableMap(for: 3) else { throw TestFailure() }
        return try rows.decodeRows(using: TableDecoder(tableMap: map, mariadb: false))
    }

    struct TestFailure: Error {}

    @Test func diffsApplyToTheBeforeImage() throws {
        let before = BinlogEventEncoder.rowImage([le(7, 4), le(Self.document.count, 4) + Self.document])
        let diffs = Self.diff(0, "$.a", [0x05, 0x02, 0x00]) + Self.diff(1, "$.b[1]", [0x0C, 0x01, 0x78])
            + Self.diff(1, "$.c", [0x04, 0x01]) + Self.diff(2, "$.b[0]", nil) + Self.diff(1, "$.\"a b\"", [0x04, 0x00])
        let after = [0x01, 0x01] + BinlogEventEncoder.rowImage([le(7, 4), le(diffs.count, 4) + diffs])
        let changes = try parse(before: before, presentBefore: [true, true], after: after)
        #expect(changes.count == 1)
        #expect(changes[0].before?[1] == .json("{\"a\": 1, \"b\": [1, 2]}"))
        #expect(changes[0].after?[1] == .json("{\"a\": 2, \"b\": [\"x\", 2], \"c\": true, \"a b\": null}"))
    }

    @Test func fullValuesWhenNoColumnIsPartial() throws {
        let before = BinlogEventEncoder.rowImage([le(7, 4), le(Self.document.count, 4) + Self.document])
        let after = [0x00] + BinlogEventEncoder.rowImage([le(7, 4), le(2, 4) + [0x04, 0x02]])
        let changes = try parse(before: before, presentBefore: [true, true], after: after)
        #expect(changes[0].after?[1] == .json("false"))
    }

    @Test func withoutTheBeforeImageItStopsWithTheFix() throws {
        let before = BinlogEventEncoder.rowImage([le(7, 4)])
        let diffs = Self.diff(0, "$.a", [0x05, 0x02, 0x00])
        let after = [0x01, 0x01] + BinlogEventEncoder.rowImage([le(7, 4), le(diffs.count, 4) + diffs])
        do {
            _ = try parse(before: before, presentBefore: [true, false], after: after)
            Issue.record("applied a diff without its document")
        } catch let error as BinlogDecodingError {
            #expect(error.description.contains("column doc of app.docs"))
            #expect(error.description.contains("binlog_row_image=FULL"))
        }
    }

    @Test func documentModel() throws {
        var document = try JSONDocument.parse("{\"k\": [1, {\"z\": \"é\\n\\u00e9\"}], \"a\": -1.5e3}")
        #expect(document.text == "{\"k\": [1, {\"z\": \"é\\né\"}], \"a\": -1.5e3}")
        try document.apply(.replace, at: JSONDocument.parsePath("$.k[1].z"), value: .number("3"))
        #expect(document.text == "{\"k\": [1, {\"z\": 3}], \"a\": -1.5e3}")
        #expect(throws: BinlogDecodingError.self) { try document.apply(.replace, at: JSONDocument.parsePath("$.missing.x"), value: .null) }
        #expect(throws: BinlogDecodingError.self) { try JSONDocument.parsePath("$.a[*]") }
        #expect(throws: BinlogDecodingError.self) { try JSONDocument.parse("{\"a\": }") }
    }
}

import FerryCore
import Foundation
import MySQLBinlog
import MySQLTestKit
import NIOCore

// `swift run -c release FerryMicrobench [ITERATIONS]`: the row decoder and the JSON writer on
// their own, on 10,000 rows of the benchmark table (BIGINT, INT, BIGINT UNSIGNED, VARCHAR(64),
// DECIMAL(12,2), DATETIME(6), DOUBLE, TINYINT UNSIGNED, DATE, VARCHAR(255)), so a change to
// either shows per commit without a server. Prints nanoseconds per row: min / median / max.

let rowCount = 10_000
let iterations = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 30

/// One row image as MariaDB writes it for `bench.t`.
func benchRow(_ n: Int) -> [UInt8] {
    let cents = n                                   // DECIMAL(12,2) = n / 100
    var decimal = [UInt8((cents / 100) / 1_000_000_000 % 10)] + be((cents / 100) % 1_000_000_000, 4) + [UInt8(cents % 100)]
    decimal[0] |= 0x80
    let second = n % 60, minute = n / 60 % 60, hour = n / 3600 % 24
    let ym = Int64(2024 * 13 + 1)
    let datetime = be(((ym << 5 | Int64(1 + n % 28)) << 17 | Int64(hour << 12 | minute << 6 | second)) + 0x80_0000_0000, 5) + be(n % 1_000_000, 3)
    let date = le(UInt32((2000 << 9) | (1 << 5) | (1 + n % 28)), 3)
    let name = Array("customer-\(n)".utf8)
    // VARCHAR(64) utf8mb4 holds up to 256 bytes, so both strings have 2-byte lengths.
    let filler = Array(repeating: UInt8(ascii: "x"), count: n % 60)
    return BinlogEventEncoder.rowImage([
        le(Int64(n), 8), le(Int32(truncatingIfNeeded: n * 7), 4), le(UInt64(n) &* 1_000_003, 8), le(UInt16(name.count), 2) + name,
        decimal, datetime, le(Double(n) * 1.5, 8), [UInt8(n % 256)], date, le(UInt16(filler.count), 2) + filler,
    ])
}

func le(_ value: Double, _ count: Int) -> [UInt8] { withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }

var encoder = BinlogEventEncoder()
let types: [ColumnType] = [.longlong, .long, .longlong, .varchar, .newDecimal, .datetime2, .double, .tiny, .date, .varchar]
let metadata: [UInt8] = le(256, 2) + [12, 2] + [6] + [8] + le(1020, 2)
var optional = BinlogEventEncoder.optionalField(1, [0b0010_0001])  // b and g unsigned
optional += BinlogEventEncoder.optionalField(2, [45])
optional += BinlogEventEncoder.columnNames(["id", "a", "b", "c", "d", "e", "f", "g", "h", "i"])
optional += BinlogEventEncoder.optionalField(8, [0])
var parser = BinlogParser()
_ = try parser.parse(encoder.formatDescription())
_ = try parser.parse(encoder.event(.tableMap, body: BinlogEventEncoder.tableMapBody(
    tableID: 1, database: "bench", table: "t", types: types, metadata: metadata, nullable: Array(repeating: true, count: 10), optional: optional)))
let record = try parser.parse(encoder.event(.writeRowsV1, body: BinlogEventEncoder.rowsBody(
    tableID: 1, columnCount: 10, rows: (1...rowCount).map(benchRow))))
guard case .rows(let rowsEvent) = record.event, let map = parser.tableMap(for: 1) else { fatalError("the rows event did not parse") }
let decoder = TableDecoder(tableMap: map, mariadb: true)

let changes = try rowsEvent.decodeRows(using: decoder)
// The rows must decode to what was written, or the timings mean nothing.
let expected: Row = [.int(1_234), .int(8_638), .uint(1_234 * 1_000_003), .string("customer-1234"), .decimal("12.34")]
guard changes.count == rowCount, Array(changes[1_233].after!.prefix(5)) == expected else {
    fatalError("decoded rows differ from the written ones: \(changes[1_233].after ?? [])")
}
let position = SourcePosition.binlog(file: "mariadb-bin.000001", offset: 4_000)
let source = ChangeSource(name: "bench", serverID: 1, gtid: "0-1-42", position: position, row: 0, timestampMillis: 1_700_000_000_000)
let transaction = Transaction(gtid: "0-1-42", position: position, serverID: 1, timestampMillis: 1_700_000_000_000, events: changes.enumerated().map { index, change in
    var eventSource = source
    eventSource.row = index
    return ChangeEvent(operation: .create, table: decoder.schema.name, schema: decoder.schema, before: nil, after: change.after, source: eventSource)
})

/// Nanoseconds per row of `body`, one sample per iteration.
func measure(_ name: String, _ body: () throws -> Int) rethrows {
    var samples: [Double] = []
    var sink = 0
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        sink &+= try body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(rowCount))
    }
    samples.sort()
    let text = { (value: Double) in String(format: "%.0f", value) }
    print("\(name.padding(toLength: 28, withPad: " ", startingAt: 0)) ns/row  min \(text(samples[0]))  median \(text(samples[samples.count / 2]))  max \(text(samples[samples.count - 1]))  (\(sink % 10))")
}

print("FerryMicrobench: \(rowCount) rows of bench.t per iteration, \(iterations) iterations")
try measure("decode rows") { try rowsEvent.decodeRows(using: decoder).count }
var out: [UInt8] = []
out.reserveCapacity(8 << 20)
for format in [EventJSONWriter.Format.debezium, .compact] {
    let writer = EventJSONWriter(format: format)
    measure("JSON \(format.rawValue)") {
        out.removeAll(keepingCapacity: true)
        writer.write(transaction, processedAtMillis: 1_700_000_000_001, into: &out)
        return out.count
    }
}

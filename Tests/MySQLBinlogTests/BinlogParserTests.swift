import CZlib
import FerryCore
@testable import MySQLBinlog
import MySQLTestKit
import NIOCore
import Testing

/// Whole events through `BinlogParser`, as a MariaDB 10.11 server writes them.
@Suite struct BinlogParserTests {
    /// A table `shop.items (id INT UNSIGNED PK, name VARCHAR(20) utf8mb4, price DECIMAL(10,2), at DATETIME(3))`.
    static func itemsTableMap(tableID: UInt64 = 42, withMetadata: Bool = true) -> [UInt8] {
        let types: [ColumnType] = [.long, .varchar, .newDecimal, .datetime2]
        let metadata: [UInt8] = le(80, 2) + [10, 2] + [3]
        var optional: [UInt8] = []
        if withMetadata {
            optional += BinlogEventEncoder.optionalField(1, [0b1000_0000])  // id unsigned; price signed
            optional += BinlogEventEncoder.optionalField(2, [45])          // default charset utf8mb4_general_ci
            optional += BinlogEventEncoder.columnNames(["id", "name", "price", "at"])
            optional += BinlogEventEncoder.optionalField(8, [0])            // primary key (id)
        }
        return BinlogEventEncoder.tableMapBody(tableID: tableID, database: "shop", table: "items", types: types,
                                               metadata: metadata, nullable: [false, true, true, true], optional: optional)
    }

    static func itemsRow(id: UInt32, name: String?, cents: Int) -> [UInt8] {
        let ym = Int64(2024 * 13 + 5)
        let datetime = be(((ym << 5 | 1) << 17 | (8 << 12 | 30 << 6)) + 0x80_0000_0000, 5) + be(2500, 2)
        let magnitude = abs(cents)
        var decimal = be(magnitude / 100, 4) + [UInt8(magnitude % 100)]
        decimal[0] |= 0x80
        if cents < 0 { decimal = decimal.map { $0 ^ 0xFF } }
        return BinlogEventEncoder.rowImage([le(id, 4), name.map { [UInt8($0.utf8.count)] + Array($0.utf8) }, decimal, datetime])
    }

    func parseAll(_ events: [ByteBuffer], parser: inout BinlogParser) throws -> [BinlogEventRecord] {
        try events.map { try parser.parse($0, file: "mariadb-bin.000001") }
    }

    @Test func writeUpdateDeleteRowsWithFullMetadata() throws {
        var encoder = BinlogEventEncoder()
        let events = [
            encoder.formatDescription(),
            encoder.event(.tableMap, body: Self.itemsTableMap()),
            encoder.event(.writeRowsV1, body: BinlogEventEncoder.rowsBody(tableID: 42, columnCount: 4, rows: [
                Self.itemsRow(id: 4_000_000_000, name: "ünï", cents: -1250), Self.itemsRow(id: 2, name: nil, cents: 5),
            ])),
            encoder.event(.updateRowsV2, body: BinlogEventEncoder.rowsBody(
                tableID: 42, columnCount: 4, presentAfter: [true, true, true, true],
                rows: [Self.itemsRow(id: 2, name: nil, cents: 5) + Self.itemsRow(id: 2, name: "x", cents: 6)], v2: true)),
            encoder.event(.deleteRowsV1, body: BinlogEventEncoder.rowsBody(tableID: 42, columnCount: 4, rows: [Self.itemsRow(id: 2, name: "x", cents: 6)])),
            encoder.event(.xid, body: le(UInt64(99), 8)),
        ]
        var parser = BinlogParser()
        let records = try parseAll(events, parser: &parser)
        guard case .formatDescription(let fde) = records[0].event else { Issue.record("no FDE"); return }
        #expect(fde.isMariaDB && fde.checksumAlgorithm == .crc32 && fde.serverVersion == "10.11.6-MariaDB-log")
        guard case .tableMap(let map) = records[1].event else { Issue.record("no TABLE_MAP"); return }
        let decoder = TableDecoder(tableMap: map, mariadb: true)
        #expect(decoder.schema.columns.map(\.name) == ["id", "name", "price", "at"])
        #expect(decoder.schema.columns.map(\.typeName) == ["int unsigned", "varchar(20)", "decimal(10,2)", "datetime(3)"])
        #expect(decoder.schema.primaryKey == [0])
        let at = Value.datetime(DateTimeValue(date: DateValue(year: 2024, month: 5, day: 1), hour: 8, minute: 30, second: 0, microseconds: 250_000, fsp: 3))
        guard case .rows(let writes) = records[2].event, case .rows(let updates) = records[3].event, case .rows(let deletes) = records[4].event else {
            Issue.record("rows events missing"); return
        }
        let written = try writes.decodeRows(using: decoder)
        #expect(written.count == 2)
        #expect(written[0].after == [.uint(4_000_000_000), .string("ünï"), .decimal("-12.50"), at])
        #expect(written[1].after == [.uint(2), .null, .decimal("0.05"), at])
        let updated = try updates.decodeRows(using: decoder)
        #expect(updated.count == 1 && updated[0].before?[1] == .null && updated[0].after?[1] == .string("x"))
        #expect(try deletes.decodeRows(using: decoder)[0].before?[2] == .decimal("0.06"))
        guard case .xid(let xid) = records[5].event else { Issue.record("no XID"); return }
        #expect(xid.xid == 99)
        #expect(records[5].header.logPosition == encoder.position)
    }

    /// A repeated TABLE_MAP (every transaction of a table sends one) gives the map decoded the
    /// first time; a different map under the same id, or after a new FORMAT_DESCRIPTION, is decoded.
    @Test func repeatedTableMapsAreRecognisedAndChangedOnesDecoded() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        func map(_ body: [UInt8]) throws -> TableMapEvent? {
            guard case .tableMap(let map) = try parser.parse(encoder.event(.tableMap, body: body)).event else { return nil }
            return map
        }
        let first = try #require(try map(Self.itemsTableMap()))
        #expect(try map(Self.itemsTableMap()) == first)
        #expect(first.optional.columnNames == ["id", "name", "price", "at"])
        let withoutNames = try #require(try map(Self.itemsTableMap(withMetadata: false)))
        #expect(withoutNames.tableID == 42 && withoutNames.optional.columnNames == nil, "same id, other bytes: decoded again")
        #expect(parser.tableMap(for: 42) == withoutNames)
        #expect(try map(Self.itemsTableMap()) == first, "and back")
        let other = try #require(try map(Self.itemsTableMap(tableID: 43, withMetadata: false)))
        #expect(other.tableID == 43 && parser.tableMap(for: 42) == first)
        _ = try parser.parse(encoder.formatDescription())
        #expect(parser.tableMap(for: 42) == nil, "a new FORMAT_DESCRIPTION forgets every map")
        #expect(try map(Self.itemsTableMap()) == first)
    }

    @Test func minimalRowImagesLeaveColumnsAbsent() throws {
        var encoder = BinlogEventEncoder()
        let after = BinlogEventEncoder.rowImage([le(UInt32(7), 4), [1, 0x79]])
        let before = BinlogEventEncoder.rowImage([le(UInt32(7), 4)])
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        _ = try parser.parse(encoder.event(.tableMap, body: Self.itemsTableMap()))
        let record = try parser.parse(encoder.event(.updateRowsV1, body: BinlogEventEncoder.rowsBody(
            tableID: 42, columnCount: 4, present: [true, false, false, false], presentAfter: [true, true, false, false],
            rows: [before + after])))
        guard case .rows(let rows) = record.event, let map = parser.tableMap(for: 42) else { Issue.record("no rows"); return }
        let change = try rows.decodeRows(using: TableDecoder(tableMap: map, mariadb: true))[0]
        #expect(change.before == [.uint(7), .absent, .absent, .absent])
        #expect(change.after == [.uint(7), .string("y"), .absent, .absent])
    }

    @Test func withoutOptionalMetadataColumnsAreUnnamedAndSigned() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        let record = try parser.parse(encoder.event(.tableMap, body: Self.itemsTableMap(withMetadata: false)))
        guard case .tableMap(let map) = record.event else { Issue.record("no map"); return }
        let decoder = TableDecoder(tableMap: map, mariadb: true)
        #expect(decoder.schema.columns.map(\.name) == [nil, nil, nil, nil])
        #expect(decoder.schema.columnName(2) == "col_3")
        let fallback = TableDecoder.FallbackMetadata(columnNames: ["a", "b", "c", "d"], unsigned: [true, false, false, false],
                                                     charsets: [nil, "latin1", nil, nil], enumValues: [:], setValues: [:], primaryKey: [0])
        let withFallback = TableDecoder(tableMap: map, mariadb: true, fallback: fallback)
        #expect(withFallback.schema.columns.map(\.name) == ["a", "b", "c", "d"])
        #expect(withFallback.schema.columns[0].typeName == "int unsigned")
    }

    @Test func checksumMismatchIsReportedAsSuch() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        var damaged = encoder.event(.xid, body: le(UInt64(1), 8))
        damaged.setInteger(UInt8(0x55), at: 20)
        do {
            _ = try parser.parse(damaged, file: "mariadb-bin.000001")
            Issue.record("accepted a damaged event")
        } catch let error as BinlogEventError {
            guard case .checksumMismatch = error.underlying.kind else { Issue.record("wrong kind \(error)"); return }
            #expect(error.ferryError.code == .sourceBinlogChecksumMismatch)
            #expect(error.description.contains("mariadb-bin.000001:"))
        }
    }

    @Test func checksumOffStillReadsTheFormatDescription() throws {
        var encoder = BinlogEventEncoder(checksum: false)
        var parser = BinlogParser()
        guard case .formatDescription(let fde) = try parser.parse(encoder.formatDescription()).event else { Issue.record("no FDE"); return }
        #expect(fde.checksumAlgorithm == .off)
        guard case .xid(let xid) = try parser.parse(encoder.event(.xid, body: le(UInt64(5), 8))).event else { Issue.record("no XID"); return }
        #expect(xid.xid == 5)
    }

    @Test func controlEvents() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser(initialChecksum: .crc32)
        let rotate = try parser.parse(encoder.event(.rotate, body: le(UInt64(4), 8) + Array("mariadb-bin.000002".utf8), flags: 0x20))
        guard case .rotate(let r) = rotate.event else { Issue.record("no rotate"); return }
        #expect(r == RotateEvent(position: 4, nextFile: "mariadb-bin.000002") && rotate.header.isArtificial)
        _ = try parser.parse(encoder.formatDescription())
        let gtid = try parser.parse(encoder.event(.mariadbGTID, body: le(UInt64(100), 8) + le(UInt32(3), 4) + [0x03] + le(UInt64(9), 8) + [0, 0, 0, 0, 0, 0]))
        guard case .mariadbGTID(let g) = gtid.event else { Issue.record("no gtid"); return }
        #expect(g.gtid.description == "3-1-100" && g.isStandalone && g.commitID == 9)
        let list = try parser.parse(encoder.event(.mariadbGTIDList, body: le(UInt32(2), 4) + le(UInt32(0), 4) + le(UInt32(1), 4) + le(UInt64(7), 8) + le(UInt32(1), 4) + le(UInt32(2), 4) + le(UInt64(9), 8)))
        guard case .mariadbGTIDList(let l) = list.event else { Issue.record("no list"); return }
        #expect(MariaDBGTIDPosition(l.gtids).description == "0-1-7,1-2-9")
        let query = try parser.parse(encoder.event(.query, body: le(UInt32(5), 4) + le(UInt32(0), 4) + [4] + le(UInt16(0), 2) + le(UInt16(0), 2) + Array("shop".utf8) + [0] + Array("ALTER TABLE t ADD c INT".utf8)))
        guard case .query(let q) = query.event else { Issue.record("no query"); return }
        #expect(q.database == "shop" && q.statement == "ALTER TABLE t ADD c INT")
        let checkpoint = try parser.parse(encoder.event(.binlogCheckpoint, body: le(UInt32(18), 4) + Array("mariadb-bin.000001".utf8)))
        guard case .binlogCheckpoint(let c) = checkpoint.event else { Issue.record("no checkpoint"); return }
        #expect(c.file == "mariadb-bin.000001")
        let annotate = try parser.parse(encoder.event(.annotateRows, body: Array("INSERT INTO t VALUES (1)".utf8)))
        guard case .rowsQuery(let a) = annotate.event else { Issue.record("no annotate"); return }
        #expect(a.statement == "INSERT INTO t VALUES (1)")
        let unknown = try parser.parse(encoder.event(typeCode: 200, body: [1, 2, 3]))
        guard case .unsupported(let code, let body) = unknown.event else { Issue.record("unknown type not kept"); return }
        #expect(code == 200 && body.readableBytes == 3)
    }

    @Test func mysqlGTIDEvents() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription(serverVersion: "8.0.36"))
        let uuid = [UInt8](0..<16)
        let gtid = try parser.parse(encoder.event(.gtid, body: [1] + uuid + le(UInt64(77), 8) + [2] + le(UInt64(0), 16)))
        guard case .mysqlGTID(let g) = gtid.event else { Issue.record("no gtid"); return }
        #expect(g.text == "00010203-0405-0607-0809-0a0b0c0d0e0f:77")
        let previous = try parser.parse(encoder.event(.previousGTIDs, body: le(UInt64(1), 8) + uuid + le(UInt64(1), 8) + le(UInt64(1), 8) + le(UInt64(78), 8)))
        guard case .previousGTIDs(let p) = previous.event else { Issue.record("no previous"); return }
        #expect(p.set.description == "00010203-0405-0607-0809-0a0b0c0d0e0f:1-77")
    }

    @Test func compressedRowsAndQueries() throws {
        func compressed(_ plain: [UInt8]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: plain.count + 64)
            var length = uLongf(out.count)
            _ = out.withUnsafeMutableBufferPointer { o in plain.withUnsafeBufferPointer { p in compress(o.baseAddress, &length, p.baseAddress, uLong(p.count)) } }
            return [0x80 | 2] + be(plain.count, 2) + out.prefix(Int(length))
        }
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        _ = try parser.parse(encoder.event(.tableMap, body: Self.itemsTableMap()))
        let rows = (0..<50).flatMap { Self.itemsRow(id: UInt32($0), name: "row \($0)", cents: $0) }
        let header = le(UInt64(42), 6) + le(UInt16(1), 2) + [4, 0x0F]
        let record = try parser.parse(encoder.event(.writeRowsCompressedV1, body: header + compressed(rows)))
        guard case .rows(let event) = record.event, let map = parser.tableMap(for: 42) else { Issue.record("no rows"); return }
        let decoded = try event.decodeRows(using: TableDecoder(tableMap: map, mariadb: true))
        #expect(decoded.count == 50 && decoded[49].after?[1] == .string("row 49"))
        let statement = Array("CREATE TABLE big (id INT PRIMARY KEY)".utf8)
        let queryBody = le(UInt32(5), 4) + le(UInt32(0), 4) + [4] + le(UInt16(0), 2) + le(UInt16(0), 2) + Array("shop".utf8) + [0] + compressed(statement)
        guard case .query(let q) = try parser.parse(encoder.event(.queryCompressed, body: queryBody)).event else { Issue.record("no query"); return }
        #expect(q.statement == "CREATE TABLE big (id INT PRIMARY KEY)")
        #expect(throws: BinlogEventError.self) { try parser.parse(encoder.event(.writeRowsCompressedV1, body: header + [0x81, 10, 1, 2, 3])) }
    }

    @Test func hiresTemporalColumnsAreReportedWithTheFix() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        let body = BinlogEventEncoder.tableMapBody(tableID: 7, database: "old", table: "t", types: [.long, .time],
                                                   metadata: [3], nullable: [false, true],
                                                   optional: BinlogEventEncoder.columnNames(["id", "at"]))
        _ = try parser.parse(encoder.event(.tableMap, body: body))
        let map = try #require(parser.tableMap(for: 7))
        #expect(map.hiresTemporalColumns == [1])
        let rows = try parser.parse(encoder.event(.writeRowsV1, body: BinlogEventEncoder.rowsBody(tableID: 7, columnCount: 2, rows: [BinlogEventEncoder.rowImage([le(1, 4), [0, 0, 0, 0, 0, 0]])])))
        guard case .rows(let event) = rows.event else { Issue.record("no rows"); return }
        do {
            _ = try event.decodeRows(using: TableDecoder(tableMap: map, mariadb: true))
            Issue.record("decoded a hires column")
        } catch let error as BinlogDecodingError {
            #expect(error.description.contains("column at of old.t"))
            #expect(error.description.contains("ALTER TABLE old.t FORCE"))
        }
    }

    @Test func rowsWithoutTableMapAreAnError() throws {
        var encoder = BinlogEventEncoder()
        var parser = BinlogParser()
        _ = try parser.parse(encoder.formatDescription())
        #expect(throws: BinlogEventError.self) {
            try parser.parse(encoder.event(.writeRowsV1, body: BinlogEventEncoder.rowsBody(tableID: 9, columnCount: 1, rows: [[0, 1, 0, 0, 0]])))
        }
    }

    @Test func binlogFileIsSplitIntoEvents() throws {
        var encoder = BinlogEventEncoder()
        var file = ByteBuffer(bytes: BinlogParser.fileMagic)
        var events = [encoder.formatDescription(), encoder.event(.xid, body: le(UInt64(1), 8))]
        file.writeBuffer(&events[0])
        file.writeBuffer(&events[1])
        var sequence = try BinlogParser.events(inFile: file)
        var parser = BinlogParser()
        var count = 0
        while let event = try sequence.next() {
            _ = try parser.parse(event)
            count += 1
        }
        #expect(count == 2)
        file.moveWriterIndex(to: file.writerIndex - 3)
        var torn = try BinlogParser.events(inFile: file)
        _ = try torn.next()
        #expect(throws: BinlogDecodingError.self) { try torn.next() }
        #expect(throws: BinlogDecodingError.self) { try BinlogParser.events(inFile: ByteBuffer(bytes: [1, 2, 3, 4])) }
    }
}

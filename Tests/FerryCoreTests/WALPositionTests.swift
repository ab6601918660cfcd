import Foundation
import Testing
@testable import FerryCore

/// PostgreSQL's positions beside MySQL's in the one `SourcePosition`: persisted, compared,
/// encoded in the disk buffer and shown in events, without changing what binlog positions were.
@Suite struct WALPositionTests {
    static func wal(_ lsn: UInt64, xid: UInt32? = nil, step: UInt32 = 0) -> SourcePosition {
        .wal(WALPosition(lsn: LSN(lsn), xid: xid, snapshotStep: step))
    }

    @Test func placesCompareByLSNThenStepNotByXid() {
        #expect(Self.wal(0x16_B374_8000, xid: 9) == Self.wal(0x16_B374_8000, xid: 10))
        #expect(Self.wal(0x100) < Self.wal(0x100, step: 1) && Self.wal(0x100, step: 7) < Self.wal(0x101))
        #expect(Set([Self.wal(5, xid: 1), Self.wal(5, xid: 2)]).count == 1)
        #expect(WALPosition(lsn: LSN(5), xid: 1) == WALPosition(lsn: LSN(5), xid: 2) && Set([WALPosition(lsn: LSN(5), xid: 1), WALPosition(lsn: LSN(5))]).count == 1)
        let binlog = SourcePosition.binlog(file: "b.000001", offset: 4)
        #expect(binlog != Self.wal(4) && binlog < Self.wal(4) && !(Self.wal(4) < binlog))
        #expect(Self.wal(0x16_B374_8000, xid: 731).description == "16/B3748000 (xid 731)")
        #expect(Self.wal(0x16_B374_8000, step: 2).place == "16/B3748000#2")
        #expect(Self.wal(0x200).logBytes(after: Self.wal(0x180)) == 0x80 && Self.wal(0x180).logBytes(after: Self.wal(0x200)) == 0)
        #expect(Self.wal(0x100).version < Self.wal(0x100, step: 1).version && Self.wal(0x100, step: 1).version < Self.wal(0x101).version)
    }

    @Test func persistedAndCodableForms() throws {
        let position = Self.wal(0x16_B374_8000, xid: 731, step: 2)
        #expect(position.persistedJSON == #"{"lsn":"16/B3748000","xid":731,"step":2}"#)
        #expect(SourcePosition(persistedJSON: position.persistedJSON) == position)
        #expect(SourcePosition(persistedJSON: position.persistedJSON)?.wal?.xid == 731)
        #expect(SourcePosition(persistedJSON: #"{"lsn":"0/10"}"#) == Self.wal(0x10))
        #expect(SourcePosition(persistedJSON: #"{"lsn":"not"}"#) == nil)
        #expect(SourcePosition(persistedJSON: #"{"file":"b.000001","pos":4}"#) == .binlog(file: "b.000001", offset: 4))
        let encoded = try JSONEncoder().encode([position, .binlog(file: "b.000001", offset: 4)])
        #expect(try JSONDecoder().decode([SourcePosition].self, from: encoded) == [position, .binlog(file: "b.000001", offset: 4)])
    }

    /// WAL records are version 4 in the disk buffer; binlog records stay version 2.
    @Test func diskBufferRecords() throws {
        for position in [Self.wal(0x16_B374_8000, xid: 731, step: 2), Self.wal(0x10)] {
            let bytes = TransactionCodec.encode(Transaction(gtid: nil, position: position, serverID: 0, timestampMillis: 5, events: []))
            #expect(bytes.first == 4)
            var decoder = TransactionDecoder()
            let decoded = try decoder.decode(bytes)
            #expect(decoded.position == position && decoded.position.wal?.xid == position.wal?.xid)
            #expect(try TransactionCodec.summary(of: bytes).position == position)
        }
        #expect(TransactionCodec.encode(Transaction(gtid: nil, position: .binlog(file: "b.000001", offset: 4), serverID: 0, timestampMillis: 5, events: [])).first == 2)
    }

    /// A PostgreSQL column's own type travels with the schema in version-4 records.
    @Test func nativeTypesSurviveTheDiskBuffer() throws {
        let schema = TableSchema(name: TableName(database: "public", table: "t"),
                                 columns: [ColumnSchema(name: "id", typeName: "int", nullable: false, nativeType: "integer"),
                                           ColumnSchema(name: "span", typeName: "longtext", nullable: true, charset: "utf8mb4", nativeType: "tstzrange"),
                                           ColumnSchema(name: "plain", typeName: "int", nullable: true)],
                                 primaryKey: [0])
        let position = Self.wal(0x20, xid: 9)
        let event = ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: [.int(1), .sourceText("[1,2)"), .bool(true)],
                                source: ChangeSource(name: "pg", serverID: 0, gtid: nil, position: position, row: 0, timestampMillis: 0))
        var decoder = TransactionDecoder()
        let decoded = try decoder.decode(TransactionCodec.encode(Transaction(gtid: nil, position: position, serverID: 0, timestampMillis: 0, events: [event])))
        #expect(decoded.events.first?.schema?.columns == schema.columns)
        #expect(decoded.events.first?.after == [.int(1), .sourceText("[1,2)"), .bool(true)])
    }

    @Test func eventsShowTheLSNAndTransactionId() {
        let schema = TableSchema(name: TableName(database: "public", table: "orders"), columns: [ColumnSchema(name: "id", typeName: "int4", nullable: false)],
                                 primaryKey: [0])
        let event = ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: [.int(1)],
                                source: ChangeSource(name: "pg", serverID: 0, gtid: nil, position: Self.wal(0x16_B374_8000, xid: 731), row: 0,
                                                     timestampMillis: 1_700_000_000_000))
        var out: [UInt8] = []
        EventJSONWriter(format: .debezium).write(event, processedAtMillis: 5, into: &out)
        #expect(String(decoding: out, as: UTF8.self).contains(#""gtid":null,"lsn":97500037120,"txId":731,"xmin":null,"row":0"#))
        out.removeAll()
        EventJSONWriter(format: .compact).write(event, processedAtMillis: 5, into: &out)
        #expect(String(decoding: out, as: UTF8.self).contains(#""position":"16/B3748000","xid":731,"row":0"#))
    }
}

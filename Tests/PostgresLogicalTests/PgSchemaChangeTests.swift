import FerryCore
import Testing
@testable import PostgresLogical

/// Logical replication carries no DDL: a relation described again with other columns becomes
/// the schema changes a target applies, placed before the relation's first row.
@Suite struct PgSchemaChangeTests {
    typealias Column = PgOutputMessage.Relation.Column
    let id = Column(isKey: true, name: "id", typeOID: 23, typeModifier: -1)
    let name = Column(isKey: false, name: "name", typeOID: 25, typeModifier: -1)
    let price = Column(isKey: false, name: "price", typeOID: 1700, typeModifier: (10 << 16 | 2) + 4)

    func relation(_ columns: [Column], name table: String = "items") -> PgOutputMessage.Relation {
        PgOutputMessage.Relation(id: 7, namespace: "public", name: table, replicaIdentity: .default, columns: columns)
    }

    func transaction(_ relation: PgOutputMessage.Relation, lsn: UInt64) -> PgTransaction {
        let values = relation.columns.map { $0.typeOID == 23 ? TupleData.Value.text(Array("1".utf8)) : .null }
        return PgTransaction(xid: 5, commitLSN: LSN(lsn), endLSN: LSN(lsn + 8), commitTime: 0,
                             changes: [.insert(relation, new: TupleData(values))], streamed: false)
    }

    /// The changes each new description brings, in the order the stream sees them.
    func changes(_ descriptions: [PgOutputMessage.Relation]) throws -> [[SchemaChange]] {
        var mapper = PgTransactionMapper(sourceName: "pg")
        return try descriptions.enumerated().map { index, relation in
            try mapper.map(transaction(relation, lsn: UInt64(0x100 * (index + 1)))).events.filter { $0.operation == .ddl }.flatMap(\.schemaChanges)
        }
    }

    @Test func columnsAddedDroppedRenamedAndRetyped() throws {
        let table = TableName(database: "public", table: "items")
        let wider = Column(isKey: false, name: "price", typeOID: 1700, typeModifier: (12 << 16 | 2) + 4)
        let renamed = Column(isKey: false, name: "title", typeOID: 25, typeModifier: -1)
        #expect(try changes([
            relation([id, name]),
            relation([id, name, price]),
            relation([id, renamed, price]),
            relation([id, renamed, wider]),
            relation([id, wider]),
            relation([id, wider], name: "goods"),
        ]) == [
            [],
            [.addColumn(table, column: "price", type: "decimal(10,2)")],
            [.renameColumn(table, from: "name", to: "title")],
            [.modifyColumn(table, column: "price", type: "decimal(12,2)")],
            [.dropColumn(table, column: "title")],
            [.renameTable(from: table, to: TableName(database: "public", table: "goods"))],
        ])
    }

    /// Two columns swapped for two others at the end is not a rename, even of the same types (a
    /// migration dropping two and adding two): they are dropped and added.
    @Test func severalColumnsReplacedAreDroppedAndAdded() throws {
        let table = TableName(database: "public", table: "items")
        let a = Column(isKey: false, name: "a", typeOID: 25, typeModifier: -1)
        let b = Column(isKey: false, name: "b", typeOID: 25, typeModifier: -1)
        let c = Column(isKey: false, name: "c", typeOID: 1700, typeModifier: (10 << 16 | 2) + 4)
        #expect(try changes([relation([id, name, price]), relation([id, a, b])]) == [
            [],
            [.dropColumn(table, column: "name"), .dropColumn(table, column: "price"), .addColumn(table, column: "a", type: "longtext"),
             .addColumn(table, column: "b", type: "longtext")],
        ])
        #expect(try changes([relation([id, name, price]), relation([id, a, c])]) == [
            [],
            [.dropColumn(table, column: "name"), .dropColumn(table, column: "price"), .addColumn(table, column: "a", type: "longtext"),
             .addColumn(table, column: "c", type: "decimal(10,2)")],
        ])
    }

    /// Several changes at once (a stream that starts after them sees them together): columns
    /// stand where they stood, so one between two kept columns is a renamed one — also when
    /// retyped, or when others of its neighbours were dropped.
    @Test func renamesAreReadFromWhereColumnsStand() throws {
        let table = TableName(database: "public", table: "items")
        let qty = Column(isKey: false, name: "qty", typeOID: 23, typeModifier: -1)
        let bigQty = Column(isKey: false, name: "qty", typeOID: 20, typeModifier: -1)
        let title = Column(isKey: false, name: "title", typeOID: 25, typeModifier: -1)
        let label = Column(isKey: false, name: "label", typeOID: 1043, typeModifier: 24)
        let cost = Column(isKey: false, name: "cost", typeOID: 1700, typeModifier: (10 << 16 | 2) + 4)
        #expect(try changes([relation([id, name, qty, price]), relation([id, title, bigQty])]) == [
            [],
            [.renameColumn(table, from: "name", to: "title"), .dropColumn(table, column: "price"), .modifyColumn(table, column: "qty", type: "bigint")],
        ])
        #expect(try changes([relation([id, name, qty]), relation([id, label, qty])]) == [
            [],
            [.renameColumn(table, from: "name", to: "label"), .modifyColumn(table, column: "label", type: "varchar(20)")],
        ])
        #expect(try changes([relation([id, name, price, qty]), relation([id, cost, qty])]) == [
            [],
            [.renameColumn(table, from: "price", to: "cost"), .dropColumn(table, column: "name")],
        ])
    }

    /// Only changes after the last column both descriptions have, where columns both went and
    /// came, are a guess (the table is then read again).
    @Test func changesAfterTheLastKeptColumnAreAGuess() throws {
        func schema(_ columns: [Column]) throws -> TableSchema {
            var mapper = PgTransactionMapper(sourceName: "pg")
            return try #require(mapper.map(transaction(relation(columns), lsn: 0x100)).events.first?.schema)
        }
        let title = Column(isKey: false, name: "title", typeOID: 25, typeModifier: -1)
        let qty = Column(isKey: false, name: "qty", typeOID: 23, typeModifier: -1)
        #expect(PgTransactionMapper.compare(try schema([id, name]), try schema([id, title])).guessed)
        #expect(PgTransactionMapper.compare(try schema([id, name, price]), try schema([id, title, qty])).guessed)
        #expect(!PgTransactionMapper.compare(try schema([id, name, qty]), try schema([id, title, qty])).guessed)
        #expect(!PgTransactionMapper.compare(try schema([id, name]), try schema([id, name, price])).guessed)
        #expect(!PgTransactionMapper.compare(try schema([id, name, price]), try schema([id, name])).guessed)
    }

    /// The change comes first in its transaction, with a statement that says what it is.
    @Test func theChangePrecedesTheRowsAndNamesItself() throws {
        var mapper = PgTransactionMapper(sourceName: "pg")
        _ = try mapper.map(transaction(relation([id, name]), lsn: 0x100))
        let mapped = try mapper.map(transaction(relation([id, name, price]), lsn: 0x200))
        #expect(mapped.events.map(\.operation) == [.ddl, .create])
        #expect(mapped.events[0].statement == #"ALTER TABLE "public"."items" ADD COLUMN "price" numeric(10,2) /* ferry: read from the stream's new description of the table */"#)
        #expect(mapped.events[1].source.row == 1)
    }
}

/// A stream that starts later is seeded with the descriptions the schema history kept: a change
/// made while no stream was open is one, and the history is told only what it does not have.
@Suite struct PgSchemaHistorySeedTests {
    let cases = PgSchemaChangeTests()
    let table = TableName(database: "public", table: "items")

    @Test func aChangeMadeBetweenStreamsIsSeen() throws {
        var first = PgTransactionMapper(sourceName: "pg")
        _ = try first.map(cases.transaction(cases.relation([cases.id, cases.name, cases.price]), lsn: 0x100))
        #expect(first.described.map(\.relationID) == [7], "a first description is new to the history")
        let kept = try #require(first.described.first)
        _ = try first.map(cases.transaction(cases.relation([cases.id, cases.name, cases.price]), lsn: 0x200))
        #expect(first.described.isEmpty)
        // Kept and read back as the history does.
        let stored = try #require(PgDescribedTable(try kept.record(at: .wal(WALPosition(lsn: LSN(0x100))))))
        #expect(stored == kept)

        let renamed = PgOutputMessage.Relation.Column(isKey: false, name: "title", typeOID: 25, typeModifier: -1)
        var second = PgTransactionMapper(sourceName: "pg")
        second.seed([stored])
        let mapped = try second.map(cases.transaction(cases.relation([cases.id, renamed], name: "goods"), lsn: 0x300))
        let goods = TableName(database: "public", table: "goods")
        #expect(mapped.events.filter { $0.operation == .ddl }.flatMap(\.schemaChanges) == [
            .renameTable(from: table, to: goods), .dropColumn(goods, column: "name"), .dropColumn(goods, column: "price"), .addColumn(goods, column: "title", type: "longtext"),
        ])
        #expect(second.described.map { $0.schema.name } == [goods])

        // The same description as the seed's: no change, nothing new to keep.
        var third = PgTransactionMapper(sourceName: "pg")
        third.seed([stored])
        let same = try third.map(cases.transaction(cases.relation([cases.id, cases.name, cases.price]), lsn: 0x400))
        #expect(same.events.map(\.operation) == [.create])
        #expect(third.described.isEmpty)
    }

    @Test func aRenameBetweenStreamsIsARename() throws {
        var first = PgTransactionMapper(sourceName: "pg")
        _ = try first.map(cases.transaction(cases.relation([cases.id, cases.name]), lsn: 0x100))
        var second = PgTransactionMapper(sourceName: "pg")
        second.seed(first.described)
        let renamed = PgOutputMessage.Relation.Column(isKey: false, name: "title", typeOID: 25, typeModifier: -1)
        let mapped = try second.map(cases.transaction(cases.relation([cases.id, renamed]), lsn: 0x200))
        #expect(mapped.events.map(\.operation) == [.ddl, .create])
        #expect(mapped.events[0].schemaChanges == [.renameColumn(table, from: "name", to: "title")])
    }
}

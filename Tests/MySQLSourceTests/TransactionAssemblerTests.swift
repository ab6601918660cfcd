import FerryCore
import MySQLBinlog
@testable import MySQLSource
import Testing

@Suite struct TransactionAssemblerTests {
    static let schema = TableSchema(name: TableName(database: "shop", table: "t"),
                                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false)], primaryKey: [0])

    func header(_ position: UInt32, serverID: UInt32 = 1) -> BinlogEventHeader {
        BinlogEventHeader(timestamp: 1_700_000_000, typeCode: 0, serverID: serverID, eventSize: 10, logPosition: position, flags: 0)
    }

    func query(_ statement: String, database: String = "shop") -> QueryEvent {
        QueryEvent(threadID: 1, executionTime: 0, errorCode: 0, database: database, statement: statement)
    }

    func start() -> TransactionAssembler {
        TransactionAssembler(sourceName: "src", start: BinlogPosition(coordinates: BinlogCoordinates(file: "b.000001", offset: 4), gtidPosition: nil),
                             gtidPosition: .mariadb(MariaDBGTIDPosition([MariaDBGTID(domain: 0, serverID: 1, sequence: 9)])))
    }

    @Test func mariadbRowTransaction() {
        var assembler = start()
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 0, serverID: 1, sequence: 10), flags: 0x0C, commitID: nil), header: header(100))
        #expect(assembler.queryReceived(query("BEGIN"), header: header(150)) == nil)
        assembler.rowsReceived(kind: .write, schema: Self.schema, changes: [.init(before: nil, after: [.int(1)]), .init(before: nil, after: [.int(2)])], header: header(200))
        assembler.rowsReceived(kind: .delete, schema: Self.schema, changes: [.init(before: [.int(1)], after: nil)], header: header(250))
        #expect(assembler.isInTransaction)
        #expect(assembler.resumePosition?.coordinates.offset == 4)
        guard case .transaction(let transaction) = assembler.xidReceived(header: header(300)) else { Issue.record("no transaction"); return }
        #expect(transaction.gtid == "0-1-10")
        #expect(transaction.position.description == "b.000001:300 (gtid 0-1-10)")
        #expect(transaction.events.map(\.operation) == [.create, .create, .delete])
        #expect(transaction.events.map(\.source.row) == [0, 1, 2])
        #expect(transaction.events.allSatisfy { $0.source.position == transaction.position && $0.source.gtid == "0-1-10" && $0.source.timestampMillis == 1_700_000_000_000 })
        #expect(assembler.resumePosition == transaction.position.binlog)
    }

    /// A transaction's event array is made as large as the last one's at once; one that turns
    /// out smaller does not carry the spare room into the buffer, which counts events.
    @Test func eventArraysAreSizedFromTheLastTransaction() {
        var assembler = start()
        func transaction(rows: Int, at offset: UInt32) -> Transaction? {
            assembler.rowsReceived(kind: .write, schema: Self.schema, changes: (0..<rows).map { .init(before: nil, after: [.int(Int64($0))]) },
                                   header: header(offset))
            guard case .transaction(let transaction) = assembler.xidReceived(header: header(offset + 10)) else { return nil }
            return transaction
        }
        let large = transaction(rows: 5_000, at: 200)
        #expect(large?.events.count == 5_000)
        let small = transaction(rows: 3, at: 300)
        #expect(small?.events.map(\.source.row) == [0, 1, 2])
        #expect((small?.events.capacity ?? .max) < 100)
        #expect(transaction(rows: 4_000, at: 400)?.events.count == 4_000)
    }

    @Test func standaloneDDLIsASchemaChange() {
        var assembler = start()
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 0, serverID: 1, sequence: 10), flags: 0x21, commitID: nil), header: header(100))
        guard case .schemaChange(let transaction, let database, let statement) = assembler.queryReceived(query("/* c */ ALTER TABLE t ADD c INT"), header: header(220)) else {
            Issue.record("no schema change"); return
        }
        #expect(database == "shop" && statement == "/* c */ ALTER TABLE t ADD c INT")
        #expect(transaction.events.count == 1 && transaction.events[0].operation == .ddl)
        #expect(transaction.position.binlog?.coordinates.offset == 220)
    }

    /// `CREATE TABLE b SELECT * FROM a` is one GTID group (MariaDB flags it `ddl`, not
    /// standalone): the CREATE, then the rows, then XID. The rows carry the group's GTID.
    @Test func createSelectRowsKeepTheirGTID() {
        var assembler = start()
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 0, serverID: 1, sequence: 77), flags: 0x20, commitID: nil), header: header(431))
        guard case .schemaChange(let ddl, _, _) = assembler.queryReceived(query("CREATE TABLE `shop`.`b` (id int)"), header: header(622)) else {
            Issue.record("no schema change"); return
        }
        #expect(ddl.gtid == "0-1-77")
        assembler.rowsReceived(kind: .write, schema: Self.schema, changes: [.init(before: nil, after: [.int(1)])], header: header(1057))
        guard case .transaction(let rows) = assembler.xidReceived(header: header(1088)) else { Issue.record("no transaction"); return }
        #expect(rows.gtid == "0-1-77")
        #expect(rows.events.map(\.source.gtid) == ["0-1-77"])
        #expect(rows.position.description == "b.000001:1088 (gtid 0-1-77)")
        // A standalone DDL's group ends with it: rows after it (without a GTID) are not its.
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 0, serverID: 1, sequence: 78), flags: 0x21, commitID: nil), header: header(1200))
        _ = assembler.queryReceived(query("ALTER TABLE t ADD c INT"), header: header(1300))
        assembler.rowsReceived(kind: .write, schema: Self.schema, changes: [.init(before: nil, after: [.int(2)])], header: header(1400))
        guard case .transaction(let other) = assembler.xidReceived(header: header(1500)) else { Issue.record("no transaction"); return }
        #expect(other.gtid == nil)
    }

    @Test func rollbackDiscardsAndRotationMovesTheFile() {
        var assembler = start()
        _ = assembler.queryReceived(query("BEGIN"), header: header(100))
        assembler.rowsReceived(kind: .write, schema: Self.schema, changes: [.init(before: nil, after: [.int(1)])], header: header(200))
        #expect(assembler.queryReceived(query("ROLLBACK"), header: header(300)) == nil)
        #expect(!assembler.isInTransaction)
        #expect(assembler.resumePosition?.coordinates.offset == 300)
        assembler.rotateReceived(RotateEvent(position: 4, nextFile: "b.000002"))
        #expect(assembler.resumePosition?.coordinates == BinlogCoordinates(file: "b.000002", offset: 4))
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 1, serverID: 2, sequence: 5), flags: 0, commitID: nil), header: header(400))
        guard case .transaction(let transaction) = assembler.queryReceived(query("COMMIT"), header: header(500)) else { Issue.record("no commit"); return }
        #expect(transaction.position.description == "b.000002:500 (gtid 0-1-9,1-2-5)")
    }

    @Test func lostConnectionDropsTheHalfTransaction() {
        var assembler = start()
        assembler.mariadbGTIDReceived(MariaDBGTIDEvent(gtid: MariaDBGTID(domain: 0, serverID: 1, sequence: 10), flags: 0, commitID: nil), header: header(100))
        assembler.rowsReceived(kind: .write, schema: Self.schema, changes: [.init(before: nil, after: [.int(1)])], header: header(200))
        assembler.discardOpenTransaction()
        #expect(!assembler.isInTransaction)
        #expect(assembler.resumePosition?.coordinates.offset == 4)
    }

    @Test func mysqlGTIDSetGrows() throws {
        var assembler = TransactionAssembler(sourceName: "m", start: BinlogPosition(coordinates: BinlogCoordinates(file: "binlog.000001", offset: 4), gtidPosition: nil))
        let uuid = try #require(MySQLGTIDSet.ServerUUID(bytes: Array(0..<16)))
        assembler.previousGTIDsReceived(PreviousGTIDsEvent(set: MySQLGTIDSet(parsing: "00010203-0405-0607-0809-0a0b0c0d0e0f:1-4")!))
        assembler.mysqlGTIDReceived(MySQLGTIDEvent(uuid: uuid, transactionNumber: 5, flags: 1, isAnonymous: false), header: header(100))
        _ = assembler.queryReceived(query("BEGIN"), header: header(150))
        guard case .transaction(let transaction) = assembler.xidReceived(header: header(300)) else { Issue.record("no transaction"); return }
        #expect(transaction.gtid == "00010203-0405-0607-0809-0a0b0c0d0e0f:5")
        #expect(transaction.position.binlog?.gtidPosition?.description == "00010203-0405-0607-0809-0a0b0c0d0e0f:1-5")
    }

    @Test func leadingKeywordSkipsComments() {
        #expect(TransactionAssembler.leadingKeyword("  begin") == "BEGIN")
        #expect(TransactionAssembler.leadingKeyword("/* x */\n-- y\n# z\nCOMMIT") == "COMMIT")
        #expect(TransactionAssembler.leadingKeyword("") == "")
    }
}

@Suite struct FilterAndPositionTests {
    @Test func globs() {
        let filter = TableFilter(include: ["shop.*", "crm.user?"], exclude: ["shop.tmp_*"])
        #expect(filter.includes(TableName(database: "shop", table: "orders")))
        #expect(!filter.includes(TableName(database: "shop", table: "tmp_1")))
        #expect(filter.includes(TableName(database: "crm", table: "users")))
        #expect(!filter.includes(TableName(database: "crm", table: "user")))
        #expect(!filter.includes(TableName(database: "other", table: "x")))
        #expect(TableFilter().includes(TableName(database: "any", table: "thing")))
        #expect(TableFilter(include: ["shop"]).includes(TableName(database: "shop", table: "a")))
    }

    @Test func startPositions() throws {
        #expect(try StartPosition(parsing: "earliest") == .earliest)
        #expect(try StartPosition(parsing: "CURRENT") == .current)
        #expect(try StartPosition(parsing: "mariadb-bin.000003:1234") == .coordinates(BinlogCoordinates(file: "mariadb-bin.000003", offset: 1234)))
        #expect(try StartPosition(parsing: "0-1-100,1-2-7").description == "0-1-100,1-2-7")
        #expect(try StartPosition(parsing: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5").description == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
        #expect(throws: FerryError.self) { try StartPosition(parsing: "yesterday") }
        #expect(throws: FerryError.self) { try StartPosition(parsing: "file:abc") }
    }

    @Test func enumMembersFromColumnType() {
        #expect(StreamSession.members("enum('a','it''s','c,d')") == ["a", "it's", "c,d"])
        #expect(StreamSession.members("set('')") == [""])
    }
}

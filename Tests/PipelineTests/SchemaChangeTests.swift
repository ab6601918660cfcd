import FerryCore
import Foundation
import Logging
@testable import SinkSupport
@testable import SQLiteSink
import Testing

@Suite struct SchemaChangeTests {
    let items = TableName(database: "shop", table: "items")

    @Test func policyDecisions() {
        let drop = SchemaChange.dropColumn(items, column: "price")
        let add = SchemaChange.addColumn(items, column: "note", type: "varchar(20)")
        let rename = SchemaChange.renameTable(from: items, to: TableName(database: "shop", table: "goods"))
        let unknown = SchemaChange.unrecognized(items, reason: "ALTER TABLE shop.items … FROBNICATE")
        #expect(SchemaChangePolicy(mode: .evolve).decide(drop) == .apply)
        #expect(SchemaChangePolicy(mode: .evolve, deny: [.dropColumn]).decide(drop) != .apply)
        #expect(SchemaChangePolicy(mode: .evolve, allow: [.addColumn]).decide(rename) != .apply)
        #expect(SchemaChangePolicy(mode: .lenient).decide(add) == .apply)
        #expect(SchemaChangePolicy(mode: .lenient).decide(.modifyColumn(items, column: "price", type: "decimal(12,2)")) == .apply)
        #expect(SchemaChangePolicy(mode: .lenient).decide(drop) != .apply)
        #expect(SchemaChangePolicy(mode: .lenient).decide(rename) != .apply)
        #expect(SchemaChangePolicy(mode: .ignore).decide(add) != .apply)
        #expect(SchemaChangePolicy(mode: .ignore).addsColumnsFromRows == false)
        #expect(SchemaChangePolicy(mode: .fail).decide(add) == .fail)
        #expect(SchemaChangePolicy(mode: .fail, allow: [.addColumn]).decide(add) == .apply)
        #expect(SchemaChangePolicy(mode: .fail, allow: [.addColumn]).decide(unknown) == .fail)
        #expect(SchemaChangePolicy(mode: .evolve).decide(unknown) != .apply)
        // A keyless table's re-read replaces its rows under every policy: data, not schema.
        for mode in SchemaChangePolicy.Mode.allCases {
            #expect(SchemaChangePolicy(mode: mode, deny: [.truncateTable]).decide(.replaceRows(items)) == .apply)
        }
    }

    func schema(_ columns: [String], key: [Int] = [0]) -> TableSchema {
        TableSchema(name: items, columns: columns.map { ColumnSchema(name: $0, typeName: $0 == "id" ? "int" : "varchar(20)", nullable: true) }, primaryKey: key)
    }

    func rows(_ schema: TableSchema, _ offset: UInt64, _ values: [[Value]]) -> Transaction {
        let at = position(offset)
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: values.enumerated().map { index, row in
            ChangeEvent(operation: .create, table: items, schema: schema, before: nil, after: row,
                        source: ChangeSource(name: "s", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
        })
    }

    func ddl(_ offset: UInt64, _ statement: String, _ changes: [SchemaChange]) -> Transaction {
        let at = position(offset)
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: [
            ChangeEvent(operation: .ddl, table: items, schema: nil, before: nil, after: nil, statement: statement, schemaChanges: changes,
                        source: ChangeSource(name: "s", serverID: 1, gtid: nil, position: at, row: 0, timestampMillis: 0)),
        ])
    }

    /// A stream with every kind of change: rows before and after ADD, RENAME, DROP COLUMN, a
    /// truncate and a table rename.
    var stream: [Transaction] {
        let v1 = schema(["id", "name", "price"])
        let v2 = schema(["id", "name", "price", "note"])
        let v3 = schema(["id", "title", "price", "note"])
        let v4 = schema(["id", "title", "note"])
        let goods = TableName(database: "shop", table: "goods")
        return [
            rows(v1, 100, [[.int(1), .string("a"), .string("1")], [.int(2), .string("b"), .string("2")]]),
            ddl(200, "ALTER TABLE items ADD note VARCHAR(20)", [.addColumn(items, column: "note", type: "varchar(20)")]),
            rows(v2, 300, [[.int(3), .string("c"), .string("3"), .string("n3")]]),
            ddl(400, "ALTER TABLE items RENAME COLUMN name TO title", [.renameColumn(items, from: "name", to: "title")]),
            rows(v3, 500, [[.int(4), .string("d"), .string("4"), .string("n4")]]),
            ddl(600, "ALTER TABLE items DROP COLUMN price", [.dropColumn(items, column: "price")]),
            rows(v4, 700, [[.int(5), .string("e"), .string("n5")]]),
            ddl(800, "TRUNCATE items", [.truncateTable(items)]),
            rows(v4, 900, [[.int(6), .string("f"), .string("n6")]]),
            ddl(1000, "RENAME TABLE items TO goods", [.renameTable(from: items, to: goods)]),
        ]
    }

    func run(_ mode: SchemaChangePolicy.Mode, batches: Int) async throws -> String {
        let path = temporaryDirectory() + "/target.sqlite"
        let sink = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path, schemaChanges: SchemaChangePolicy(mode: mode)),
                              logger: Logger(label: "test"))
        _ = try await sink.open()
        let all = stream
        let size = (all.count + batches - 1) / batches
        for start in stride(from: 0, to: all.count, by: size) {
            try await sink.apply(Array(all[start..<min(all.count, start + size)]))
        }
        // Replaying the whole stream onto the result changes nothing more.
        if mode != .evolve { try await sink.apply(all) }
        try await sink.close()
        return path
    }

    @Test(arguments: [1, 10]) func evolveFollowsTheSource(batches: Int) async throws {
        let path = try await run(.evolve, batches: batches)
        #expect(try sqliteRows(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'ferry_offsets'") == [["goods"]])
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('goods')") == [["id"], ["title"], ["note"]])
        #expect(try sqliteRows(path, "SELECT id, title, note FROM goods") == [["6", "f", "n6"]])
    }

    /// `ALTER TABLE items DROP name, DROP price, ADD kept INT` leaves `id, kept` in MariaDB, which
    /// applies the clauses together; SQLite refuses to drop a table's last column, so the drops of
    /// columns not added again run after the adds.
    @Test func multiClauseAlterInAnOrderTheTargetAccepts() async throws {
        let path = temporaryDirectory() + "/target.sqlite"
        let sink = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path, schemaChanges: SchemaChangePolicy(mode: .evolve)),
                              logger: Logger(label: "test"))
        _ = try await sink.open()
        let keyless = TableSchema(name: items, columns: [ColumnSchema(name: "name", typeName: "varchar(20)", nullable: true),
                                                        ColumnSchema(name: "price", typeName: "varchar(20)", nullable: true)], primaryKey: [])
        let after = TableSchema(name: items, columns: [ColumnSchema(name: "kept", typeName: "int", nullable: true)], primaryKey: [])
        try await sink.apply([
            rows(keyless, 100, [[.string("a"), .string("1")]]),
            ddl(200, "ALTER TABLE items DROP name, DROP price, ADD kept INT",
                [.dropColumn(items, column: "name"), .dropColumn(items, column: "price"), .addColumn(items, column: "kept", type: "int")]),
            rows(after, 300, [[.int(7)]]),
        ])
        try await sink.close()
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items')") == [["kept"]])
        #expect(TargetSchema.targetOrder([.dropColumn(items, column: "a"), .addColumn(items, column: "a", type: "int"), .dropColumn(items, column: "b"),
                                          .addColumn(items, column: "c", type: "int")])
            == [.dropColumn(items, column: "a"), .addColumn(items, column: "a", type: "int"), .addColumn(items, column: "c", type: "int"),
                .dropColumn(items, column: "b")])
    }

    /// `ALTER TABLE k ADD PRIMARY KEY (a)` on a keyless table, then an update by that key; and
    /// `ALTER TABLE u DROP INDEX uk` (its only unique key), then a second row with the same value:
    /// the target's key follows the source's, so neither stops the sink.
    @Test(arguments: [SchemaChangePolicy.Mode.evolve, .lenient]) func targetKeyFollowsTheSource(mode: SchemaChangePolicy.Mode) async throws {
        let path = temporaryDirectory() + "/target.sqlite"
        let sink = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path, schemaChanges: SchemaChangePolicy(mode: mode)),
                              logger: Logger(label: "test"))
        _ = try await sink.open()
        let keyless = schema(["a", "b"], key: [])
        let keyed = schema(["a", "b"], key: [0])
        try await sink.apply([rows(keyless, 100, [[.string("1"), .string("x")], [.string("2"), .string("y")]])])
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items') WHERE pk > 0").isEmpty)
        try await sink.apply([
            ddl(200, "ALTER TABLE items ADD PRIMARY KEY (a)", []),
            rows(keyed, 300, [[.string("1"), .string("x2")]]),
        ])
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items') WHERE pk > 0") == [["a"]])
        #expect(try sqliteRows(path, "SELECT a, b FROM items ORDER BY a") == [["1", "x2"], ["2", "y"]])
        try await sink.apply([
            ddl(400, "ALTER TABLE items DROP PRIMARY KEY", []),
            rows(keyless, 500, [[.string("1"), .string("again")]]),
        ])
        try await sink.close()
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items') WHERE pk > 0").isEmpty)
        #expect(try sqliteRows(path, "SELECT a, b FROM items ORDER BY a, b") == [["1", "again"], ["1", "x2"], ["2", "y"]])
    }

    /// A target column the source's rows may leave NULL must accept NULL: one the rows no longer
    /// carry (dropped or renamed, kept by lenient), one the source made nullable; key columns
    /// and columns the source still fills are left alone.
    @Test func columnsTheSourceMayLeaveEmptyAcceptNull() {
        let target = TargetTable(columns: [TargetColumn(name: "id", type: "integer", notNull: true),
                                           TargetColumn(name: "email", type: "text", notNull: true),
                                           TargetColumn(name: "name", type: "text", notNull: true),
                                           TargetColumn(name: "note", type: "text", notNull: true),
                                           TargetColumn(name: "age", type: "integer", notNull: false)], key: ["id"])
        let schema = TableSchema(name: TableName(database: "shop", table: "t"),
                                 columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "contact", typeName: "text", nullable: false),
                                           ColumnSchema(name: "name", typeName: "text", nullable: false), ColumnSchema(name: "note", typeName: "text", nullable: true)],
                                 primaryKey: [0])
        #expect(TargetSchema.refusingNull(target, schema: schema).map(\.name) == ["email", "note"])
    }

    @Test func lenientKeepsData() async throws {
        let path = try await run(.lenient, batches: 3)
        #expect(try sqliteRows(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'ferry_offsets'") == [["items"]])
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items')") == [["id"], ["name"], ["price"], ["note"], ["title"]])
        #expect(try sqliteRows(path, "SELECT id, name, title, price, note FROM items ORDER BY id") == [
            ["1", "a", "", "1", ""], ["2", "b", "", "2", ""], ["3", "c", "", "3", "n3"], ["4", "", "d", "4", "n4"],
            ["5", "", "e", "", "n5"], ["6", "", "f", "", "n6"],
        ])
    }

    @Test func ignoreNeverChangesTheTarget() async throws {
        let path = try await run(.ignore, batches: 2)
        #expect(try sqliteRows(path, "SELECT name FROM pragma_table_info('items')") == [["id"], ["name"], ["price"]])
        #expect(try sqliteRows(path, "SELECT id, name, price FROM items ORDER BY id") == [
            ["1", "a", "1"], ["2", "b", "2"], ["3", "c", "3"], ["4", "", "4"], ["5", "", ""], ["6", "", ""],
        ])
    }

    @Test func failStopsWithTheStatementAndPosition() async throws {
        let path = temporaryDirectory() + "/target.sqlite"
        let sink = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path, schemaChanges: SchemaChangePolicy(mode: .fail)),
                              logger: Logger(label: "test"))
        _ = try await sink.open()
        let all = stream
        try await sink.apply([all[0]])
        do {
            try await sink.apply([all[1], all[2]])
            Issue.record("a schema change passed a fail policy")
        } catch let error as FerryError {
            #expect(error.code == .sinkSchemaChangeRefused)
            #expect(error.message.contains("ALTER TABLE items ADD note VARCHAR(20)"))
            #expect(error.context.contains { $0 == ("position", "b.000001:200") })
            #expect(error.context.contains { $0 == ("table", "shop.items") })
        }
        try await sink.close()
        let reopened = SQLiteSink(configuration: .init(name: "local", pipeline: "p", path: path), logger: Logger(label: "test"))
        #expect(try await reopened.open() == position(100), "nothing of the refused batch was applied")
        try await reopened.close()
    }
}

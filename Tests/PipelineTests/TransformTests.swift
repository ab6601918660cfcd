import FerryCore
@testable import Pipeline
import Testing

@Suite struct TransformTests {
    static let logs = TableSchema(name: TableName(database: "shop", table: "log_2024"),
                                  columns: ["id", "at", "message", "secret_token", "level"].map { ColumnSchema(name: $0, typeName: "varchar", nullable: true) },
                                  primaryKey: [])

    func event(_ schema: TableSchema, before: Row?, after: Row?) -> Transaction {
        let at = position(10)
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: [
            ChangeEvent(operation: before == nil ? .create : .update, table: schema.name, schema: schema, before: before, after: after,
                        source: ChangeSource(name: "s", serverID: 1, gtid: nil, position: at, row: 0, timestampMillis: 0)),
        ])
    }

    @Test func projectsRenamesAndSetsTheKey() throws {
        let transform = TransactionTransform(mappings: [
            TableMapping(tables: "shop.log_*", columns: ColumnProjection(excludeColumns: ["secret_*"], renameColumns: ["at": "logged_at"], key: ["id", "at"])),
        ], pipeline: "p")
        let row: Row = [.int(1), .string("10:00"), .string("hello"), .string("tok"), .string("info")]
        let shaped = try transform.apply(event(Self.logs, before: row, after: row))
        let schema = try #require(shaped.events[0].schema)
        #expect(schema.columns.map(\.name) == ["id", "logged_at", "message", "level"])
        #expect(schema.primaryKey == [0, 1])
        #expect(shaped.events[0].after == [.int(1), .string("10:00"), .string("hello"), .string("info")])
        #expect(shaped.events[0].before == [.int(1), .string("10:00"), .string("hello"), .string("info")])
        let again = try transform.apply(event(Self.logs, before: nil, after: row))
        #expect(again.events[0].schema === schema, "one projected schema per source schema")
    }

    @Test func includeListKeepsOnlyNamedColumnsAndOthersPassThrough() throws {
        let transform = TransactionTransform(mappings: [TableMapping(tables: "shop.log_2024", columns: ColumnProjection(includeColumns: ["id", "mess*"]))])
        let shaped = try transform.apply(event(Self.logs, before: nil, after: [.int(1), .null, .string("m"), .null, .null]))
        #expect(shaped.events[0].schema?.columns.map(\.name) == ["id", "message"])
        let other = TableSchema(name: TableName(database: "shop", table: "orders"), columns: [ColumnSchema(name: "id", typeName: "int", nullable: false)], primaryKey: [0])
        let untouched = try transform.apply(event(other, before: nil, after: [.int(5)]))
        #expect(untouched.events[0].schema === other)
    }

    @Test func mistakesNameTheTableAndColumn() {
        func failure(_ mapping: TableMapping) -> FerryError? {
            do {
                _ = try TransactionTransform(mappings: [mapping], pipeline: "p").apply(event(Self.logs, before: nil, after: Array(repeating: .null, count: 5)))
                return nil
            } catch {
                return error as? FerryError
            }
        }
        let unknown = failure(TableMapping(tables: "shop.*", columns: ColumnProjection(renameColumns: ["mesage": "text"])))
        #expect(unknown?.code == .configUnknownColumn)
        #expect(unknown?.message == "renamed column 'mesage' of the mapping is not a column of shop.log_2024")
        #expect(unknown?.fix == "columns of shop.log_2024: id, at, message, secret_token, level")
        #expect(unknown?.context.contains { $0 == ("pipeline", "p") } == true)
        #expect(failure(TableMapping(tables: "shop.*", columns: ColumnProjection(key: ["nope"])))?.message == "key column 'nope' of the mapping is not a column of shop.log_2024")
        #expect(failure(TableMapping(tables: "shop.*", columns: ColumnProjection(excludeColumns: ["id"], key: ["id"])))?.code == .configKeyColumnExcluded)
        #expect(failure(TableMapping(tables: "shop.*", columns: ColumnProjection(renameColumns: ["at": "id"])))?.code == .configDuplicateColumn)
    }
}

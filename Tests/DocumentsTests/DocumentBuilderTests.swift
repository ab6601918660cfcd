@testable import Documents
import FerryCore
import Foundation
import Testing

/// Tables in memory, read as the source would.
final class MemoryRows: DocumentRowSource, DocumentRowReader, @unchecked Sendable {
    var tables: [TableName: TableRows] = [:]
    var queries = 0

    func withReader<T: Sendable>(_ body: (any DocumentRowReader) async throws -> T) async throws -> T { try await body(self) }
    func forget(_ table: TableName) async {}

    func schema(of table: TableName) async throws -> TableSchema {
        guard let rows = tables[table] else { throw FerryError(code: .snapshotTableMissing, message: "no \(table)") }
        return rows.schema
    }

    func rows(of table: TableName, where columns: [String], in keys: [[Value]]) async throws -> TableRows {
        queries += 1
        let rows = tables[table]!
        let indices = columns.map { rows.index($0)! }
        return TableRows(schema: rows.schema, rows: rows.rows.filter { row in keys.contains(indices.map { row[$0] }) })
    }

    func add(_ name: String, _ columns: [String], _ rows: [[Value]], key: [Int] = [0]) {
        let table = TableName(database: "shop", table: name)
        tables[table] = TableRows(schema: TableSchema(name: table, columns: columns.map { ColumnSchema(name: $0, typeName: "int", nullable: true) }, primaryKey: key),
                                  rows: rows)
    }
}

@Suite struct DocumentBuilderTests {
    static func table(_ name: String) -> TableName { TableName(database: "shop", table: name) }

    static func rows() -> MemoryRows {
        let rows = MemoryRows()
        rows.add("customer", ["customer_id", "name", "store_id"], [[.int(1), .string("Ada"), .int(10)], [.int(2), .string("Bo"), .int(11)], [.int(3), .string("Cy"), .int(10)]])
        rows.add("store", ["store_id", "address_id"], [[.int(10), .int(100)], [.int(11), .int(101)]])
        rows.add("address", ["address_id", "city"], [[.int(100), .string("Oslo")], [.int(101), .string("Rome")]])
        rows.add("film", ["film_id", "title"], [[.int(7), .string("Up")]])
        rows.add("category", ["category_id", "name"], [[.int(70), .string("Kids")], [.int(71), .string("Art")]])
        rows.add("film_category", ["film_id", "category_id"], [[.int(7), .int(71)], [.int(7), .int(70)]])
        return rows
    }

    static let customers = DocumentDefinition(name: "customer_doc", root: table("customer"), columns: ["customer_id", "name"], joins: [
        DocumentJoin(field: "store", table: table("store"), kind: .one, parentColumns: ["store_id"], childColumns: ["store_id"], columns: [], joins: [
            DocumentJoin(field: "address", table: table("address"), kind: .one, parentColumns: ["address_id"], childColumns: ["address_id"], columns: ["city"], location: "f:4"),
        ], location: "f:3"),
    ], location: "f:1")

    static let films = DocumentDefinition(name: "film_doc", root: table("film"), joins: [
        DocumentJoin(field: "categories", table: table("category"), kind: .many, parentColumns: ["film_id"], childColumns: ["category_id"],
                     through: .init(table: table("film_category"), parentColumns: ["film_id"], childColumns: ["category_id"]), location: "f:8"),
    ], location: "f:7")

    static func transaction(_ table: String, _ operation: ChangeOperation, before: Row?, after: Row?, rows: MemoryRows) -> Transaction {
        let at = SourcePosition.binlog(file: "b.000001", offset: 500)
        let schema = rows.tables[Self.table(table)]!.schema
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: [
            ChangeEvent(operation: operation, table: Self.table(table), schema: schema, before: before, after: after,
                        source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: 0, timestampMillis: 0)),
        ])
    }

    static func documents(_ transaction: Transaction) -> [String] {
        transaction.events.dropFirst().map { event in
            guard let after = event.after, case .json(let text)? = after.last else {
                return "\(event.table.table) \(event.before!.dropLast().map { "\($0)" }.joined(separator: ",")) deleted"
            }
            return "\(event.table.table) \(after.dropLast().map { "\($0)" }.joined(separator: ",")) \(text)"
        }
    }

    /// An address two joins below the root re-renders every customer of every store there.
    @Test func aChangeTwoJoinsDownRendersEveryAffectedRoot() async throws {
        let rows = Self.rows()
        let builder = DocumentBuilder(definitions: [Self.customers, Self.films], source: rows)
        try await builder.validate()
        rows.tables[Self.table("address")]!.rows[0][1] = .string("Bergen")
        let out = try await builder.extend(Self.transaction("address", .update, before: [.int(100), .string("Oslo")], after: [.int(100), .string("Bergen")], rows: rows))
        #expect(Self.documents(out) == [
            "customer_doc int(1) {\"customer_id\":1,\"name\":\"Ada\",\"store\":{\"address\":{\"city\":\"Bergen\"}}}",
            "customer_doc int(3) {\"customer_id\":3,\"name\":\"Cy\",\"store\":{\"address\":{\"city\":\"Bergen\"}}}",
        ])
        #expect(out.events.dropFirst().allSatisfy { $0.source.position == out.position && $0.table == TableName(database: "shop", table: "customer_doc") })
        #expect(Set(out.events.map(\.source.row)).count == out.events.count, "each change keeps its own stable id")
    }

    /// Link rows and the linked table: arrays in the child's key order; a deleted child leaves
    /// its parents' arrays; a deleted root deletes its document.
    @Test func linkTablesChildDeletesAndRootDeletes() async throws {
        let rows = Self.rows()
        let builder = DocumentBuilder(definitions: [Self.customers, Self.films], source: rows)
        var out = try await builder.extend(Self.transaction("film_category", .create, before: nil, after: [.int(7), .int(70)], rows: rows))
        #expect(Self.documents(out) == ["film_doc int(7) {\"film_id\":7,\"title\":\"Up\",\"categories\":[{\"category_id\":70,\"name\":\"Kids\"},{\"category_id\":71,\"name\":\"Art\"}]}"])
        rows.tables[Self.table("category")]!.rows.removeFirst()
        out = try await builder.extend(Self.transaction("category", .delete, before: [.int(70), .string("Kids")], after: nil, rows: rows))
        #expect(Self.documents(out) == ["film_doc int(7) {\"film_id\":7,\"title\":\"Up\",\"categories\":[{\"category_id\":71,\"name\":\"Art\"}]}"])
        rows.tables[Self.table("customer")]!.rows.removeFirst()
        out = try await builder.extend(Self.transaction("customer", .delete, before: [.int(1), .string("Ada"), .int(10)], after: nil, rows: rows))
        #expect(Self.documents(out) == ["customer_doc int(1) deleted"])
        let untouched = Self.transaction("customer", .create, before: nil, after: [.int(9)], rows: rows)
        var other = untouched
        other.events[0].table = TableName(database: "shop", table: "unrelated")
        #expect(try await builder.extend(other).events.count == 1, "a table no document reads adds nothing")
    }

    /// A root with a two-column key and joins on two columns (tenant and id): each tenant's rows
    /// join only their own, a change finds only its tenant's root, and the document's key is both
    /// columns.
    @Test func keysAndJoinsOfSeveralColumns() async throws {
        let rows = MemoryRows()
        rows.add("account", ["tenant", "id", "name"], [[.int(1), .int(5), .string("Ada")], [.int(2), .int(5), .string("Bo")]], key: [0, 1])
        rows.add("invoice", ["tenant", "number", "account_id", "total"],
                 [[.int(1), .int(1), .int(5), .int(30)], [.int(2), .int(1), .int(5), .int(40)], [.int(2), .int(2), .int(5), .null]], key: [0, 1])
        let accounts = DocumentDefinition(name: "account_doc", root: Self.table("account"), joins: [
            DocumentJoin(field: "invoices", table: Self.table("invoice"), kind: .many, parentColumns: ["tenant", "id"], childColumns: ["tenant", "account_id"],
                         columns: ["number", "total"], location: "f:3"),
        ], location: "f:1")
        let builder = DocumentBuilder(definitions: [accounts], source: rows)
        try await builder.validate()
        rows.tables[Self.table("invoice")]!.rows[1][3] = .int(41)
        var out = try await builder.extend(Self.transaction("invoice", .update, before: [.int(2), .int(1), .int(5), .int(40)],
                                                            after: [.int(2), .int(1), .int(5), .int(41)], rows: rows))
        #expect(out.events.dropFirst().map { Array($0.after!.dropLast()) } == [[.int(2), .int(5)]], "only tenant 2's account 5")
        #expect(Self.documents(out) == ["account_doc int(2),int(5) {\"tenant\":2,\"id\":5,\"name\":\"Bo\",\"invoices\":[{\"number\":1,\"total\":41},{\"number\":2,\"total\":null}]}"])
        #expect(out.events[1].schema?.columns.map { $0.name ?? "" } == ["tenant", "id", "document"] && out.events[1].schema?.primaryKey == [0, 1])
        rows.tables[Self.table("account")]!.rows.removeFirst()
        out = try await builder.extend(Self.transaction("account", .delete, before: [.int(1), .int(5), .string("Ada")], after: nil, rows: rows))
        #expect(out.events.count == 2 && out.events[1].operation == .delete && out.events[1].before == [.int(1), .int(5), .null])
    }

    @Test func validationNamesTheLineAndTheColumns() async throws {
        var wrong = Self.customers
        wrong.joins[0].joins[0].childColumns = ["addr_id"]
        do {
            try await DocumentBuilder(definitions: [wrong], source: Self.rows()).validate()
            Issue.record("no error")
        } catch let error as FerryError {
            #expect(error.code == .configDocumentUnknownColumn)
            #expect(error.message == "document customer_doc (f:4) names column 'addr_id', which shop.address does not have")
            #expect(error.fix == "columns of shop.address: address_id, city")
        }
    }
}

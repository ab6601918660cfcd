import FerryCore
@testable import Rules
import Testing

@Suite struct RuleExpressionTests {
    static let schema = TableSchema(name: TableName(database: "shop", table: "orders"),
                                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "status", typeName: "varchar(10)", nullable: true),
                                              ColumnSchema(name: "total", typeName: "decimal(10,2)", nullable: true), ColumnSchema(name: "first", typeName: "varchar(10)", nullable: true),
                                              ColumnSchema(name: "last", typeName: "varchar(10)", nullable: true)],
                                    primaryKey: [0])

    static func event(_ operation: ChangeOperation, _ before: Row?, _ after: Row?) -> ChangeEvent {
        let at = SourcePosition.binlog(file: "b.000001", offset: 100)
        return ChangeEvent(operation: operation, table: schema.name, schema: schema, before: before, after: after,
                           source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: 0, timestampMillis: 0))
    }

    static let paid: Row = [.int(1), .string("paid"), .decimal("12.50"), .string("Ada"), .string("Lovelace")]
    static let open: Row = [.int(1), .string("open"), .null, .string("Ada"), .string("Lovelace")]

    func evaluate(_ text: String, _ event: ChangeEvent) throws -> RuleValue {
        let columns = Dictionary(uniqueKeysWithValues: Self.schema.columns.indices.map { (Self.schema.columnName($0), $0) })
        return try RuleParser.parse(text).evaluate(RuleContext(event: event, columns: columns))
    }

    @Test func conditionsOnOperationTableAndValues() throws {
        let update = Self.event(.update, Self.open, Self.paid)
        #expect(try evaluate("changed(status) and after.status == 'paid' and before.total == null", update) == .bool(true))
        #expect(try evaluate("changed(first)", update) == .bool(false))
        #expect(try evaluate("before.status != \"open\" || op == 'delete'", update) == .bool(false))
        #expect(try evaluate("op == 'update' && table == 'shop.orders'", update) == .bool(true))
        #expect(try evaluate("op == 'u'", update) == .bool(true))
        #expect(try evaluate("total >= 12.5 and total < 13 and not (total > 100)", update) == .bool(true))
        #expect(try evaluate("status", Self.event(.delete, Self.open, nil)) == .text("open"), "a bare column of a delete is its old value")
        #expect(try evaluate("changed(status)", Self.event(.create, nil, Self.paid)) == .bool(true))
        #expect(try evaluate("after.total != null", Self.event(.create, nil, Self.open)) == .bool(false))
    }

    @Test func computedValues() throws {
        let create = Self.event(.create, nil, Self.paid)
        #expect(try evaluate("concat(first, ' ', upper(last))", create) == .text("Ada LOVELACE"))
        #expect(try evaluate("total * 100", create) == .number(1250))
        #expect(try evaluate("id + 41", create) == .integer(42))
        #expect(try evaluate("first + '!'", create) == .text("Ada!"))
        #expect(try evaluate("coalesce(before.status, 'new')", create) == .text("new"))
        #expect(try evaluate("length(last) - 1", create) == .integer(7))
        #expect(try evaluate("total / 0", create) == .null)
    }

    @Test func numbersCompareExactly() throws {
        let wide = TableSchema(name: TableName(database: "shop", table: "ledger"),
                               columns: [ColumnSchema(name: "id", typeName: "bigint unsigned", nullable: false),
                                         ColumnSchema(name: "amount", typeName: "decimal(65,30)", nullable: true),
                                         ColumnSchema(name: "n", typeName: "bigint", nullable: true)],
                               primaryKey: [0])
        let row: Row = [.uint(18_446_744_073_709_551_615), .decimal("-12345678901234567890.000000000000000000000000000001"), .int(9_007_199_254_740_993)]
        let event = ChangeEvent(operation: .create, table: wide.name, schema: wide, before: nil, after: row,
                                source: Self.event(.create, nil, Self.paid).source)
        let columns = ["id": 0, "amount": 1, "n": 2]
        func check(_ text: String) throws -> RuleValue { try RuleParser.parse(text).evaluate(RuleContext(event: event, columns: columns)) }
        #expect(try check("n == 9007199254740992") == .bool(false), "2^53 + 1 is not 2^53 (as doubles they are equal)")
        #expect(try check("n == 9007199254740993 and n > 9007199254740992") == .bool(true))
        #expect(try check("n + 1") == .integer(9_007_199_254_740_994))
        #expect(try check("id == 18446744073709551615 and id > 18446744073709551614") == .bool(true))
        #expect(try check("amount < -12345678901234567890") == .bool(true), "the 1 in the 30th decimal place counts")
        #expect(try check("amount == -12345678901234567890.00000000000000000000000000000100") == .bool(true))
        #expect(try check("amount > -12345678901234567890.000000000000000000000000000002") == .bool(true))
        #expect(try check("n * 9223372036854775807") == .number(9_007_199_254_740_993 * 9_223_372_036_854_775_807.0), "overflow goes to doubles")
        #expect(try evaluate("total == 12.5 and total != 12.51 and total >= -1", Self.event(.create, nil, Self.paid)) == .bool(true))
        #expect(try evaluate("-0.0 == 0", Self.event(.create, nil, Self.paid)) == .bool(true))
        #expect(RuleExpression.literal(.decimal("-12.50")).resultTypeName == "decimal(4,2)")
    }

    @Test func mistakesNameTheirColumn() {
        for (text, message, column) in [("after.status = 'paid'", "'=' compares nothing: write '=='", 14), ("changed(", "changed() takes a column name", 9),
                                        ("status == 'open", "a string is not closed", 11), ("frobnicate(x)", "unknown function 'frobnicate'", 1),
                                        ("a == ", "expected a value, a column or '(' but found the end", 6), ("(a", "expected ')' but found the end", 3)] {
            do {
                _ = try RuleParser.parse(text)
                Issue.record("\(text) parsed")
            } catch {
                #expect(error.message.hasPrefix(message) && error.column == column, "\(text): \(error)")
            }
        }
    }
}

@Suite struct RuleSetTests {
    typealias E = RuleExpressionTests

    func transaction(_ events: [ChangeEvent]) -> Transaction {
        Transaction(gtid: nil, position: events[0].source.position, serverID: 1, timestampMillis: 0, events: events)
    }

    @Test func firstMatchingRuleRoutesDropsOrPassesEachChange() throws {
        let rules = RuleSet(rules: [
            Rule(tables: ["shop.orders"], operations: [.delete], drop: true, location: "f.yml:3"),
            Rule(tables: ["shop.*"], condition: try RuleParser.parse("after.status == 'paid'"), sinks: ["bus"], location: "f.yml:4"),
        ])
        let batch = [transaction([E.event(.create, nil, E.open), E.event(.update, E.open, E.paid), E.event(.delete, E.paid, nil)])]
        let toBus = try rules.apply(batch, sink: "bus")
        let toTable = try rules.apply(batch, sink: "table")
        #expect(toBus[0].events.map(\.operation) == [.create, .update])
        #expect(toTable[0].events.map(\.operation) == [.create], "the paid update goes only to the bus; the delete nowhere")
        #expect(toTable[0].position == batch[0].position)
        let dropped = try rules.apply([transaction([E.event(.delete, E.paid, nil)])], sink: "table")
        #expect(dropped.count == 1 && dropped[0].events.isEmpty, "a transaction keeps its position when all its changes are dropped")
    }

    @Test func computedColumnsAndValueTargetsMoveRows() throws {
        let rules = RuleSet(rules: [
            Rule(tables: ["shop.orders"], target: "shop.orders_{status}",
                 set: [("name", try RuleParser.parse("concat(first, ' ', last)")), ("status", try RuleParser.parse("upper(status)"))], location: "f.yml:3"),
        ])
        let out = try rules.apply([transaction([E.event(.update, E.open, E.paid)])], sink: "s")[0].events
        #expect(out.map(\.operation) == [.delete, .create], "the row leaves orders_open and arrives in orders_paid")
        #expect(out.map(\.table.description) == ["shop.orders_open", "shop.orders_paid"])
        #expect(out[1].schema?.columns.map { $0.name ?? "" } == ["id", "status", "total", "first", "last", "name"])
        #expect(out[1].schema?.columns.last?.typeName == "text" && out[1].schema?.name.table == "orders_paid")
        #expect(out[1].after == [.int(1), .string("PAID"), .decimal("12.50"), .string("Ada"), .string("Lovelace"), .string("Ada Lovelace")])
        #expect(out[0].before?[1] == .string("OPEN"), "the old image is computed from the old values")
        let unsplit = try rules.apply([transaction([E.event(.update, E.paid, E.paid)])], sink: "s")[0].events[0]
        #expect(Set(out.map(\.stableID) + [unsplit.stableID]).count == 3, "each part of a split change has an id of its own")
        #expect(out.map { String($0.stableID.split(separator: ":").last ?? "") } == ["0.1", "0.2"])
        #expect(unsplit.stableID.hasSuffix(":0"), "a change that is not split keeps the source's id")
        let again = try rules.apply([transaction([E.event(.delete, E.open, nil)])], sink: "s")[0].events[0]
        #expect(out[0].schema === again.schema, "schemas are built once")
    }

    @Test func aRuleProjectsAndRenamesTheColumnsOfTheChangesItMatches() throws {
        let rules = RuleSet(rules: [
            Rule(tables: ["shop.orders"], condition: try RuleParser.parse("status == 'paid'"),
                 set: [("name", try RuleParser.parse("concat(first, ' ', last)"))],
                 columns: ColumnProjection(includeColumns: ["id", "total", "name"], renameColumns: ["total": "amount", "name": "customer"]), location: "f.yml:3"),
            Rule(tables: ["shop.*"], columns: ColumnProjection(excludeColumns: ["f*", "l*"]), location: "f.yml:7"),
        ], pipeline: "main")
        let out = try rules.apply([transaction([E.event(.create, nil, E.paid), E.event(.update, E.paid, E.open)])], sink: "s")[0].events
        #expect(out[0].schema?.columns.map { $0.name ?? "" } == ["id", "amount", "customer"])
        #expect(out[0].schema?.primaryKey == [0])
        #expect(out[0].after == [.int(1), .decimal("12.50"), .string("Ada Lovelace")])
        #expect(out[1].schema?.columns.map { $0.name ?? "" } == ["id", "status", "total"], "an update leaving 'paid' meets the second rule")
        #expect(out[1].before == [.int(1), .string("paid"), .decimal("12.50")] && out[1].after == [.int(1), .string("open"), .null])

        let keyless = failure(Rule(tables: ["shop.orders"], columns: ColumnProjection(excludeColumns: ["id"]), location: "ferry.yml:9"))
        #expect(keyless?.code == .configKeyColumnExcluded)
        #expect(keyless?.message == "column 'id' identifies rows of shop.orders but the rule at ferry.yml:9 leaves it out")
        let misspelt = failure(Rule(tables: ["shop.orders"], columns: ColumnProjection(renameColumns: ["totl": "amount"]), location: "ferry.yml:4"))
        #expect(misspelt?.message == "the rule at ferry.yml:4 names column 'totl', which shop.orders does not have")
        let everyTable = RuleSet(rules: [Rule(columns: ColumnProjection(renameColumns: ["total": "amount", "email": "mail"]), location: "ferry.yml:5")])
        let renamed = try everyTable.apply([transaction([E.event(.create, nil, E.paid)])], sink: "s")[0].events[0]
        #expect(renamed.schema?.columns.map { $0.name ?? "" } == ["id", "status", "amount", "first", "last"], "a rule for every table renames what a table has")
    }

    @Test func aRuleNamingAnUnknownColumnIsAnErrorWithItsLine() throws {
        let error = failure(Rule(tables: ["shop.orders"], condition: try RuleParser.parse("after.stauts == 'paid'"), drop: true, location: "ferry.yml:12"))
        #expect(error?.code == .configRuleUnknownColumn)
        #expect(error?.message == "the rule at ferry.yml:12 names column 'stauts', which shop.orders does not have")
        #expect(error?.fix == "columns of shop.orders: id, status, total, first, last")
    }

    /// The error `rule` raises on an insert into shop.orders.
    func failure(_ rule: Rule) -> FerryError? {
        do {
            _ = try RuleSet(rules: [rule], pipeline: "main").apply([transaction([E.event(.create, nil, E.paid)])], sink: "s")
            return nil
        } catch {
            return error as? FerryError
        }
    }
}

import FerryCore
import Foundation

/// One `rules:` entry of a pipeline: which changes it matches and what it does with them.
public struct Rule: Sendable {
    /// `db.table` globs; empty matches every table.
    public var tables: [String]
    /// Empty matches every operation (DDL is never matched).
    public var operations: Set<ChangeOperation>
    public var condition: RuleExpression?
    /// Drop the change (for the sinks in `sinks`, or for all when `sinks` is nil).
    public var drop: Bool
    /// Only these sinks get the change; nil: every sink.
    public var sinks: [String]?
    /// The table the change lands in: `db.table` or `table` (same database), with `{db}`,
    /// `{table}` and `{column}` placeholders — so a sink's per-table naming (target table, index,
    /// key template, subject) follows.
    public var target: String?
    /// Computed columns, in order (an existing column of the name is replaced).
    public var set: [(name: String, expression: RuleExpression)]
    /// Columns kept, left out and renamed, after `set` (the key columns must stay).
    public var columns: ColumnProjection
    /// `file:line` of the rule, for errors.
    public var location: String

    public init(tables: [String] = [], operations: Set<ChangeOperation> = [], condition: RuleExpression? = nil, drop: Bool = false,
                sinks: [String]? = nil, target: String? = nil, set: [(name: String, expression: RuleExpression)] = [],
                columns: ColumnProjection = ColumnProjection(), location: String) {
        self.tables = tables
        self.operations = operations
        self.condition = condition
        self.drop = drop
        self.sinks = sinks
        self.target = target
        self.set = set
        self.columns = columns
        self.location = location
    }

    /// Whether the rule changes what a matching change looks like (not only where it goes).
    public var reshapes: Bool { target != nil || !set.isEmpty || !columns.isEmpty }

    /// Source columns the rule names (condition, computed values, target placeholders, renames).
    var namedColumns: Set<String> {
        var names = condition?.columns ?? []
        for computed in set { names.formUnion(computed.expression.columns) }
        names.formUnion(Self.placeholders(target ?? "").filter { $0 != "db" && $0 != "table" })
        names.formUnion(Set(columns.renameColumns.keys).subtracting(set.map(\.name)))
        return names
    }

    static func placeholders(_ template: String) -> [String] {
        var names: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}

/// A pipeline's rules, applied to each batch a sink is about to write: the first rule that
/// matches a change decides what happens to it; a change no rule matches goes on unchanged.
/// Transactions keep their positions even when every change in them is dropped.
public final class RuleSet: @unchecked Sendable {
    public let rules: [Rule]
    public let pipeline: String
    private let lock = NSLock()
    /// Per (source schema, rule, target): the schema changes of that rule carry and the rule's
    /// projection (nil: every column), built once. The source schema is kept so its identifier is
    /// not reused.
    private var schemas: [SchemaKey: (source: TableSchema, shaped: TableSchema, projection: ColumnProjection.Shape?)] = [:]
    /// Source schemas whose columns were checked against the rules that match their table.
    private var checked: [ObjectIdentifier: TableSchema] = [:]

    private struct SchemaKey: Hashable {
        var schema: ObjectIdentifier
        var rule: Int
        var table: TableName
    }

    public init(rules: [Rule] = [], pipeline: String = "") {
        self.rules = rules
        self.pipeline = pipeline
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// The batch as `sink` should write it.
    public func apply(_ transactions: [Transaction], sink: String) throws -> [Transaction] {
        guard !rules.isEmpty else { return transactions }
        return try transactions.map { transaction in
            var shaped = transaction
            shaped.events = []
            shaped.events.reserveCapacity(transaction.events.count)
            for event in transaction.events {
                try apply(event, sink: sink, into: &shaped.events)
            }
            return shaped
        }
    }

    private func apply(_ event: ChangeEvent, sink: String, into out: inout [ChangeEvent]) throws {
        guard event.operation != .ddl, let schema = event.schema else { return out.append(event) }
        let columns = try check(schema)
        let context = RuleContext(event: event, columns: columns)
        guard let index = rules.indices.first(where: { matches(rules[$0], event, context) }) else { return out.append(event) }
        let rule = rules[index]
        if let sinks = rule.sinks, !sinks.contains(sink) { return }
        if rule.drop { return }
        guard rule.reshapes else { return out.append(event) }
        // A change whose target depends on values it changed moves the row: a delete where it was,
        // a create where it is now.
        let targetBefore = event.before.map { _ in target(rule, event, side: .before, columns) }
        let targetAfter = event.after.map { _ in target(rule, event, side: .after, columns) }
        if event.operation == .update, let from = targetBefore, let to = targetAfter, from != to {
            let (removal, arrival) = event.splitIntoRemovalAndArrival
            out.append(try reshape(removal, rule: index, table: from, columns: columns))
            out.append(try reshape(arrival, rule: index, table: to, columns: columns))
            return
        }
        out.append(try reshape(event, rule: index, table: targetAfter ?? targetBefore ?? event.table, columns: columns))
    }

    private func matches(_ rule: Rule, _ event: ChangeEvent, _ context: RuleContext) -> Bool {
        if !rule.operations.isEmpty, !rule.operations.contains(event.operation) { return false }
        if !rule.tables.isEmpty, !rule.tables.contains(where: { TableGlob.matches($0, event.table.description) }) { return false }
        return rule.condition?.evaluate(context).isTrue ?? true
    }

    private func target(_ rule: Rule, _ event: ChangeEvent, side: RuleExpression.Side, _ columns: [String: Int]) -> TableName {
        guard let template = rule.target else { return event.table }
        var name = template
        for placeholder in Rule.placeholders(template) {
            let value: String
            switch placeholder {
            case "db": value = event.table.database
            case "table": value = event.table.table
            default: value = RuleValue(RuleContext(event: event, columns: columns).value(side, placeholder)).text ?? "null"
            }
            name = name.replacingOccurrences(of: "{\(placeholder)}", with: value)
        }
        guard let dot = name.firstIndex(of: ".") else { return TableName(database: event.table.database, table: name) }
        return TableName(database: String(name[..<dot]), table: String(name[name.index(after: dot)...]))
    }

    /// The change with the rule's computed columns, projection and target table.
    private func reshape(_ event: ChangeEvent, rule index: Int, table: TableName, columns: [String: Int]) throws -> ChangeEvent {
        let rule = rules[index]
        let source = event.schema!
        let shaped = try shapedSchema(source, rule: index, table: table)
        var out = event
        out.table = table
        out.schema = shaped.shaped
        func computed(_ row: Row?, side: RuleExpression.Side) -> Row? {
            guard var row else { return nil }
            if !rule.set.isEmpty {
                var sided = event
                // A computed value of the old image reads the old image.
                if side == .before { sided.after = nil }
                let context = RuleContext(event: sided, columns: columns)
                for (name, expression) in rule.set {
                    let value = expression.evaluate(context).columnValue
                    if let existing = columns[name] { row[existing] = value } else { row.append(value) }
                }
            }
            return shaped.projection?.project(row) ?? row
        }
        out.before = computed(event.before, side: .before)
        out.after = computed(event.after, side: .after)
        return out
    }

    private func shapedSchema(_ source: TableSchema, rule: Int, table: TableName) throws -> (source: TableSchema, shaped: TableSchema, projection: ColumnProjection.Shape?) {
        let key = SchemaKey(schema: ObjectIdentifier(source), rule: rule, table: table)
        lock.lock()
        defer { lock.unlock() }
        if let known = schemas[key] { return known }
        var columns = source.columns
        let names = Set(source.columns.indices.map { source.columnName($0) })
        for (name, expression) in rules[rule].set where !names.contains(name) {
            columns.append(ColumnSchema(name: name, typeName: expression.resultTypeName, nullable: true))
        }
        let computed = TableSchema(name: table, columns: columns, primaryKey: source.primaryKey)
        var projection: ColumnProjection.Shape? = nil
        if !rules[rule].columns.isEmpty {
            // A rule for every table renames the columns a table has (`check` refused unknown
            // names for rules that list their tables).
            var columnsOfRule = rules[rule].columns
            columnsOfRule.renameColumns = columnsOfRule.renameColumns.filter { name, _ in columns.contains { $0.name == name } }
            projection = try columnsOfRule.shape(computed, pipeline: pipeline, origin: "the rule at \(rules[rule].location)")
        }
        let entry = (source, projection?.schema ?? computed, projection)
        schemas[key] = entry
        return entry
    }

    /// Column name → index for `schema`, after checking that every rule matching its table names
    /// only columns it has.
    private func check(_ schema: TableSchema) throws -> [String: Int] {
        let columns = Dictionary(schema.columns.indices.map { (schema.columnName($0), $0) }, uniquingKeysWith: { first, _ in first })
        lock.lock()
        let known = checked[ObjectIdentifier(schema)] != nil
        lock.unlock()
        if known { return columns }
        for rule in rules where rule.tables.isEmpty || rule.tables.contains(where: { TableGlob.matches($0, schema.name.description) }) {
            // A rule for every table may name columns only some tables have: it simply does not match the others.
            guard !rule.tables.isEmpty else { continue }
            if let unknown = rule.namedColumns.subtracting(columns.keys).sorted().first {
                throw FerryError(code: .configRuleUnknownColumn,
                                 message: "the rule at \(rule.location) names column '\(unknown)', which \(schema.name) does not have",
                                 context: [("pipeline", pipeline), ("table", schema.name.description), ("rule", rule.location)],
                                 fix: "columns of \(schema.name): \(schema.columns.indices.map { schema.columnName($0) }.joined(separator: ", "))")
            }
        }
        lock.lock()
        checked[ObjectIdentifier(schema)] = schema
        lock.unlock()
        return columns
    }
}

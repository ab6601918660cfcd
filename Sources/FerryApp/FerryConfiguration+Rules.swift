import FerryCore
import Rules
import Yams

extension ConfigReader {
    /// `rules:` — a list of `{ tables, ops, when, drop, sinks, target, set, columns,
    /// exclude_columns, rename_columns }`, first match wins
    /// (docs/rules.md). Expressions are parsed here, so a mistake names its file, line and column.
    func rules(_ node: Node, _ path: String) throws -> [Rule] {
        guard let sequence = node.sequence else { throw error(node, path, "expected a list of rules", fix: "rules:\n  - { tables: [\"shop.orders\"], when: \"after.status == 'paid'\", sinks: [bus] }") }
        return try sequence.enumerated().map { index, entry in
            let rulePath = "\(path)[\(index)]"
            var rule = Rule(location: entry.mark.map { "\(file):\($0.line)" } ?? file)
            for field in try mapping(entry, rulePath, allowed: ["tables", "ops", "when", "drop", "sinks", "target", "set"] + Self.projectionFields) {
                let key = "\(rulePath).\(field.key)"
                switch field.key {
                case "tables": rule.tables = try strings(field.node, key)
                case "ops":
                    for name in try strings(field.node, key) {
                        guard let operation = Self.operations[name] else {
                            throw error(field.node, key, "unknown operation '\(name)'", fix: "use create, update, delete or read (snapshot rows)")
                        }
                        rule.operations.insert(operation)
                    }
                case "when": rule.condition = try expression(field.node, key)
                case "drop": rule.drop = try string(field.node, key) == "true"
                case "sinks": rule.sinks = try strings(field.node, key)
                case "target": rule.target = try string(field.node, key)
                case "set":
                    for computed in try mapping(field.node, key, allowed: []) {
                        rule.set.append((computed.key, try expression(computed.node, "\(key).\(computed.key)")))
                    }
                default: try projectionField(field.key, field.node, key, into: &rule.columns)
                }
            }
            guard rule.drop || rule.sinks != nil || rule.reshapes else {
                throw error(entry, rulePath, "the rule does nothing",
                            fix: "give it drop: true, sinks: [...], target: \"db.table\", set: { column: expression }, columns: [...], exclude_columns: [...] or rename_columns: { old: new }")
            }
            return rule
        }
    }

    static let operations: [String: ChangeOperation] = ["create": .create, "insert": .create, "update": .update, "delete": .delete, "read": .read]

    private func expression(_ node: Node, _ path: String) throws -> RuleExpression {
        let text = try string(node, path)
        do {
            return try RuleParser.parse(text)
        } catch {
            let line = node.mark.map { "\(file):\($0.line)" } ?? file
            throw FerryError(code: .configInvalid, message: "\(line): \(path): \(error.message) at column \(error.column) of \"\(text)\"",
                             fix: "conditions look like: changed(status) and after.status == 'paid' and before.total != null")
        }
    }
}

import FerryCore
import MySQLWire

/// The SQL that splits a table into key ranges and reads one range, for any key: one column or
/// several, of any orderable type. Bounds are SQL literals of the key's values.
struct ChunkQueries {
    let table: SnapshotTable

    /// `(k1, k2) > (a, b)` spelled so that every server uses the key's index for it.
    static func after(_ columns: [String], _ bounds: [String]) -> String {
        compare(columns, bounds, last: ">")
    }

    /// `(k1, k2) <= (a, b)`.
    static func atOrBefore(_ columns: [String], _ bounds: [String]) -> String {
        compare(columns, bounds, last: "<=")
    }

    private static func compare(_ columns: [String], _ bounds: [String], last: String) -> String {
        let strict = last == ">" ? ">" : "<"
        var alternatives: [String] = []
        for position in columns.indices {
            var parts = (0..<position).map { "\(columns[$0]) = \(bounds[$0])" }
            parts.append("\(columns[position]) \(position == columns.count - 1 ? last : strict) \(bounds[position])")
            alternatives.append(parts.joined(separator: " AND "))
        }
        return alternatives.count == 1 ? alternatives[0] : "(" + alternatives.map { "(\($0))" }.joined(separator: " OR ") + ")"
    }

    private func range(lower: [String]?, upper: [String]?) -> String {
        let columns = table.quotedKeyColumns
        var conditions: [String] = []
        if let lower { conditions.append(Self.after(columns, lower)) }
        if let upper { conditions.append(Self.atOrBefore(columns, upper)) }
        return conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    }

    private var order: String {
        table.keyColumns.isEmpty ? "" : " ORDER BY " + table.quotedKeyColumns.joined(separator: ", ")
    }

    /// The key of the `rows`-th row after `lower`: the next chunk's upper bound.
    func boundary(after lower: [String]?, rows: Int) -> String {
        "SELECT \(table.quotedKeyColumns.joined(separator: ", ")) FROM \(table.quotedName)\(range(lower: lower, upper: nil))\(order) LIMIT 1 OFFSET \(max(0, rows - 1))"
    }

    /// Every row of the range, in key order.
    func read(lower: [String]?, upper: [String]?) -> String {
        "SELECT \(table.selectList) FROM \(table.quotedName)\(range(lower: lower, upper: upper))\(order)"
    }

    /// Exactly the rows with these keys (literals in key order).
    func read(keys: [[String]]) -> String {
        let columns = table.quotedKeyColumns
        let condition: String
        if columns.count == 1 {
            condition = "\(columns[0]) IN (" + keys.map { $0[0] }.joined(separator: ", ") + ")"
        } else {
            condition = "(" + columns.joined(separator: ", ") + ") IN (" + keys.map { "(" + $0.joined(separator: ", ") + ")" }.joined(separator: ", ") + ")"
        }
        return "SELECT \(table.selectList) FROM \(table.quotedName) WHERE \(condition)\(order)"
    }

    /// A literal made by `literals` back as a value: numbers, quoted text, hex bytes.
    static func value(ofLiteral literal: String) -> Value {
        if literal == "NULL" { return .null }
        if let number = Int64(literal) { return .int(number) }
        if let number = UInt64(literal) { return .uint(number) }
        if literal.hasPrefix("X'"), literal.hasSuffix("'") { return .bytes(HexBytes.decode(literal.dropFirst(2).dropLast())) }
        if literal.hasPrefix("'"), literal.hasSuffix("'"), literal.count >= 2 {
            var text = ""
            var escaped = false
            for character in literal.dropFirst().dropLast() {
                if escaped {
                    switch character {
                    case "0": text.append("\0")
                    case "n": text.append("\n")
                    case "r": text.append("\r")
                    case "Z": text.append("\u{1A}")
                    default: text.append(character)
                    }
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else {
                    text.append(character)
                }
            }
            return .string(text)
        }
        return .decimal(literal)
    }

    /// A key's text, equal for equal keys whatever value kinds carry them (a repair's keys come
    /// back from targets as numbers or text).
    static func canonicalKey(_ key: [Value]) -> String {
        literals(key).map { literal in
            switch value(ofLiteral: literal) {
            case .int(let number): String(number)
            case .uint(let number): String(number)
            case .string(let text), .decimal(let text): text
            case .bytes(let bytes): "0x" + bytes.map { String($0, radix: 16) }.joined(separator: ".")
            default: literal
            }
        }.joined(separator: "\u{1}")
    }

    /// Key values as SQL literals.
    static func literals(_ key: [Value]) -> [String] { MySQLLiteral.literals(key) }
}

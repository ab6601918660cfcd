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

    /// The keys of the `rows`-th row after `lower` (the next chunk's upper bound) and of the row
    /// after it, when there are such rows.
    func boundary(after lower: [String]?, rows: Int) -> String {
        "SELECT \(table.quotedKeyColumns.joined(separator: ", ")) FROM \(table.quotedName)\(range(lower: lower, upper: nil))\(order) LIMIT 2 OFFSET \(max(0, rows - 1))"
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

    /// Key values as SQL literals.
    static func literals(_ key: [Value]) -> [String] { MySQLLiteral.literals(key) }
}

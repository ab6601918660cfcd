import Documents
import FerryCore
import MySQLSource
import Yams

extension ConfigReader {
    /// `documents:` — per document name a root table and its joins (docs/documents.md).
    func documents(_ node: Node, _ path: String) throws -> [DocumentDefinition] {
        try mapping(node, path, allowed: []).map { entry in
            let documentPath = "\(path).\(entry.key)"
            var definition = DocumentDefinition(name: entry.key, root: TableName(database: "", table: ""), location: location(entry.keyNode))
            var hasRoot = false
            for field in try mapping(entry.node, documentPath, allowed: ["root", "columns", "join"]) {
                let key = "\(documentPath).\(field.key)"
                switch field.key {
                case "root":
                    definition.root = try tableName(field.node, key, database: nil)
                    hasRoot = true
                case "columns": definition.columns = try strings(field.node, key)
                default: break
                }
            }
            guard hasRoot else { throw error(entry.node, "\(documentPath).root", "missing root", fix: "root: db.table (the table with one row per document)") }
            if let joins = try mapping(entry.node, documentPath, allowed: []).first(where: { $0.key == "join" }) {
                definition.joins = try self.joins(joins.node, "\(documentPath).join", database: definition.root.database)
            }
            return definition
        }
    }

    private func joins(_ node: Node, _ path: String, database: String) throws -> [DocumentJoin] {
        try mapping(node, path, allowed: []).map { entry in
            let joinPath = "\(path).\(entry.key)"
            let fields = try mapping(entry.node, joinPath, allowed: ["table", "kind", "on", "through", "columns", "join"])
            func value(_ key: String) -> Node? { fields.first { $0.key == key }?.node }
            guard let tableNode = value("table") else { throw error(entry.node, "\(joinPath).table", "missing table", fix: "table: db.table") }
            guard let onNode = value("on") else {
                throw error(entry.node, "\(joinPath).on", "missing on",
                            fix: "on: { PARENT_COLUMN: CHILD_COLUMN } (with through: the link table's column; several pairs join on all of them)")
            }
            let table = try tableName(tableNode, "\(joinPath).table", database: database)
            let (parentColumns, onChild) = try pairs(onNode, "\(joinPath).on")
            var through: DocumentJoin.Through?
            var childColumns = onChild
            if let throughNode = value("through") {
                let throughFields = try mapping(throughNode, "\(joinPath).through", allowed: ["table", "to"])
                guard let linkTable = throughFields.first(where: { $0.key == "table" }), let to = throughFields.first(where: { $0.key == "to" }) else {
                    throw error(throughNode, "\(joinPath).through", "a link table needs table and to",
                                fix: "through: { table: db.link, to: { LINK_COLUMN: CHILD_COLUMN } }, with on: { PARENT_COLUMN: LINK_COLUMN }")
                }
                let (linkChild, child) = try pairs(to.node, "\(joinPath).through.to")
                through = DocumentJoin.Through(table: try tableName(linkTable.node, "\(joinPath).through.table", database: database),
                                               parentColumns: onChild, childColumns: linkChild)
                childColumns = child
            }
            var kind: DocumentJoin.Kind = through == nil ? .one : .many
            if let kindNode = value("kind") {
                let text = try string(kindNode, "\(joinPath).kind")
                guard let parsed = DocumentJoin.Kind(rawValue: text) else {
                    throw error(kindNode, "\(joinPath).kind", "unknown kind '\(text)'", fix: "use one (many-to-one, one-to-one) or many (one-to-many, link tables)")
                }
                kind = parsed
            }
            return DocumentJoin(field: entry.key, table: table, kind: kind, parentColumns: parentColumns, childColumns: childColumns, through: through,
                                columns: try value("columns").map { try strings($0, "\(joinPath).columns") },
                                joins: try value("join").map { try joins($0, "\(joinPath).join", database: table.database) } ?? [],
                                location: location(entry.keyNode))
        }
    }

    /// `{ a: x, b: y }` → ([a, b], [x, y]), in the order written.
    private func pairs(_ node: Node, _ path: String) throws -> ([String], [String]) {
        let entries = try mapping(node, path, allowed: [])
        guard !entries.isEmpty else { throw error(node, path, "expected pairs of columns", fix: "{ PARENT_COLUMN: CHILD_COLUMN, … }") }
        return (entries.map(\.key), try entries.map { try string($0.node, "\(path).\($0.key)") })
    }

    /// `db.table`, or `table` in `database`.
    private func tableName(_ node: Node, _ path: String, database: String?) throws -> TableName {
        let text = try string(node, path)
        let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2 { return TableName(database: parts[0], table: parts[1]) }
        guard let database, parts.count == 1 else { throw error(node, path, "'\(text)' is not db.table") }
        return TableName(database: database, table: parts[0])
    }

    private func location(_ node: Node) -> String {
        node.mark.map { "\(file):\($0.line)" } ?? file
    }
}

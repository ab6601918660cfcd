import FerryCore
import Foundation

/// Keeps joined documents current: after each transaction's own changes it adds, per document
/// definition, a change for every document the transaction affects — a change to any joined row
/// at any depth finds its roots by walking the joins upwards on the source, and each affected
/// document is rendered again from the source's current rows (a root that is gone becomes a
/// delete). Rendering reads the source as it is now, which may be ahead of the transaction; a
/// later change renders again, so each document ends equal to the join evaluated on the source.
/// Replays render again too: the changes are whole documents, harmless to repeat.
public struct DocumentBuilder: Sendable {
    /// A row's values of some columns: a join key or a root's primary key.
    typealias Key = [Value]

    public let definitions: [DocumentDefinition]
    let source: any DocumentRowSource
    private let trees: [Tree]
    private let watched: Set<TableName>
    private let schemas = DocumentSchemas()

    /// A table's place in a definition; `nodes[0]` is the root.
    struct Node: Sendable {
        let table: TableName
        /// How it joins its parent; nil for the root.
        let join: DocumentJoin?
        let parent: Int?
        var children: [Int] = []
        let columns: [String]?
    }

    struct Tree: Sendable {
        let definition: DocumentDefinition
        var nodes: [Node]
    }

    public init(definitions: [DocumentDefinition], source: any DocumentRowSource) {
        self.definitions = definitions
        self.source = source
        self.watched = Set(definitions.flatMap(\.tables))
        self.trees = definitions.map { definition in
            var tree = Tree(definition: definition, nodes: [Node(table: definition.root, join: nil, parent: nil, columns: definition.columns)])
            func add(_ joins: [DocumentJoin], under parent: Int) {
                for join in joins {
                    tree.nodes.append(Node(table: join.table, join: join, parent: parent, columns: join.columns))
                    let index = tree.nodes.count - 1
                    tree.nodes[parent].children.append(index)
                    add(join.joins, under: index)
                }
            }
            add(definition.joins, under: 0)
            return tree
        }
    }

    /// Checks every table and column a definition names against the source; the error names the
    /// definition's `file:line`.
    public func validate() async throws {
        try await source.withReader { reader in
            for tree in trees {
                let definition = tree.definition
                func check(_ table: TableName, _ columns: [String], at location: String) async throws -> TableSchema {
                    let schema: TableSchema
                    do {
                        schema = try await reader.schema(of: table)
                    } catch let error as FerryError where error.code != .sourcePostgresUnreachable {
                        // Only what the source says about the table; a lost connection stays
                        // what it is, so the start waits for the source instead of blaming the file.
                        throw FerryError(code: .configDocumentUnknownTable,
                                         message: "document \(definition.name) (\(location)) joins \(table), which the source cannot describe: \(error)",
                                         context: [("table", table.description)], fix: "check the table's name in documents.\(definition.name)")
                    }
                    let names = schema.columns.indices.map { schema.columnName($0) }
                    if let unknown = columns.first(where: { !names.contains($0) }) {
                        throw FerryError(code: .configDocumentUnknownColumn,
                                         message: "document \(definition.name) (\(location)) names column '\(unknown)', which \(table) does not have",
                                         context: [("table", table.description)], fix: "columns of \(table): \(names.joined(separator: ", "))")
                    }
                    return schema
                }
                let root = try await check(definition.root, definition.columns ?? [], at: definition.location)
                guard !root.primaryKey.isEmpty else {
                    throw FerryError(code: .configDocumentRootKey, message: "document \(definition.name) (\(definition.location)): its root \(definition.root) has no primary key",
                                     context: [("table", definition.root.description)], fix: "use a root table with a primary key: it identifies each document")
                }
                for node in tree.nodes.dropFirst() {
                    let join = node.join!
                    let parent = tree.nodes[node.parent!]
                    _ = try await check(parent.table, join.parentColumns, at: join.location)
                    _ = try await check(join.table, join.childColumns + (join.columns ?? []), at: join.location)
                    if let through = join.through { _ = try await check(through.table, through.parentColumns + through.childColumns, at: join.location) }
                }
            }
        }
    }

    /// `transaction` with a change per document it affects appended.
    public func extend(_ transaction: Transaction) async throws -> Transaction {
        var touched = false
        for event in transaction.events where watched.contains(event.table) {
            if event.operation == .ddl {
                await source.forget(event.table)
            } else {
                touched = true
            }
        }
        guard touched else { return transaction }
        let documents = try await source.withReader { reader in
            var out: [(DocumentDefinition, TableSchema, Key, [UInt8]?)] = []
            for tree in trees {
                let keys = try await affectedRoots(tree, transaction, reader)
                guard !keys.isEmpty else { continue }
                let (schema, rendered) = try await render(tree, keys: keys, reader)
                for key in keys.sorted(by: Self.order) { out.append((tree.definition, schema, key, rendered[key])) }
            }
            return out
        }
        var extended = transaction
        var row = transaction.events.count
        for (definition, rootSchema, key, document) in documents {
            let schema = schemas.schema(definition, root: rootSchema)
            let source = ChangeSource(name: transaction.events.first?.source.name ?? "", serverID: transaction.serverID, gtid: transaction.gtid,
                                      position: transaction.position, row: row, timestampMillis: transaction.timestampMillis)
            row += 1
            if let document {
                extended.events.append(ChangeEvent(operation: .create, table: definition.table, schema: schema, before: nil,
                                                   after: key + [.json(String(decoding: document, as: UTF8.self))], source: source))
            } else {
                extended.events.append(ChangeEvent(operation: .delete, table: definition.table, schema: schema, before: key + [.null], after: nil, source: source))
            }
        }
        return extended
    }

    // MARK: Walking up

    private func affectedRoots(_ tree: Tree, _ transaction: Transaction, _ reader: any DocumentRowReader) async throws -> Set<Key> {
        var keys = Set<Key>()
        for event in transaction.events where event.operation != .ddl && watched.contains(event.table) {
            guard let schema = event.schema else { continue }
            let rows = TableRows(schema: schema, rows: [event.before, event.after].compactMap { $0 })
            for (index, node) in tree.nodes.enumerated() {
                if node.table == event.table { keys.formUnion(try await roots(of: index, rows, tree, reader)) }
                if let through = node.join?.through, through.table == event.table, let parent = node.parent {
                    // A link row changed: its parent side names the parents to render again.
                    let values = Self.keys(rows, through.parentColumns)
                    guard !values.isEmpty else { continue }
                    let parents = try await reader.rows(of: tree.nodes[parent].table, where: node.join!.parentColumns, in: values)
                    keys.formUnion(try await roots(of: parent, parents, tree, reader))
                }
            }
        }
        return keys
    }

    /// The root keys whose documents contain `rows` of node `index`.
    private func roots(of index: Int, _ rows: TableRows, _ tree: Tree, _ reader: any DocumentRowReader) async throws -> Set<Key> {
        let node = tree.nodes[index]
        guard let join = node.join, let parent = node.parent else {
            let primaryKey = rows.schema.primaryKey
            guard !primaryKey.isEmpty else { return [] }
            return Set(rows.rows.compactMap { Self.key($0, primaryKey) })
        }
        var values = Self.keys(rows, join.childColumns)
        if let through = join.through, !values.isEmpty {
            values = Self.keys(try await reader.rows(of: through.table, where: through.childColumns, in: values), through.parentColumns)
        }
        guard !values.isEmpty else { return [] }
        return try await roots(of: parent, try await reader.rows(of: tree.nodes[parent].table, where: join.parentColumns, in: values), tree, reader)
    }

    // MARK: Rendering

    /// Each existing root's document as JSON, by key; the root table's schema.
    private func render(_ tree: Tree, keys: Set<Key>, _ reader: any DocumentRowReader) async throws -> (TableSchema, [Key: [UInt8]]) {
        let rootSchema = try await reader.schema(of: tree.definition.root)
        let roots = try await reader.rows(of: tree.definition.root, where: rootSchema.primaryKey.map(rootSchema.columnName), in: Array(keys))
        let objects = try await objects(0, roots, tree, reader)
        var out: [Key: [UInt8]] = [:]
        for (row, object) in zip(roots.rows, objects) {
            if let key = Self.key(row, roots.schema.primaryKey) { out[key] = object }
        }
        return (rootSchema, out)
    }

    /// `rows` of node `index` as JSON objects, with their joins, in order.
    private func objects(_ index: Int, _ rows: TableRows, _ tree: Tree, _ reader: any DocumentRowReader) async throws -> [[UInt8]] {
        let node = tree.nodes[index]
        var fields: [[(String, [UInt8])]] = rows.rows.map { row in
            rows.schema.columns.indices.compactMap { column in
                let name = rows.schema.columnName(column)
                if let wanted = node.columns, !wanted.contains(name) { return nil }
                if case .absent = row[column] { return nil }
                var value: [UInt8] = []
                ValueJSON.append(row[column], to: &value)
                return (name, value)
            }
        }
        for childIndex in node.children {
            let join = tree.nodes[childIndex].join!
            let parentColumns = Self.indices(rows, join.parentColumns)
            let parentKeys = rows.rows.map { row in parentColumns.flatMap { Self.key(row, $0) } }
            let wanted = Array(Set(parentKeys.compactMap { $0 }))
            // Per parent key, the child-side keys it links to (itself without a link table).
            var linked: [Key: Set<Key>] = [:]
            var childKeys = wanted
            if let through = join.through, !wanted.isEmpty {
                let links = try await reader.rows(of: through.table, where: through.parentColumns, in: wanted)
                if let from = Self.indices(links, through.parentColumns), let to = Self.indices(links, through.childColumns) {
                    for link in links.rows {
                        if let parent = Self.key(link, from), let child = Self.key(link, to) { linked[parent, default: []].insert(child) }
                    }
                }
                childKeys = Array(Set(linked.values.flatMap { $0 }))
            }
            let children = childKeys.isEmpty ? TableRows(schema: rows.schema, rows: []) : try await reader.rows(of: join.table, where: join.childColumns, in: childKeys)
            let childObjects = children.rows.isEmpty ? [] : try await objects(childIndex, children, tree, reader)
            // Child rows by key, in their (key) order, so each parent looks up its own.
            var childrenByKey: [Key: [Int]] = [:]
            if let childColumns = Self.indices(children, join.childColumns) {
                for (position, child) in children.rows.enumerated() {
                    if let key = Self.key(child, childColumns) { childrenByKey[key, default: []].append(position) }
                }
            }
            for (parent, key) in parentKeys.enumerated() {
                let targets: [Key] = key.map { join.through == nil ? [$0] : Array(linked[$0] ?? []) } ?? []
                let matched = targets.flatMap { childrenByKey[$0] ?? [] }.sorted().map { childObjects[$0] }
                var json: [UInt8] = []
                switch join.kind {
                case .one:
                    json = matched.first ?? Array("null".utf8)
                case .many:
                    json.append(UInt8(ascii: "["))
                    for (position, object) in matched.enumerated() {
                        if position > 0 { json.append(UInt8(ascii: ",")) }
                        json += object
                    }
                    json.append(UInt8(ascii: "]"))
                }
                fields[parent].append((join.field, json))
            }
        }
        return fields.map { object in
            var json: [UInt8] = [UInt8(ascii: "{")]
            for (position, field) in object.enumerated() {
                if position > 0 { json.append(UInt8(ascii: ",")) }
                JSONBuffer.appendString(field.0, to: &json)
                json.append(UInt8(ascii: ":"))
                json += field.1
            }
            json.append(UInt8(ascii: "}"))
            return json
        }
    }

    // MARK: Values

    /// The distinct keys `columns` hold in `rows`, leaving out those with a null.
    private static func keys(_ rows: TableRows, _ columns: [String]) -> [Key] {
        guard let indices = indices(rows, columns) else { return [] }
        return Array(Set(rows.rows.compactMap { key($0, indices) }))
    }

    /// Where `columns` are in `rows`; nil when one is missing.
    private static func indices(_ rows: TableRows, _ columns: [String]) -> [Int]? {
        let indices = columns.compactMap(rows.index)
        return indices.count == columns.count ? indices : nil
    }

    /// `row`'s values at `indices` as a key; nil when one is null or absent (null joins nothing).
    static func key(_ row: Row, _ indices: [Int]) -> Key? {
        var key: Key = []
        key.reserveCapacity(indices.count)
        for index in indices {
            let value = joinValue(row[index])
            if value == .null || value == .absent { return nil }
            key.append(value)
        }
        return key
    }

    /// Join columns of different integer types (INT against BIGINT UNSIGNED) match by number.
    static func joinValue(_ value: Value) -> Value {
        switch value {
        case .uint(let number) where number <= UInt64(Int64.max): .int(Int64(number))
        case .year(let year): .int(Int64(year))
        default: value
        }
    }

    /// Keys in a stable order for the changes appended: column by column.
    static func order(_ a: Key, _ b: Key) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            switch (x, y) {
            case (.int(let l), .int(let r)): return l < r
            default: return "\(x)" < "\(y)"
            }
        }
        return a.count < b.count
    }
}

/// One schema per document table and key columns, so sinks and caches keyed by schema identity
/// see the same one every time.
final class DocumentSchemas: @unchecked Sendable {
    private let lock = NSLock()
    private var known: [String: TableSchema] = [:]

    func schema(_ definition: DocumentDefinition, root: TableSchema) -> TableSchema {
        let keyColumns = root.primaryKey.map { ColumnSchema(name: root.columnName($0), typeName: root.columns[$0].typeName, nullable: false) }
        let cacheKey = ([definition.name] + keyColumns.flatMap { [$0.name ?? "", $0.typeName] }).joined(separator: "\u{0}")
        lock.lock()
        defer { lock.unlock() }
        if let schema = known[cacheKey] { return schema }
        let schema = TableSchema(name: definition.table, columns: keyColumns + [ColumnSchema(name: "document", typeName: "json", nullable: true)],
                                 primaryKey: Array(keyColumns.indices))
        known[cacheKey] = schema
        return schema
    }
}

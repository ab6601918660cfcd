import FerryCore
import NIOCore
import PostgresLogical
import PostgresWire

/// A published table as a snapshot reads it: the relation the stream would describe (so a
/// snapshot row has exactly the schema and values a streamed row of the same data has), the key
/// it is split by, and the statements that plan and read its chunks.
///
/// Chunk bounds are the key's values in PostgreSQL's text form, bound as parameters cast to the
/// columns' types, so any key type whose text reads back (every built-in one) works.
struct PgSnapshotTable: Sendable {
    let name: TableName
    /// The relation's OID, as the stream names it.
    let relationID: UInt32
    let relation: PgRelationSchema
    /// Indexes of the columns chunks are split by; empty: the table is read whole.
    let keyColumns: [Int]
    let columnNames: [String]
    /// `format_type` of every column, for the casts of bound key values.
    let columnTypes: [String]
    let estimatedRows: Int
    /// A plain table's children (inheritance) are tables of their own: read it `ONLY`.
    let inherits: Bool
    /// The publication's row filter (PostgreSQL 15+), empty without one: the stream carries no
    /// other rows, so the snapshot reads no other rows.
    let rowFilter: String

    var schema: TableSchema { relation.schema }
    var quotedName: String { PostgresSource.quotedIdentifier(name.database) + "." + PostgresSource.quotedIdentifier(name.table) }
    private var readFrom: String { (inherits ? "ONLY " : "") + quotedName }
    var keyDescription: String {
        keyColumns.isEmpty ? "none (read whole)" : keyColumns.map { columnNames[$0] }.joined(separator: ", ")
    }

    /// The columns in the order the stream's relation has them: not dropped, not generated
    /// (pgoutput leaves generated columns out), in the publication's column list (PostgreSQL
    /// 15+). The key: the replica identity's columns, as pgoutput flags them, with their place
    /// in the index (chunks follow the index's order, so the index serves them).
    static func catalogQuery(publicationColumns: Bool) -> String {
        """
        SELECT c.oid::text, c.relreplident::text, a.attname::text, a.atttypid::text, a.atttypmod::text,
               (i.indkey IS NOT NULL AND a.attnum = ANY(i.indkey::int2[]))::text, format_type(a.atttypid, a.atttypmod),
               greatest(c.reltuples, 0)::bigint::text, a.attnotnull::text, coalesce(array_position(i.indkey::int2[], a.attnum), 0)::text,
               c.relkind::text, \(publicationColumns ? "coalesce(pt.rowfilter, '')" : "''")
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        LEFT JOIN pg_index i ON i.indrelid = c.oid
            AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END
        \(publicationColumns ? """
            JOIN pg_publication_tables pt ON pt.pubname = $3 AND pt.schemaname = n.nspname AND pt.tablename = c.relname
                AND (pt.attnames IS NULL OR a.attname = ANY(pt.attnames))
            """ : "")
        WHERE n.nspname = $1 AND c.relname = $2
        ORDER BY a.attnum
        """
    }

    /// Reads the table's description in the connection's transaction (the snapshot's catalog);
    /// nil when the table is not there (dropped or renamed since it was asked for, or no longer
    /// published). `keyOverride` (`mapping.key`) splits a table by other columns than its identity.
    static func load(_ name: TableName, publication: String, keyOverride: [String]?, connection: PostgresWireConnection,
                     resolveTypes: (inout PgTypeCatalog, [UInt32]) async throws -> Void) async throws -> PgSnapshotTable? {
        // Column lists and row filters of publications came with PostgreSQL 15.
        let publicationColumns = (Int(connection.serverVersion.prefix { $0.isNumber }) ?? 0) >= 15
        let result = try await connection.query(catalogQuery(publicationColumns: publicationColumns),
                                                [.text(name.database), .text(name.table)] + (publicationColumns ? [.text(publication)] : []))
        guard !result.rows.isEmpty else { return nil }
        let field = { (row: Int, column: Int) in result.text(row, column) ?? "" }
        let identity = PgOutputMessage.Relation.ReplicaIdentity(rawValue: field(0, 1).utf8.first ?? 0) ?? .default
        let columns = result.rows.indices.map { row in
            PgOutputMessage.Relation.Column(isKey: identity == .full || field(row, 5) == "true", name: field(row, 2),
                                            typeOID: UInt32(field(row, 3)) ?? 0, typeModifier: Int32(field(row, 4)) ?? -1)
        }
        let relation = PgOutputMessage.Relation(id: UInt32(field(0, 0)) ?? 0, namespace: name.database, name: name.table,
                                                replicaIdentity: identity, columns: columns)
        var catalog = PgTypeCatalog()
        try await resolveTypes(&catalog, catalog.missing(columns.map(\.typeOID)))
        guard let schema = PgRelationSchema(relation, catalog: catalog) else {
            throw FerryError(code: .sourcePostgresStream, message: "the types of \(name)'s columns are not in pg_type")
        }
        var key = schema.schema.primaryKey.sorted { (Int(field($0, 9)) ?? 0) < (Int(field($1, 9)) ?? 0) }
        if let keyOverride {
            key = try keyOverride.map { column in
                guard let index = columns.firstIndex(where: { $0.name == column }) else {
                    throw FerryError(code: .snapshotKeyColumn, message: "mapping.key names column \(column), which \(name) does not have",
                                     context: [(LoggingKeys.table, "\(name)")], fix: "name columns of the table in the mapping's key")
                }
                // A row with NULL in a key column falls in no key range: it would never be read.
                guard field(index, 8) == "true" else {
                    throw FerryError(code: .snapshotKeyNullable, message: "mapping.key column \(column) of \(name) may be NULL, so a snapshot split by it would miss rows",
                                     context: [(LoggingKeys.table, "\(name)")], fix: "key the table by NOT NULL columns, or make the column NOT NULL")
                }
                return index
            }
        }
        return PgSnapshotTable(name: name, relationID: relation.id, relation: schema, keyColumns: key, columnNames: columns.map(\.name),
                               columnTypes: result.rows.indices.map { field($0, 6) }, estimatedRows: Int(field(0, 7)) ?? 0,
                               inherits: field(0, 10) != "p", rowFilter: field(0, 11))
    }

    private var quotedColumns: String {
        columnNames.map(PostgresSource.quotedIdentifier).joined(separator: ", ")
    }

    var quotedKey: String {
        keyColumns.map { PostgresSource.quotedIdentifier(columnNames[$0]) }.joined(separator: ", ")
    }

    /// `(k1, k2) > ($1::t1, $2::t2)` with parameters numbered from `first`.
    private func keyComparison(_ comparison: String, first: Int) -> String {
        let bound = keyColumns.enumerated().map { "$\(first + $0.offset)::\(columnTypes[$0.element])" }.joined(separator: ", ")
        return "(\(quotedKey)) \(comparison) (\(bound))"
    }

    /// The key that ends the chunk of `rows` rows after `lower` (nil: from the start); the
    /// query's answer is empty when fewer rows are left (the chunk is the last, open-ended).
    func boundaryQuery(after lower: [String]?, rows: Int) -> (sql: String, parameters: [FrontendMessage.Parameter]) {
        let condition = lower == nil ? "" : " WHERE " + keyComparison(">", first: 1)
        return ("SELECT \(quotedKey) FROM \(readFrom)\(condition) ORDER BY \(quotedKey) LIMIT 1 OFFSET \(max(0, rows - 1))",
                (lower ?? []).map { .text($0) })
    }

    /// The rows with keys after `lower` up to and including `upper` (nil: unbounded).
    func readQuery(lower: [String]?, upper: [String]?) -> (sql: String, parameters: [FrontendMessage.Parameter]) {
        var conditions: [String] = []
        var parameters: [FrontendMessage.Parameter] = []
        if let lower {
            conditions.append(keyComparison(">", first: 1))
            parameters += lower.map { .text($0) }
        }
        if let upper {
            conditions.append(keyComparison("<=", first: parameters.count + 1))
            parameters += upper.map { .text($0) }
        }
        if !rowFilter.isEmpty { conditions.append("(\(rowFilter))") }
        let condition = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return ("SELECT \(quotedColumns) FROM \(readFrom)\(condition)", parameters)
    }

    /// For each of these keys (text forms in key order; a repair, `ferry verify`): whether the
    /// table has it, the key as the server writes it, and the row — `keyedRows` reads the answer.
    /// A row the publication's row filter leaves out counts as absent, as the stream never has it.
    func keysQuery(_ keys: [[String]]) -> (sql: String, parameters: [FrontendMessage.Parameter]) {
        let (list, requested, parameters) = unnested(keyColumns, keys)
        let found = PostgresSource.quotedIdentifier(columnNames[keyColumns[0]])
        var match = "(\(keyColumns.map { "t." + PostgresSource.quotedIdentifier(columnNames[$0]) }.joined(separator: ", "))) = (\(requested.joined(separator: ", ")))"
        if !rowFilter.isEmpty { match += " AND (\(rowFilter))" }
        let sql = "SELECT (t.\(found) IS NOT NULL)::text, \(requested.map { "(\($0))::text" }.joined(separator: ", ")), "
            + columnNames.map { "t." + PostgresSource.quotedIdentifier($0) }.joined(separator: ", ")
            + " FROM \(list) LEFT JOIN \(readFrom) t ON \(match)"
        return (sql, parameters)
    }

    /// The rows whose `columns` (indexes) equal one of `values` (text forms, one per column),
    /// in key order (documents).
    func matchQuery(columns: [Int], values: [[String?]]) -> (sql: String, parameters: [FrontendMessage.Parameter]) {
        let (list, casts, parameters) = unnested(columns, values)
        let quoted = columns.map { PostgresSource.quotedIdentifier(columnNames[$0]) }.joined(separator: ", ")
        var conditions = ["(\(quoted)) IN (SELECT \(casts.joined(separator: ", ")) FROM \(list))"]
        if !rowFilter.isEmpty { conditions.append("(\(rowFilter))") }
        let order = keyColumns.isEmpty ? "" : " ORDER BY \(quotedKey)"
        return ("SELECT \(quotedColumns) FROM \(readFrom) WHERE " + conditions.joined(separator: " AND ") + order, parameters)
    }

    /// `values` (text forms, one per column of `columns`) as a list to join or match against:
    /// `unnest($1::text[], …) AS u(…)`, one `text[]` parameter per column, and each column of `u`
    /// cast to its column's type.
    private func unnested(_ columns: [Int], _ values: [[String?]]) -> (list: String, casts: [String], parameters: [FrontendMessage.Parameter]) {
        let names = columns.indices.map { "ferry_value_\($0 + 1)" }
        let arrays = columns.indices.map { "$\($0 + 1)::text[]" }.joined(separator: ", ")
        let casts = columns.enumerated().map { "u.\(names[$0.offset])::\(columnTypes[$0.element])" }
        let parameters = columns.indices.map { position in FrontendMessage.Parameter.text(Self.arrayLiteral(values.map { $0[position] })) }
        return ("unnest(\(arrays)) AS u(\(names.joined(separator: ", ")))", casts, parameters)
    }

    /// The answer to `keysQuery`: the rows found, and a key-only row for each key not found.
    func keyedRows(_ result: PostgresResult) throws -> (rows: [Row], absent: [Row]) {
        var rows: [Row] = [], absent: [Row] = []
        for (index, columns) in result.rows.enumerated() {
            if result.text(index, 0) == "true" {
                rows.append(try row(columns.dropFirst(1 + keyColumns.count)))
            } else {
                absent.append(try keyRow(keyColumns.indices.map { result.text(index, 1 + $0) ?? "" }))
            }
        }
        return (rows, absent)
    }

    /// Every key of the table, in key order (`ferry verify`).
    var allKeysQuery: String {
        "SELECT \(keyColumns.map { "\(PostgresSource.quotedIdentifier(columnNames[$0]))::text" }.joined(separator: ", ")) FROM \(readFrom)"
            + (rowFilter.isEmpty ? "" : " WHERE (\(rowFilter))") + " ORDER BY \(quotedKey)"
    }

    /// `{"a","b",NULL}`: a text array's input form.
    static func arrayLiteral(_ elements: [String?]) -> String {
        var out = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            guard let element else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { out += "\\" }
                out.unicodeScalars.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    /// A row holding only `key` (text forms), the other columns NULL: a delete by key.
    func keyRow(_ key: [String]) throws -> Row {
        var columns = [TupleData.Value](repeating: .null, count: columnNames.count)
        for (position, column) in keyColumns.enumerated() { columns[column] = .text(Array(key[position].utf8)) }
        return try relation.row(TupleData(columns))
    }

    /// A result's rows read exactly as the stream reads tuples.
    func rows(_ result: PostgresResult) throws -> [Row] {
        try result.rows.map(row)
    }

    /// One result row's columns (text, nil for NULL) read as the stream reads a tuple.
    private func row(_ columns: some Collection<ByteBuffer?>) throws -> Row {
        try relation.row(TupleData(columns.map { bytes in bytes.map { .text(Array($0.readableBytesView)) } ?? .null }))
    }
}

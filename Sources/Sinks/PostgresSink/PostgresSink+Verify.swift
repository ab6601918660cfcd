import FerryCore
import PostgresNIO
import SinkSupport

/// `ferry verify` against PostgreSQL: the comparison runs in the database. The source rows travel
/// as the sink writes them (`text[]` per column, cast to each column's type), and PostgreSQL
/// matches them against the table by key with `IS NOT DISTINCT FROM` on every column — so a value
/// is compared with exactly the semantics it was written with (numeric scale, jsonb, timestamptz).
extension PostgresSink: VerifiableSink {
    public func differingRows(table: String, schema: TableSchema, rows: [Row]) async throws -> [Int] {
        guard !rows.isEmpty else { return [] }
        guard try await rowCount(table: table) != nil else { return Array(rows.indices) }
        let columns = Array(schema.columns.indices)
        let conditions = columns.map { column in
            let name = doubleQuoted(schema.columnName(column))
            let source = "u.c\(column + 1)::\(PostgresTypeMapping.columnType(schema.columns[column].typeName))"
            return schema.primaryKey.contains(column) ? "t.\(name) = \(source)" : "t.\(name) IS NOT DISTINCT FROM \(source)"
        }.joined(separator: " AND ")
        let sql = "SELECT u.ord FROM " + Self.unnestWithOrdinality(columns.count)
            + " WHERE NOT EXISTS (SELECT 1 FROM \(qualified(table)) t WHERE \(conditions)) ORDER BY u.ord"
        return try await verifyQuery(PostgresQuery(unsafeSQL: sql, binds: Self.arrays(rows, columns))) { row in
            Int(try row.decode(Int64.self)) - 1
        }
    }

    public func rowCount(table: String) async throws -> Int? {
        let exists = try await verifyQuery("SELECT to_regclass(\(qualified(table)))::text") { row in try row.decode(String?.self) }
        guard exists.first ?? nil != nil else { return nil }
        return try await verifyQuery(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(qualified(table))")) { row in Int(try row.decode(Int64.self)) }.first
    }

    public func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]] {
        let key = schema.primaryKey
        guard !key.isEmpty, try await rowCount(table: table) != nil else { return [] }
        let conditions = key.enumerated().map { position, column in
            "t.\(doubleQuoted(schema.columnName(column))) = u.c\(position + 1)::\(PostgresTypeMapping.columnType(schema.columns[column].typeName))"
        }.joined(separator: " AND ")
        let list: [String] = key.map { column in Self.keyText(doubleQuoted(schema.columnName(column)), typeName: schema.columns[column].typeName) }
        let from = " FROM \(qualified(table)) t WHERE NOT EXISTS (SELECT 1 FROM " + Self.unnestWithOrdinality(key.count) + " WHERE \(conditions))"
        let sql = "SELECT " + list.joined(separator: ", ") + from
        let binds = Self.arrays(sourceKeys, Array(key.indices))
        return try await verifyQuery(PostgresQuery(unsafeSQL: sql, binds: binds)) { row in
            let cells = row.makeRandomAccess()
            var values: [Value] = []
            for index in 0..<key.count {
                let text = try cells[index].decode(String?.self)
                values.append(text.map { Self.keyValue($0, typeName: schema.columns[key[index]].typeName) } ?? .null)
            }
            return values
        }
    }

    /// A key column as text the source can take back as a literal.
    static func keyText(_ column: String, typeName: String) -> String {
        switch PostgresTypeMapping.columnType(typeName) {
        case "bytea": return "encode(t.\(column), 'hex')"
        case let type where type.hasPrefix("timestamptz"): return "to_char(t.\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        default: return "t.\(column)::text"
        }
    }

    static func keyValue(_ text: String, typeName: String) -> Value {
        if PostgresTypeMapping.columnType(typeName) == "bytea" { return .bytes(HexBytes.decode(text)) }
        return Value(keyText: text)
    }

    static func unnestWithOrdinality(_ count: Int) -> String {
        "unnest(" + (1...count).map { "$\($0)::text[]" }.joined(separator: ", ") + ") WITH ORDINALITY AS u("
            + (1...count).map { "c\($0)" }.joined(separator: ", ") + ", ord)"
    }

    private func verifyQuery<T>(_ query: PostgresQuery, _ decode: (PostgresRow) throws -> T) async throws -> [T] {
        let watched = try await verifyConnection()
        do {
            var results: [T] = []
            for try await row in try await watched.query(query, logger: logger) { results.append(try decode(row)) }
            return results
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }
}

import FerryCore
import NIOCore
import PostgresWire
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
            let source = "u.c\(column + 1)::\(PostgresTypeMapping.columnType(schema.columns[column]))"
            return schema.primaryKey.contains(column) ? "t.\(name) = \(source)" : "t.\(name) IS NOT DISTINCT FROM \(source)"
        }.joined(separator: " AND ")
        let sql = "SELECT u.ord FROM " + Self.unnestWithOrdinality(columns.count)
            + " WHERE NOT EXISTS (SELECT 1 FROM \(qualified(table)) t WHERE \(conditions)) ORDER BY u.ord"
        return try await verifyQuery(sql, Self.arrays(rows, columns)) { row in
            guard let cell = row.first ?? nil, let ordinal = Int(String(buffer: cell)) else {
                throw PostgresWireError.protocolViolation("verify: a row without its ordinal")
            }
            return ordinal - 1
        }
    }

    public func rowCount(table: String) async throws -> Int? {
        let exists = try await verifyQuery("SELECT to_regclass($1)::text", [.text(qualified(table))]) { row in row.first.flatMap { $0 } }
        guard exists.first ?? nil != nil else { return nil }
        return try await verifyQuery("SELECT count(*) FROM \(qualified(table))") { row in
            row.first.flatMap { $0 }.flatMap { Int(String(buffer: $0)) }
        }.first ?? nil
    }

    public func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]] {
        let key = schema.primaryKey
        guard !key.isEmpty, try await rowCount(table: table) != nil else { return [] }
        let conditions = key.enumerated().map { position, column in
            "t.\(doubleQuoted(schema.columnName(column))) = u.c\(position + 1)::\(PostgresTypeMapping.columnType(schema.columns[column]))"
        }.joined(separator: " AND ")
        let list: [String] = key.map { column in Self.keyText(doubleQuoted(schema.columnName(column)), typeName: schema.columns[column].typeName) }
        let from = " FROM \(qualified(table)) t WHERE NOT EXISTS (SELECT 1 FROM " + Self.unnestWithOrdinality(key.count) + " WHERE \(conditions))"
        let sql = "SELECT " + list.joined(separator: ", ") + from
        let binds = Self.arrays(sourceKeys, Array(key.indices))
        return try await verifyQuery(sql, binds) { row in
            guard row.count == key.count else { throw PostgresWireError.protocolViolation("verify: \(row.count) columns for a key of \(key.count)") }
            return key.indices.map { index in
                row[index].map { Self.keyValue(String(buffer: $0), typeName: schema.columns[key[index]].typeName) } ?? .null
            }
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

    /// Runs a statement on the session's connection; `decode` turns each row (text columns,
    /// `nil` for NULL) into a result.
    private func verifyQuery<T>(_ sql: String, _ parameters: [FrontendMessage.Parameter] = [], _ decode: ([ByteBuffer?]) throws -> T) async throws -> [T] {
        do {
            let result = try await connected().query(sql, parameters)
            return try result.rows.map(decode)
        } catch let error as PostgresSinkError {
            throw error
        } catch {
            throw PostgresSinkError(underlying: error, sink: name)
        }
    }
}

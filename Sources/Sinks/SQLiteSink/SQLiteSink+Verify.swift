import FerryCore
import SinkSupport
import SQLiteNIO

/// `ferry verify` against SQLite: the source rows are bound, as the sink binds them, into a
/// temporary table with the target's column affinities, and SQLite matches them against the table
/// by key with `IS` on every column.
extension SQLiteSink: VerifiableSink {
    public func differingRows(table: String, schema: TableSchema, rows: [Row]) async throws -> [Int] {
        guard !rows.isEmpty else { return [] }
        let connection = try await verifyConnection()
        guard try await rowCount(table: table) != nil else { return Array(rows.indices) }
        let columns = Array(schema.columns.indices)
        let names = columns.map { doubleQuoted(schema.columnName($0)) }
        do {
            _ = try await connection.query("DROP TABLE IF EXISTS temp.ferry_verify_rows")
            _ = try await connection.query("CREATE TEMP TABLE ferry_verify_rows AS SELECT \(names.joined(separator: ", ")) FROM main.\(doubleQuoted(table)) WHERE 0")
            _ = try await connection.query("ALTER TABLE temp.ferry_verify_rows ADD COLUMN ferry_ordinal INTEGER")
            let perStatement = max(1, 30_000 / (columns.count + 1))
            let tuple = "(" + Array(repeating: "?", count: columns.count + 1).joined(separator: ", ") + ")"
            for start in stride(from: 0, to: rows.count, by: perStatement) {
                let end = min(rows.count, start + perStatement)
                var binds: [SQLiteData] = []
                for index in start..<end {
                    for column in columns { binds.append(SQLiteTypeMapping.data(rows[index][column])) }
                    binds.append(.integer(index))
                }
                _ = try await connection.query("INSERT INTO temp.ferry_verify_rows VALUES " + Array(repeating: tuple, count: end - start).joined(separator: ", "), binds)
            }
            let conditions = names.map { "t.\($0) IS v.\($0)" }.joined(separator: " AND ")
            let differing = try await connection.query(
                "SELECT v.ferry_ordinal FROM temp.ferry_verify_rows v WHERE NOT EXISTS (SELECT 1 FROM main.\(doubleQuoted(table)) t WHERE \(conditions)) ORDER BY v.ferry_ordinal"
            ).compactMap { $0.column("ferry_ordinal")?.integer }
            _ = try await connection.query("DROP TABLE temp.ferry_verify_rows")
            return differing
        } catch {
            throw SQLiteSinkError(underlying: error, sink: name)
        }
    }

    public func rowCount(table: String) async throws -> Int? {
        let connection = try await verifyConnection()
        let exists = try await connection.query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(table)])
        guard exists.first?.column("n")?.integer == 1 else { return nil }
        return try await connection.query("SELECT count(*) AS n FROM main.\(doubleQuoted(table))").first?.column("n")?.integer
    }

    public func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]] {
        let key = schema.primaryKey
        guard !key.isEmpty, try await rowCount(table: table) != nil else { return [] }
        let connection = try await verifyConnection()
        let names = key.map { doubleQuoted(schema.columnName($0)) }
        do {
            _ = try await connection.query("DROP TABLE IF EXISTS temp.ferry_verify_keys")
            _ = try await connection.query("CREATE TEMP TABLE ferry_verify_keys AS SELECT \(names.joined(separator: ", ")) FROM main.\(doubleQuoted(table)) WHERE 0")
            let perStatement = max(1, 30_000 / key.count)
            let tuple = "(" + Array(repeating: "?", count: key.count).joined(separator: ", ") + ")"
            for start in stride(from: 0, to: sourceKeys.count, by: perStatement) {
                let end = min(sourceKeys.count, start + perStatement)
                let binds = sourceKeys[start..<end].flatMap { $0.map(SQLiteTypeMapping.data) }
                _ = try await connection.query("INSERT INTO temp.ferry_verify_keys VALUES " + Array(repeating: tuple, count: end - start).joined(separator: ", "), binds)
            }
            _ = try await connection.query("CREATE INDEX temp.ferry_verify_keys_index ON ferry_verify_keys (\(names.joined(separator: ", ")))")
            let conditions = names.map { "v.\($0) = t.\($0)" }.joined(separator: " AND ")
            let extra = try await connection.query("SELECT \(names.map { "t.\($0)" }.joined(separator: ", ")) FROM main.\(doubleQuoted(table)) t WHERE NOT EXISTS (SELECT 1 FROM temp.ferry_verify_keys v WHERE \(conditions))")
            _ = try await connection.query("DROP TABLE temp.ferry_verify_keys")
            return extra.map { row in
                key.map { column in
                    switch row.column(schema.columnName(column)) {
                    case .integer(let number)?: return .int(Int64(number))
                    case .float(let number)?: return .double(number)
                    case .text(let text)?: return .string(text)
                    case .blob(let buffer)?: return .bytes(Array(buffer.readableBytesView))
                    case .null?, nil: return .null
                    }
                }
            }
        } catch {
            throw SQLiteSinkError(underlying: error, sink: name)
        }
    }

    private func verifyConnection() async throws -> SQLiteConnection {
        if let connection { return connection }
        _ = try await open()
        return connection!
    }
}

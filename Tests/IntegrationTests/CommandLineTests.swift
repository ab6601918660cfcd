import FerryCore
import Foundation
import MySQLSource
import MySQLWire
import Testing
import WireTLS

/// The `ferry` executable against real servers: every bad input is one clear line, exit ≠ 0.
extension Integration {
    @Suite struct CommandLine {
        func ferry(_ arguments: [String], password: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await runProcess(TestEnvironment.ferryBinary, arguments,
                           environment: password.map { ["FERRY_SOURCE_PASSWORD": $0] } ?? [:], timeoutSeconds: 60)
        }

        /// One `error[code]: …. Fix: …` line on stderr and a non-zero exit.
        func expectOneLineError(_ result: (status: Int32, stdout: String, stderr: String), code: String, mentioning words: [String],
                                sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status != 0, sourceLocation: sourceLocation)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.hasPrefix("error[\(code)]"), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains("Fix: "), "no fix in: \(result.stderr)", sourceLocation: sourceLocation)
            for word in words { #expect(result.stderr.contains(word), "'\(word)' missing in: \(result.stderr)", sourceLocation: sourceLocation) }
            #expect(!result.stderr.contains("ferry-secret") && !result.stderr.contains("wrong-password"), sourceLocation: sourceLocation)
        }

        /// Bytes MariaDB stored in a utf8mb4 column without checking them (a binary connection,
        /// `sql_mode=''`) are printed in JSON with U+FFFD, and never silently: one warning names the
        /// table, column and position, however many values hold them.
        @Test func illFormedTextIsReportedOncePerColumn() async throws {
            try await admin(["CREATE DATABASE IF NOT EXISTS cli", "DROP TABLE IF EXISTS cli.bad",
                             "CREATE TABLE cli.bad (id INT PRIMARY KEY, s VARCHAR(20) CHARACTER SET utf8mb4, ok VARCHAR(20)) CHARACTER SET utf8mb4"])
            let start = try await currentPosition()
            try await admin(["SET NAMES binary", "SET SESSION sql_mode = ''",
                             "INSERT INTO cli.bad VALUES (1, X'61EDA0BD62', 'fine'), (2, X'EDA0BD', 'fine'), (3, 'plain', 'fine')"])
            let result = try await ferry(["tail", "--source", try TestEnvironment.sourceURL(), "--from", start.description, "--to", "current",
                                    "--include", "cli.bad", "--format", "compact"], password: try TestEnvironment.sourcePassword())
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let values = try result.stdout.split(separator: "\n").map {
                ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["after"] as! [String: Any])["s"] as! String
            }
            #expect(values == ["a\u{FFFD}\u{FFFD}\u{FFFD}b", "\u{FFFD}\u{FFFD}\u{FFFD}", "plain"])
            let warnings = result.stderr.split(separator: "\n").filter { $0.contains("is not well-formed UTF-8") }
            #expect(warnings.count == 1, "stderr: \(result.stderr)")
            #expect(warnings.first?.contains("ferry.table=cli.bad") == true && warnings.first?.contains("ferry.column=s") == true
                    && warnings.first?.contains("ferry.position=mariadb-bin.") == true)
        }

        /// The same bytes through `ferry run`, snapshot and stream: MariaDB, SQLite and ClickHouse
        /// targets hold them exactly; PostgreSQL (text must be well-formed) and JSON get U+FFFD;
        /// `ferry verify` finds every target equal.
        @Test func illFormedTextKeepsItsBytesWhereTheTargetCanHoldThem() async throws {
            let postgresURL = try TestEnvironment.value("FERRY_POSTGRES_URL")
            let setup = ["SET NAMES binary", "SET SESSION sql_mode = ''"]
            try await admin(["DROP DATABASE IF EXISTS it_bytes", "DROP DATABASE IF EXISTS it_bytes_target", "CREATE DATABASE it_bytes_target", "CREATE DATABASE it_bytes",
                             "CREATE TABLE it_bytes.t (id INT PRIMARY KEY, s VARCHAR(20), note TEXT) CHARACTER SET utf8mb4"]
                            + setup + ["INSERT INTO it_bytes.t VALUES (1, X'61EDA0BD62', X'EDA0BD'), (2, 'plain', 'fine')"])
            let psql = ["-h", "127.0.0.1", "-p", try TestEnvironment.value("FERRY_POSTGRES_PORT"), "-U", "ferry", "-d", "replica", "-At", "-c"]
            let pgPassword = ["PGPASSWORD": try TestEnvironment.value("FERRY_POSTGRES_PASSWORD")]
            _ = try await runProcess("/usr/bin/psql", psql + ["DROP SCHEMA IF EXISTS it_bytes CASCADE; CREATE SCHEMA it_bytes"], environment: pgPassword)
            let directory = try scratchDirectory("bytes")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("ferry.yml").path
            let adminURL = try TestEnvironment.value("FERRY_MARIADB_ADMIN_URL")
            try """
            sources:
              db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
            sinks:
              lite: { type: sqlite, path: \(directory.path)/target.sqlite }
              maria: { type: mysql, url: "\(adminURL)/it_bytes_target?tls=disable" }
              pg: { type: postgres, url: "\(postgresURL)?schema=it_bytes&tls=disable", password: "${FERRY_POSTGRES_PASSWORD}" }
              files: { type: jsonl, directory: \(directory.path)/jsonl }
            pipelines:
              p:
                source: db
                sinks: [lite, maria, pg, files]
                tables: ["it_bytes.t"]
                snapshot: initial
            data_dir: \(directory.path)/data
            server: { listen: off }
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let ferry = try startFerry(config: config)
            defer { if ferry.isRunning { ferry.terminate() } }
            let sqlitePath = "\(directory.path)/target.sqlite"
            try await waitUntil("the snapshot in SQLite", seconds: 60) { try await sqliteQuery(sqlitePath, "SELECT count(*) FROM t") == "2\n" }
            try await admin(setup + ["INSERT INTO it_bytes.t VALUES (3, X'EDB080', X'62EDBFBF')", "UPDATE it_bytes.t SET note = X'6FEDA0BD6B' WHERE id = 2"])
            let expected = "1|61EDA0BD62|EDA0BD\n2|706C61696E|6FEDA0BD6B\n3|EDB080|62EDBFBF\n"
            try await waitUntil("the stream in SQLite", seconds: 60) {
                try await sqliteQuery(sqlitePath, "SELECT id, hex(s), hex(note) FROM t ORDER BY id") == expected
            }
            try await waitUntil("the stream in MariaDB", seconds: 60) {
                let rows = (try? await adminQuery("SELECT id, HEX(s), HEX(note) FROM it_bytes_target.t ORDER BY id"))?.rows ?? []
                return rows.map { row in (0..<row.count).map { row[$0] ?? "NULL" }.joined(separator: "|") + "\n" }.joined() == expected
            }
            let source = try await adminQuery("SELECT id, HEX(s), HEX(note) FROM it_bytes.t ORDER BY id").rows
            #expect(source.map { row in (0..<row.count).map { row[$0] ?? "NULL" }.joined(separator: "|") + "\n" }.joined() == expected)
            try await waitUntil("the stream in PostgreSQL", seconds: 60) {
                await (try? runProcess("/usr/bin/psql", psql + ["SELECT count(*) FROM it_bytes.t WHERE id = 3"], environment: pgPassword).stdout) == "1\n"
            }
            let pgRows = try await runProcess("/usr/bin/psql", psql + ["SELECT id, s, note FROM it_bytes.t ORDER BY id"], environment: pgPassword).stdout
            #expect(pgRows == "1|a\u{FFFD}\u{FFFD}\u{FFFD}b|\u{FFFD}\u{FFFD}\u{FFFD}\n2|plain|o\u{FFFD}\u{FFFD}\u{FFFD}k\n3|\u{FFFD}\u{FFFD}\u{FFFD}|b\u{FFFD}\u{FFFD}\u{FFFD}\n", "\(pgRows)")
            let jsonl = try await runProcess("/bin/sh", ["-c", "cat '\(directory.path)'/jsonl/p/*.jsonl"]).stdout
            #expect(jsonl.contains("\"s\":\"a\u{FFFD}\u{FFFD}\u{FFFD}b\"") && jsonl.contains("\"note\":\"o\u{FFFD}\u{FFFD}\u{FFFD}k\""), "\(jsonl)")
            ferry.terminate()
            ferry.waitUntilExit()
            let verify = try await runProcess(TestEnvironment.ferryBinary, ["verify", "-c", config, "p"], timeoutSeconds: 120)
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            #expect(verify.stdout.contains("lite") && verify.stdout.contains("maria") && verify.stdout.contains("pg"), "\(verify.stdout)")
        }

        @Test func tailPrintsJSONLinesAndStopsAtCurrent() async throws {
            try await admin(["CREATE DATABASE IF NOT EXISTS cli", "DROP TABLE IF EXISTS cli.t", "CREATE TABLE cli.t (id INT PRIMARY KEY, v TEXT)"])
            let start = try await currentPosition()
            try await admin(["INSERT INTO cli.t VALUES (1, 'one'), (2, 'two')", "DELETE FROM cli.t WHERE id = 1"])
            let result = try await ferry(["tail", "--source", try TestEnvironment.sourceURL(), "--from", start.description, "--to", "current",
                                    "--include", "cli.*"], password: try TestEnvironment.sourcePassword())
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3)
            let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            #expect(objects.map { $0["op"] as? String } == ["c", "c", "d"])
            let source = try #require(objects[2]["source"] as? [String: Any])
            #expect(source["db"] as? String == "cli" && source["table"] as? String == "t" && source["row"] as? Int == 0)
            #expect((source["file"] as? String)?.hasPrefix("mariadb-bin.") == true)
            #expect((objects[0]["after"] as? [String: Any])?["v"] as? String == "one")
            // Resume from the printed position of the last line: nothing is printed again.
            let resumed = try await ferry(["tail", "--source", try TestEnvironment.sourceURL(), "--from", "\(source["file"]!):\(source["pos"]!)",
                                     "--to", "current", "--include", "cli.*"], password: try TestEnvironment.sourcePassword())
            #expect(resumed.status == 0 && resumed.stdout.isEmpty, "stderr: \(resumed.stderr)")
        }

        /// A reader that stops early (`| head -n 1`) ends `ferry tail` at once and cleanly, while
        /// the source is still sending: the writer closing must stop the decoding task too.
        @Test func tailStopsWhenTheReaderCloses() async throws {
            try await admin(["CREATE DATABASE IF NOT EXISTS cli", "DROP TABLE IF EXISTS cli.many", "CREATE TABLE cli.many (id INT PRIMARY KEY, v VARCHAR(200))"])
            let start = try await currentPosition()
            try await admin(["INSERT INTO cli.many SELECT seq, REPEAT('v', 200) FROM cli.seq_1_to_20000"])
            let command = "set -o pipefail; '\(TestEnvironment.ferryBinary)' tail --source '\(try TestEnvironment.sourceURL())' --from '\(start)' "
                + "--to current --include cli.many | head -n 1"
            let result = try await runProcess("/bin/bash", ["-c", command], environment: ["FERRY_SOURCE_PASSWORD": try TestEnvironment.sourcePassword()],
                                        timeoutSeconds: 60)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stdout.split(separator: "\n").count == 1 && result.stdout.contains("\"op\":\"c\""))
        }

        @Test func wrongPassword() async throws {
            await expectOneLineError(try ferry(["tail", "--source", try TestEnvironment.sourceURL()], password: "wrong-password"),
                               code: "source.mysql.server_error", mentioning: ["1045", "password"])
        }

        @Test func binlogOff() async throws {
            let url = try TestEnvironment.value("FERRY_MARIADB_TLS_URL")
            let check = try await ferry(["check", "--source", url], password: "ferry-secret")
            #expect(check.status == 1)
            #expect(check.stdout.contains("FAILED  log_bin"))
            #expect(check.stdout.contains("log_bin = mysql-bin"))
            await expectOneLineError(try ferry(["tail", "--source", url], password: "ferry-secret"), code: "source.binlog.off", mentioning: ["log_bin"])
        }

        /// The suggested GRANT names exactly what is missing, for the account the server matched
        /// (here a host-specific one), not a guessed `'user'@'%'`.
        @Test func missingPrivilege() async throws {
            try await admin(["DROP USER IF EXISTS 'weak'@'%'", "DROP USER IF EXISTS 'weak'@'127.0.0.1'",
                             "CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-pass'", "GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'"])
            let url = "mysql://weak@127.0.0.1:\(try TestEnvironment.value("FERRY_MARIADB_PORT"))"
            let check = try await ferry(["check", "--source", url], password: "weak-pass")
            #expect(check.status == 1)
            #expect(check.stdout.contains("FAILED  privilege REPLICATION SLAVE"))
            #expect(check.stdout.contains("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'weak'@'127.0.0.1';"), "\(check.stdout)")
            await expectOneLineError(try ferry(["tail", "--source", url], password: "weak-pass"), code: "source.mysql.server_error",
                               mentioning: ["REPLICATION SLAVE, REPLICATION CLIENT, SELECT", "ferry check --source"])
        }

        /// An account with exactly the documented privileges passes `ferry check -c` (the optional
        /// replica listing it may not read is a note, not a failure) and `ferry run` snapshots and
        /// streams with it.
        @Test func theDocumentedPrivilegesAreEnoughForCheckAndRun() async throws {
            try await admin(["DROP USER IF EXISTS 'least'@'127.0.0.1'", "CREATE USER 'least'@'127.0.0.1' IDENTIFIED BY 'least-pass'",
                             "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'least'@'127.0.0.1'",
                             "DROP DATABASE IF EXISTS it_least", "CREATE DATABASE it_least", "CREATE TABLE it_least.t (id INT PRIMARY KEY, v VARCHAR(10))",
                             "INSERT INTO it_least.t VALUES (1, 'one'), (2, 'two')"])
            let directory = try scratchDirectory("least")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("ferry.yml").path
            let target = directory.appendingPathComponent("target.sqlite").path
            try """
            sources:
              db: { type: mysql, url: "mysql://least@127.0.0.1:\(try TestEnvironment.value("FERRY_MARIADB_PORT"))?tls=disable", password: least-pass }
            sinks:
              local: { type: sqlite, path: \(target) }
            pipelines:
              p: { source: db, sinks: [local], tables: ["it_least.*"] }
            data_dir: \(directory.path)/data
            server: { listen: off }
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let check = try await ferry(["check", "-c", config])
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            #expect(check.stdout.contains("all prerequisites met") && !check.stdout.contains("FAILED"), "\(check.stdout)")
            #expect(check.stdout.contains("SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN"), "\(check.stdout)")
            let run = try startFerry(config: config)
            defer { run.terminate(); run.waitUntilExit() }
            func rows() async throws -> String { try await sqliteQuery(target, "SELECT group_concat(id || '=' || v, ',') FROM (SELECT * FROM t ORDER BY id)") }
            try await waitUntil("the snapshot", seconds: 30) { try await rows() == "1=one,2=two\n" }
            try await admin(["INSERT INTO it_least.t VALUES (3, 'three')", "UPDATE it_least.t SET v = 'uno' WHERE id = 1"])
            try await waitUntil("the streamed changes", seconds: 30) { try await rows() == "1=uno,2=two,3=three\n" }
        }

        /// `ferry status` tells how long the source keeps the binlog file a stopped pipeline
        /// resumes from: the server's expiry counted from when it rotated away from that file.
        @Test func statusSaysHowLongTheSourceKeepsTheBinlogAPipelineNeeds() async throws {
            let saved = try #require(try await adminQuery("SELECT @@global.binlog_expire_logs_seconds").rows.first?[0])
            let month = 2_592_000
            try await admin(["SET GLOBAL binlog_expire_logs_seconds = \(month)", "DROP DATABASE IF EXISTS it_retention", "CREATE DATABASE it_retention",
                             "CREATE TABLE it_retention.t (id INT PRIMARY KEY)", "INSERT INTO it_retention.t VALUES (1)"])
            do {
                let directory = try scratchDirectory("retention")
                defer { try? FileManager.default.removeItem(at: directory) }
                let config = directory.appendingPathComponent("ferry.yml").path
                let target = directory.appendingPathComponent("target.sqlite").path
                try """
                sources:
                  db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "\(try TestEnvironment.sourcePassword())" }
                sinks:
                  local: { type: sqlite, path: \(target) }
                pipelines:
                  p: { source: db, sinks: [local], tables: ["it_retention.*"] }
                data_dir: \(directory.path)/data
                server: { listen: off }
                """.write(toFile: config, atomically: true, encoding: .utf8)
                let run = try startFerry(config: config)
                try await waitUntil("the row", seconds: 30) { try await sqliteQuery(target, "SELECT count(*) FROM t") == "1\n" }
                run.terminate()
                run.waitUntilExit()
                let needed = try #require(try await adminQuery("SHOW MASTER STATUS").rows.first?[0])
                let now = try await adminQuery("SELECT UNIX_TIMESTAMP()").rows.first?[0]
                let before = try #require(now.flatMap { Double($0) })
                try await admin(["FLUSH BINARY LOGS", "INSERT INTO it_retention.t VALUES (2)"])
                let status = try await ferry(["status", "-c", config, "--json"])
                #expect(status.status == 0, "\(status.stderr)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
                let pipeline = try #require((object["pipelines"] as? [[String: Any]])?.first)
                let retention = try #require(pipeline["binlog_retention"] as? [String: Any], "\(status.stdout)")
                #expect(retention["needed_file"] as? String == needed)
                #expect(retention["expire_seconds"] as? Double == Double(month))
                let left = try #require(retention["seconds_left"] as? Double)
                let elapsed = Date().timeIntervalSince1970 - before
                #expect(left <= Double(month) && left >= Double(month) - elapsed - 1, "\(left) s left, \(elapsed) s elapsed")
                #expect(retention["low"] as? Bool == false)
                let text = try await ferry(["status", "-c", config])
                #expect(text.stdout.contains("binlog retention: \(needed) may be purged in 29 d 23 h (expiry 30 d)"), "\(text.stdout)")
            } catch {
                try await admin(["SET GLOBAL binlog_expire_logs_seconds = \(saved)"])
                throw error
            }
            try await admin(["SET GLOBAL binlog_expire_logs_seconds = \(saved)"])
        }

        /// `ferry init` against a demo-like schema writes a file that `ferry check -c` accepts and
        /// `ferry run` runs unchanged: the snapshot and the stream reach the target, the keyless
        /// table included.
        @Test func initWritesAFileThatChecksAndRunsUnchanged() async throws {
            try await admin(["DROP DATABASE IF EXISTS it_init", "CREATE DATABASE it_init",
                             "CREATE TABLE it_init.customers (id INT PRIMARY KEY, name VARCHAR(20))",
                             "CREATE TABLE it_init.events (at DATETIME, what VARCHAR(20))",
                             "INSERT INTO it_init.customers VALUES (1, 'Ada'), (2, 'Grace')", "INSERT INTO it_init.events VALUES ('2026-01-01 00:00:00', 'opened')"])
            let directory = try scratchDirectory("init")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("ferry.yml").path
            let target = directory.appendingPathComponent("replica.sqlite").path
            let password = try TestEnvironment.sourcePassword()
            let source = "mysql://ferry@127.0.0.1:\(try TestEnvironment.value("FERRY_MARIADB_PORT"))?tls=disable"
            let made = try await ferry(["init", "--source", source, "--database", "it_init", "--sink", "sqlite:\(target)",
                                  "--data-dir", directory.appendingPathComponent("data").path, "-o", config], password: password)
            #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
            #expect(made.stdout.contains("it_init.events") && made.stdout.contains("NO KEY"), "\(made.stdout)")
            let written = try String(contentsOfFile: config, encoding: .utf8)
            #expect(written.contains("#   it_init.events: { key: [COLUMN, …] }") && !written.contains(password), "\(written)")
            await #expect(try ferry(["init", "--source", source, "-o", config], password: password).status == 1, "an existing file is kept")
            let check = try await ferry(["check", "-c", config], password: password)
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            let process = try startFerry(config: config, environment: ["FERRY_SOURCE_PASSWORD": password])
            defer { process.terminate(); process.waitUntilExit() }
            func rows() async throws -> String {
                try await sqliteQuery(target, "SELECT (SELECT group_concat(name, ',') FROM (SELECT name FROM customers ORDER BY id)) || ' / ' || (SELECT count(*) FROM events)")
            }
            try await waitUntil("the snapshot", seconds: 30) { try await rows() == "Ada,Grace / 1\n" }
            try await admin(["INSERT INTO it_init.customers VALUES (3, 'Linus')", "INSERT INTO it_init.events VALUES ('2026-01-02 00:00:00', 'closed')"])
            try await waitUntil("the streamed changes", seconds: 30) { try await rows() == "Ada,Grace,Linus / 2\n" }
        }

        @Test func tlsRequiredButUnavailable() async throws {
            await expectOneLineError(try ferry(["tail", "--source", try TestEnvironment.sourceURL() + "?tls=require"], password: "ferry-secret"),
                               code: "source.mysql.tls_unavailable", mentioning: ["tls=require"])
        }

        @Test func unreachableHost() async throws {
            await expectOneLineError(try ferry(["tail", "--source", "mysql://ferry@127.0.0.1:1"]), code: "source.mysql.unreachable",
                               mentioning: ["127.0.0.1:1"])
        }

        @Test func malformedFrom() async throws {
            await expectOneLineError(try ferry(["tail", "--source", try TestEnvironment.sourceURL(), "--from", "yesterday"]),
                               code: "cli.invalid_position", mentioning: ["'yesterday'"])
            await expectOneLineError(try ferry(["tail", "--source", try TestEnvironment.sourceURL(), "--from", "mariadb-bin.999999:4"], password: "ferry-secret"),
                               code: "source.binlog.purged", mentioning: ["mariadb-bin.999999"])
        }

        @Test func checkPassesOnAProperSource() async throws {
            let result = try await ferry(["check", "--source", try TestEnvironment.sourceURL()], password: try TestEnvironment.sourcePassword())
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("all prerequisites met"))
            #expect(!result.stdout.contains("ferry-secret"))
        }

        /// Unreachable sinks at start: `ferry check -c` names each with its error and a fix.
        @Test func checkNamesUnreachableSinks() async throws {
            let path = NSTemporaryDirectory() + "ferry-unreachable-\(UUID().uuidString).yml"
            try """
            sources:
              db: { type: mysql, url: "\(try TestEnvironment.sourceURL())" }
            sinks:
              pg: { type: postgres, url: "postgres://ferry@127.0.0.1:2/replica", password: "pg-canary-secret" }
              my: { type: mysql, url: "mysql://root@127.0.0.1:3/x" }
            pipelines:
              p: { source: db, sinks: [pg, my] }
            """.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try await ferry(["check", "-c", path], password: try TestEnvironment.sourcePassword())
            #expect(result.status == 1)
            #expect(result.stdout.contains("sink pg (pipeline p): error[sink.postgres.unavailable]") && result.stdout.contains("127.0.0.1:2"), "\(result.stdout)")
            #expect(result.stdout.contains("sink my (pipeline p): error[sink.mariadb.unavailable]") && result.stdout.contains("127.0.0.1:3"), "\(result.stdout)")
            #expect(result.stdout.components(separatedBy: "Fix: check the host and port").count == 3, "\(result.stdout)")
            #expect(!result.stdout.contains("pg-canary-secret") && !result.stderr.contains("pg-canary-secret"))
        }

        @Test func helpHasExamples() async throws {
            for command in ["tail", "check"] {
                let help = try await ferry([command, "--help"])
                #expect(help.status == 0 && help.stdout.contains("Examples:"))
            }
        }
    }

    @Suite struct TLS {
        func configuration(_ mode: TLSMode, ca: Bool) throws -> MySQLConnectionConfiguration {
            var configuration = try MySQLConnectionConfiguration(url: try TestEnvironment.value("FERRY_MARIADB_TLS_ADMIN_URL"))
            configuration.tls = mode
            configuration.tlsCAFile = ca ? try TestEnvironment.value("FERRY_MARIADB_TLS_CA") : nil
            return configuration
        }

        func cipher(_ configuration: MySQLConnectionConfiguration) async throws -> String? {
            try await MySQLConnection.withConnection(configuration, logger: TestEnvironment.logger) { connection in
                try await connection.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'").rows.first?[1]
            }
        }

        @Test func verifiedTLSWithTheServersCA() async throws {
            for mode in [TLSMode.require, .verifyCA, .verifyFull, .prefer] {
                let cipher = try await cipher(try configuration(mode, ca: true))
                #expect(cipher?.isEmpty == false, "no TLS with \(mode)")
            }
            var byName = try configuration(.verifyFull, ca: true)
            byName.host = "localhost"
            #expect(try await cipher(byName)?.isEmpty == false)
        }

        @Test func untrustedCertificateIsRefused() async throws {
            await #expect(throws: MySQLWireError.self) { _ = try await cipher(try configuration(.verifyCA, ca: false)) }
            let disabled = try await cipher(try configuration(.disable, ca: false))
            #expect(disabled == nil || disabled == "")
        }
    }
}

extension Integration {
    /// Cluster mode: three `ferry run` nodes share six pipelines through the 3-member etcd; the
    /// busiest is killed, an owner is paused past its lease and let go, and every node is
    /// restarted in turn, while rows keep changing. Reduced scale here (40 s);
    /// `scripts/cluster-test 300` runs the longer one.
    @Suite struct ClusterFailover {
        @Test func ownersFailOverAndAPausedOwnerWritesNothing() async throws {
            _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
            _ = try TestEnvironment.value("FERRY_ETCD_ENDPOINTS")
            let result = try await runScript("cluster-test", ["40", "--lease", "5"], timeoutSeconds: 600)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("3 nodes own 6 pipelines: n1=2, n2=2, n3=2"))
            #expect(result.stdout.contains("tables differing: 0"))
            #expect(result.stdout.contains("cluster-test: passed"))
        }
    }
}

extension Integration {
    /// `ferry run` killed with SIGKILL mid-stream, again and again: the SQLite target ends equal to
    /// the source row for row and the JSON-lines sink holds every event once. Reduced scale here;
    /// `scripts/crash-test` with no arguments runs the full one (200,000 changes, 20 kills).
    @Suite struct CrashRecovery {
        @Test func sigkillCyclesLoseAndDoubleNothing() async throws {
            let result = try await runScript("crash-test", ["3000", "6", "--source-restarts", "1"], timeoutSeconds: 600)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("6 SIGKILL cycles, memory buffer, 1 source restarts, 1 lanes"))
            #expect(result.stdout.contains("rows lost 0, rows differing 0, rows extra 0"))
            #expect(result.stdout.contains("duplicate ids 0"))
        }

        /// The same with the disk buffer — each sink reads the log at its own pace, and a restart
        /// resumes the source after the newest buffered transaction — and the PostgreSQL and
        /// MariaDB sinks in three lanes.
        @Test func sigkillCyclesWithTheDiskBuffer() async throws {
            let result = try await runScript("crash-test", ["3000", "6", "--buffer", "disk", "--source-restarts", "1", "--lanes", "3"], timeoutSeconds: 600)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("6 SIGKILL cycles, disk buffer, 1 source restarts, 3 lanes"))
            #expect(result.stdout.contains("rows lost 0, rows differing 0, rows extra 0"))
            #expect(result.stdout.contains("duplicate ids 0"))
        }
    }
}

extension Integration.CrashRecovery {
    /// A PostgreSQL source's pipeline killed with SIGKILL again and again, first during its
    /// initial snapshot, and PostgreSQL restarted once, under a workload whose updates mostly
    /// leave a TOASTed column alone: the PostgreSQL, MariaDB and SQLite targets end equal to the
    /// source row for row. Reduced scale; `scripts/crash-test --source postgres` runs 200,000
    /// changes with 20 kills.
    @Test func postgresSourceSigkillCyclesLoseNothing() async throws {
        let result = try await runScript("crash-test", ["--source", "postgres", "3000", "5", "--source-restarts", "1"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("\"kills\": 5, \"source_restarts\": 1"))
        #expect(result.stdout.contains("\"lost\": 0, \"differing\": 0, \"extra\": 0"))
    }

    /// A PostgreSQL table snapshotted under a workload, ferry killed during the snapshot: both
    /// targets end equal, and ferry's sessions held no lock on the table but ACCESS SHARE.
    /// Reduced scale; `scripts/snapshot-test --source postgres` runs 1,000,000 rows.
    @Test func postgresSnapshotUnderLoadHoldsOnlyAccessShareLocks() async throws {
        let result = try await runScript("snapshot-test", ["--source", "postgres", "60000", "2", "--latency-budget-ms", "2000", "--baseline-seconds", "5"],
                                         timeoutSeconds: 900)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("pg-snapshot-test: passed"))
    }
}

extension Integration.CrashRecovery {
    /// A table snapshotted while a workload changes it and ferry is killed during the snapshot:
    /// SQLite and PostgreSQL end equal to the source, and the snapshot resumed where it stopped;
    /// `ferry verify` agrees, finds rows changed, added and deleted directly in the targets, and
    /// `--repair` mends them.
    /// Reduced scale; `scripts/snapshot-test` runs 1,000,000 rows with 5 kills.
    @Test func snapshotUnderLoadWithKills() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("snapshot-test", ["50000", "3", "--latency-budget-ms", "2000", "--lose-state", "--load-verifies", "2"], timeoutSeconds: 900)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(", 0 differences"))
        #expect(result.stdout.contains("50000 rows snapshotted"))
        #expect(result.stdout.contains("watermarks signal table"))
        #expect(result.stdout.contains("ferry verify: exit 0 after the snapshot; 3 differences found after tampering (exit 1); exit 0 with --repair; exit 0 after it"))
        #expect(result.stdout.contains("ferry verify while streaming: 0 of 2 runs reported a difference"))
        let kills = result.stdout.split(separator: " SIGKILL during").first?.split(separator: " ").last.flatMap { Int($0) } ?? 0
        let resumed = result.stdout.split(separator: " resumed)").first?.split(separator: "(").last.flatMap { Int($0) } ?? 0
        #expect(kills == 0 || resumed > 0, "killed \(kills) times but the log shows no resumed snapshot: \(result.stderr)")
    }

    /// The same for a source ferry may not write: watermarks come from the binlog position of each
    /// chunk's consistent read instead of the signal table.
    @Test func readOnlySnapshotUnderLoad() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("snapshot-test", ["20000", "2", "--read-only", "--latency-budget-ms", "2000", "--load-verifies", "1"], timeoutSeconds: 900)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("watermarks binlog positions"))
        #expect(result.stdout.contains(", 0 differences"))
        #expect(result.stdout.contains("ferry verify: exit 0 after the snapshot; 3 differences found after tampering (exit 1); exit 0 with --repair; exit 0 after it"))
    }

    /// The binlog ferry needs is purged while it is down: `snapshot: initial` stops with
    /// source.binlog.purged; `when_needed` snapshots again, deletes the rows lost meanwhile, and the
    /// targets end equal to the source.
    @Test func purgedBinlogIsDetectedAndResnapshotted() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("purge-test", ["5000"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("ferry exits 1: error[source.binlog.purged]"))
        #expect(result.stdout.contains("pipeline=purge"))
        #expect(result.stdout.contains("0 differences; re-snapshot yes, lost deletes swept yes"))
    }

    /// A Redis target (hashes, JSON strings and a stream, data and position in one MULTI/EXEC), a
    /// NATS JetStream target and a ClickHouse target through SIGKILLs: the rows read back equal the
    /// source (ClickHouse with FINAL), and every change is in the Redis stream and in JetStream
    /// exactly once — also with Redis, NATS and ClickHouse each stopped for 5 s mid-stream; and a
    /// second pipeline whose rules reshape the changes delivers exactly what they derive, by id, to
    /// JSON lines, a Redis stream, JetStream and a webhook; and a JetStream target keyed by row
    /// with tombstones holds what a compacted topic would.
    @Test func busCacheAndAnalyticsTargetsSurviveKills() async throws {
        _ = try TestEnvironment.value("FERRY_REDIS_URL")
        _ = try TestEnvironment.value("FERRY_NATS_URL")
        _ = try TestEnvironment.value("FERRY_CLICKHOUSE_URL")
        let result = try await runScript("crash-test", ["3000", "6", "--more-sinks", "--bus-outage", "5", "--rules"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Redis, NATS, ClickHouse, webhook; rows compared"))
        #expect(result.stdout.contains("bad signatures 0, differing from the JSON lines 0"))
        #expect(result.stdout.contains("rows lost 0, rows differing 0, rows extra 0"))
        #expect(result.stdout.contains("duplicates 0, differing from the JSON lines 0; webhook events"))
        #expect(result.stdout.contains("; Redis, NATS and ClickHouse each down 5 s; NATS JetStream messages"))
        #expect(result.stdout.contains("duplicates 0, differing from the JSON lines 0; keyed JetStream messages"))
        // The keyed JetStream target: each change once, a tombstone after each delete on its
        // row's subject, and the rows it leaves live exactly the source's.
        #expect(result.stdout.contains("duplicates 0, differing 0, tombstones off their row's subject 0, live rows differing from the source 0; rules ("))
        // The pipeline with rules: retargeted, dropped, routed and computed changes, each id once.
        #expect(result.stdout.contains("duplicate ids 0, differing from the rules applied to the first pipeline's changes 0, bad computed values 0"))
        #expect(result.stdout.hasSuffix("duplicates 0, differing 0\n"))
        // ... on each append-only sink: the Redis stream and JetStream exactly once, the webhook
        // at least once with every id.
        #expect(result.stdout.contains("bad computed values 0, Redis stream entries"))
        #expect(result.stdout.contains("duplicates 0, differing 0, webhook events"))
        #expect(result.stdout.contains("(repeats dropped by id), differing 0, JetStream messages"))
        #expect(!result.stdout.contains("(0 updates split"))
    }

    /// Joined documents (a link table, a two-level many-to-one chain, a one-to-many array with a
    /// join inside) through random changes on every table and SIGKILLs: each document equals the
    /// join evaluated on the source, and documents of deleted roots are gone.
    @Test func joinedDocumentsEqualTheJoinOnTheSource() async throws {
        let result = try await runScript("documents-test", ["3000", "3", "--source-restarts", "2"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("3 SIGKILL cycles, 2 source restarts, graceful exit 0"))
        #expect(result.stdout.contains("differing or missing or left over 0; link table kept out of the target by a rule: yes"))
    }

    /// A document naming a column its table does not have stops the pipeline at start with the
    /// file and line of the join, the column and the table's columns; nothing is written.
    @Test func aDocumentNamingAnUnknownColumnNamesItsLine() async throws {
        try await admin(["DROP DATABASE IF EXISTS it_docs", "CREATE DATABASE it_docs",
                         "CREATE TABLE it_docs.film (film_id INT PRIMARY KEY, title VARCHAR(20), language_id INT)",
                         "CREATE TABLE it_docs.language (language_id INT PRIMARY KEY, name VARCHAR(20))"])
        let directory = try scratchDirectory("docs")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          local: { type: sqlite, path: \(directory.path)/target.sqlite }
        pipelines:
          p:
            source: db
            sinks: [local]
            tables: ["it_docs.*"]
            documents:
              film_doc:
                root: it_docs.film
                join:
                  language: { table: language, on: { language_id: lang_id } }
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try await runProcess(TestEnvironment.ferryBinary, ["run", "-c", config], timeoutSeconds: 60)
        #expect(result.status == 1)
        #expect(result.stderr.contains("error[config.document_unknown_column]: document film_doc (\(config):14) names column 'lang_id', which it_docs.language does not have"),
                "\(result.stderr)")
        #expect(result.stderr.contains("columns of it_docs.language: language_id, name"))
        let target = directory.appendingPathComponent("target.sqlite").path
        let written = FileManager.default.fileExists(atPath: target) ? try await runProcess("/usr/bin/sqlite3", [target, ".tables"]).stdout : ""
        #expect(written.split(whereSeparator: \.isWhitespace).allSatisfy { $0 == "ferry_offsets" }, "no rows are written: \(written)")
    }

    /// A change too large for the NATS server (a 2 MiB row; max_payload is 1 MiB) goes to the
    /// dead-letter sink with its table, position, size and the limit; the bus gets the other
    /// changes and the SQLite sink gets all of them.
    @Test func aMessageTooLargeForTheBusIsDeadLetteredAndTheRestGoesOn() async throws {
        let natsURL = try TestEnvironment.value("FERRY_NATS_URL")
        let natsPort = try TestEnvironment.value("FERRY_NATS_PORT")
        try await admin(["DROP DATABASE IF EXISTS it_big", "CREATE DATABASE it_big", "CREATE TABLE it_big.notes (id INT PRIMARY KEY, body LONGTEXT)"])
        let status = try await adminQuery("SHOW MASTER STATUS")
        let start = "\(status.rows[0][0]!):\(status.rows[0][1]!)"
        try await admin(["INSERT INTO it_big.notes VALUES (1, 'small')", "INSERT INTO it_big.notes VALUES (2, REPEAT('x', 2097152))",
                         "INSERT INTO it_big.notes VALUES (3, 'small too')"])
        let directory = try scratchDirectory("big")
        defer { try? FileManager.default.removeItem(at: directory) }
        let stream = "BIG\(UInt32.random(in: 0...UInt32.max))"
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          bus: { type: nats, url: "\(natsURL)", password: "${FERRY_NATS_PASSWORD}", stream: \(stream), subject: "\(stream.lowercased()).{table}" }
          local: { type: sqlite, path: \(directory.path)/target.sqlite }
          rejects: { type: jsonl, directory: \(directory.path)/rejects }
        pipelines:
          p: { source: db, sinks: [bus, local], tables: ["it_big.*"], start: "\(start)", snapshot: never, error_policy: dead-letter, dead_letter: rejects }
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let ferry = try startFerry(config: config)
        defer { if ferry.isRunning { ferry.terminate() } }
        func rejected() -> String {
            let files = (try? FileManager.default.subpathsOfDirectory(atPath: "\(directory.path)/rejects")) ?? []
            return files.filter { $0.hasSuffix(".jsonl") }.compactMap { try? String(contentsOfFile: "\(directory.path)/rejects/\($0)", encoding: .utf8) }.joined()
        }
        func rows() async throws -> String {
            try await runProcess("/usr/bin/sqlite3", ["\(directory.path)/target.sqlite", "SELECT id, length(body) FROM notes ORDER BY id"]).stdout
        }
        try await waitUntil("the dead letter and every row in SQLite", seconds: 90) {
            let stored = try? await rows()
            return !rejected().isEmpty && stored == "1|5\n2|2097152\n3|9\n"
        }
        #expect(rejected().contains("the change is 2097"), "\(rejected().prefix(300))")
        #expect(rejected().contains("bytes as a message; the server takes at most 1048576 (max_payload)"))
        #expect(rejected().contains("\"table\":\"it_big.notes\""))
        // The stream holds the two small changes.
        let count = try await runProcess("/usr/bin/python3", ["-c", """
            import json, socket, sys
            s = socket.create_connection(("127.0.0.1", \(natsPort)))
            s.sendall(b'CONNECT {"user":"ferry","pass":"%s","verbose":false}\\r\\nSUB _INBOX.t 1\\r\\nPUB $JS.API.STREAM.INFO.\(stream) _INBOX.t 0\\r\\n\\r\\n' % sys.argv[1].encode())
            data = b""
            while b"MSG _INBOX.t" not in data or not data.rstrip().endswith(b"}"):
                data += s.recv(65536)
            print(json.loads(data[data.index(b"{", data.index(b"MSG _INBOX.t")):])["state"]["messages"])
            """, try TestEnvironment.value("FERRY_NATS_PASSWORD")]).stdout
        #expect(count == "2\n", "messages in the stream: \(count)")
        ferry.terminate()
        ferry.waitUntilExit()
        #expect(ferry.terminationStatus == 0)
    }

    /// Every message of a JetStream stream, oldest first: subject, headers and payload (nil when
    /// empty), read with a raw NATS client so the check does not share ferry's code.
    func jetStreamMessages(_ stream: String) async throws -> (last: Int, messages: [(subject: String, headers: [String: String], payload: [String: Any]?)]) {
        let output = try await runProcess("/usr/bin/python3", ["-c", """
            import base64, json, socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.sendall(b'CONNECT {"user":"ferry","pass":"%s","verbose":false}\\r\\nSUB _INBOX.t 1\\r\\n' % sys.argv[2].encode())
            buffer = b""
            def request(subject, body):
                global buffer
                s.sendall(b"PUB %s _INBOX.t %d\\r\\n%s\\r\\n" % (subject.encode(), len(body), body))
                while True:
                    while b"\\r\\n" not in buffer: buffer += s.recv(65536)
                    line, rest = buffer.split(b"\\r\\n", 1)
                    if not line.startswith(b"MSG "):
                        buffer = rest
                        continue
                    size = int(line.split()[-1])
                    while len(rest) < size + 2: rest += s.recv(65536)
                    buffer = rest[size + 2:]
                    return json.loads(rest[:size])
            info = request("$JS.API.STREAM.INFO." + sys.argv[3], b"")
            last = info["state"]["last_seq"]
            messages = []
            for seq in range(1, last + 1):
                reply = request("$JS.API.STREAM.MSG.GET." + sys.argv[3], json.dumps({"seq": seq}).encode())
                if "message" not in reply: continue
                message = reply["message"]
                lines = base64.b64decode(message.get("hdrs", "")).decode().split("\\r\\n")[1:]
                data = base64.b64decode(message.get("data", ""))
                messages.append([message["subject"], dict(l.split(": ", 1) for l in lines if ": " in l), json.loads(data) if data else None])
            print(json.dumps({"last": last, "messages": messages}))
            """, try TestEnvironment.value("FERRY_NATS_PORT"), try TestEnvironment.value("FERRY_NATS_PASSWORD"), stream])
        guard output.status == 0, let parsed = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
              let last = parsed["last"] as? Int, let messages = parsed["messages"] as? [[Any]] else {
            throw TestSetupError("cannot read stream \(stream): \(output.stdout.prefix(300))\(output.stderr.prefix(300))")
        }
        return (last, messages.map { ($0[0] as? String ?? "", $0[1] as? [String: String] ?? [:], $0[2] as? [String: Any]) })
    }

    /// A subject that names the row, as a Debezium consumer of a compacted topic expects: a delete
    /// is followed by a tombstone (an empty message) on the row's subject, an update that moved
    /// the key is a delete and tombstone under the old key and a create under the new, keys that
    /// hold dots, spaces or nothing stay one token, and a stream ferry creates with
    /// max_messages_per_subject: 1 keeps only each row's latest message. Messages carry Kafka
    /// Connect's schema block (format: debezium-schema).
    @Test func aKeyedSubjectGetsTombstonesAndKeepsEachRowsLatestMessage() async throws {
        _ = try TestEnvironment.value("FERRY_NATS_URL")
        try await admin(["DROP DATABASE IF EXISTS it_keyed", "CREATE DATABASE it_keyed",
                         "CREATE TABLE it_keyed.items (id INT, code VARCHAR(10), v INT, PRIMARY KEY (id, code))"])
        let status = try await adminQuery("SHOW MASTER STATUS")
        let start = "\(status.rows[0][0]!):\(status.rows[0][1]!)"
        try await admin(["INSERT INTO it_keyed.items VALUES (1, 'x', 10), (2, 'a.b c', 20), (3, '', 30)",
                         "UPDATE it_keyed.items SET v = 11 WHERE id = 1", "DELETE FROM it_keyed.items WHERE id = 2",
                         "UPDATE it_keyed.items SET id = 4 WHERE id = 3", "INSERT INTO it_keyed.items VALUES (5, 'z', 50)"])
        let directory = try scratchDirectory("keyed")
        defer { try? FileManager.default.removeItem(at: directory) }
        let stream = "KEYED\(UInt32.random(in: 0...UInt32.max))"
        let prefix = stream.lowercased()
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          bus: { type: nats, url: "\(try TestEnvironment.value("FERRY_NATS_URL"))", password: "${FERRY_NATS_PASSWORD}", stream: \(stream),
                 subject: "\(prefix).{table}.{key}", tombstones: true, max_messages_per_subject: 1, format: debezium-schema }
        pipelines:
          p: { source: db, sinks: [bus], tables: ["it_keyed.*"], start: "\(start)", snapshot: never }
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let ferry = try startFerry(config: config)
        defer { if ferry.isRunning { ferry.terminate() } }
        // 3 creates, an update, a delete and its tombstone, the moved key's delete, tombstone and
        // create, and the last create: 10 messages published.
        try await waitUntil("ten messages published", seconds: 60) { (try? await jetStreamMessages(stream).last) == 10 }
        ferry.terminate()
        ferry.waitUntilExit()
        #expect(ferry.terminationStatus == 0)
        let (_, messages) = try await jetStreamMessages(stream)
        let kept = messages.map { message in
            "\(message.subject) \(message.payload.map { ($0["payload"] as? [String: Any])?["op"] as? String ?? "?" } ?? "tombstone")"
        }
        #expect(kept == ["\(prefix).items.1,x u", "\(prefix).items.2,a%2Eb%20c tombstone", "\(prefix).items.3,% tombstone",
                         "\(prefix).items.4,% c", "\(prefix).items.5,z c"], "\(kept)")
        let ids = messages.map { $0.headers["Nats-Msg-Id"] ?? "" }
        #expect(ids[1].hasSuffix(":0.tombstone") && ids[2].hasSuffix(":0.1.tombstone") && ids[3].hasSuffix(":0.2"), "\(ids)")
        // The moved row's create says where it came from no more than Debezium's does: a create.
        let moved = try #require(messages[3].payload)
        #expect((moved["schema"] as? [String: Any])?["name"] as? String == "db.it_keyed.items.Envelope")
        #expect(((moved["payload"] as? [String: Any])?["after"] as? [String: Any])?["id"] as? Int == 4)
    }

    /// Rules on a real stream: a dropped table, an update routed to one sink only, rows moved to
    /// a table named by their value with a computed column — and a delete following its row —
    /// and a table's columns projected and renamed.
    @Test func rulesDropRouteRetargetComputeAndProjectOnTheWayToEachSink() async throws {
        try await admin(["DROP DATABASE IF EXISTS it_rules", "CREATE DATABASE it_rules",
                         "CREATE TABLE it_rules.orders (id INT PRIMARY KEY, status VARCHAR(10), first VARCHAR(10), last VARCHAR(10))",
                         "CREATE TABLE it_rules.sessions (id INT PRIMARY KEY)",
                         "CREATE TABLE it_rules.users (id INT PRIMARY KEY, email VARCHAR(40), password VARCHAR(40), note VARCHAR(10))"])
        let status = try await adminQuery("SHOW MASTER STATUS")
        let start = "\(status.rows[0][0]!):\(status.rows[0][1]!)"
        try await admin(["INSERT INTO it_rules.orders VALUES (1, 'open', 'Ada', 'Lovelace'), (2, 'paid', 'Bo', 'Diddley'), (3, 'open', 'Cy', 'Twombly')",
                         "INSERT INTO it_rules.sessions VALUES (1)", "UPDATE it_rules.orders SET status = 'paid' WHERE id = 1",
                         "DELETE FROM it_rules.orders WHERE id = 2", "UPDATE it_rules.orders SET first = 'Cyrus' WHERE id = 3",
                         "INSERT INTO it_rules.users VALUES (7, 'ada@example.com', 'hunter2-canary', 'x')"])
        let directory = try scratchDirectory("rules")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          local: { type: sqlite, path: \(directory.path)/target.sqlite }
          files: { type: jsonl, directory: \(directory.path)/jsonl }
        pipelines:
          p:
            source: db
            sinks: [local, files]
            tables: ["it_rules.*"]
            start: "\(start)"
            snapshot: never
            rules:
              - { tables: ["it_rules.sessions"], drop: true }
              - { tables: ["it_rules.orders"], ops: [update], when: "changed(status) and after.status == 'paid'", sinks: [files] }
              - { tables: ["it_rules.orders"], target: "orders_{status}", set: { name: "concat(first, ' ', upper(last))" } }
              - { tables: ["it_rules.users"], exclude_columns: [password], rename_columns: { email: mail } }
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let ferry = try startFerry(config: config)
        defer { if ferry.isRunning { ferry.terminate() } }
        func lines() -> [String] {
            let root = "\(directory.path)/jsonl/p"
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
            return files.flatMap { ((try? String(contentsOfFile: "\(root)/\($0)", encoding: .utf8)) ?? "").split(separator: "\n").map { line in
                let event = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
                let source = event["source"] as? [String: Any] ?? [:]
                return "\(event["op"] ?? "?") \(source["table"] ?? "?")"
            } }
        }
        func tables() async throws -> String {
            try await runProcess("/usr/bin/sqlite3", ["\(directory.path)/target.sqlite",
                                                "SELECT 'open', id, status, name FROM orders_open UNION ALL SELECT 'paid', id, status, name FROM orders_paid ORDER BY 1, 2"]).stdout
        }
        try await waitUntil("every change in both sinks", seconds: 90) {
            let (written, stored) = (lines(), try? await tables())
            return written.count == 7 && stored == "open|1|open|Ada LOVELACE\nopen|3|open|Cyrus TWOMBLY\n"
        }
        #expect(lines() == ["c orders_open", "c orders_paid", "c orders_open", "u orders", "d orders_paid", "u orders_open", "c users"], "\(lines())")
        let users = try await runProcess("/usr/bin/sqlite3", ["-header", "\(directory.path)/target.sqlite", "SELECT * FROM users"]).stdout
        #expect(users == "id|mail|note\n7|ada@example.com|x\n", "\(users)")
        let jsonl = try await runProcess("/bin/sh", ["-c", "cat '\(directory.path)'/jsonl/p/*.jsonl"]).stdout
        #expect(jsonl.contains("\"mail\":\"ada@example.com\"") && !jsonl.contains("hunter2-canary"), "\(jsonl)")
        let sqliteTables = try await runProcess("/usr/bin/sqlite3", ["\(directory.path)/target.sqlite", ".tables"]).stdout
        #expect(!sqliteTables.contains("sessions") && !sqliteTables.contains("orders "), "\(sqliteTables)")
        ferry.terminate()
        ferry.waitUntilExit()
        #expect(ferry.terminationStatus == 0)
    }

    /// A table without a key is snapshotted whole, and its rows replace what the target holds:
    /// with `start:` before the rows were written, the stream's copies of them are not kept beside
    /// the snapshot's (they were: every row twice).
    @Test func aKeylessTablesSnapshotReplacesTheRowsTheStreamWrote() async throws {
        try await admin(["DROP DATABASE IF EXISTS it_keyless", "CREATE DATABASE it_keyless", "CREATE TABLE it_keyless.visits (page VARCHAR(10), n INT)"])
        let start = try await currentPosition()
        try await admin(["INSERT INTO it_keyless.visits VALUES ('a', 1), ('a', 1), ('b', NULL)", "UPDATE it_keyless.visits SET n = 2 WHERE page = 'b'"])
        let directory = try scratchDirectory("keyless")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          local: { type: sqlite, path: \(directory.path)/target.sqlite }
          files: { type: jsonl, directory: \(directory.path)/jsonl }
        pipelines:
          p:
            source: db
            sinks: [local, files]
            tables: ["it_keyless.*"]
            start: "\(start)"
            snapshot: initial
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let ferry = try startFerry(config: config)
        defer { if ferry.isRunning { ferry.terminate() } }
        func rows() async -> String {
            await (try? runProcess("/usr/bin/sqlite3", ["\(directory.path)/target.sqlite", "SELECT page, n FROM visits ORDER BY page, n"]).stdout) ?? ""
        }
        func jsonl() async -> String { await (try? runProcess("/bin/sh", ["-c", "cat '\(directory.path)'/jsonl/p/*.jsonl 2>/dev/null"]).stdout) ?? "" }
        try await waitUntil("the snapshot's rows in both sinks", seconds: 90) {
            let (written, stored) = (await jsonl(), await rows())
            return written.contains("\"snapshot\":\"true\"") && stored == "a|1\na|1\nb|2\n"
        }
        try await admin(["INSERT INTO it_keyless.visits VALUES ('c', 3)"])
        try await waitUntil("a change after the snapshot", seconds: 60) { await rows() == "a|1\na|1\nb|2\nc|3\n" }
        let replace = await jsonl().split(separator: "\n").filter { $0.contains("\"op\":\"ddl\"") }
        #expect(replace.count == 1 && replace[0].contains("TRUNCATE TABLE `it_keyless`.`visits`"), "\(replace)")
        ferry.terminate()
        ferry.waitUntilExit()
        #expect(ferry.terminationStatus == 0)
    }

    /// Debezium consumers see where a snapshot ends: the last row each table's snapshot delivers
    /// says `last_in_data_collection`, the last row of the last table `last` — with chunks read in
    /// parallel, and when a table's row count is a multiple of the chunk size.
    @Test func theLastSnapshotRowOfEachTableSaysSo() async throws {
        try await admin(["DROP DATABASE IF EXISTS it_last", "CREATE DATABASE it_last",
                         "CREATE TABLE it_last.a (id INT PRIMARY KEY, v INT)", "CREATE TABLE it_last.b (id INT PRIMARY KEY, v INT)",
                         "INSERT INTO it_last.a SELECT seq, seq FROM it_last.seq_1_to_10", "INSERT INTO it_last.b SELECT seq, seq FROM it_last.seq_1_to_7"])
        let directory = try scratchDirectory("last")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("ferry.yml").path
        try """
        sources:
          db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
        sinks:
          files: { type: jsonl, directory: \(directory.path)/jsonl }
        pipelines:
          p:
            source: db
            sinks: [files]
            tables: ["it_last.*"]
            snapshot: { mode: initial, chunk_rows: 5, parallel: 2 }
        data_dir: \(directory.path)/data
        server: { listen: off }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let ferry = try startFerry(config: config)
        defer { if ferry.isRunning { ferry.terminate() } }
        func reads() async -> [(table: String, id: Int, snapshot: String)] {
            let text = await (try? runProcess("/bin/sh", ["-c", "cat '\(directory.path)'/jsonl/p/*.jsonl 2>/dev/null"]).stdout) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let event = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], event["op"] as? String == "r",
                      let source = event["source"] as? [String: Any], let after = event["after"] as? [String: Any] else { return nil }
                return ("\(source["table"] ?? "")", after["id"] as? Int ?? 0, "\(source["snapshot"] ?? "")")
            }
        }
        try await waitUntil("both tables' snapshots", seconds: 90) { await reads().count == 17 }
        let rows = await reads()
        for (table, count) in [("a", 10), ("b", 7)] {
            let ofTable = rows.filter { $0.table == table }
            #expect(Set(ofTable.map(\.id)) == Set(1...count))
            #expect(ofTable.dropLast().allSatisfy { $0.snapshot == "true" }, "\(ofTable)")
        }
        let ends = rows.filter { $0.snapshot != "true" }.map { "\($0.table) \($0.snapshot)" }
        #expect(ends == ["a last_in_data_collection", "b last"] || ends == ["b last_in_data_collection", "a last"], "\(rows)")
        #expect(rows.last?.snapshot == "last", "\(rows)")
        ferry.terminate()
        ferry.waitUntilExit()
        #expect(ferry.terminationStatus == 0)
    }

    /// Restarts through the API at different moments of a snapshot's start: the pipeline runs
    /// again every time and stops on SIGTERM (a restart there once left it hanging for good).
    @Test func aRestartDuringASnapshotsStartNeverHangs() async throws {
        let result = try await runScript("restart-test", ["8"], timeoutSeconds: 900)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("8 restarts during a snapshot's start, 8 running again and stopped with exit 0, 0 failed"))
    }

    /// Eight pipelines with two sinks each (SQLite and PostgreSQL, memory and disk buffers, lanes)
    /// start on a fresh data directory and stop cleanly, again and again (two pipelines once
    /// crashed the state store at first start).
    @Test func manyPipelinesStartOnAFreshDataDirectory() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("start-test", ["3", "8"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("start-test: 3 of 3 runs started 8 pipelines x 2 sinks on a fresh data directory and stopped cleanly"))
    }

    /// Three pipelines in one process under SIGKILLs, target tables locked and a PostgreSQL
    /// connection stalled for longer than the apply timeout while the same rows keep changing:
    /// no target ever goes back to an older value, and every target ends equal to the source.
    @Test func lockedTargetsAndStalledConnectionsNeverWriteStaleRows() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("stall-test", ["3000", "3", "--slow-target", "--stalled-connection", "--seconds", "20"], timeoutSeconds: 900)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("0 tables differing"))
        #expect(result.stdout.contains("0 stale writes seen by the reader; 0 unexpected exits; SIGTERM exit 0"))
    }

    /// The disk buffer's file system fills up: ferry holds, says so once, and goes on by itself
    /// when there is room again; nothing is lost.
    @Test func aFullDiskHoldsThePipelineUntilSpaceReturns() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("disk-full-test", ["20000"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("buffer full; ferry running, 1 disk_full warning(s)"))
        #expect(result.stdout.contains("SQLite 20001, PostgreSQL 20001 of 20001 rows; SIGTERM exit 0"))
    }

    /// A webhook pointed at the cloud metadata address (and at loopback) is refused before any
    /// request, with the fix; nothing is sent.
    @Test func webhookToMetadataAddressIsRefused() async throws {
        let directory = try scratchDirectory("webhook")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (url, reason) in [("http://169.254.169.254/latest/meta-data", "169.254.169.254 is 169.254.169.254, a cloud metadata address"),
                              ("http://localhost:9/hook", "localhost is 127.0.0.1, a loopback address")] {
            let config = directory.appendingPathComponent("ferry.yml").path
            try """
            sources:
              db: { type: mysql, url: "\(try TestEnvironment.sourceURL())?tls=disable", password: "${FERRY_MARIADB_PASSWORD}" }
            sinks:
              hook: { type: webhook, url: "\(url)" }
            pipelines:
              p: { source: db, sinks: [hook], tables: ["nothing.*"] }
            data_dir: \(directory.path)/data
            server: { listen: off }
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let result = try await runProcess(TestEnvironment.ferryBinary, ["run", "-c", config], timeoutSeconds: 60)
            #expect(result.status == 1)
            #expect(result.stderr.contains("error[sink.webhook.address_refused]: webhook sink hook: \(reason)"), "\(result.stderr)")
            #expect(result.stderr.contains("set allow_private: true"))
        }
    }

    /// The PostgreSQL sink's server stopped for 15 s mid-stream: ferry retries, catches up, loses nothing.
    @Test func postgresOutageLosesNothing() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("crash-test", ["5000", "0", "--outage", "15"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("rows lost 0, rows differing 0, rows extra 0"))
        #expect(result.stdout.contains("PostgreSQL down 15 s"))
    }

    /// With the disk buffer, the other sinks go on during the outage and `ferry status` shows the
    /// PostgreSQL sink's backlog.
    @Test func postgresOutageWithTheDiskBuffer() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("crash-test", ["20000", "0", "--outage", "10", "--buffer", "disk"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("rows lost 0, rows differing 0, rows extra 0"))
        let behind = result.stdout.split(separator: "PostgreSQL sink ").last.flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        #expect(behind > 0, "status showed no backlog: \(result.stdout)")
    }
}

extension Integration.CrashRecovery {
    /// ADD/DROP/MODIFY/RENAME COLUMN and RENAME/CREATE/DROP/TRUNCATE TABLE while `ferry run`
    /// streams, under evolve (PostgreSQL, MariaDB, SQLite), lenient, ignore and fail, and a
    /// replay from before the DDLs: `scripts/ddl-test` checks every target against the source.
    @Test func schemaChangesUnderEveryPolicy() async throws {
        _ = try TestEnvironment.value("FERRY_POSTGRES_URL")
        let result = try await runScript("ddl-test", ["100"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("problems 0"))
    }

    /// Schema changes on a PostgreSQL source while ferry streams, is killed, and is stopped with
    /// changes made meanwhile (the schema history): `scripts/ddl-test --source postgres` checks
    /// each target's tables, columns and rows against the source (reduced scale here).
    @Test func postgresSchemaChangesThroughKillsAndStops() async throws {
        let result = try await runScript("ddl-test", ["--source", "postgres", "16"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("pg-ddl-test: passed"))
    }
}

extension Integration.CrashRecovery {
    /// A reload while changes stream (`scripts/reload-test`, reduced scale): an invalid file is
    /// refused and nothing stops; then a table added to one pipeline, another `batch:`, a pipeline
    /// removed and one added — the untouched pipeline never stops, the added table is
    /// snapshotted, and every target equals the source.
    @Test func reloadAppliesOnlyWhatChanged() async throws {
        let result = try await runScript("reload-test", ["6000"], timeoutSeconds: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("0 failure(s)"))
        #expect(result.stdout.contains("ok   keep never stopped or restarted"))
        #expect(result.stdout.contains("ok   tune.sqlite table d equals rl.d"))
    }
}

extension Integration {
    /// The control plane of a real `ferry run` while changes stream: every API endpoint and its
    /// errors, roles, the audit log, pause/resume/restart/snapshot/rewind, the web page in a real
    /// headless Chromium (figures change without a reload), Prometheus metrics that move,
    /// schemathesis against the OpenAPI document, TLS, JSON logs, and a password that appears in
    /// no response or log line (`scripts/control-plane-test`).
    @Suite struct ControlPlane {
        @Test func apiPageMetricsAndSecrets() async throws {
            let result = try await runScript("control-plane-test", [], timeoutSeconds: 1200)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("control-plane-test: 0 failure(s)"))
            #expect(result.stdout.contains("ok   Chromium: the pipeline page's figures change without a reload"))
            #expect(result.stdout.contains("ok   schemathesis: every operation conforms to the OpenAPI document"))
            #expect(result.stdout.contains("ok   the password appears in none of"))
            #expect(!result.stdout.contains("FAIL "))
        }

        /// An attacker on the same network (`scripts/attack-test`, reduced scale): silent,
        /// half-sent and trickling connections at 1,024 descriptors, DNS rebinding through a real
        /// resolver, every SSRF spelling and the host's own addresses, cross-site sign-in and
        /// sign-out in Chromium, passwords in every error path — ferry refuses each, keeps running,
        /// and the target equals the source.
        @Test func everyProbeOfAnAttackerIsRefused() async throws {
            let result = try await runScript("attack-test", ["--connections", "600"], timeoutSeconds: 900)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("attack-test: 0 failure(s)"))
            #expect(result.stdout.contains("ok   DNS rebinding") && result.stdout.contains("ok   ferry still runs and the target equals the source"))
            #expect(!result.stdout.contains("FAIL "))
        }
    }
}

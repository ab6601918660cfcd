import ControlPlane
import DiskLog
import Documents
@testable import FerryApp
import FerryCore
import Foundation
import MySQLSource
import Pipeline
import RedisSink
import SinkSupport
import Rules
import Logging
import Testing

@Suite struct ConfigurationTests {
    static let valid = """
    sources:
      shop: { type: mysql, url: "mysql://ferry@127.0.0.1:3306", password: "${SHOP_PASSWORD}" }
    sinks:
      local: { type: sqlite, path: ./replica.sqlite }
      files: { type: jsonl, max_file_bytes: 8MiB }
    pipelines:
      shop-to-local:
        source: shop
        sinks: [local, files]
        tables: ["shop.*"]
        buffer: memory
        buffer_bytes: 16MiB
        target_table: "{db}_{table}"
    state: { sqlite: ./ferry-state.sqlite }
    """

    func parse(_ text: String, environment: [String: String] = ["SHOP_PASSWORD": "s3cret"]) throws -> FerryConfiguration {
        try FerryConfiguration.parse(text, file: "ferry.yml", environment: environment)
    }

    @Test func readsTheDocumentedShape() throws {
        let configuration = try parse(Self.valid)
        #expect(configuration.sources["shop"]?.password == "s3cret")
        #expect(configuration.statePath == "./ferry-state.sqlite")
        let pipeline = try #require(configuration.pipelines.first)
        #expect(pipeline.sinks == ["local", "files"] && pipeline.include == ["shop.*"])
        #expect(pipeline.bufferBytes == 16 << 20 && pipeline.targetTable == "{db}_{table}")
        #expect(pipeline.serverID >= 100_000_000)
        guard case .jsonl(_, let bytes, _, let format) = configuration.sinks["files"]?.kind else { Issue.record("files is not jsonl"); return }
        #expect(bytes == 8 << 20 && format == .debezium)
        let framed = try parse(Self.valid.replacingOccurrences(of: "type: jsonl", with: "type: jsonl, format: debezium-schema"))
        guard case .jsonl(_, _, _, let chosen) = framed.sinks["files"]?.kind else { Issue.record("files is not jsonl"); return }
        #expect(chosen == .debeziumSchema)
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "type: jsonl", with: "type: jsonl, format: avro")) }
    }

    @Test func unknownKeyNamesFileLineAndSuggestion() {
        let text = Self.valid.replacingOccurrences(of: "    tables:", with: "    tabels:")
        #expect(throws: FerryError.self) { try parse(text) }
        do { _ = try parse(text) } catch let error as FerryError {
            #expect(error.code == .configInvalid)
            #expect(error.message.hasPrefix("ferry.yml:10: pipelines.shop-to-local.tabels: unknown key 'tabels'"))
            #expect(error.fix?.contains("did you mean 'tables'") == true)
        } catch { Issue.record("\(error)") }
    }

    @Test func missingEnvironmentVariable() {
        do { _ = try parse(Self.valid, environment: [:]) } catch let error as FerryError {
            #expect(error.message.contains("ferry.yml:2: sources.shop.password: environment variable SHOP_PASSWORD is not set"))
            #expect(error.fix == "export SHOP_PASSWORD=… before starting ferry")
        } catch { Issue.record("\(error)") }
    }

    @Test func invalidYAMLAndReferences() {
        #expect(throws: FerryError.self) { try parse("sources: [unclosed") }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "sinks: [local, files]", with: "sinks: [local, nowhere]")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "type: sqlite", with: "type: oracle")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "buffer_bytes: 16MiB", with: "buffer_bytes: lots")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "mysql://ferry@127.0.0.1:3306", with: "mysql://127.0.0.1")) }
    }

    static let full = """
    sources:
      shop: { type: mysql, url: "mysql://ferry@127.0.0.1:3306" }
    sinks:
      local: { type: sqlite, path: ./replica.sqlite }
      rejects: { type: jsonl, directory: ./rejects }
    pipelines:
      shop-to-local:
        source: shop
        sinks: [local]
        buffer: disk
        disk: { fsync: interval, fsync_interval_ms: 250, segment_bytes: 16MiB }
        error_policy: dead-letter
        dead_letter: rejects
        mapping:
          shop.customers:
            exclude_columns: [password_hash, "secret_*"]
            rename_columns: { email: contact_email }
            target: people
          "shop.log_*":
            columns: [id, at, message]
            key: [id, at]
    """

    @Test func readsDiskBufferErrorPolicyAndMapping() throws {
        let pipeline = try #require(try parse(Self.full).pipelines.first)
        #expect(pipeline.disk?.fsync == .interval)
        #expect(pipeline.disk?.interval == .milliseconds(250))
        #expect(pipeline.disk?.segmentBytes == 16 << 20)
        #expect(pipeline.deadLetterSink == "rejects")
        #expect(pipeline.mappings.count == 2)
        #expect(pipeline.mappings[0].tables == "shop.customers")
        #expect(pipeline.mappings[0].columns.excludeColumns == ["password_hash", "secret_*"])
        #expect(pipeline.mappings[0].columns.renameColumns == ["email": "contact_email"])
        #expect(pipeline.mappings[1].columns.includeColumns == ["id", "at", "message"])
        #expect(pipeline.mappings[1].columns.key == ["id", "at"])
        #expect(pipeline.targetOverrides.map(\.template) == ["people"])
        let namer = Run.targetTableNamer(pipeline)
        #expect(namer(TableName(database: "shop", table: "customers")) == "people")
        #expect(namer(TableName(database: "shop", table: "orders")) == "orders")
    }

    @Test func badPipelineSettingsNameTheKey() {
        func message(_ from: String, _ to: String) -> String? {
            do {
                _ = try parse(Self.full.replacingOccurrences(of: from, with: to))
                return nil
            } catch let error as FerryError {
                return error.message + " " + (error.fix ?? "")
            } catch {
                return "\(error)"
            }
        }
        #expect(message("fsync: interval", "fsync: sometimes")?.contains("pipelines.shop-to-local.disk.fsync: unknown fsync policy 'sometimes'") == true)
        #expect(message("buffer: disk", "buffer: tape")?.contains("unknown buffer 'tape'") == true)
        #expect(message("buffer: disk", "buffer: memory")?.contains("disk settings given but the buffer is memory") == true)
        #expect(message("dead_letter: rejects", "dead_letter: local")?.contains("cannot keep dead letters") == true)
        #expect(message("    dead_letter: rejects\n", "")?.contains("needs a dead_letter sink") == true)
        #expect(message("error_policy: dead-letter", "error_policy: ignore")?.contains("unknown error policy 'ignore'") == true)
        #expect(message("rename_columns:", "rename_colums:")?.contains("ferry.yml:17: pipelines.shop-to-local.mapping.shop.customers.rename_colums: unknown key") == true)
    }
}

extension ConfigurationTests {
    /// The valid configuration with `lines` added to its pipeline.
    func withPipelineLines(_ lines: [String]) -> String {
        Self.valid.replacingOccurrences(of: "    target_table: \"{db}_{table}\"",
                                        with: (["    target_table: \"{db}_{table}\""] + lines.map { "    " + $0 }).joined(separator: "\n"))
    }

    @Test func readsSnapshotSettings() throws {
        let defaults = try #require(try parse(Self.valid).pipelines.first).snapshot
        #expect(defaults.mode == .initial && defaults.chunkRows == 8192 && defaults.parallelism == 4 && defaults.watermarks == .auto)
        #expect(defaults.signalTable == TableName(database: "ferry", table: "ferry_signal"))
        #expect(try parse(withPipelineLines(["snapshot: when_needed"])).pipelines.first?.snapshot.mode == .whenNeeded)
        let text = withPipelineLines([
            "snapshot: { mode: initial_only, chunk_rows: 1000, parallel: 2, watermarks: binlog, signal_table: ops.signals }",
            "mapping:", "  \"shop.log_*\": { key: [id, at] }",
        ])
        let settings = try #require(try parse(text).pipelines.first).snapshot
        #expect(settings.mode == .initialOnly && settings.chunkRows == 1000 && settings.parallelism == 2 && settings.watermarks == .binlog)
        #expect(settings.signalTable == TableName(database: "ops", table: "signals"))
        #expect(settings.keyOverrides.map(\.tables) == ["shop.log_*"] && settings.keyOverrides.first?.columns == ["id", "at"])
        for (bad, message) in [("snapshot: sometimes", "unknown snapshot mode 'sometimes'"), ("snapshot: { parallel: 0 }", "parallel must be between 1 and 64"),
                               ("snapshot: { signal_table: nodot }", "'nodot' is not DATABASE.TABLE"),
                               ("snapshot: { watermarks: gtid }", "unknown watermarks 'gtid'")] {
            do {
                _ = try parse(withPipelineLines([bad]))
                Issue.record("\(bad) was accepted")
            } catch let error as FerryError {
                #expect(error.message.contains(message) && error.message.contains("ferry.yml:"), "\(error.message)")
            }
        }
    }

    @Test func serverDefaultsToLoopbackAndReadsListenAndTLS() throws {
        let plain = try parse(Self.valid)
        #expect(plain.server?.settings.host == "127.0.0.1" && plain.server?.settings.port == 8080 && plain.server?.explicit == false)
        let off = try parse(Self.valid + "\nserver: { listen: off }")
        #expect(off.server == nil)
        let certificate = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-test-cert.pem").path
        FileManager.default.createFile(atPath: certificate, contents: Data("pem".utf8))
        defer { try? FileManager.default.removeItem(atPath: certificate) }
        let tls = try parse(Self.valid + "\nserver:\n  listen: \"[::1]:9443\"\n  tls: { cert: \(certificate), key: \(certificate) }")
        #expect(tls.server?.settings.host == "::1" && tls.server?.settings.port == 9443 && tls.server?.settings.usesTLS == true && tls.server?.explicit == true)
        do {
            _ = try parse(Self.valid + "\nserver: { listen: 8080 }")
            Issue.record("a listen address without a host must be refused")
        } catch let error as FerryError {
            #expect(error.message.contains("server.listen: '8080' is not HOST:PORT"))
        }
        do {
            _ = try parse(Self.valid + "\nserver: { tls: { cert: \(certificate) } }")
            Issue.record("tls without a key must be refused")
        } catch let error as FerryError {
            #expect(error.message.contains("server.tls: tls needs both cert and key"))
        }
    }

    /// Lag in seconds counts while the source's log is ahead of a sink even when nothing was read
    /// (a paused pipeline), and stays 0 for the few bytes a binlog rotation adds.
    @Test func lagSecondsFollowTheLogNotOnlyWhatWasRead() {
        func figures(events: UInt64, bytes: UInt64?) -> PipelineProgress.SinkProgress {
            PipelineProgress.SinkProgress(name: "s", eventsApplied: 10, appliedCommitMillis: 100_000, eventsPerSecond: 0, lagEvents: events, lagBytes: bytes)
        }
        let progress = PipelineProgress(pipeline: "p", buffer: "memory", bufferBytes: 0, eventsRead: 10, readPosition: nil, readCommitMillis: 100_000,
                                        sinks: [], updatedMillis: 101_000)
        #expect(Status.lagSeconds(figures(events: 0, bytes: 0), of: progress, at: 107_500) == 0)
        #expect(Status.lagSeconds(figures(events: 0, bytes: 400), of: progress, at: 107_500) == 0, "a rotation's preamble is no lag")
        #expect(Status.lagSeconds(figures(events: 0, bytes: 28_917), of: progress, at: 107_500) == 7.5, "paused with the log ahead")
        #expect(Status.lagSeconds(figures(events: 3, bytes: nil), of: progress, at: 107_500) == 7.5)
    }

    /// `ferry status` reads a configuration whose secrets' variables are not set: it contacts no sink.
    @Test func unsetVariablesAreAllowedOnlyWhenAsked() throws {
        #expect(throws: FerryError.self) { try FerryConfiguration.parse(Self.valid, file: "ferry.yml", environment: [:]) }
        let lenient = try FerryConfiguration.parse(Self.valid, file: "ferry.yml", environment: [:], allowUnsetVariables: true)
        #expect(lenient.pipelines.count == 1)
    }

    /// The web port's connection cap and timeouts, and the share of descriptors it may take.
    @Test func webConnectionLimits() throws {
        let defaults = try parse(Self.valid)
        #expect(defaults.server?.settings.maximumConnections == 256 && defaults.server?.settings.requestTimeoutSeconds == 10
                && defaults.server?.settings.idleTimeoutSeconds == 60)
        let set = try parse(Self.valid + "\nserver: { max_connections: 64, request_timeout_seconds: 2.5, idle_timeout_seconds: 30 }")
        #expect(set.server?.settings.maximumConnections == 64 && set.server?.settings.requestTimeoutSeconds == 2.5
                && set.server?.settings.idleTimeoutSeconds == 30)
        #expect(throws: FerryError.self) { try parse(Self.valid + "\nserver: { max_connections: 0 }") }
        #expect(throws: FerryError.self) { try parse(Self.valid + "\nserver: { request_timeout_seconds: soon }") }
        // systemd's default 1,024: a quarter (at least 256) stays for replication.
        #expect(DescriptorLimit(before: 1024, now: 1024).webConnections(configured: 256) == 256)
        #expect(DescriptorLimit(before: 1024, now: 1024).webConnections(configured: 5000) == 768)
        #expect(DescriptorLimit(before: 1024, now: 1_048_576).webConnections(configured: 5000) == 5000)
        #expect(DescriptorLimit(before: 64, now: 64).webConnections(configured: 256) == 8)
    }

    @Test func theAPIsConfigurationHasNoSecret() throws {
        let configuration = try parse(Self.valid.replacingOccurrences(of: "mysql://ferry@127.0.0.1:3306", with: "mysql://ferry:inline-pw@127.0.0.1:3306?tls=disable"))
        let json = configuration.redactedJSON()
        #expect(!json.contains("s3cret") && !json.contains("inline-pw"))
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let source = try #require((object["sources"] as? [String: Any])?["shop"] as? [String: Any])
        #expect(source["password"] as? String == "<redacted>")
        #expect(source["url"] as? String == "mysql://ferry:<redacted>@127.0.0.1:3306?tls=disable")
        #expect((object["pipelines"] as? [String: Any])?["shop-to-local"] != nil)
    }
}

extension ConfigurationTests {
    @Test func readsRulesAndNamesTheLineOfAMistake() throws {
        let pipeline = try #require(try parse(withPipelineLines([
            "rules:",
            "  - tables: [\"shop.orders\"]",
            "    ops: [update]",
            "    when: \"changed(status) and after.status == 'paid'\"",
            "    sinks: [files]",
            "  - { tables: [\"shop.*\"], ops: [delete], drop: true }",
            "  - { tables: [\"shop.customers\"], target: \"shop.customers_{country}\", set: { name: \"concat(first, ' ', last)\" } }",
            "  - { tables: [\"shop.users\"], when: \"op == 'read'\", columns: [id, \"e*\"], exclude_columns: [password], rename_columns: { email: mail } }",
        ])).pipelines.first)
        #expect(pipeline.rules.count == 4)
        #expect(pipeline.rules[3].columns == ColumnProjection(includeColumns: ["id", "e*"], excludeColumns: ["password"], renameColumns: ["email": "mail"]))
        #expect(pipeline.rules[0].location == "ferry.yml:15" && pipeline.rules[0].operations == [.update] && pipeline.rules[0].sinks == ["files"])
        #expect(pipeline.rules[1].drop && pipeline.rules[2].target == "shop.customers_{country}" && pipeline.rules[2].set.map(\.name) == ["name"])

        func message(_ lines: [String]) -> String? {
            do {
                _ = try parse(withPipelineLines(lines))
                return nil
            } catch let error as FerryError {
                return error.message + " " + (error.fix ?? "")
            } catch {
                return "\(error)"
            }
        }
        #expect(message(["rules:", "  - { when: \"after.status = 'paid'\", drop: true }"])?
            .hasPrefix("ferry.yml:15: pipelines.shop-to-local.rules[0].when: '=' compares nothing: write '==' at column 14 of \"after.status = 'paid'\"") == true)
        #expect(message(["rules:", "  - { when: \"true\", sinks: [nowhere] }"])?.contains("the rule at ferry.yml:15 routes to 'nowhere', which is not a sink of this pipeline") == true)
        #expect(message(["rules:", "  - { tables: [\"shop.*\"] }"])?.contains("ferry.yml:15: pipelines.shop-to-local.rules[0]: the rule does nothing") == true)
        #expect(message(["rules:", "  - { ops: [upsert], drop: true }"])?.contains("unknown operation 'upsert'") == true)
        #expect(message(["rules:", "  - { tables: [\"shop.ordres\"], drop: true }"]) == nil, "shop.* includes any shop table")
        #expect(message(["rules:", "  - { tables: [\"shoop.orders\"], drop: true }"])?
            .contains("the rule at ferry.yml:15 names table shoop.orders, which the pipeline's tables do not include") == true)
    }

    @Test func readsDocumentsJoinedOnOneColumnOrSeveral() throws {
        let pipeline = try #require(try parse(withPipelineLines([
            "documents:",
            "  account_doc:",
            "    root: shop.account",
            "    join:",
            "      invoices: { table: invoice, kind: many, on: { tenant: tenant, id: account_id }, columns: [number, total] }",
            "      tags:",
            "        table: tag",
            "        on: { tenant: tenant, id: account_id }",
            "        through: { table: account_tag, to: { tenant: tenant, tag_id: id } }",
        ])).pipelines.first)
        let document = try #require(pipeline.documents.first)
        #expect(document.name == "account_doc" && document.root == TableName(database: "shop", table: "account") && document.location == "ferry.yml:15")
        let invoices = document.joins[0], tags = document.joins[1]
        #expect(invoices.kind == .many && invoices.parentColumns == ["tenant", "id"] && invoices.childColumns == ["tenant", "account_id"])
        #expect(invoices.table == TableName(database: "shop", table: "invoice") && invoices.columns == ["number", "total"] && invoices.location == "ferry.yml:18")
        #expect(tags.kind == .many && tags.parentColumns == ["tenant", "id"] && tags.childColumns == ["tenant", "id"])
        #expect(tags.through?.table == TableName(database: "shop", table: "account_tag"))
        #expect(tags.through?.parentColumns == ["tenant", "account_id"] && tags.through?.childColumns == ["tenant", "tag_id"])
        #expect(throws: FerryError.self) { try parse(withPipelineLines(["documents:", "  d: { root: shop.a, join: { b: { table: b, on: {} } } }"])) }
    }

    @Test func readsAClickHouseSink() throws {
        let configuration = try parse(Self.valid.replacingOccurrences(of: "  files: { type: jsonl, max_file_bytes: 8MiB }",
                                                                     with: "  files: { type: clickhouse, url: \"http://ferry@127.0.0.1:8123/analytics\", password: \"${SHOP_PASSWORD}\", schema_changes: evolve }"))
        guard case .clickhouse(let url, let password, let timeout) = configuration.sinks["files"]?.kind else { Issue.record("not clickhouse"); return }
        #expect(url == "http://ferry@127.0.0.1:8123/analytics" && password == "s3cret" && timeout == 60)
        #expect(!configuration.redactedJSON().contains("s3cret"))
        #expect(throws: FerryError.self) {
            try parse(Self.valid.replacingOccurrences(of: "  files: { type: jsonl, max_file_bytes: 8MiB }", with: "  files: { type: clickhouse, url: \"ch:9000\" }"))
        }
    }
    /// Each sink type takes only the keys it declares: `stream:` on a SQLite sink is an unknown key
    /// naming the type and its keys, not a setting silently ignored.
    @Test func aSinkTakesOnlyItsOwnKeys() throws {
        let text = """
        sources:
          db: { type: mysql, url: "mysql://ferry@127.0.0.1:3306" }
        sinks:
          local: { type: sqlite, path: ./a.sqlite, stream: ORDERS }
        pipelines:
          p: { source: db, sinks: [local] }
        """
        do {
            _ = try FerryConfiguration.parse(text, file: "ferry.yml", environment: [:])
            Issue.record("accepted stream: on a sqlite sink")
        } catch let error as FerryError {
            #expect(error.message == "ferry.yml:4: sinks.local.stream: unknown key 'stream' for a sqlite sink", "\(error.message)")
            #expect(error.fix?.contains("Known keys here: type, path, schema_changes") == true, "\(error.fix ?? "")")
        }
        // Defaults come from the declared settings.
        let nats = try FerryConfiguration.parse(text.replacingOccurrences(of: "{ type: sqlite, path: ./a.sqlite, stream: ORDERS }", with: "{ type: nats, url: \"nats://127.0.0.1:4222\" }"),
                                                file: "ferry.yml", environment: [:])
        guard case .nats(let settings)? = nats.sinks["local"]?.kind else {
            Issue.record("not a nats sink")
            return
        }
        #expect(settings.stream == "FERRY" && settings.subject == "ferry.{db}.{table}" && settings.duplicateWindowSeconds == 120)
        #expect(settings.format == .debezium && !settings.tombstones && settings.maximumMessagesPerSubject == nil)
        // A table sink's schema_changes and lanes, when not written, are the declared defaults.
        let table = try FerryConfiguration.parse(text.replacingOccurrences(of: "{ type: sqlite, path: ./a.sqlite, stream: ORDERS }", with: "{ type: postgres, url: \"postgres://u@h/d\" }"),
                                                 file: "ferry.yml", environment: [:])
        #expect(table.sinks["local"]?.schemaChanges.mode.rawValue == SinkSetting.schemaChanges.defaultValue)
        #expect(table.sinks["local"].map { String($0.lanes) } == SinkSetting.lanes.defaultValue)
    }

    /// A NATS subject may name the row ({key}); tombstones need it, and event sinks take either
    /// Debezium form.
    @Test func keyedSubjectsTombstonesAndEventFormats() throws {
        func parse(_ sink: String) throws -> FerryConfiguration {
            try FerryConfiguration.parse("""
            sources:
              db: { type: mysql, url: "mysql://u@h:3306" }
            sinks:
              out: \(sink)
            pipelines:
              p: { source: db, sinks: [out] }
            """, file: "ferry.yml", environment: [:])
        }
        func refusal(_ sink: String) -> String {
            do {
                _ = try parse(sink)
                return "accepted"
            } catch let error as FerryError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        let keyed = try parse(#"{ type: nats, url: "nats://h", subject: "cdc.{table}.{key}", tombstones: true, max_messages_per_subject: 1, format: debezium-schema }"#)
        guard case .nats(let settings)? = keyed.sinks["out"]?.kind else {
            Issue.record("not a nats sink")
            return
        }
        #expect(settings.tombstones && settings.maximumMessagesPerSubject == 1 && settings.format == .debeziumSchema)
        #expect(refusal(#"{ type: nats, url: "nats://h", tombstones: true }"#)
            == "ferry.yml:4: sinks.out.tombstones: tombstones need a subject that names the row; 'ferry.{db}.{table}' has no {key}")
        #expect(refusal(#"{ type: nats, url: "nats://h", subject: "a.{tabel}" }"#)
            == "ferry.yml:4: sinks.out.subject: the subject 'a.{tabel}' names {tabel}; a subject takes {db}, {table} and {key}")
        #expect(refusal(#"{ type: nats, url: "nats://h", subject: "a.{key}.{key}" }"#)
            == "ferry.yml:4: sinks.out.subject: the subject 'a.{key}.{key}' has {key} twice; a row's key is one token")
        #expect(refusal(#"{ type: nats, url: "nats://h", max_messages_per_subject: 1 }"#)
            == "ferry.yml:4: sinks.out.max_messages_per_subject: max_messages_per_subject needs a subject that names the row; 'ferry.{db}.{table}' has no {key}")
        #expect(refusal(#"{ type: nats, url: "nats://h", subject: "a.{table}{key}" }"#)
            == "ferry.yml:4: sinks.out.subject: the subject 'a.{table}{key}' has {key} inside a token; it must stand between dots, e.g. cdc.{table}.{key}")
        #expect(refusal(#"{ type: nats, url: "nats://h", max_messages_per_subject: 0 }"#)
            == "ferry.yml:4: sinks.out.max_messages_per_subject: max_messages_per_subject must be at least 1")
        #expect(refusal(#"{ type: webhook, url: "https://h/x", format: compact }"#) == "ferry.yml:4: sinks.out.format: unknown format 'compact'")
        #expect(refusal(#"{ type: redis, url: "redis://h", tables: { "a.*": { mode: hash, format: debezium-schema } } }"#)
            == #"ferry.yml:4: sinks.out.tables.a.*.format: format applies to streams only"#)
        guard case .redis(_, _, let rules)? = try parse(#"{ type: redis, url: "redis://h", tables: { "a.*": { mode: stream, format: debezium-schema } } }"#).sinks["out"]?.kind else {
            Issue.record("not a redis sink")
            return
        }
        #expect(rules.first?.format == .debeziumSchema)
        guard case .webhook(_, _, _, _, _, _, let format)? = try parse(#"{ type: webhook, url: "https://h/x", format: debezium-schema }"#).sinks["out"]?.kind else {
            Issue.record("not a webhook sink")
            return
        }
        #expect(format == .debeziumSchema)
    }

    @Test func readsTheClusterSection() throws {
        let text = Self.valid + """

        cluster:
          node: ${NODE}
          lease_seconds: 15
          etcd:
            endpoints: [https://etcd-1:2379, "https://etcd-2:2379"]
            prefix: /ferry/prod
            user: ferry
            password: "${ETCD_PASSWORD}"
            tls: { ca: /etc/ferry/etcd-ca.pem, cert: /etc/ferry/etcd.pem, key: /etc/ferry/etcd-key.pem }
        """
        let cluster = try #require(try parse(text, environment: ["SHOP_PASSWORD": "x", "NODE": "node-1", "ETCD_PASSWORD": "p"]).cluster)
        #expect(cluster == FerryConfiguration.Cluster(node: "node-1", leaseSeconds: 15, endpoints: ["https://etcd-1:2379", "https://etcd-2:2379"],
                                                      prefix: "/ferry/prod", user: "ferry", password: "p", caFile: "/etc/ferry/etcd-ca.pem",
                                                      certificateFile: "/etc/ferry/etcd.pem", keyFile: "/etc/ferry/etcd-key.pem"))
        #expect(try parse(Self.valid).cluster == nil)
        let minimal = try #require(try parse(Self.valid + "\ncluster: { node: a, etcd: { endpoints: [http://127.0.0.1:2379] } }").cluster)
        #expect(minimal.leaseSeconds == 10 && minimal.prefix == "/ferry/default" && minimal.user == nil)
        for (broken, field) in [
            ("cluster: { etcd: { endpoints: [http://e:2379] } }", "cluster.node"),
            ("cluster: { node: \"a b\", etcd: { endpoints: [http://e:2379] } }", "cluster.node"),
            ("cluster: { node: a }", "cluster.etcd"),
            ("cluster: { node: a, etcd: { endpoints: [] } }", "cluster.etcd.endpoints"),
            ("cluster: { node: a, etcd: { endpoints: [e:2379] } }", "cluster.etcd.endpoints"),
            ("cluster: { node: a, lease_seconds: 1, etcd: { endpoints: [http://e:2379] } }", "cluster.lease_seconds"),
            ("cluster: { node: a, etcd: { endpoints: [http://e:2379], user: u } }", "cluster.etcd"),
            ("cluster: { node: a, etcd: { endpoints: [http://e:2379], tls: { cert: c } } }", "cluster.etcd.tls"),
            ("cluster: { node: a, etcd: { endpoints: [http://e:2379], prefix: ferry } }", "cluster.etcd.prefix"),
            ("cluster: { node: a, etcd: { endpoints: [http://e:2379] }, shards: 3 }", "shards"),
        ] {
            #expect { try parse(Self.valid + "\n" + broken) } throws: { error in
                "\(error)".contains(field)
            }
        }
    }

    /// Cluster mode refuses targets on one node's disk: the next owner could not see them. A
    /// JSON-lines directory declared shared is allowed.
    @Test func clusterModeRefusesNodeLocalSinks() throws {
        let cluster = "\ncluster: { node: a, etcd: { endpoints: [http://127.0.0.1:2379], user: ferry, password: etcd-s3cret } }"
        #expect { try ClusterRun.refuseNodeLocalSinks(try parse(Self.valid + cluster)) } throws: { error in
            "\(error)".contains("sink local writes to this node's disk")
        }
        let filesOnly = Self.valid.replacingOccurrences(of: "sinks: [local, files]", with: "sinks: [files]")
        #expect { try ClusterRun.refuseNodeLocalSinks(try parse(filesOnly + cluster)) } throws: { error in
            "\(error)".contains("sink files writes to") && "\(error)".contains("shared: true")
        }
        let shared = try parse(filesOnly.replacingOccurrences(of: "max_file_bytes: 8MiB", with: "max_file_bytes: 8MiB, shared: true") + cluster)
        try ClusterRun.refuseNodeLocalSinks(shared)
        let redacted = shared.redactedJSON()
        #expect(!redacted.contains("etcd-s3cret") && redacted.contains(#""password":"<redacted>""#) && redacted.contains(#""node":"a""#))
    }

    /// `ferry` and `cli` name ferry itself in the audit log (and an operator's snapshot request
    /// must not pass for the engine's): no token may take them.
    @Test func tokensCannotTakeFerrysOwnNames() async throws {
        for name in ["ferry", "cli"] {
            await #expect {
                _ = try await Tokens.create(configuration: try parse(Self.valid), name: name, role: "operator", logger: Logger(label: "test"))
            } throws: { error in
                (error as? FerryError)?.code == .cliBadTokenName && "\(error)".contains("names ferry itself")
            }
        }
    }

    /// docs/configuration.md is generated from the sinks' declared keys.
    @Test func theConfigurationPageIsGenerated() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        #expect(page == ConfigurationReference.markdown(), "docs/configuration.md is stale: run `ferry explain --configuration > docs/configuration.md`")
    }
}


import ClickHouseSink
import FerryCore
import Foundation
import FileSink
import MariaDBSink
import NATSSink
import PostgresSink
import RedisSink
import SearchSink
import SQLiteSink
import WebhookSink
import Yams

/// Every sink type a configuration can name, with the keys each declares next to its code.
enum SinkCatalog {
    static let types: [(names: [String], settings: [SinkSetting], page: String)] = [
        (["postgres", "postgresql"], PostgresSink.settings, "docs/sinks/postgres.md"),
        (["mysql", "mariadb"], MariaDBSink.settings, "docs/sinks/mariadb.md"),
        (["sqlite"], SQLiteSink.settings, "docs/sinks/sqlite.md"),
        (["clickhouse"], ClickHouseSink.settings, "docs/sinks/clickhouse.md"),
        (["jsonl"], JSONLinesSink.settings, "docs/sinks/jsonl.md"),
        (["redis"], RedisSink.settings, "docs/sinks/redis.md"),
        (["nats"], NATSSink.settings, "docs/sinks/nats.md"),
        (["webhook"], WebhookSink.settings, "docs/sinks/webhook.md"),
        (["elasticsearch", "opensearch"], SearchSink.settings, "docs/sinks/elasticsearch.md"),
    ]

    static var typeNames: [String] { types.flatMap(\.names) }

    static func settings(for type: String) -> [SinkSetting]? { types.first { $0.names.contains(type) }?.settings }

    /// docs/configuration.md.
    static func markdown() -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        var lines = [
            "# Configuration reference",
            "",
            "One YAML file; `${NAME}` is read from the environment, and an unknown key is an error naming the",
            "file, line and key. Generated from the keys each sink declares next to its code",
            "(`ferry explain --configuration > docs/configuration.md`); a test fails when this page is out of date.",
            "",
            "| top-level key | what | more |",
            "|---|---|---|",
            "| `sources` | the databases to follow: `NAME: { type: mysql, url, password }`, or `type: postgres` with `url: postgres://USER@HOST:PORT/DATABASE?publication=NAME[&slot=NAME]` (pipelines on it need `snapshot: never` for now) | README.md, docs/getting-started.md, docs/types.md |",
            "| `sinks` | the targets, by type (below) | docs/sinks/ |",
            "| `pipelines` | source, sinks, tables, buffer, snapshot, mapping, rules, documents | docs/pipelines.md |",
            "| `data_dir` | the state file and disk buffers (default `./ferry-data`, relative to the working directory) | docs/operations.md |",
            "| `state` | `{ sqlite: FILE }`, default `<data_dir>/ferry-state.sqlite` | docs/operations.md |",
            "| `server` | `{ listen: HOST:PORT \\| off, tls, max_connections, … }` | docs/control-plane.md |",
            "| `cluster` | `{ node: NAME, lease_seconds: 10, etcd: { endpoints: [URL, …], prefix, user, password, tls: { ca, cert, key } } }`: share the pipelines with other nodes through etcd | docs/cluster.md |",
        ]
        for type in types {
            let aliases = type.names.dropFirst()
            lines += ["", "## Sinks of `type: \(type.names[0])`" + (aliases.isEmpty ? "" : " (or `\(aliases.joined(separator: "`, `"))`)"), "",
                      "How it writes, its type mapping and its errors: \(type.page).", "",
                      "| key | kind | default | what |", "|---|---|---|---|"]
            for setting in type.settings {
                let fallback = setting.required ? "required" : setting.defaultValue.map { "`\(cell($0))`" } ?? "—"
                lines.append("| `\(setting.key)` | \(setting.kind.rawValue) | \(fallback) | \(cell(setting.doc)) |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One sink entry's values, with the defaults its type declares (`SinkSetting`): the reader
/// writes no default of its own.
struct SinkValues {
    let reader: ConfigReader
    let sink: String
    let entry: Node
    let settings: [SinkSetting]
    let fields: [String: Node]

    func node(_ key: String) -> Node? { fields[key] }

    private func path(_ key: String) -> String { "sinks.\(sink).\(key)" }

    private func fallback(_ key: String) throws -> String {
        guard let value = settings[key]?.defaultValue else { throw reader.error(entry, path(key), "missing \(key)") }
        return value
    }

    func text(_ key: String) throws -> String {
        if let value = fields[key] { return try reader.string(value, path(key)) }
        return try fallback(key)
    }

    func whole(_ key: String) throws -> Int {
        if let value = fields[key] { return try reader.integer(value, path(key)) }
        return try reader.integer(text: try fallback(key), entry, path(key))
    }

    func flag(_ key: String) throws -> Bool {
        if let value = fields[key] { return try reader.bool(value, path(key)) }
        return try fallback(key) == "true"
    }

    /// `format:` of a sink that writes change events (`ConfigReader.eventFormat`).
    func eventFormat() throws -> EventJSONWriter.Format {
        try reader.eventFormat(try text("format"), fields["format"] ?? entry, path("format"))
    }
}

/// docs/configuration.md, for `ferry explain --configuration`.
public enum ConfigurationReference {
    public static func markdown() -> String { SinkCatalog.markdown() }
}

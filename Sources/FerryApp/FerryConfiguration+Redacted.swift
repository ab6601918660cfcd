import ControlPlane
import FerryCore
import Foundation
import MySQLSource
import RedisSink

extension FerryConfiguration {
    static let redacted = Secrets.marker

    /// The effective configuration as JSON for the API: every password and the password part of
    /// every URL replaced by `<redacted>`.
    public func redactedJSON() -> String {
        var root: [String: Any] = ["file": file, "data_dir": dataDirectory, "state": ["sqlite": statePath]]
        root["sources"] = sources.mapValues { source -> [String: Any] in
            var out: [String: Any] = ["type": "mysql", "url": Secrets.redactedURL(source.url)]
            if source.password != nil { out["password"] = Self.redacted }
            return out
        }
        root["sinks"] = sinks.mapValues { sink -> [String: Any] in
            var out: [String: Any] = ["lanes": sink.lanes]
            switch sink.kind {
            case .sqlite(let path): out["type"] = "sqlite"; out["path"] = path
            case .jsonl(let directory, let bytes, let age, let format):
                out["type"] = "jsonl"; out["directory"] = directory; out["max_file_bytes"] = bytes; out["max_file_age_seconds"] = age
                out["format"] = format.rawValue; out["shared"] = sink.sharedDirectory
            case .mysql(let url, let password):
                out["type"] = "mysql"; out["url"] = Secrets.redactedURL(url)
                if password != nil { out["password"] = Self.redacted }
            case .postgres(let url, let password):
                out["type"] = "postgres"; out["url"] = Secrets.redactedURL(url)
                if password != nil { out["password"] = Self.redacted }
            case .nats(let nats):
                out["type"] = "nats"; out["url"] = Secrets.redactedURL(nats.url); out["stream"] = nats.stream; out["subject"] = nats.subject
                out["duplicate_window_seconds"] = nats.duplicateWindowSeconds
                out["format"] = nats.format.rawValue; out["tombstones"] = nats.tombstones
                if let subjects = nats.streamSubjects { out["stream_subjects"] = subjects }
                if let perSubject = nats.maximumMessagesPerSubject { out["max_messages_per_subject"] = perSubject }
                if nats.password != nil { out["password"] = Self.redacted }
            case .webhook(let url, let secret, let headers, let timeout, let events, let allowPrivate, let format):
                out["type"] = "webhook"; out["url"] = Secrets.redactedURL(url); out["timeout_seconds"] = timeout; out["max_events"] = events
                out["allow_private"] = allowPrivate; out["format"] = format.rawValue
                if secret != nil { out["secret"] = Self.redacted }
                // Header values are credentials more often than not.
                out["headers"] = Dictionary(headers.map { ($0.0, Self.redacted) }, uniquingKeysWith: { first, _ in first })
            case .clickhouse(let url, let password, let timeout):
                out["type"] = "clickhouse"; out["url"] = Secrets.redactedURL(url); out["timeout_seconds"] = timeout
                if password != nil { out["password"] = Self.redacted }
            case .search(let url, let password, let index):
                out["type"] = "elasticsearch"; out["url"] = Secrets.redactedURL(url); out["index"] = index
                if password != nil { out["password"] = Self.redacted }
            case .redis(let url, let password, let rules):
                out["type"] = "redis"; out["url"] = Secrets.redactedURL(url)
                if password != nil { out["password"] = Self.redacted }
                out["tables"] = Dictionary(rules.map { rule -> (String, Any) in
                    var fields: [String: Any] = ["mode": rule.mode.rawValue, "key": rule.key]
                    if let ttl = rule.ttlSeconds { fields["ttl_seconds"] = ttl }
                    if let maximum = rule.maximumLength { fields["max_length"] = maximum }
                    if rule.mode == .stream { fields["format"] = rule.format.rawValue }
                    return (rule.tables, fields)
                }, uniquingKeysWith: { first, _ in first })
            }
            return out
        }
        root["pipelines"] = Dictionary(uniqueKeysWithValues: pipelines.map { pipeline -> (String, Any) in
            var out: [String: Any] = [
                "source": pipeline.source, "sinks": pipeline.sinks, "tables": pipeline.include, "exclude": pipeline.exclude,
                "start": pipeline.start.description, "buffer": pipeline.disk == nil ? "memory" : "disk", "buffer_bytes": pipeline.bufferBytes,
                "batch_transactions": pipeline.batchTransactions, "target_table": pipeline.targetTable, "server_id": Int(pipeline.serverID),
                "apply_timeout_seconds": pipeline.applyTimeoutSeconds,
                "snapshot": ["mode": pipeline.snapshot.mode.rawValue, "chunk_rows": pipeline.snapshot.chunkRows, "parallel": pipeline.snapshot.parallelism,
                             "watermarks": pipeline.snapshot.watermarks.rawValue, "signal_table": pipeline.snapshot.signalTable.description],
            ]
            if let deadLetters = pipeline.deadLetterSink { out["dead_letter_sink"] = deadLetters }
            return (pipeline.name, out)
        })
        if let server {
            var out: [String: Any] = ["listen": "\(server.settings.host):\(server.settings.port)"]
            if let certificate = server.settings.certificatePath, let key = server.settings.keyPath { out["tls"] = ["cert": certificate, "key": key] }
            root["server"] = out
        } else {
            root["server"] = ["listen": "off"]
        }
        if let cluster {
            var etcd: [String: Any] = ["endpoints": cluster.endpoints.map(Secrets.redactedURL), "prefix": cluster.prefix]
            if let user = cluster.user { etcd["user"] = user }
            if cluster.password != nil { etcd["password"] = Self.redacted }
            if let ca = cluster.caFile { etcd["tls"] = ["ca": ca, "cert": cluster.certificateFile ?? "", "key": cluster.keyFile ?? ""] }
            root["cluster"] = ["node": cluster.node, "lease_seconds": cluster.leaseSeconds, "etcd": etcd]
            root["state"] = ["etcd": cluster.prefix]
        }
        let data = (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

import ClickHouseSink
import ControlPlane
import DiskLog
import Documents
import FerryCore
import Foundation
import MySQLSource
import MySQLWire
import NATSSink
import Pipeline
import PostgresSource
import Rules
import RedisSink
import SearchSink
import SinkSupport
import WebhookSink
import Yams

/// The whole deployment, read from one YAML file. Only this type knows the YAML shape;
/// components get their own typed configurations from it.
public struct FerryConfiguration: Sendable {
    public struct Source: Sendable {
        public var name: String
        public var url: String
        public var password: String?
    }

    public enum SinkKind: Sendable {
        case sqlite(path: String)
        case mysql(url: String, password: String?)
        case postgres(url: String, password: String?)
        case jsonl(directory: String, maximumFileBytes: Int, maximumFileAgeSeconds: Double, format: EventJSONWriter.Format)
        case redis(url: String, password: String?, rules: [RedisSink.TableRule])
        case nats(NATSSinkSettings)
        case webhook(url: String, secret: String?, headers: [(String, String)], timeoutSeconds: Int, maximumEvents: Int, allowPrivate: Bool,
                     format: EventJSONWriter.Format)
        case search(url: String, password: String?, index: String)
        case clickhouse(url: String, password: String?, timeoutSeconds: Int)
    }

    /// A `type: nats` sink as written; `configuration` makes the sink's own settings.
    public struct NATSSinkSettings: Sendable {
        public var url: String
        public var password: String?
        public var stream: String
        public var subject: String
        public var streamSubjects: [String]?
        public var duplicateWindowSeconds: Int
        public var maximumMessagesPerSubject: Int?
        public var format: EventJSONWriter.Format
        public var tombstones: Bool

        func configuration(name: String, pipeline: String) throws -> NATSSink.Configuration {
            try NATSSink.Configuration(name: name, pipeline: pipeline, url: url, password: password, stream: stream, subject: subject,
                                       streamSubjects: streamSubjects, duplicateWindowSeconds: duplicateWindowSeconds,
                                       maximumMessagesPerSubject: maximumMessagesPerSubject, format: format, tombstones: tombstones)
        }
    }

    public struct Sink: Sendable {
        public var name: String
        public var kind: SinkKind
        /// What schema changes do to the target (table sinks); `schema_changes`'s declared default.
        public var schemaChanges = SchemaChangePolicy()
        /// Parallel lanes (PostgreSQL, MariaDB/MySQL); `lanes`'s declared default.
        public var lanes = Int(SinkSetting.lanes.defaultValue ?? "")!
        /// JSON lines: the directory is on a file system every cluster node mounts at the same
        /// path, so cluster mode may use the sink.
        public var sharedDirectory = false
    }

    public struct Pipeline: Sendable {
        public var name: String
        public var source: String
        public var sinks: [String]
        public var include: [String]
        public var exclude: [String]
        /// Where a pipeline without a saved position starts. Default `current`.
        public var start: StartPosition
        /// Default 32 MiB.
        public var bufferBytes: Int
        /// Default 500 transactions.
        public var batchTransactions: Int
        /// Target table name template with `{db}` and `{table}`. Default `{table}`.
        public var targetTable: String
        /// The replica server_id; by default derived from the pipeline name.
        public var serverID: UInt32
        /// Seconds before a sink batch counts as stuck and is retried. Default 300.
        public var applyTimeoutSeconds: Double
        /// `nil` for the memory buffer; the disk log's settings for `buffer: disk`.
        public var disk: DiskLog.Options?
        /// The sink that receives rejected changes (`error_policy: dead-letter`); `nil` stops instead.
        public var deadLetterSink: String?
        /// Per-table shaping, first match wins.
        public var mappings: [TableMapping]
        /// Target table templates per table glob (`mapping.<glob>.target`), first match wins.
        public var targetOverrides: [(tables: String, template: String)]
        /// How existing rows are snapshotted.
        public var snapshot = SnapshotSettings()
        /// `rules:`, first match wins.
        public var rules: [Rule] = []
        /// `documents:`, joined documents kept current.
        public var documents: [DocumentDefinition] = []
    }

    /// The control plane's listener (`server:`); nil for `listen: off`.
    public struct Server: Sendable {
        public var settings: ControlServerSettings
        /// `listen:` was given: failing to bind stops ferry. The default address only warns.
        public var explicit: Bool
    }

    /// `cluster:` — several nodes share the pipelines through etcd (docs/cluster.md); nil runs
    /// every pipeline in this process with the SQLite state file.
    public struct Cluster: Sendable, Equatable {
        public var node: String
        public var leaseSeconds: Int
        public var endpoints: [String]
        public var prefix: String
        public var user: String?
        public var password: String?
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
    }

    public var file: String
    public var dataDirectory: String
    public var cluster: Cluster?
    public var statePath: String
    public var sources: [String: Source]
    public var sinks: [String: Sink]
    public var pipelines: [Pipeline]
    public var server: Server? = Server(settings: ControlServerSettings(), explicit: false)
    /// Each source's, sink's and pipeline's YAML as written (`source NAME`, `sink NAME`,
    /// `pipeline NAME`), before `${NAME}` is read: a reload compares these to find what changed.
    public var definitions: [String: String] = [:]

    /// Reads and validates a configuration file.
    /// - Parameters:
    ///   - environment: for `${NAME}` interpolation.
    ///   - allowUnsetVariables: an unset `${NAME}` reads as empty instead of being an error — for
    ///     commands that contact nothing whose secret they lack (`ferry status`).
    public static func load(path: String, environment: [String: String], allowUnsetVariables: Bool = false) throws -> FerryConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FerryError(code: .configUnreadable, message: "cannot read configuration file \(path)",
                             fix: "check the path given with -c")
        }
        return try parse(text, file: path, environment: environment, allowUnsetVariables: allowUnsetVariables)
    }

    public static func parse(_ text: String, file: String, environment: [String: String], allowUnsetVariables: Bool = false) throws -> FerryConfiguration {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw FerryError(code: .configEmpty, message: "\(file) is empty", fix: "see README.md for an example configuration")
            }
            root = node
        } catch let error as YamlError {
            throw FerryError(code: .configYAML, message: "\(file) is not valid YAML: \(error)", context: [("file", file)],
                             fix: "fix the YAML syntax at the line shown")
        }
        var reader = ConfigReader(file: file, environment: environment, allowUnsetVariables: allowUnsetVariables)
        return try reader.configuration(root)
    }
}

/// `buffer:` of a pipeline.
enum BufferKind: String, CaseIterable {
    case memory, disk
}

/// `error_policy:` of a pipeline.
enum ErrorPolicyKind: String, CaseIterable {
    case stop
    case deadLetter = "dead-letter"
}

/// Walks the YAML tree, checking every key and value and naming file:line and the key path in errors.
struct ConfigReader {
    let file: String
    let environment: [String: String]
    var allowUnsetVariables = false

    func error(_ node: Node?, _ path: String, _ message: String, fix: String? = nil) -> FerryError {
        let line = node?.mark.map { "\(file):\($0.line)" } ?? file
        return FerryError(code: .configInvalid, message: "\(line): \(path): \(message)", context: [], fix: fix)
    }

    func mapping(_ node: Node, _ path: String, allowed: [String], owner: String? = nil) throws -> [(key: String, node: Node, keyNode: Node)] {
        guard let mapping = node.mapping else { throw error(node, path, "expected a mapping of keys to values") }
        var result: [(key: String, node: Node, keyNode: Node)] = []
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            if !allowed.isEmpty, !allowed.contains(key) {
                let suggestion = allowed.min { Self.distance($0, key) < Self.distance($1, key) }
                throw error(keyNode, path.isEmpty ? key : "\(path).\(key)", "unknown key '\(key)'" + (owner.map { " for \($0)" } ?? ""),
                            fix: suggestion.map { "did you mean '\($0)'? Known keys here: \(allowed.joined(separator: ", "))" })
            }
            result.append((key, value, keyNode))
        }
        return result
    }

    func string(_ node: Node, _ path: String) throws -> String {
        guard let scalar = node.scalar else { throw error(node, path, "expected a text value") }
        return try interpolate(scalar.string, node, path)
    }

    func strings(_ node: Node, _ path: String) throws -> [String] {
        if let sequence = node.sequence { return try sequence.map { try string($0, path) } }
        return [try string(node, path)]
    }

    func bool(_ node: Node, _ path: String) throws -> Bool {
        switch try string(node, path).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, path, "expected true or false")
        }
    }

    func integer(_ node: Node, _ path: String) throws -> Int {
        try integer(text: try string(node, path), node, path)
    }

    /// A whole number, which may end in KiB, MiB, GiB, KB, MB or GB.
    func integer(text: String, _ node: Node, _ path: String) throws -> Int {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Int(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)) { return value * factor }
        }
        guard let value = Int(text) else { throw error(node, path, "'\(text)' is not a whole number (sizes may end in KiB, MiB, GiB)") }
        return value
    }

    /// One of a closed set of words; an unknown one is an error listing them (`default` marked).
    /// The `format:` of a sink (or Redis stream) that writes change events: the Debezium envelope,
    /// with or without Kafka Connect's schema block (the compact form is for `ferry tail` only).
    func eventFormat(_ text: String, _ node: Node, _ path: String) throws -> EventJSONWriter.Format {
        guard let format = EventJSONWriter.Format(rawValue: text), format != .compact else {
            throw error(node, path, "unknown format '\(text)'", fix: "use debezium (default) or debezium-schema")
        }
        return format
    }

    func choice<Choice: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _ what: String, default fallback: Choice? = nil) throws -> Choice
    where Choice.RawValue == String {
        let text = try string(node, path)
        guard let value = Choice(rawValue: text) else {
            let names = Choice.allCases.map { $0.rawValue + ($0.rawValue == fallback?.rawValue ? " (default)" : "") }
            throw error(node, path, "unknown \(what) '\(text)'", fix: "use " + names.joined(separator: ", "))
        }
        return value
    }

    /// Replaces `${NAME}` with the environment variable; a missing one is an error.
    func interpolate(_ text: String, _ node: Node, _ path: String) throws -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw error(node, path, "unterminated ${ in '\(text)'")
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] ?? (allowUnsetVariables ? "" : nil) else {
                throw error(node, path, "environment variable \(name) is not set", fix: "export \(name)=… before starting ferry")
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    mutating func configuration(_ root: Node) throws -> FerryConfiguration {
        var dataDirectory = "./ferry-data"
        var statePath: String? = nil
        var sources: [String: FerryConfiguration.Source] = [:]
        var sinks: [String: FerryConfiguration.Sink] = [:]
        var pipelineNodes: [(String, Node, Node)] = []
        var server: FerryConfiguration.Server? = FerryConfiguration.Server(settings: ControlServerSettings(), explicit: false)
        var definitions: [String: String] = [:]
        func define(_ kind: String, _ name: String, _ node: Node) {
            definitions["\(kind) \(name)"] = (try? Yams.serialize(node: node)) ?? "\(node)"
        }
        var cluster: FerryConfiguration.Cluster?
        let entries = try mapping(root, "", allowed: ["sources", "sinks", "pipelines", "state", "data_dir", "server", "cluster"])
        // Read first wherever it is written: sinks take their default directories from it.
        if let entry = entries.first(where: { $0.key == "data_dir" }) { dataDirectory = try string(entry.node, "data_dir") }
        for entry in entries {
            switch entry.key {
            case "state":
                for field in try mapping(entry.node, "state", allowed: ["sqlite"]) { statePath = try string(field.node, "state.sqlite") }
            case "sources":
                for source in try mapping(entry.node, "sources", allowed: []) {
                    sources[source.key] = try self.source(source.key, source.node)
                    define("source", source.key, source.node)
                }
            case "sinks":
                for sink in try mapping(entry.node, "sinks", allowed: []) {
                    sinks[sink.key] = try self.sink(sink.key, sink.node, dataDirectory: dataDirectory)
                    define("sink", sink.key, sink.node)
                }
            case "pipelines":
                for pipeline in try mapping(entry.node, "pipelines", allowed: []) {
                    pipelineNodes.append((pipeline.key, pipeline.node, pipeline.keyNode))
                    define("pipeline", pipeline.key, pipeline.node)
                }
            case "cluster":
                cluster = try self.cluster(entry.node)
            case "server":
                server = try self.server(entry.node)
                definitions["server"] = (try? Yams.serialize(node: entry.node)) ?? "\(entry.node)"
            default: break
            }
        }
        var pipelines: [FerryConfiguration.Pipeline] = []
        for (name, node, keyNode) in pipelineNodes {
            pipelines.append(try pipeline(name, node, keyNode: keyNode, sources: sources, sinks: sinks))
        }
        guard !pipelines.isEmpty else {
            throw error(root, "pipelines", "no pipeline is configured", fix: "add a pipelines: section (see README.md)")
        }
        var usedIDs: [UInt32: String] = [:]
        for pipeline in pipelines {
            if let other = usedIDs[pipeline.serverID] {
                throw error(root, "pipelines.\(pipeline.name).server_id", "server_id \(pipeline.serverID) is also used by pipeline \(other)",
                            fix: "give each pipeline its own server_id")
            }
            usedIDs[pipeline.serverID] = pipeline.name
        }
        return FerryConfiguration(file: file, dataDirectory: dataDirectory, cluster: cluster,
                                  statePath: statePath ?? (dataDirectory as NSString).appendingPathComponent("ferry-state.sqlite"),
                                  sources: sources, sinks: sinks, pipelines: pipelines, server: server, definitions: definitions)
    }

    /// `cluster: { node: NAME, lease_seconds: 10, etcd: { endpoints: [URL…], prefix: /ferry/NAME, user, password, tls: { ca, cert, key } } }`.
    func cluster(_ node: Node) throws -> FerryConfiguration.Cluster {
        var name: String?
        var leaseSeconds = 10
        var etcdNode: Node?
        for field in try mapping(node, "cluster", allowed: ["node", "lease_seconds", "etcd"]) {
            switch field.key {
            case "node": name = try string(field.node, "cluster.node")
            case "lease_seconds":
                leaseSeconds = try integer(field.node, "cluster.lease_seconds")
                guard (3...300).contains(leaseSeconds) else {
                    throw error(field.node, "cluster.lease_seconds", "lease_seconds must be between 3 and 300",
                                fix: "a pipeline moves within about two leases of its node's death; 10 suits most")
                }
            default: etcdNode = field.node
            }
        }
        guard let name, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw error(node, "cluster.node", "cluster.node must name this node (letters, digits, - _ .), unique in the cluster",
                        fix: "e.g. node: ${HOSTNAME}")
        }
        guard let etcdNode else {
            throw error(node, "cluster.etcd", "cluster.etcd is missing", fix: "add etcd: { endpoints: [http://HOST:2379, …] }")
        }
        var cluster = FerryConfiguration.Cluster(node: name, leaseSeconds: leaseSeconds, endpoints: [], prefix: "/ferry/default")
        for field in try mapping(etcdNode, "cluster.etcd", allowed: ["endpoints", "prefix", "user", "password", "tls"]) {
            switch field.key {
            case "endpoints":
                cluster.endpoints = try strings(field.node, "cluster.etcd.endpoints")
                for endpoint in cluster.endpoints where !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                    throw error(field.node, "cluster.etcd.endpoints", "endpoint '\(endpoint)' is not an http:// or https:// URL",
                                fix: "list the members' client URLs, e.g. https://etcd-1:2379")
                }
            case "prefix":
                cluster.prefix = try string(field.node, "cluster.etcd.prefix")
                guard cluster.prefix.hasPrefix("/"), cluster.prefix.count > 1 else {
                    throw error(field.node, "cluster.etcd.prefix", "prefix must be a key path such as /ferry/prod")
                }
            case "user": cluster.user = try string(field.node, "cluster.etcd.user")
            case "password": cluster.password = try string(field.node, "cluster.etcd.password")
            default:
                for tls in try mapping(field.node, "cluster.etcd.tls", allowed: ["ca", "cert", "key"]) {
                    let path = try string(tls.node, "cluster.etcd.tls.\(tls.key)")
                    switch tls.key {
                    case "ca": cluster.caFile = path
                    case "cert": cluster.certificateFile = path
                    default: cluster.keyFile = path
                    }
                }
            }
        }
        guard !cluster.endpoints.isEmpty else {
            throw error(etcdNode, "cluster.etcd.endpoints", "no etcd endpoint is listed", fix: "endpoints: [http://HOST:2379, …]")
        }
        if (cluster.user == nil) != (cluster.password == nil) {
            throw error(etcdNode, "cluster.etcd", "user and password go together", fix: "set both, the password best as ${ETCD_PASSWORD}")
        }
        if (cluster.certificateFile == nil) != (cluster.keyFile == nil) {
            throw error(etcdNode, "cluster.etcd.tls", "a client certificate needs its key", fix: "set tls.cert and tls.key together")
        }
        return cluster
    }

    /// `server: { listen: HOST:PORT | off, tls: { cert: FILE, key: FILE }, max_connections, request_timeout_seconds, idle_timeout_seconds }`.
    func server(_ node: Node) throws -> FerryConfiguration.Server? {
        var settings = ControlServerSettings()
        var explicit = false
        for field in try mapping(node, "server", allowed: ["listen", "tls", "max_connections", "request_timeout_seconds", "idle_timeout_seconds"]) {
            switch field.key {
            case "max_connections":
                settings.maximumConnections = try integer(field.node, "server.max_connections")
                guard (1...100_000).contains(settings.maximumConnections) else {
                    throw error(field.node, "server.max_connections", "max_connections must be between 1 and 100000")
                }
            case "request_timeout_seconds", "idle_timeout_seconds":
                let text = try string(field.node, "server.\(field.key)")
                guard let seconds = Double(text), seconds > 0, seconds <= 3600 else {
                    throw error(field.node, "server.\(field.key)", "'\(text)' is not a number of seconds between 0 and 3600")
                }
                if field.key == "request_timeout_seconds" { settings.requestTimeoutSeconds = seconds } else { settings.idleTimeoutSeconds = seconds }
            case "listen":
                let text = try string(field.node, "server.listen")
                if text == "off" || text == "false" { return nil }
                guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port),
                      colon > text.startIndex else {
                    throw error(field.node, "server.listen", "'\(text)' is not HOST:PORT", fix: "for example listen: 127.0.0.1:8080, or listen: off")
                }
                settings.host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                settings.port = port
                explicit = true
            default:
                for tls in try mapping(field.node, "server.tls", allowed: ["cert", "key"]) {
                    let path = try string(tls.node, "server.tls.\(tls.key)")
                    guard FileManager.default.isReadableFile(atPath: path) else {
                        throw error(tls.node, "server.tls.\(tls.key)", "cannot read \(path)", fix: "give the path of a PEM file ferry may read")
                    }
                    if tls.key == "cert" { settings.certificatePath = path } else { settings.keyPath = path }
                }
                guard settings.usesTLS else {
                    throw error(field.node, "server.tls", "tls needs both cert and key", fix: "tls: { cert: /etc/ferry/cert.pem, key: /etc/ferry/key.pem }")
                }
            }
        }
        return FerryConfiguration.Server(settings: settings, explicit: explicit)
    }

    func source(_ name: String, _ node: Node) throws -> FerryConfiguration.Source {
        var type: String? = nil, url: String? = nil, password: String? = nil
        for field in try mapping(node, "sources.\(name)", allowed: ["type", "url", "password"]) {
            switch field.key {
            case "type": type = try string(field.node, "sources.\(name).type")
            case "url": url = try string(field.node, "sources.\(name).url")
            default: password = try string(field.node, "sources.\(name).password")
            }
        }
        guard type == "mysql" || type == "mariadb" || type == "postgres" else {
            throw error(node, "sources.\(name).type", type.map { "source type '\($0)' is not supported" } ?? "missing type",
                        fix: "use type: mysql (MySQL and MariaDB) or type: postgres")
        }
        if type == "postgres" {
            guard let url else {
                throw error(node, "sources.\(name).url", "missing url", fix: "url: postgres://USER@HOST:PORT/DATABASE?publication=NAME")
            }
            do {
                _ = try PostgresSourceConfiguration(name: name, url: url, password: password)
            } catch let failure as FerryError {
                throw error(node, "sources.\(name).url", failure.message)
            }
            return FerryConfiguration.Source(name: name, url: url, password: password)
        }
        guard let url else { throw error(node, "sources.\(name).url", "missing url", fix: "url: mysql://USER@HOST:PORT") }
        do {
            _ = try MySQLConnectionConfiguration(url: url, password: password)
        } catch let wire as MySQLWireError {
            throw error(node, "sources.\(name).url", wire.ferryError.message)
        }
        return FerryConfiguration.Source(name: name, url: url, password: password)
    }

    /// A sink, checked against the keys its type declares (`SinkCatalog`).
    func sink(_ name: String, _ node: Node, dataDirectory: String) throws -> FerryConfiguration.Sink {
        let path = "sinks.\(name)"
        guard let typeField = try mapping(node, path, allowed: []).first(where: { $0.key == "type" }) else {
            throw error(node, "\(path).type", "missing type", fix: "type: \(SinkCatalog.typeNames.joined(separator: ", "))")
        }
        let type = try string(typeField.node, "\(path).type")
        guard let settings = SinkCatalog.settings(for: type) else {
            throw error(typeField.node, "\(path).type", "unknown sink type '\(type)'", fix: "use type: \(SinkCatalog.typeNames.joined(separator: ", "))")
        }
        let fields = try mapping(node, path, allowed: ["type"] + settings.map(\.key), owner: "a \(type) sink")
        let values = SinkValues(reader: self, sink: name, entry: node, settings: settings,
                                fields: Dictionary(fields.map { ($0.key, $0.node) }, uniquingKeysWith: { first, _ in first }))
        var sink = try sinkKind(name, type: type, node: node, value: values.node, values: values, dataDirectory: dataDirectory)
        if let policyNode = values.node("schema_changes") {
            sink.schemaChanges = try schemaChangePolicy(policyNode, "\(path).schema_changes")
        }
        if let lanesNode = values.node("lanes") {
            let lanes = try integer(lanesNode, "\(path).lanes")
            guard (1...64).contains(lanes) else { throw error(lanesNode, "\(path).lanes", "lanes must be between 1 and 64") }
            sink.lanes = lanes
        }
        return sink
    }

    /// `schema_changes: evolve` or `schema_changes: { mode: evolve, allow: [...], deny: [...] }`.
    func schemaChangePolicy(_ node: Node, _ path: String) throws -> SchemaChangePolicy {
        func mode(_ node: Node, _ path: String) throws -> SchemaChangePolicy.Mode {
            try choice(node, path, "schema change policy", default: SchemaChangePolicy.defaultMode)
        }
        func kinds(_ node: Node, _ path: String) throws -> Set<SchemaChange.Kind> {
            Set(try strings(node, path).map { text in
                guard let kind = SchemaChange.Kind(rawValue: text), SchemaChange.Kind.policyKinds.contains(kind) else {
                    throw error(node, path, "unknown schema change '\(text)'",
                                fix: "known: \(SchemaChange.Kind.policyKinds.map(\.rawValue).joined(separator: ", "))")
                }
                return kind
            })
        }
        if node.scalar != nil { return SchemaChangePolicy(mode: try mode(node, path)) }
        var policy = SchemaChangePolicy()
        for field in try mapping(node, path, allowed: ["mode", "allow", "deny"]) {
            let key = "\(path).\(field.key)"
            switch field.key {
            case "mode": policy.mode = try mode(field.node, key)
            case "allow": policy.allow = try kinds(field.node, key)
            default: policy.deny = try kinds(field.node, key)
            }
        }
        return policy
    }

    func sinkKind(_ name: String, type: String, node: Node, value: (String) -> Node?, values: SinkValues, dataDirectory: String) throws -> FerryConfiguration.Sink {
        switch type {
        case "sqlite":
            guard let path = value("path") else { throw error(node, "sinks.\(name).path", "missing path", fix: "path: ./replica.sqlite") }
            return FerryConfiguration.Sink(name: name, kind: .sqlite(path: try string(path, "sinks.\(name).path")))
        case "jsonl":
            let directory = try value("directory").map { try string($0, "sinks.\(name).directory") }
                ?? (dataDirectory as NSString).appendingPathComponent("jsonl")
            let bytes = try values.whole("max_file_bytes")
            let age = Double(try values.whole("max_file_age_seconds"))
            var sink = FerryConfiguration.Sink(name: name, kind: .jsonl(directory: directory, maximumFileBytes: bytes, maximumFileAgeSeconds: age,
                                                                        format: try values.eventFormat()))
            sink.sharedDirectory = try values.flag("shared")
            return sink
        case "mysql", "mariadb":
            guard let urlNode = value("url") else {
                throw error(node, "sinks.\(name).url", "missing url", fix: "url: mysql://USER@HOST:PORT/DATABASE")
            }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            do {
                let parsed = try MySQLConnectionConfiguration(url: url, password: password)
                guard parsed.database != nil else {
                    throw error(urlNode, "sinks.\(name).url", "the URL names no target database", fix: "url: mysql://USER@HOST:PORT/DATABASE")
                }
            } catch let wire as MySQLWireError {
                throw error(urlNode, "sinks.\(name).url", wire.ferryError.message)
            }
            return FerryConfiguration.Sink(name: name, kind: .mysql(url: url, password: password))
        case "postgres", "postgresql":
            guard let urlNode = value("url") else {
                throw error(node, "sinks.\(name).url", "missing url", fix: "url: postgres://USER@HOST:PORT/DATABASE")
            }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            return FerryConfiguration.Sink(name: name, kind: .postgres(url: url, password: password))
        case "redis":
            guard let urlNode = value("url") else { throw error(node, "sinks.\(name).url", "missing url", fix: "url: redis://HOST:6379/0") }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            let rules = try value("tables").map { try redisRules($0, "sinks.\(name).tables") } ?? []
            do {
                _ = try RedisSink.Configuration(name: name, pipeline: "", url: url, password: password, rules: rules)
            } catch let invalid as FerryError {
                throw error(urlNode, "sinks.\(name).url", invalid.message, fix: invalid.fix)
            }
            return FerryConfiguration.Sink(name: name, kind: .redis(url: url, password: password, rules: rules))
        case "nats":
            guard let urlNode = value("url") else { throw error(node, "sinks.\(name).url", "missing url", fix: "url: nats://HOST:4222") }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            let stream = try values.text("stream")
            let subject = try values.text("subject")
            let subjects = try value("stream_subjects").map { try strings($0, "sinks.\(name).stream_subjects") }
            let window = try values.whole("duplicate_window_seconds")
            let perSubject = try value("max_messages_per_subject").map { try integer($0, "sinks.\(name).max_messages_per_subject") }
            guard stream.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }), !stream.isEmpty else {
                throw error(value("stream") ?? node, "sinks.\(name).stream", "'\(stream)' is not a JetStream stream name", fix: "use letters, digits, - and _")
            }
            if let perSubject, perSubject < 1 {
                throw error(value("max_messages_per_subject")!, "sinks.\(name).max_messages_per_subject", "max_messages_per_subject must be at least 1")
            }
            let settings = FerryConfiguration.NATSSinkSettings(url: url, password: password, stream: stream, subject: subject, streamSubjects: subjects,
                                            duplicateWindowSeconds: window, maximumMessagesPerSubject: perSubject,
                                            format: try values.eventFormat(), tombstones: try values.flag("tombstones"))
            do {
                _ = try settings.configuration(name: name, pipeline: "")
            } catch let invalid as FerryError {
                let field = ["tombstones", "max_messages_per_subject"].first { invalid.message.hasPrefix($0) }
                    ?? (invalid.message.hasPrefix("the subject") ? "subject" : "url")
                throw error(value(field) ?? urlNode, "sinks.\(name).\(field)", invalid.message, fix: invalid.fix)
            }
            return FerryConfiguration.Sink(name: name, kind: .nats(settings))
        case "webhook":
            guard let urlNode = value("url") else { throw error(node, "sinks.\(name).url", "missing url", fix: "url: https://HOST/PATH") }
            let url = try string(urlNode, "sinks.\(name).url")
            let secret = try value("secret").map { try string($0, "sinks.\(name).secret") }
            let headers = try value("headers").map { headersNode in
                try mapping(headersNode, "sinks.\(name).headers", allowed: []).map { ($0.key, try string($0.node, "sinks.\(name).headers.\($0.key)")) }
            } ?? []
            let timeout = try values.whole("timeout_seconds")
            let events = try values.whole("max_events")
            guard timeout > 0, events > 0 else {
                throw error(value("timeout_seconds") ?? value("max_events") ?? node, "sinks.\(name)", "timeout_seconds and max_events must be positive")
            }
            let allowPrivate = try values.flag("allow_private")
            do {
                _ = try WebhookSink.Configuration(name: name, pipeline: "", url: url, timeoutSeconds: timeout, maximumEvents: events, allowPrivate: allowPrivate)
            } catch let invalid as FerryError {
                throw error(urlNode, "sinks.\(name).url", invalid.message, fix: invalid.fix)
            }
            return FerryConfiguration.Sink(name: name, kind: .webhook(url: url, secret: secret, headers: headers, timeoutSeconds: timeout,
                                                                      maximumEvents: events, allowPrivate: allowPrivate, format: try values.eventFormat()))
        case "clickhouse":
            guard let urlNode = value("url") else { throw error(node, "sinks.\(name).url", "missing url", fix: "url: http://USER@HOST:8123/DATABASE") }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            let timeout = try values.whole("timeout_seconds")
            guard timeout > 0 else { throw error(value("timeout_seconds") ?? node, "sinks.\(name).timeout_seconds", "timeout_seconds must be positive") }
            do {
                _ = try ClickHouseSink.Configuration(name: name, pipeline: "", url: url, password: password, timeoutSeconds: timeout)
            } catch let invalid as FerryError {
                throw error(urlNode, "sinks.\(name).url", invalid.message, fix: invalid.fix)
            }
            return FerryConfiguration.Sink(name: name, kind: .clickhouse(url: url, password: password, timeoutSeconds: timeout))
        case "elasticsearch", "opensearch":
            guard let urlNode = value("url") else { throw error(node, "sinks.\(name).url", "missing url", fix: "url: https://[user@]HOST:9200") }
            let url = try string(urlNode, "sinks.\(name).url")
            let password = try value("password").map { try string($0, "sinks.\(name).password") }
            let index = try values.text("index")
            do {
                _ = try SearchSink.Configuration(name: name, url: url, index: index, password: password)
            } catch let invalid as FerryError {
                throw error(urlNode, "sinks.\(name).url", invalid.message, fix: invalid.fix)
            }
            return FerryConfiguration.Sink(name: name, kind: .search(url: url, password: password, index: index))
        default:
            throw error(node, "sinks.\(name).type", "unknown sink type '\(type)'", fix: "use type: \(SinkCatalog.typeNames.joined(separator: ", "))")
        }
    }

    /// `tables: { "<glob>": { mode: hash|json|stream, key: TEMPLATE, ttl_seconds: N, max_length: N } }`, first match wins.
    func redisRules(_ node: Node, _ path: String) throws -> [RedisSink.TableRule] {
        try mapping(node, path, allowed: []).map { entry in
            let rulePath = "\(path).\(entry.key)"
            var mode = RedisSink.Mode.json
            var key: String? = nil, ttl: Int? = nil, maximum: Int? = nil
            var format = EventJSONWriter.Format.debezium, formatNode: Node? = nil
            for field in try mapping(entry.node, rulePath, allowed: ["mode", "key", "ttl_seconds", "max_length", "format"]) {
                let fieldPath = "\(rulePath).\(field.key)"
                switch field.key {
                case "mode":
                    mode = try choice(field.node, fieldPath, "mode", default: RedisSink.Mode.json)
                case "key": key = try string(field.node, fieldPath)
                case "ttl_seconds":
                    ttl = try integer(field.node, fieldPath)
                    guard ttl! > 0 else { throw error(field.node, fieldPath, "ttl_seconds must be positive") }
                case "format":
                    format = try eventFormat(try string(field.node, fieldPath), field.node, fieldPath)
                    formatNode = field.node
                default:
                    maximum = try integer(field.node, fieldPath)
                    guard maximum! > 0 else { throw error(field.node, fieldPath, "max_length must be positive") }
                }
            }
            if mode == .stream, ttl != nil {
                throw error(entry.node, "\(rulePath).ttl_seconds", "a stream does not expire per entry", fix: "use max_length to bound a stream")
            }
            if mode != .stream, maximum != nil {
                throw error(entry.node, "\(rulePath).max_length", "max_length bounds streams only", fix: "use mode: stream, or remove max_length")
            }
            if mode != .stream, let formatNode {
                throw error(formatNode, "\(rulePath).format", "format applies to streams only", fix: "use mode: stream, or remove format")
            }
            return RedisSink.TableRule(tables: entry.key, mode: mode, key: key, ttlSeconds: ttl, maximumLength: maximum, format: format)
        }
    }

    func pipeline(_ name: String, _ node: Node, keyNode: Node, sources: [String: FerryConfiguration.Source],
                  sinks: [String: FerryConfiguration.Sink]) throws -> FerryConfiguration.Pipeline {
        let path = "pipelines.\(name)"
        var result = FerryConfiguration.Pipeline(name: name, source: "", sinks: [], include: [], exclude: [], start: .current,
                                                 bufferBytes: 32 << 20, batchTransactions: 500, targetTable: "{table}",
                                                 serverID: Self.defaultServerID(name), applyTimeoutSeconds: 300, disk: nil,
                                                 deadLetterSink: nil, mappings: [], targetOverrides: [])
        var bufferKind = BufferKind.memory
        var diskOptions = DiskLog.Options()
        var diskNode: Node? = nil
        var errorPolicy = ErrorPolicyKind.stop
        var policyNode: Node? = nil
        var rulesNode: Node? = nil
        var documentsNode: Node? = nil
        for field in try mapping(node, path, allowed: ["source", "sinks", "tables", "exclude", "start", "buffer", "buffer_bytes", "disk",
                                                        "batch", "target_table", "server_id", "apply_timeout_seconds", "error_policy",
                                                        "dead_letter", "mapping", "snapshot", "rules", "documents"]) {
            let key = "\(path).\(field.key)"
            switch field.key {
            case "source":
                result.source = try string(field.node, key)
                guard sources[result.source] != nil else {
                    throw error(field.node, key, "no source named '\(result.source)'", fix: "known sources: \(sources.keys.sorted().joined(separator: ", "))")
                }
            case "sinks":
                result.sinks = try strings(field.node, key)
                for sink in result.sinks where sinks[sink] == nil {
                    throw error(field.node, key, "no sink named '\(sink)'", fix: "known sinks: \(sinks.keys.sorted().joined(separator: ", "))")
                }
            case "tables": result.include = try strings(field.node, key)
            case "exclude": result.exclude = try strings(field.node, key)
            case "start":
                do { result.start = try StartPosition(parsing: try string(field.node, key)) } catch let parse as FerryError {
                    throw error(field.node, key, parse.message, fix: parse.fix)
                }
            case "buffer":
                bufferKind = try choice(field.node, key, "buffer", default: BufferKind.memory)
            case "disk":
                diskNode = field.node
                diskOptions = try self.diskOptions(field.node, key)
            case "error_policy":
                errorPolicy = try choice(field.node, key, "error policy", default: ErrorPolicyKind.stop)
                policyNode = field.node
            case "dead_letter":
                let sink = try string(field.node, key)
                guard let kind = sinks[sink]?.kind else {
                    throw error(field.node, key, "no sink named '\(sink)'", fix: "known sinks: \(sinks.keys.sorted().joined(separator: ", "))")
                }
                guard case .jsonl = kind else {
                    throw error(field.node, key, "sink '\(sink)' cannot keep dead letters", fix: "name a sink of type jsonl")
                }
                result.deadLetterSink = sink
            case "mapping":
                for entry in try mapping(field.node, key, allowed: []) {
                    let (tableMapping, target) = try self.tableMapping(entry.key, entry.node, "\(key).\(entry.key)")
                    result.mappings.append(tableMapping)
                    if let target { result.targetOverrides.append((entry.key, target)) }
                }
            case "snapshot": result.snapshot = try snapshotSettings(field.node, key)
            case "rules":
                result.rules = try rules(field.node, key)
                rulesNode = field.node
            case "documents":
                result.documents = try documents(field.node, key)
                documentsNode = field.node
            case "buffer_bytes": result.bufferBytes = try integer(field.node, key)
            case "batch": result.batchTransactions = max(1, try integer(field.node, key))
            case "target_table": result.targetTable = try string(field.node, key)
            case "apply_timeout_seconds": result.applyTimeoutSeconds = Double(max(1, try integer(field.node, key)))
            default:
                let id = try integer(field.node, key)
                guard id > 0, id < Int(UInt32.max) else { throw error(field.node, key, "server_id must be between 1 and 4294967294") }
                result.serverID = UInt32(id)
            }
        }
        guard !result.source.isEmpty else { throw error(keyNode, "\(path).source", "missing source") }
        guard !result.sinks.isEmpty else { throw error(keyNode, "\(path).sinks", "missing sinks", fix: "sinks: [name, …]") }
        if bufferKind == .disk {
            result.disk = diskOptions
        } else if let diskNode {
            throw error(diskNode, "\(path).disk", "disk settings given but the buffer is memory", fix: "set buffer: disk, or remove disk:")
        }
        if errorPolicy == .deadLetter {
            guard let sink = result.deadLetterSink else {
                throw error(policyNode, "\(path).dead_letter", "error_policy dead-letter needs a dead_letter sink", fix: "dead_letter: NAME (a jsonl sink)")
            }
            if result.sinks.contains(sink) {
                throw error(policyNode, "\(path).dead_letter", "sink '\(sink)' is both a target and the dead-letter sink", fix: "use a separate jsonl sink")
            }
        } else {
            result.deadLetterSink = nil
        }
        for rule in result.rules {
            for sink in rule.sinks ?? [] where !result.sinks.contains(sink) {
                throw error(rulesNode, "\(path).rules", "the rule at \(rule.location) routes to '\(sink)', which is not a sink of this pipeline",
                            fix: "sinks of \(name): \(result.sinks.joined(separator: ", "))")
            }
        }
        let filter = TableFilter(include: result.include, exclude: result.exclude)
        for rule in result.rules {
            // A rule naming a table (no wildcard) the pipeline does not read could never match.
            for table in rule.tables where !table.contains("*") && !table.contains("?") && table.contains(".") {
                let parts = table.split(separator: ".", maxSplits: 1).map(String.init)
                if !filter.includes(TableName(database: parts[0], table: parts[1])) {
                    throw error(rulesNode, "\(path).rules", "the rule at \(rule.location) names table \(table), which the pipeline's tables do not include",
                                fix: "check the table's name, or add it to tables:")
                }
            }
        }
        for definition in result.documents {
            for table in definition.tables where !filter.includes(table) {
                throw error(documentsNode, "\(path).documents.\(definition.name)", "document \(definition.name) (\(definition.location)) reads \(table), which the pipeline's tables do not include",
                            fix: "add \"\(table)\" to tables: (a rule can keep its own changes from the sinks: { tables: [\"\(table)\"], drop: true })")
            }
        }
        result.snapshot.keyOverrides = result.mappings.compactMap { mapping in mapping.columns.key.map { (mapping.tables, $0) } }
        return result
    }

    /// `snapshot: initial` or `snapshot: { mode, chunk_rows, parallel, watermarks, signal_table, after_schema_change }`.
    func snapshotSettings(_ node: Node, _ path: String) throws -> SnapshotSettings {
        func mode(_ node: Node, _ path: String) throws -> SnapshotMode {
            try choice(node, path, "snapshot mode", default: SnapshotMode.initial)
        }
        var settings = SnapshotSettings()
        if node.scalar != nil {
            settings.mode = try mode(node, path)
            return settings
        }
        for field in try mapping(node, path, allowed: ["mode", "chunk_rows", "parallel", "watermarks", "signal_table", "after_schema_change"]) {
            let key = "\(path).\(field.key)"
            switch field.key {
            case "mode": settings.mode = try mode(field.node, key)
            case "chunk_rows":
                settings.chunkRows = try integer(field.node, key)
                guard (1...1_000_000).contains(settings.chunkRows) else { throw error(field.node, key, "chunk_rows must be between 1 and 1000000") }
            case "watermarks":
                settings.watermarks = try choice(field.node, key, "watermarks", default: WatermarkMode.auto)
            case "after_schema_change":
                settings.rereadAfterSchemaChange = try bool(field.node, key)
            case "parallel":
                settings.parallelism = try integer(field.node, key)
                guard (1...64).contains(settings.parallelism) else { throw error(field.node, key, "parallel must be between 1 and 64") }
            default:
                let text = try string(field.node, key)
                let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw error(field.node, key, "'\(text)' is not DATABASE.TABLE", fix: "signal_table: ferry.ferry_signal")
                }
                settings.signalTable = TableName(database: parts[0], table: parts[1])
            }
        }
        return settings
    }

    func diskOptions(_ node: Node, _ path: String) throws -> DiskLog.Options {
        var options = DiskLog.Options()
        for field in try mapping(node, path, allowed: ["fsync", "fsync_interval_ms", "segment_bytes"]) {
            let key = "\(path).\(field.key)"
            switch field.key {
            case "fsync":
                options.fsync = try choice(field.node, key, "fsync policy", default: DiskLog.FsyncPolicy.batch)
            case "fsync_interval_ms": options.interval = .milliseconds(max(1, try integer(field.node, key)))
            default:
                let bytes = try integer(field.node, key)
                guard bytes >= 1 << 20 else { throw error(field.node, key, "segments must be at least 1MiB") }
                options.segmentBytes = bytes
            }
        }
        return options
    }

    /// One `mapping:` entry: a table glob and how its changes are shaped.
    func tableMapping(_ tables: String, _ node: Node, _ path: String) throws -> (TableMapping, target: String?) {
        var result = TableMapping(tables: tables)
        var target: String? = nil
        for field in try mapping(node, path, allowed: Self.projectionFields + ["key", "target"]) {
            let key = "\(path).\(field.key)"
            switch field.key {
            case "key": result.columns.key = try strings(field.node, key)
            case "target": target = try string(field.node, key)
            default: try projectionField(field.key, field.node, key, into: &result.columns)
            }
        }
        return (result, target)
    }

    static let projectionFields = ["columns", "exclude_columns", "rename_columns"]

    /// `columns`, `exclude_columns` or `rename_columns` of a mapping or a rule.
    func projectionField(_ name: String, _ node: Node, _ path: String, into projection: inout ColumnProjection) throws {
        switch name {
        case "columns": projection.includeColumns = try strings(node, path)
        case "exclude_columns": projection.excludeColumns = try strings(node, path)
        default:
            for rename in try mapping(node, path, allowed: []) {
                projection.renameColumns[rename.key] = try string(rename.node, "\(path).\(rename.key)")
            }
        }
    }

    /// A stable replica id from the pipeline name (FNV-1a), away from the small ids real replicas use.
    static func defaultServerID(_ name: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return 100_000_000 + hash % 2_000_000_000
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

import ClickHouseSink
import ControlPlane
import Documents
import FerryCore
import FileSink
import Foundation
import Logging
import MariaDBSink
import NATSSink
import PostgresSink
import RedisSink
import Rules
import SearchSink
import MySQLSource
import MySQLWire
import PostgresSource
import NIOCore
import Pipeline
import ServiceLifecycle
import SinkSupport
import SQLiteSink
import StateStore
import WebhookSink
import UnixSignals

/// `ferry run -c FILE`: every pipeline, under one `PipelineFleet`; SIGTERM/SIGINT drain, commit
/// and exit 0; SIGHUP reloads the file.
public enum Run {
    public static func run(configuration: FerryConfiguration, logger: Logger) async throws {
        if let cluster = configuration.cluster {
            return try await ClusterRun.run(configuration: configuration, cluster: cluster, logger: logger)
        }
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let store = try await SQLiteCheckpointStore.open(path: configuration.statePath, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration]
        do {
            let supervisors = try configuration.pipelines.map {
                PipelineSupervisor(runner: try buildRunner($0, configuration: configuration, store: store, logger: logger), store: store)
            }
            let fleet = PipelineFleet(configuration: configuration, supervisors: supervisors, store: store, hangups: hangups, logger: logger)
            services = [.init(service: fleet, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)]
            let control = RunControl(fleet: fleet, store: store, logger: logger)
            let web = try controlPlane(configuration: configuration, backend: control, logger: logger)
            if !web.isEmpty {
                services += [.init(service: control, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)] + web
            }
        } catch {
            try? await store.close()
            throw error
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// The HTTP API, web page and metrics (`server:`) over `backend`; none with `listen: off`.
    /// The default address only warns when it is taken (another ferry may hold it).
    static func controlPlane(configuration: FerryConfiguration, backend: any ControlBackend,
                             logger: Logger) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let descriptors = DescriptorLimit.raise()
        guard var server = configuration.server else { return [] }
        let address = "\(server.settings.host):\(server.settings.port)"
        let configuredConnections = server.settings.maximumConnections
        server.settings.maximumConnections = descriptors.webConnections(configured: configuredConnections)
        logger.notice("open file descriptors and web connections", metadata: [
            "ferry.descriptor_limit": "\(descriptors.now)", "ferry.descriptor_limit_at_start": "\(descriptors.before)",
            "ferry.web_connections_max": "\(server.settings.maximumConnections)", "ferry.descriptors_reserved": "\(descriptors.reserve)",
        ])
        if server.settings.maximumConnections < configuredConnections {
            logger.warning("server.max_connections lowered to leave descriptors for replication; raise the process's open-files limit (LimitNOFILE=) to allow more",
                           metadata: ["ferry.max_connections": "\(configuredConnections)", "ferry.web_connections_max": "\(server.settings.maximumConnections)"])
        }
        if !server.explicit, !ListenCheck.isFree(host: server.settings.host, port: server.settings.port) {
            logger.warning("the web page and API are off: the default address is in use; set server.listen to another HOST:PORT, or listen: off",
                           metadata: ["ferry.listen": "\(address)"])
            return []
        }
        let scheme = server.settings.usesTLS ? "https" : "http"
        let application: any Service
        do {
            application = try ControlServer.application(backend: backend, registry: FerryMetrics.registry, settings: server.settings, logger: logger) { bound in
                logger.notice("web page, API and metrics listening", metadata: ["ferry.url": "\(scheme)://\(bound.map(Self.hostAndPort) ?? address)/"])
            }
        } catch {
            throw FerryError(code: .serverTLS, message: "\(error)", context: [("file", configuration.file)],
                             fix: "server.tls.cert and server.tls.key must be PEM files: the certificate (chain) and its unencrypted private key")
        }
        return [.init(service: ListeningService(application: application, address: address), successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup)]
    }

    static func hostAndPort(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "?"
        return (host.contains(":") ? "[\(host)]" : host) + ":\(address.port ?? 0)"
    }

    /// The composition root for one pipeline: source, sinks and store from the configuration.
    public static func buildRunner(_ pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration,
                                   store: any CheckpointStore, writeWindow: (@Sendable () -> Duration?)? = nil, epoch: Int64? = nil,
                                   logger: Logger) throws -> PipelineRunner {
        let sourceSpec = configuration.sources[pipeline.source]!
        let transactionSource: any TransactionSource
        let filter = TableFilter(include: pipeline.include, exclude: pipeline.exclude)
        if PostgresSourceConfiguration.isPostgresURL(sourceSpec.url) {
            let settings = try PostgresTransactionSource.settings(sourceSpec, pipeline: pipeline.name, filter: filter)
            transactionSource = PostgresTransactionSource(source: PostgresSource(configuration: settings, logger: logger), pipeline: pipeline,
                                                          configuration: configuration, snapshotStore: store as? any SnapshotStore,
                                                          schemaHistory: store as? any SchemaHistoryStore, checkpoints: store, logger: logger)
        } else {
            let connection = try MySQLConnectionConfiguration(url: sourceSpec.url, password: sourceSpec.password)
            let source = MySQLSource(configuration: MySQLSourceConfiguration(
                name: sourceSpec.name, connection: connection, serverID: pipeline.serverID,
                filter: filter, includeDDL: true, waitsForSourceAtStart: true), logger: logger)
            transactionSource = MySQLTransactionSource(source: source, pipeline: pipeline, configuration: configuration,
                                                       snapshotStore: store as? any SnapshotStore, checkpoints: store, logger: logger)
        }
        func makeSink(_ sinkName: String) throws -> any Sink {
            let lanes = max(1, configuration.sinks[sinkName]!.lanes)
            let makers = try (0..<lanes).map {
                try Self.sessionMaker(sinkName, lane: $0, pipeline: pipeline, configuration: configuration, epoch: epoch, logger: logger)
            }
            guard lanes > 1 else { return SinkFactory(name: sinkName, make: makers[0]) }
            return SinkFactory(name: sinkName) { LanedSink(name: sinkName, lanes: makers.map { $0() }) }
        }
        let sinks = try pipeline.sinks.map(makeSink)
        var errorPolicy = ErrorPolicy.stop
        if let name = pipeline.deadLetterSink, let deadLetters = try makeSink(name).makeSession() as? any DeadLetterSink {
            errorPolicy = .deadLetter(deadLetters)
        }
        let buffer: BufferSetting = pipeline.disk.map {
            .disk(directory: bufferDirectory(pipeline, configuration: configuration), options: $0)
        } ?? .memory
        var settings = PipelineConfiguration(name: pipeline.name, buffer: buffer, bufferBytes: pipeline.bufferBytes,
                                             batchTransactions: pipeline.batchTransactions, applyTimeoutSeconds: pipeline.applyTimeoutSeconds,
                                             errorPolicy: errorPolicy, transform: TransactionTransform(mappings: pipeline.mappings, pipeline: pipeline.name),
                                             rules: RuleSet(rules: pipeline.rules, pipeline: pipeline.name))
        settings.writeWindow = writeWindow
        return PipelineRunner(
            configuration: settings,
            source: transactionSource,
            sinks: sinks, store: store, logger: logger)
    }

    /// A session of one lane of a configured sink as it writes for `pipeline` (`ferry verify`).
    public static func makeSession(_ sinkName: String, lane: Int, pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration,
                                   logger: Logger) throws -> any SinkSession {
        try sessionMaker(sinkName, lane: lane, pipeline: pipeline, configuration: configuration, logger: logger)()
    }

    /// Makes sessions of one lane of a configured sink; its configuration is read (and refused)
    /// once, here.
    /// With an `epoch` (cluster mode), sinks that keep their position in the target store it
    /// there and refuse a write from an older one.
    static func sessionMaker(_ sinkName: String, lane: Int, pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration,
                             epoch: Int64? = nil, logger: Logger) throws -> @Sendable () -> any SinkSession {
        let spec = configuration.sinks[sinkName]!
        let targetTable = targetTableNamer(pipeline)
        switch spec.kind {
        case .postgres(let url, let password):
            let settings = try PostgresSink.Configuration(name: sinkName, pipeline: pipeline.name, url: url, password: password,
                                                          targetTable: targetTable, schemaChanges: spec.schemaChanges, lane: lane, epoch: epoch)
            return { PostgresSink(configuration: settings, logger: logger) }
        case .mysql(let url, let password):
            let settings = MariaDBSink.Configuration(name: sinkName, pipeline: pipeline.name, connection: try MySQLConnectionConfiguration(url: url, password: password),
                                                     targetTable: targetTable, schemaChanges: spec.schemaChanges, lane: lane, epoch: epoch)
            return { MariaDBSink(configuration: settings, logger: logger) }
        case .sqlite(let path):
            let settings = SQLiteSink.Configuration(name: sinkName, pipeline: pipeline.name, path: path, targetTable: targetTable,
                                                    schemaChanges: spec.schemaChanges)
            return { SQLiteSink(configuration: settings, logger: logger) }
        case .nats(let nats):
            let settings = try nats.configuration(name: sinkName, pipeline: pipeline.name)
            return { NATSSink(configuration: settings, logger: logger) }
        case .webhook(let url, let secret, let headers, let timeout, let events, let allowPrivate, let format):
            let settings = try WebhookSink.Configuration(name: sinkName, pipeline: pipeline.name, url: url, secret: secret, headers: headers,
                                                         timeoutSeconds: timeout, maximumEvents: events, allowPrivate: allowPrivate, format: format)
            return { WebhookSink(configuration: settings, logger: logger) }
        case .clickhouse(let url, let password, let timeout):
            let settings = try ClickHouseSink.Configuration(name: sinkName, pipeline: pipeline.name, url: url, password: password, targetTable: targetTable,
                                                            schemaChanges: spec.schemaChanges, timeoutSeconds: timeout)
            return { ClickHouseSink(configuration: settings, logger: logger) }
        case .search(let url, let password, let index):
            let settings = try SearchSink.Configuration(name: sinkName, url: url, index: index, password: password)
            return { SearchSink(configuration: settings, logger: logger) }
        case .redis(let url, let password, let rules):
            let settings = try RedisSink.Configuration(name: sinkName, pipeline: pipeline.name, url: url, password: password, rules: rules, epoch: epoch)
            return { RedisSink(configuration: settings, logger: logger) }
        case .jsonl(let directory, let bytes, let age, let format):
            let settings = JSONLinesSink.Configuration(name: sinkName, directory: (directory as NSString).appendingPathComponent(pipeline.name),
                                                       maximumFileBytes: bytes, maximumFileAgeSeconds: age, format: format)
            return { JSONLinesSink(configuration: settings) }
        }
    }

    /// `<data_dir>/buffer/<pipeline>`.
    public static func bufferDirectory(_ pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration) -> String {
        ((configuration.dataDirectory as NSString).appendingPathComponent("buffer") as NSString).appendingPathComponent(pipeline.name)
    }

    /// The target table of a source table: the first `mapping` entry with a `target`, else the
    /// pipeline's `target_table` template.
    public static func targetTableNamer(_ pipeline: FerryConfiguration.Pipeline) -> @Sendable (TableName) -> String {
        let overrides = pipeline.targetOverrides
        let template = pipeline.targetTable
        return { name in
            let chosen = overrides.first { TableGlob.matches($0.tables, name.description) }?.template ?? template
            return chosen.replacingOccurrences(of: "{db}", with: name.database).replacingOccurrences(of: "{table}", with: name.table)
        }
    }
}

/// The control plane's server; a failure to listen says where and what to do.
struct ListeningService: Service {
    let application: any Service
    let address: String

    func run() async throws {
        do {
            try await application.run()
        } catch {
            throw FerryError(code: .serverListen, message: "the web page and API cannot listen on \(address): \(error)",
                             fix: "set server.listen to a free HOST:PORT (or listen: off)")
        }
    }
}

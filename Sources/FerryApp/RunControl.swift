import ControlPlane
import FerryCore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle
import StateStore

/// The control plane's view of `ferry run`: the supervised pipelines, the state store, and the
/// figures `ferry status` shows, refreshed once a second (requests read the last refresh, so a
/// slow source never slows the API). The refresh also sets the Prometheus gauges.
final class RunControl: ControlBackend, Service {
    let configuration: FerryConfiguration
    let store: SQLiteCheckpointStore
    let supervisors: [String: PipelineSupervisor]
    let logger: Logger
    private let views = NIOLockedValueBox<[PipelineView]?>(nil)
    private let gauges = NIOLockedValueBox<[String: Gauge]>([:])
    /// Per pipeline, changes/s of the last 60 refreshes.
    private let history = NIOLockedValueBox<[String: [Double]]>([:])

    init(configuration: FerryConfiguration, store: SQLiteCheckpointStore, supervisors: [PipelineSupervisor], logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.supervisors = Dictionary(uniqueKeysWithValues: supervisors.map { ($0.name, $0) })
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.refresh()
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func pipelines() async -> [PipelineView] {
        if let views = views.withLockedValue({ $0 }) { return views }
        await refresh()
        return views.withLockedValue { $0 } ?? []
    }

    /// Reads every pipeline's figures and publishes them.
    func refresh() async {
        let reports: [Status.PipelineReport]
        // The pipeline itself reports an unreachable source; once a second here would flood the log.
        var quiet = logger
        quiet.logLevel = .error
        do {
            reports = try await Status.reports(configuration: configuration, store: store, logger: quiet)
        } catch {
            logger.warning("cannot read the pipelines' figures", metadata: ["ferry.error": "\(error)"])
            return
        }
        var fresh: [PipelineView] = []
        for report in reports {
            let progress = report.progress
            let state = await supervisors[report.name]?.state ?? "stopped"
            let running = state == "running"
            let sinks = report.sinks.map { sink in
                PipelineView.SinkView(name: sink.name, appliedPosition: sink.appliedPosition?.description, lagBytes: sink.lagBytes,
                                      lagEvents: sink.lagEvents, lagSeconds: sink.lagSeconds, eventsPerSecond: running ? sink.eventsPerSecond : 0)
            }
            let spec = configuration.pipelines.first { $0.name == report.name }
            let rate = sinks.compactMap(\.eventsPerSecond).max() ?? 0
            let rates = history.withLockedValue { history in
                history[report.name, default: []].append(rate)
                if history[report.name]!.count > 60 { history[report.name]!.removeFirst() }
                return history[report.name]!
            }
            let view = PipelineView(
                name: report.name, state: state, source: spec?.source ?? "", sourcePosition: report.sourcePosition?.description,
                readPosition: progress?.readPosition, safePosition: report.safePosition?.description, buffer: report.buffer,
                bufferBytes: report.bufferBytes, eventsRead: progress?.eventsRead ?? 0,
                eventsPerSecond: rate, eventsPerSecondHistory: rates, lagSeconds: sinks.compactMap(\.lagSeconds).max(),
                sinks: sinks,
                tables: (progress?.tables ?? [:]).sorted { $0.key < $1.key }.map { PipelineView.TableView(name: $0.key, changes: $0.value) },
                snapshots: report.snapshots.map { table in
                    PipelineView.SnapshotView(table: table.table.description, state: table.state.rawValue, rowsDone: table.rowsDone,
                                              estimatedRows: table.estimatedRows, chunksDone: table.chunksDone, chunksPlanned: table.chunksPlanned,
                                              fraction: table.fraction, rowsPerSecond: table.rowsPerSecond, secondsLeft: table.secondsLeft)
                },
                errors: FerryLogging.recent.entries(pipeline: report.name))
            fresh.append(view)
            setGauges(view)
        }
        views.withLockedValue { $0 = fresh }
    }

    /// Lag, buffer, state and snapshot progress as Prometheus gauges.
    private func setGauges(_ view: PipelineView) {
        let pipeline = ("pipeline", view.name)
        gauge("ferry_pipeline_running", [pipeline]).record(view.state == "running" ? 1 : 0)
        gauge("ferry_buffer_bytes", [pipeline]).record(view.bufferBytes ?? 0)
        if view.buffer == "memory", let limit = configuration.pipelines.first(where: { $0.name == view.name })?.bufferBytes {
            gauge("ferry_buffer_limit_bytes", [pipeline]).record(limit)
        }
        for sink in view.sinks {
            let labels = [pipeline, ("sink", sink.name)]
            if let lag = sink.lagSeconds { gauge("ferry_sink_lag_seconds", labels).record(lag) }
            if let lag = sink.lagEvents { gauge("ferry_sink_lag_events", labels).record(Double(lag)) }
            if let lag = sink.lagBytes { gauge("ferry_sink_lag_binlog_bytes", labels).record(Double(lag)) }
        }
        for snapshot in view.snapshots {
            let labels = [pipeline, ("table", snapshot.table)]
            gauge("ferry_snapshot_rows_done", labels).record(snapshot.rowsDone)
            gauge("ferry_snapshot_rows_estimated", labels).record(snapshot.estimatedRows)
            gauge("ferry_snapshot_fraction", labels).record(snapshot.fraction)
        }
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{0}")
        return gauges.withLockedValue { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions)
            gauges[key] = gauge
            return gauge
        }
    }

    func supervisor(_ pipeline: String) throws -> PipelineSupervisor {
        guard let supervisor = supervisors[pipeline] else { throw ControlRequestError(.notFound, "no pipeline named \(pipeline)") }
        return supervisor
    }

    func pause(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).pause(actor: actor)
        await refresh()
    }

    func resume(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).resume(actor: actor)
        await refresh()
    }

    func restart(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).restart(actor: actor)
        await refresh()
    }

    func snapshot(pipeline: String, tables: [String], actor: String) async throws -> [String] {
        try await refusing([.cliBadTable: .badRequest, .cliTableNotReplicated: .notFound, .cliUnknownPipeline: .notFound]) {
            try await Snapshots.request(configuration: configuration, pipeline: pipeline, tables: tables, store: store, actor: actor, logger: logger)
                .map(\.description)
        }
    }

    func rewind(pipeline: String, sink: String, position: String, actor: String) async throws {
        try await refusing([.cliBadPosition: .badRequest, .pipelineRewindAhead: .conflict, .cliUnknownSink: .notFound,
                            .cliUnknownPipeline: .notFound]) {
            try await SinkRewind.request(configuration: configuration, pipeline: pipeline, sink: sink, position: position, store: store, actor: actor)
        }
        try await restart(pipeline: pipeline, actor: actor)
    }

    /// Errors a user caused, by code, become refusals with the error's message and fix.
    private func refusing<T>(_ kinds: [FerryError.Code: ControlRequestError.Kind], _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as FerryError {
            guard let kind = kinds[error.code] else { throw error }
            throw ControlRequestError(kind, error.message + (error.fix.map { "; \($0)" } ?? ""))
        }
    }

    func auditLog(pipeline: String?, limit: Int) async throws -> [AuditEntryView] {
        try await store.auditLog(pipeline: pipeline, limit: limit).map {
            AuditEntryView(at: $0.at, pipeline: $0.pipeline, action: $0.action, detail: $0.detail, actor: $0.actor)
        }
    }

    func redactedConfiguration() -> String { configuration.redactedJSON() }

    func token(hash: String) async throws -> APIToken? {
        guard let stored = try await store.token(hash: hash), let role = Role(rawValue: stored.role) else { return nil }
        return APIToken(name: stored.name, role: role)
    }

    func isReady() async -> Bool {
        for supervisor in supervisors.values {
            let state = await supervisor.state
            if state != "running" && state != "paused" { return false }
        }
        return true
    }
}

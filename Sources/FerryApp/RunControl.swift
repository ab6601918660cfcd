import ControlPlane
import FerryCore
import Foundation
import Logging
import Metrics
import MySQLSource
import NIOConcurrencyHelpers
import Pipeline
import ServiceLifecycle
import StateStore

/// The control plane's view of `ferry run`: the supervised pipelines, the state store, and the
/// figures `ferry status` shows, refreshed once a second from the runs' live figures in memory
/// (requests read the last refresh). The refresh also sets the Prometheus gauges.
final class RunControl: ControlBackend, Service {
    let fleet: PipelineFleet
    let store: SQLiteCheckpointStore
    let logger: Logger
    /// The configuration running now (a reload replaces it).
    var configuration: FerryConfiguration { fleet.current.withLockedValue { $0.configuration } }
    var supervisors: [String: PipelineSupervisor] { fleet.current.withLockedValue { $0.supervisors } }
    /// Both at once, from the same moment.
    private var running: (FerryConfiguration, [String: PipelineSupervisor]) {
        fleet.current.withLockedValue { ($0.configuration, $0.supervisors) }
    }
    private let views = NIOLockedValueBox<[PipelineView]?>(nil)
    /// Refreshes started, and the newest one whose views are published: a refresh that began
    /// before a reload must not publish its older pipelines over a newer refresh's.
    private let refreshes = NIOLockedValueBox<(started: Int, published: Int)>((0, 0))
    private let gauges = NIOLockedValueBox<[String: Gauge]>([:])
    /// Per pipeline, changes/s of the last 60 refreshes.
    private let history = NIOLockedValueBox<[String: [Double]]>([:])
    /// Per pipeline, how long its source keeps the oldest binlog file it needs (absent: no risk).
    private let retention = NIOLockedValueBox<[String: BinlogRetention.Report]>([:])

    init(fleet: PipelineFleet, store: SQLiteCheckpointStore, logger: Logger) {
        self.fleet = fleet
        self.store = store
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        await self.refresh()
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await self.followSourcesOfIdlePipelines()
                        try? await Task.sleep(for: .seconds(Self.idleSourceSeconds))
                    }
                }
                group.addTask {
                    // Owned by this loop alone: when each binlog file started, per source.
                    var fileStarts: [String: [String: Double]] = [:]
                    while !Task.isCancelled {
                        await self.lookAtBinlogRetention(fileStarts: &fileStarts)
                        try? await Task.sleep(for: .seconds(Self.retentionSeconds))
                    }
                }
            }
        }
    }

    /// How often the log end of a source with an idle pipeline is read.
    static let idleSourceSeconds = 5

    /// A paused, stopped or failed pipeline reads no more of the source's log, yet falls behind
    /// with every change the source takes: its log end is read from the source instead, so its lag
    /// (and an alert on it) grows. In its own loop: an unreachable source cannot hold up the views.
    func followSourcesOfIdlePipelines() async {
        let (configuration, supervisors) = running
        var idle: [String: [SourceLogEnd]] = [:]
        for spec in configuration.pipelines {
            guard let supervisor = supervisors[spec.name], let logEnd = supervisor.logEnd, await Self.idle(supervisor.state) else { continue }
            idle[spec.source, default: []].append(logEnd)
        }
        // One look per source, however many of its pipelines are idle.
        for (name, logEnds) in idle {
            guard let source = configuration.sources[name] else { continue }
            do {
                let log = try await Status.sourceLog(source, logger: logger)
                guard let end = log.end else { continue }
                for logEnd in logEnds {
                    for (file, size) in log.files where file != end.file { logEnd.binlogFileEnded(file, size: size) }
                    logEnd.reached(.binlog(file: end.file, offset: end.offset))
                }
            } catch {
                logger.debug("cannot reach the source for an idle pipeline's lag", metadata: [LoggingKeys.source: "\(name)", LoggingKeys.error: .error(error)])
            }
        }
    }

    /// How often each source's binlog retention is read.
    static let retentionSeconds = 30

    /// Reads, per source, how long the server keeps the binlog file each pipeline's safe position
    /// is in, and warns once when that falls low (again after it recovered).
    func lookAtBinlogRetention(fileStarts: inout [String: [String: Double]]) async {
        let (configuration, supervisors) = running
        var needed: [String: [String: String]] = [:]
        for spec in configuration.pipelines {
            guard let supervisor = supervisors[spec.name] else { continue }
            var safe = supervisor.live.progress?.safePosition
            if safe == nil { safe = try? await store.checkpoint(pipeline: spec.name)?.safePosition }
            guard let file = safe?.binlog?.coordinates.file else { continue }
            needed[spec.source, default: [:]][spec.name] = file
        }
        var found: [String: BinlogRetention.Report] = [:]
        for (name, files) in needed {
            guard let source = configuration.sources[name] else { continue }
            do {
                found.merge(try await Status.binlogRetention(source, neededFiles: files, fileStarts: &fileStarts[name, default: [:]], logger: logger)) { $1 }
            } catch {
                logger.debug("cannot read the source's binlog retention", metadata: [LoggingKeys.source: "\(name)", LoggingKeys.error: .error(error)])
                for pipeline in files.keys { found[pipeline] = retention.withLockedValue { $0[pipeline] } }
            }
        }
        let previous = retention.withLockedValue { current in
            defer { current = found }
            return current
        }
        for (pipeline, report) in found.sorted(by: { $0.key < $1.key }) where report.isLow && previous[pipeline]?.isLow != true {
            let warning = FerryError(code: .sourceBinlogRetentionLow, message: "the source's binlog retention is running out: \(report.summary)",
                                     context: [("pipeline", pipeline)], fix: BinlogRetention.Report.fix)
            logger.warning("\(warning.message)", metadata: [LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.error: .error(warning)])
        }
    }

    static func idle(_ state: String) -> Bool { ["paused", "stopped", "failed"].contains(state) }

    func pipelines() async -> [PipelineView] {
        if let views = views.withLockedValue({ $0 }) { return views }
        await refresh()
        return views.withLockedValue { $0 } ?? []
    }

    /// Builds every pipeline's view from its run's live figures and publishes it. The state file
    /// is read only for what a run does not keep in memory: snapshot progress, and positions
    /// before a pipeline's first run has reported.
    func refresh() async {
        let generation = refreshes.withLockedValue { $0.started += 1; return $0.started }
        let (configuration, supervisors) = running
        var fresh: [PipelineView] = []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for spec in configuration.pipelines {
            guard let supervisor = supervisors[spec.name] else { continue }
            let state = await supervisor.state
            let running = state == "running"
            let progress = supervisor.live.progress
            let checkpoint = progress == nil ? try? await store.checkpoint(pipeline: spec.name) : nil
            let sinks = spec.sinks.map { name in
                var figures = progress?.sinks.first { $0.name == name }
                // The run's last figures saw the log end of its time; an idle pipeline's is newer.
                if Self.idle(state), let logEnd = supervisor.logEnd, let applied = figures?.appliedPosition {
                    figures?.lagBytes = logEnd.bytes(after: applied)
                }
                return PipelineView.SinkView(
                    name: name, appliedPosition: (figures?.appliedPosition ?? checkpoint?.sinks[name]?.applied)?.description,
                    lagBytes: figures?.lagBytes, lagEvents: figures?.lagEvents,
                    lagSeconds: progress.flatMap { progress in figures.flatMap { Status.lagSeconds($0, of: progress, at: now) } },
                    eventsPerSecond: running ? figures?.eventsPerSecond ?? 0 : 0)
            }
            let rate = sinks.compactMap(\.eventsPerSecond).max() ?? 0
            let rates = history.withLockedValue { history in
                history[spec.name, default: []].append(rate)
                if history[spec.name]!.count > 60 { history[spec.name]!.removeFirst() }
                return history[spec.name]!
            }
            let snapshots = (try? await Snapshots.progress(store: store, pipeline: spec.name)) ?? []
            let view = PipelineView(
                name: spec.name, state: state, source: spec.source, sourcePosition: (supervisor.logEnd?.position ?? progress?.sourceEnd)?.place,
                readPosition: progress?.readPosition, safePosition: (progress?.safePosition ?? checkpoint?.safePosition)?.description,
                buffer: spec.disk == nil ? "memory" : "disk", bufferBytes: progress?.bufferBytes, eventsRead: progress?.eventsRead ?? 0,
                eventsPerSecond: rate, eventsPerSecondHistory: rates, lagSeconds: sinks.compactMap(\.lagSeconds).max(),
                sinks: sinks,
                tables: (progress?.tables ?? [:]).sorted { $0.key < $1.key }.map { PipelineView.TableView(name: $0.key, changes: $0.value) },
                snapshots: snapshots.map { table in
                    PipelineView.SnapshotView(table: table.table.description, state: table.state.rawValue, reason: table.reason, rowsDone: table.rowsDone,
                                              estimatedRows: table.estimatedRows, chunksDone: table.chunksDone, chunksPlanned: table.chunksPlanned,
                                              fraction: table.fraction, rowsPerSecond: table.rowsPerSecond, secondsLeft: table.secondsLeft)
                },
                errors: FerryLogging.recent.entries(pipeline: spec.name),
                binlogRetention: retention.withLockedValue { $0[spec.name] }.map {
                    PipelineView.RetentionView(neededFile: $0.neededFile, expireSeconds: $0.expireSeconds, secondsLeft: $0.secondsLeft, low: $0.isLow)
                })
            fresh.append(view)
        }
        let newest = refreshes.withLockedValue { counts in
            guard generation > counts.published else { return false }
            counts.published = generation
            return true
        }
        guard newest else { return }
        let gone = views.withLockedValue { previous in
            defer { previous = fresh }
            return Set((previous ?? []).map(\.name)).subtracting(fresh.map(\.name))
        }
        // A pipeline a reload removed leaves no series behind to keep an alert firing.
        for name in gone { forgetPipeline(name) }
        for view in fresh { setGauges(view, configuration: configuration) }
    }

    /// Lag, buffer, state and snapshot progress as Prometheus gauges.
    private func setGauges(_ view: PipelineView, configuration: FerryConfiguration) {
        let pipeline = ("pipeline", view.name)
        gauge("ferry_pipeline_running", [pipeline]).record(view.state == "running" ? 1 : 0)
        gauge("ferry_buffer_bytes", [pipeline]).record(view.bufferBytes ?? 0)
        if view.buffer == "memory", let limit = configuration.pipelines.first(where: { $0.name == view.name })?.bufferBytes {
            gauge("ferry_buffer_limit_bytes", [pipeline]).record(limit)
        }
        // Absent when nothing is at risk: a stale figure would keep an alert firing.
        if let retention = view.binlogRetention {
            gauge("ferry_source_binlog_retention_seconds", [pipeline]).record(retention.secondsLeft)
        } else {
            removeGauge("ferry_source_binlog_retention_seconds", [pipeline])
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

    /// Drops a removed pipeline's gauges and rate history.
    private func forgetPipeline(_ name: String) {
        let marker = "\u{0}pipeline=\(name)"
        let removed = gauges.withLockedValue { gauges in
            let keys = gauges.keys.filter { $0.contains(marker + "\u{0}") || $0.hasSuffix(marker) }
            return keys.compactMap { gauges.removeValue(forKey: $0) }
        }
        for gauge in removed { gauge.destroy() }
        history.withLockedValue { _ = $0.removeValue(forKey: name) }
    }

    private func removeGauge(_ label: String, _ dimensions: [(String, String)]) {
        let key = Self.gaugeKey(label, dimensions)
        gauges.withLockedValue { $0.removeValue(forKey: key) }?.destroy()
    }

    private static func gaugeKey(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{0}")
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        let key = Self.gaugeKey(label, dimensions)
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

    func reload(actor: String) async throws -> String {
        let summary = try await fleet.reload(actor: actor)
        await refresh()
        return summary
    }

    func token(hash: String) async throws -> APIToken? {
        guard let stored = try await store.token(hash: hash), let role = Role(rawValue: stored.role) else { return nil }
        return APIToken(name: stored.name, role: role)
    }

    /// From the same figures the API shows, so a client that saw ready reads `running` there too.
    func isReady() async -> Bool {
        await pipelines().allSatisfy { $0.state == "running" || $0.state == "paused" }
    }
}

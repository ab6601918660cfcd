import ControlPlane
import FerryCore
import Foundation
import Metrics
import MySQLSource
import NIOConcurrencyHelpers
import Pipeline
import PostgresSource

/// Turns a pipeline's live figures into the view the API and the page show, keeps each
/// pipeline's rate over the last minute, and mirrors the views in Prometheus gauges. One per
/// control plane (one process, or one cluster node for the pipelines it runs).
final class PipelineFigures: Sendable {
    private let gauges = NIOLockedValueBox<[String: Gauge]>([:])
    /// Per pipeline, changes/s of the last 60 views.
    private let history = NIOLockedValueBox<[String: [Double]]>([:])

    /// The view of `spec` in `state`, from its run's figures (`progress`, nil before the first
    /// run reported) and, for what a run does not keep in memory, from `store`.
    func view(_ spec: FerryConfiguration.Pipeline, state: String, progress: PipelineProgress?, logEnd: SourceLogEnd?, store: any OperatorStore,
              retention: BinlogRetention.Report?, walRetention: SlotRetention? = nil) async -> PipelineView {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let running = state == "running"
        let checkpoint = progress == nil ? try? await store.checkpoint(pipeline: spec.name) : nil
        let sinks = spec.sinks.map { name in
            var figures = progress?.sinks.first { $0.name == name }
            // The run's last figures saw the log end of its time; an idle pipeline's is newer.
            if RunControl.idle(state), let logEnd, let applied = figures?.appliedPosition {
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
        return PipelineView(
            name: spec.name, state: state, source: spec.source, sourcePosition: (logEnd?.position ?? progress?.sourceEnd)?.place,
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
            binlogRetention: retention.map {
                PipelineView.RetentionView(neededFile: $0.neededFile, expireSeconds: $0.expireSeconds, secondsLeft: $0.secondsLeft, low: $0.isLow)
            },
            walRetention: walRetention.map {
                PipelineView.WALRetentionView(slot: $0.slot, retainedBytes: $0.retainedBytes, limitBytes: $0.limitBytes, walStatus: $0.walStatus, high: $0.isHigh)
            })
    }

    /// Sets the gauges of `views`, and drops those of pipelines in `previous` that are gone (a
    /// reload removed them, or another node runs them now): a stale series would keep an alert
    /// firing.
    func updateGauges(_ views: [PipelineView], previous: [PipelineView], configuration: FerryConfiguration) {
        for name in Set(previous.map(\.name)).subtracting(views.map(\.name)) { forget(name) }
        for view in views { setGauges(view, configuration: configuration) }
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
        if let retention = view.walRetention {
            gauge("ferry_source_wal_retained_bytes", [pipeline]).record(Double(retention.retainedBytes))
        } else {
            removeGauge("ferry_source_wal_retained_bytes", [pipeline])
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

    /// Drops a pipeline's gauges and rate history.
    private func forget(_ name: String) {
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

    func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        let key = Self.gaugeKey(label, dimensions)
        return gauges.withLockedValue { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions)
            gauges[key] = gauge
            return gauge
        }
    }
}

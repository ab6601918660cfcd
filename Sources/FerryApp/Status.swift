import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire
import PostgresSource
import StateStore

/// `ferry status -c FILE`: per pipeline and sink, the state, positions and lag, from the state
/// store and the source.
public enum Status {
    public struct SinkReport: Sendable {
        public var name: String
        public var appliedPosition: SourcePosition?
        /// Binlog bytes between the applied position and the source's current end.
        public var lagBytes: UInt64?
        /// Changes read from the source but not yet applied by this sink.
        public var lagEvents: UInt64?
        /// How far behind the commit time of the last applied change is, while behind; 0 caught up.
        public var lagSeconds: Double?
        public var eventsPerSecond: Double?
    }

    public struct PipelineReport: Sendable {
        public var name: String
        public var state: String
        public var sourcePosition: BinlogCoordinates?
        public var safePosition: SourcePosition?
        public var buffer: String
        /// Bytes held by the buffer at the last report (the disk backlog with `buffer: disk`).
        public var bufferBytes: Int?
        public var sinks: [SinkReport]
        public var lastError: String?
        public var snapshots: [Snapshots.TableProgress] = []
        /// The live figures the pipeline last saved (read position, changes per table, …).
        public var progress: PipelineProgress?
        /// How long the source keeps the binlog file the safe position is in.
        public var binlogRetention: BinlogRetention.Report?
        /// A PostgreSQL source: the WAL its server keeps for the pipeline's slot.
        public var walRetention: SlotRetention?
    }

    /// A running pipeline saves its figures every second; older ones mean it is not running.
    static let staleAfterMillis: Int64 = 5_000

    public static func collect(configuration: FerryConfiguration, logger: Logger) async throws -> [PipelineReport] {
        guard configuration.cluster != nil || FileManager.default.fileExists(atPath: configuration.statePath) else {
            return try await reports(configuration: configuration, store: nil, logger: logger)
        }
        return try await StateAccess.with(configuration, readOnly: true, logger: logger) {
            try await reports(configuration: configuration, store: $0, logger: logger)
        }
    }

    static func reports(configuration: FerryConfiguration, store: (any OperatorStore)?, logger: Logger) async throws -> [PipelineReport] {
        var reports: [PipelineReport] = []
        for pipeline in configuration.pipelines {
            let checkpoint = try await store?.checkpoint(pipeline: pipeline.name)
            // Enough entries to reach the last start or stop past any number of snapshots, rewinds and recoveries.
            let log = try await store?.auditLog(pipeline: pipeline.name, limit: 1000) ?? []
            let progress = try await store?.progress(pipeline: pipeline.name)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let fresh = progress.map { now - $0.updatedMillis <= staleAfterMillis } ?? false
            var state: String
            // A pause (through the API) is a requested stop: "pause" right before "stop".
            let lifecycle = log.filter { ["start", "stop", "error", "pause"].contains($0.action) }.prefix(2).map(\.action)
            switch lifecycle.first {
            case nil: state = fresh ? "running" : "never run"
            case "start": state = fresh ? "running" : "not running (killed or crashed; last seen \(progress.map { "\((now - $0.updatedMillis) / 1000) s ago" } ?? "never"))"
            case "stop": state = lifecycle.dropFirst().first == "pause" ? "paused" : "stopped"
            case "pause": state = "pausing"
            default: state = "failed"
            }
            let lastError = log.prefix { $0.action != "start" }.first { $0.action == "error" }?.detail
            let source = configuration.sources[pipeline.source]!
            var current: BinlogCoordinates? = nil
            var logSizes: [(String, UInt64)] = []
            var walRetention: SlotRetention? = nil
            if PostgresSourceConfiguration.isPostgresURL(source.url) {
                do {
                    walRetention = try await slotRetention(source, pipeline: pipeline.name, logger: logger)
                } catch {
                    logger.warning("cannot read the source's slot", metadata: [LoggingKeys.error: .error(error)])
                }
            } else {
                do {
                    (current, logSizes) = try await sourceLog(source, logger: logger)
                } catch {
                    logger.warning("cannot reach the source for lag", metadata: [LoggingKeys.error: .error(error)])
                }
            }
            let sinks = pipeline.sinks.map { name in
                let applied = checkpoint?.sinks[name]?.applied
                var report = SinkReport(name: name, appliedPosition: applied,
                                        lagBytes: applied?.binlog.flatMap { lag(from: $0.coordinates, to: current, logs: logSizes) })
                if let progress, let figures = progress.sinks.first(where: { $0.name == name }) {
                    report.lagEvents = figures.lagEvents
                    report.lagSeconds = lagSeconds(figures, of: progress, at: now)
                    report.eventsPerSecond = fresh ? figures.eventsPerSecond : 0
                }
                return report
            }
            var retention: BinlogRetention.Report? = nil
            if let file = checkpoint?.safePosition?.binlog?.coordinates.file {
                var fileStarts: [String: Double] = [:]
                do {
                    retention = try await binlogRetention(source, neededFiles: [pipeline.name: file], fileStarts: &fileStarts, logger: logger)[pipeline.name]
                } catch {
                    logger.warning("cannot read the source's binlog retention", metadata: [LoggingKeys.error: .error(error)])
                }
            }
            var snapshots: [Snapshots.TableProgress] = []
            if let store { snapshots = try await Snapshots.progress(store: store, pipeline: pipeline.name) }
            reports.append(PipelineReport(name: pipeline.name, state: state, sourcePosition: current, safePosition: checkpoint?.safePosition,
                                          buffer: pipeline.disk == nil ? "memory" : "disk", bufferBytes: progress?.bufferBytes,
                                          sinks: sinks, lastError: lastError,
                                          snapshots: snapshots,
                                          progress: progress, binlogRetention: retention, walRetention: walRetention))
        }
        return reports
    }

    /// The WAL a PostgreSQL source keeps for the pipeline's slot (the one the URL names, else
    /// the pipeline's own); nil before the slot exists.
    static func slotRetention(_ source: FerryConfiguration.Source, pipeline: String, logger: Logger) async throws -> SlotRetention? {
        try await PostgresSource(configuration: try PostgresTransactionSource.settings(source, pipeline: pipeline), logger: logger).slotRetention()
    }

    /// The source's end of log and the size of each binlog file it keeps.
    static func sourceLog(_ source: FerryConfiguration.Source, logger: Logger) async throws -> (end: BinlogCoordinates?, files: [(String, UInt64)]) {
        let connection = try MySQLConnectionConfiguration(url: source.url, password: source.password)
        return try await MySQLConnection.withConnection(connection, logger: logger) { query in
            let status = try await query.query("SHOW MASTER STATUS")
            let coordinates = status.value("File").flatMap { file in status.value("Position").flatMap(UInt64.init).map { BinlogCoordinates(file: file, offset: $0) } }
            let logs = try await query.query("SHOW BINARY LOGS").rows.compactMap { row -> (String, UInt64)? in
                guard let name = row[0], let size = row[1].flatMap({ UInt64($0) }) else { return nil }
                return (name, size)
            }
            return (coordinates, logs)
        }
    }

    /// For each pipeline of `source` (name → the binlog file its safe position is in), how long
    /// the server keeps that file. `fileStarts` caches when each file started (that never
    /// changes), so a file's start is read from the server once.
    static func binlogRetention(_ source: FerryConfiguration.Source, neededFiles: [String: String], fileStarts: inout [String: Double],
                                logger: Logger) async throws -> [String: BinlogRetention.Report] {
        let connection = try MySQLConnectionConfiguration(url: source.url, password: source.password)
        let (variables, files) = try await MySQLConnection.withConnection(connection, logger: logger) { query in
            (try await BinlogRetention.expiryVariables(query), try await query.query("SHOW BINARY LOGS").rows.compactMap { $0[0] })
        }
        let expire = BinlogRetention.expireSeconds(variables)
        guard expire > 0 else { return [:] }
        var reports: [String: BinlogRetention.Report] = [:]
        for (pipeline, file) in neededFiles {
            guard let next = BinlogRetention.fileAfter(file, in: files) else { continue }
            if fileStarts[next] == nil { fileStarts[next] = try await BinlogRetention.startTime(of: next, connection: connection, logger: logger) }
            reports[pipeline] = BinlogRetention.report(neededFile: file, serverFiles: files, expireSeconds: expire, rotatedAt: fileStarts[next],
                                                       now: Date().timeIntervalSince1970)
        }
        return reports
    }

    /// Binlog bytes past a sink's position that are no change: a rotation's new-file preamble
    /// (format description, GTID list, checkpoint) and the old file's rotate event.
    static let lagBytesNoise: UInt64 = 4096

    /// How far behind a sink is at `reference` (ms since the epoch): 0 once it has applied all
    /// that was read and the source's log holds nothing more for it, else the age of the last
    /// change it applied (or of the last read, when it has applied nothing in this run) — also
    /// while the pipeline is paused or stopped with the source's log ahead of it.
    static func lagSeconds(_ figures: PipelineProgress.SinkProgress, of progress: PipelineProgress, at reference: Int64) -> Double? {
        if figures.lagEvents == 0, (figures.lagBytes ?? 0) <= lagBytesNoise { return 0 }
        return (figures.appliedCommitMillis ?? progress.readCommitMillis).map { Double(max(0, reference - $0)) / 1000 }
    }

    /// Bytes of binlog between two positions, across files.
    static func lag(from applied: BinlogCoordinates, to current: BinlogCoordinates?, logs: [(String, UInt64)]) -> UInt64? {
        guard let current else { return nil }
        if applied >= current { return 0 }
        if applied.file == current.file { return current.offset - applied.offset }
        var total: UInt64 = 0
        for (name, size) in logs {
            let file = BinlogCoordinates(file: name, offset: 0)
            if file.fileSequence.map({ $0 < (applied.fileSequence ?? 0) }) ?? true { continue }
            if name == applied.file { total += size > applied.offset ? size - applied.offset : 0 }
            else if name == current.file { total += current.offset }
            else if BinlogCoordinates(file: name, offset: 0) < current { total += size }
        }
        return total
    }

    public static func text(_ reports: [PipelineReport]) -> String {
        var lines: [String] = []
        for report in reports {
            lines.append("pipeline \(report.name): \(report.state)")
            lines.append("  source position:  \(report.sourcePosition?.description ?? "unknown")")
            lines.append("  safe position:    \(report.safePosition?.description ?? "none yet")")
            if let retention = report.binlogRetention {
                lines.append("  binlog retention: \(retention.summary)" + (retention.isLow ? " — LOW: \(BinlogRetention.Report.fix)" : ""))
            }
            if let retention = report.walRetention {
                lines.append("  WAL retained:     \(retention.summary)" + (retention.isHigh ? " — HIGH: \(SlotRetention.fix)" : ""))
            }
            lines.append("  buffer:           \(report.buffer)\(report.bufferBytes.map { ", \($0) bytes held" } ?? "")")
            for sink in report.sinks {
                var lag: [String] = []
                if let events = sink.lagEvents { lag.append("\(events) changes") }
                if let seconds = sink.lagSeconds { lag.append(String(format: "%.1f s", seconds)) }
                if let bytes = sink.lagBytes { lag.append("\(bytes) binlog bytes") }
                let rate = sink.eventsPerSecond.map { String(format: ", %.0f changes/s", $0) } ?? ""
                lines.append("  sink \(sink.name): applied \(sink.appliedPosition?.description ?? "nothing yet"), behind \(lag.isEmpty ? "unknown" : lag.joined(separator: " / "))\(rate)")
            }
            for table in report.snapshots { lines.append("  snapshot " + Snapshots.line(table)) }
            if let error = report.lastError { lines.append("  last error: \(error)") }
        }
        return lines.joined(separator: "\n")
    }

    public static func json(_ reports: [PipelineReport]) -> String {
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"pipelines\":[", to: &out)
        for (index, report) in reports.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBuffer.appendASCII("{\"name\":", to: &out)
            JSONBuffer.appendString(report.name, to: &out)
            JSONBuffer.appendASCII(",\"state\":", to: &out)
            JSONBuffer.appendString(report.state, to: &out)
            JSONBuffer.appendASCII(",\"source_position\":", to: &out)
            appendOptional(report.sourcePosition?.description, &out)
            JSONBuffer.appendASCII(",\"binlog_retention\":", to: &out)
            if let retention = report.binlogRetention {
                JSONBuffer.appendASCII("{\"needed_file\":", to: &out)
                JSONBuffer.appendString(retention.neededFile, to: &out)
                JSONBuffer.appendASCII(",\"expire_seconds\":", to: &out)
                appendNumber(retention.expireSeconds, &out)
                JSONBuffer.appendASCII(",\"seconds_left\":", to: &out)
                appendNumber(retention.secondsLeft, &out)
                JSONBuffer.appendASCII(retention.isLow ? ",\"low\":true}" : ",\"low\":false}", to: &out)
            } else {
                JSONBuffer.appendASCII("null", to: &out)
            }
            if let retention = report.walRetention {
                JSONBuffer.appendASCII(",\"wal_retention\":{\"slot\":", to: &out)
                JSONBuffer.appendString(retention.slot, to: &out)
                JSONBuffer.appendASCII(",\"retained_bytes\":", to: &out)
                appendNumber(Double(retention.retainedBytes), &out)
                JSONBuffer.appendASCII(",\"limit_bytes\":", to: &out)
                appendNumber(retention.limitBytes.map(Double.init), &out)
                JSONBuffer.appendASCII(",\"wal_status\":", to: &out)
                JSONBuffer.appendString(retention.walStatus, to: &out)
                JSONBuffer.appendASCII(retention.isHigh ? ",\"high\":true}" : ",\"high\":false}", to: &out)
            }
            JSONBuffer.appendASCII(",\"buffer\":", to: &out)
            JSONBuffer.appendString(report.buffer, to: &out)
            JSONBuffer.appendASCII(",\"buffer_bytes\":", to: &out)
            appendNumber(report.bufferBytes.map { Double($0) }, &out)
            JSONBuffer.appendASCII(",\"sinks\":[", to: &out)
            for (sinkIndex, sink) in report.sinks.enumerated() {
                if sinkIndex > 0 { out.append(UInt8(ascii: ",")) }
                JSONBuffer.appendASCII("{\"name\":", to: &out)
                JSONBuffer.appendString(sink.name, to: &out)
                JSONBuffer.appendASCII(",\"applied_position\":", to: &out)
                appendOptional(sink.appliedPosition?.place, &out)
                JSONBuffer.appendASCII(",\"lag_bytes\":", to: &out)
                if let lag = sink.lagBytes { JSONBuffer.appendUnsigned(lag, to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
                JSONBuffer.appendASCII(",\"lag_events\":", to: &out)
                appendNumber(sink.lagEvents.map { Double($0) }, &out)
                JSONBuffer.appendASCII(",\"lag_seconds\":", to: &out)
                appendNumber(sink.lagSeconds, &out)
                JSONBuffer.appendASCII(",\"events_per_second\":", to: &out)
                appendNumber(sink.eventsPerSecond, &out)
                JSONBuffer.appendASCII(",\"last_error\":", to: &out)
                appendOptional(report.lastError, &out)
                out.append(UInt8(ascii: "}"))
            }
            JSONBuffer.appendASCII("],\"snapshots\":[", to: &out)
            for (tableIndex, table) in report.snapshots.enumerated() {
                if tableIndex > 0 { out.append(UInt8(ascii: ",")) }
                JSONBuffer.appendASCII("{\"table\":", to: &out)
                JSONBuffer.appendString(table.table.description, to: &out)
                JSONBuffer.appendASCII(",\"state\":", to: &out)
                JSONBuffer.appendString(table.state.rawValue, to: &out)
                JSONBuffer.appendASCII(",\"rows_done\":", to: &out)
                appendNumber(Double(table.rowsDone), &out)
                JSONBuffer.appendASCII(",\"estimated_rows\":", to: &out)
                appendNumber(Double(table.estimatedRows), &out)
                JSONBuffer.appendASCII(",\"chunks_done\":", to: &out)
                appendNumber(Double(table.chunksDone), &out)
                JSONBuffer.appendASCII(",\"chunks_planned\":", to: &out)
                appendNumber(Double(table.chunksPlanned), &out)
                JSONBuffer.appendASCII(",\"rows_per_second\":", to: &out)
                appendNumber(table.rowsPerSecond, &out)
                JSONBuffer.appendASCII(",\"seconds_left\":", to: &out)
                appendNumber(table.secondsLeft, &out)
                out.append(UInt8(ascii: "}"))
            }
            JSONBuffer.appendASCII("]}", to: &out)
        }
        JSONBuffer.appendASCII("]}", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendNumber(_ number: Double?, _ out: inout [UInt8]) {
        guard let number else { return JSONBuffer.appendASCII("null", to: &out) }
        if number == number.rounded(), abs(number) < 1e15 {
            out.append(contentsOf: String(Int64(number)).utf8)
        } else {
            out.append(contentsOf: String(format: "%.3f", number).utf8)
        }
    }

    private static func appendOptional(_ text: String?, _ out: inout [UInt8]) {
        if let text { JSONBuffer.appendString(text, to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
    }
}

import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire
import StateStore

/// `ferry status -c FILE`: per pipeline and sink, the state, positions and lag, from the state
/// store and the source.
public enum Status {
    public struct SinkReport: Sendable {
        public var name: String
        public var appliedPosition: BinlogPosition?
        public var lagBytes: UInt64?
    }

    public struct PipelineReport: Sendable {
        public var name: String
        public var state: String
        public var sourcePosition: BinlogCoordinates?
        public var safePosition: BinlogPosition?
        public var sinks: [SinkReport]
        public var lastError: String?
    }

    public static func collect(configuration: FerryConfiguration, logger: Logger) async throws -> [PipelineReport] {
        let store: SQLiteCheckpointStore? = FileManager.default.fileExists(atPath: configuration.statePath)
            ? try await SQLiteCheckpointStore.open(path: configuration.statePath, logger: logger) : nil
        var reports: [PipelineReport] = []
        for pipeline in configuration.pipelines {
            let checkpoint = try await store?.checkpoint(pipeline: pipeline.name)
            let log = try await store?.auditLog(pipeline: pipeline.name, limit: 20) ?? []
            let state: String
            switch log.first?.action {
            case nil: state = "never run"
            case "start": state = "running (or killed)"
            case "stop": state = "stopped"
            case "error": state = "failed"
            case let action?: state = action
            }
            let lastError = log.prefix { $0.action != "start" }.first { $0.action == "error" }?.detail
            let source = configuration.sources[pipeline.source]!
            var current: BinlogCoordinates? = nil
            var logSizes: [(String, UInt64)] = []
            let connection = try MySQLConnectionConfiguration(url: source.url, password: source.password)
            do {
                (current, logSizes) = try await MySQLConnection.withConnection(connection, logger: logger) { query in
                    let status = try await query.query("SHOW MASTER STATUS")
                    let coordinates = status.value("File").flatMap { file in status.value("Position").flatMap(UInt64.init).map { BinlogCoordinates(file: file, offset: $0) } }
                    let logs = try await query.query("SHOW BINARY LOGS").rows.compactMap { row -> (String, UInt64)? in
                        guard let name = row[0], let size = row[1].flatMap({ UInt64($0) }) else { return nil }
                        return (name, size)
                    }
                    return (coordinates, logs)
                }
            } catch {
                logger.warning("cannot reach the source for lag", metadata: ["ferry.error": "\(error)"])
            }
            let sinks = pipeline.sinks.map { name in
                let applied = checkpoint?.sinks[name]?.applied
                return SinkReport(name: name, appliedPosition: applied,
                                  lagBytes: applied.flatMap { lag(from: $0.coordinates, to: current, logs: logSizes) })
            }
            reports.append(PipelineReport(name: pipeline.name, state: state, sourcePosition: current,
                                          safePosition: checkpoint?.safePosition, sinks: sinks, lastError: lastError))
        }
        try await store?.close()
        return reports
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
            for sink in report.sinks {
                let lag = sink.lagBytes.map { "\($0) bytes behind" } ?? "lag unknown"
                lines.append("  sink \(sink.name): applied \(sink.appliedPosition?.description ?? "nothing yet"), \(lag)")
            }
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
            JSONBuffer.appendASCII(",\"sinks\":[", to: &out)
            for (sinkIndex, sink) in report.sinks.enumerated() {
                if sinkIndex > 0 { out.append(UInt8(ascii: ",")) }
                JSONBuffer.appendASCII("{\"name\":", to: &out)
                JSONBuffer.appendString(sink.name, to: &out)
                JSONBuffer.appendASCII(",\"applied_position\":", to: &out)
                appendOptional(sink.appliedPosition?.coordinates.description, &out)
                JSONBuffer.appendASCII(",\"lag_bytes\":", to: &out)
                if let lag = sink.lagBytes { JSONBuffer.appendUnsigned(lag, to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
                JSONBuffer.appendASCII(",\"lag_events\":null,\"lag_seconds\":null,\"last_error\":", to: &out)
                appendOptional(report.lastError, &out)
                out.append(UInt8(ascii: "}"))
            }
            JSONBuffer.appendASCII("]}", to: &out)
        }
        JSONBuffer.appendASCII("]}", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendOptional(_ text: String?, _ out: inout [UInt8]) {
        if let text { JSONBuffer.appendString(text, to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
    }
}

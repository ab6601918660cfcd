import FerryCore
import Logging
import StateStore

/// `ferry sink rewind PIPELINE SINK POSITION`: records that a sink replays from an earlier
/// position. The pipeline honours it when it next starts — from its disk buffer while the buffer
/// still holds that position, else by re-reading the source's binlog; the sink's own record
/// (`ferry_offsets`) is overridden once, and every other sink skips what it already has.
public enum SinkRewind {
    public static func request(configuration: FerryConfiguration, pipeline: String, sink: String, position text: String,
                               logger: Logger) async throws -> String {
        try await StateAccess.with(configuration, logger: logger) {
            try await request(configuration: configuration, pipeline: pipeline, sink: sink, position: text, store: $0, actor: "cli")
        }
        let from = configuration.pipelines.first { $0.name == pipeline }?.disk == nil
            ? "the source's binlog (the pipeline has a memory buffer)" : "the disk buffer (or the source's binlog if the buffer no longer reaches back)"
        return "sink \(sink) of pipeline \(pipeline) will replay every change after \(text) from \(from) when the pipeline next starts; restart `ferry run` to apply it"
    }

    /// The same through an open store, on behalf of `actor` (`cli` or an API token's name).
    static func request(configuration: FerryConfiguration, pipeline: String, sink: String, position text: String,
                        store: any OperatorStore, actor: String) async throws {
        guard let spec = configuration.pipelines.first(where: { $0.name == pipeline }) else {
            throw FerryError(code: .cliUnknownPipeline, message: "no pipeline named '\(pipeline)' in \(configuration.file)",
                             fix: "pipelines: \(configuration.pipelines.map(\.name).joined(separator: ", "))")
        }
        guard spec.sinks.contains(sink) else {
            throw FerryError(code: .cliUnknownSink, message: "pipeline \(pipeline) has no sink named '\(sink)'",
                             fix: "its sinks: \(spec.sinks.joined(separator: ", "))")
        }
        guard let coordinates = BinlogCoordinates(parsing: Substring(text)) else {
            throw FerryError(code: .cliBadPosition, message: "'\(text)' is not a binlog position",
                             fix: "give FILE:OFFSET as printed by `ferry status` or in an event's id, e.g. mariadb-bin.000003:1234")
        }
        let position = SourcePosition.binlog(BinlogPosition(coordinates: coordinates, gtidPosition: nil))
        if let applied = try await store.checkpoint(pipeline: pipeline)?.sinks[sink]?.applied, position > applied {
            throw FerryError(code: .pipelineRewindAhead,
                             message: "\(coordinates) is after what sink \(sink) has applied (\(applied.place)); a rewind cannot skip changes",
                             context: [("pipeline", pipeline), ("sink", sink)], fix: "give a position at or before \(applied.place)")
        }
        try await store.requestRewind(pipeline: pipeline, sink: sink, position: position, actor: actor)
    }
}

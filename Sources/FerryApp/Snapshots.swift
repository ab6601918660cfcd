import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire
import PostgresSource
import StateStore

/// Snapshot progress for `ferry status` and `ferry snapshot`, and requests for new snapshots.
public enum Snapshots {
    /// One table's snapshot, as people read it.
    public struct TableProgress: Sendable, Equatable {
        public var table: TableName
        public var state: SnapshotTableRecord.State
        public var reason: String
        public var key: String
        public var rowsDone: Int
        /// The server's estimate when the snapshot started (InnoDB's is approximate).
        public var estimatedRows: Int
        public var chunksDone: Int
        public var chunksPlanned: Int
        public var planComplete: Bool
        public var rowsPerSecond: Double?
        /// Seconds left at the current rate; `nil` when unknown.
        public var secondsLeft: Double?

        public var fraction: Double {
            if state == .done { return 1 }
            guard estimatedRows > 0 else { return 0 }
            return min(0.99, Double(rowsDone) / Double(estimatedRows))
        }
    }

    public static func progress(store: any SnapshotStore, pipeline: String, nowMillis: Int64 = WallClock.millisecondsSinceEpoch()) async throws -> [TableProgress] {
        var tables: [TableProgress] = []
        for record in try await store.snapshotTables(pipeline: pipeline) {
            let chunks = try await store.snapshotChunks(pipeline: pipeline, table: record.table)
            let done = chunks.filter { $0.deliveredAt != nil }
            let rows = done.reduce(0) { $0 + $1.rows }
            var progress = TableProgress(table: record.table, state: record.state, reason: record.reason, key: record.key, rowsDone: rows,
                                         estimatedRows: record.estimatedRows, chunksDone: done.count, chunksPlanned: chunks.count,
                                         planComplete: record.planComplete)
            if let started = record.startedMillis {
                let elapsed = Double((record.finishedMillis ?? nowMillis) - started) / 1000
                if elapsed > 0 { progress.rowsPerSecond = Double(rows) / elapsed }
                if record.state != .done, let rate = progress.rowsPerSecond, rate > 0, record.estimatedRows > rows {
                    progress.secondsLeft = Double(record.estimatedRows - rows) / rate
                }
            }
            tables.append(progress)
        }
        return tables
    }

    /// One line per table, e.g. `shop.items  running  [#####.....]  48% 24,000/~50,000 rows …`.
    public static func line(_ table: TableProgress, barWidth: Int = 20) -> String {
        let filled = Int((table.fraction * Double(barWidth)).rounded(.down))
        let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "]"
        var parts = ["\(table.table)", "\(table.state.rawValue) (reason: \(table.reason))", bar, String(format: "%3.0f%%", table.fraction * 100),
                     "\(table.rowsDone)/~\(table.estimatedRows) rows",
                     "chunks \(table.chunksDone)/\(table.chunksPlanned)\(table.planComplete || table.state == .done ? "" : "+")"]
        if let rate = table.rowsPerSecond { parts.append(String(format: "%.0f rows/s", rate)) }
        if let left = table.secondsLeft { parts.append(String(format: "ETA %.0f s", left)) }
        return parts.joined(separator: "  ")
    }

    /// `ferry snapshot PIPELINE [TABLE…]`: asks the running pipeline to snapshot tables (all it
    /// replicates when none are named). Returns the tables requested.
    public static func request(configuration: FerryConfiguration, pipeline: String, tables: [String], logger: Logger) async throws -> [TableName] {
        try await StateAccess.with(configuration, logger: logger) {
            try await request(configuration: configuration, pipeline: pipeline, tables: tables, store: $0, actor: "cli", logger: logger)
        }
    }

    /// The same through an open store, on behalf of `actor` (`cli` or an API token's name).
    static func request(configuration: FerryConfiguration, pipeline: String, tables: [String], store: any OperatorStore, actor: String,
                        logger: Logger) async throws -> [TableName] {
        guard let spec = configuration.pipelines.first(where: { $0.name == pipeline }) else {
            throw FerryError(code: .cliUnknownPipeline, message: "no pipeline named '\(pipeline)' in \(configuration.file)",
                             fix: "pipelines: \(configuration.pipelines.map(\.name).joined(separator: ", "))")
        }
        var names: [TableName] = []
        for text in tables {
            let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw FerryError(code: .cliBadTable, message: "'\(text)' is not DATABASE.TABLE", fix: "name tables as they are in the source, e.g. shop.orders")
            }
            let name = TableName(database: parts[0], table: parts[1])
            let filter = TableFilter(include: spec.include, exclude: spec.exclude)
            guard filter.includes(name) else {
                throw FerryError(code: .cliTableNotReplicated, message: "pipeline \(pipeline) does not replicate \(name)",
                                 fix: "add it to the pipeline's tables: (and restart), then request its snapshot")
            }
            if !names.contains(name) { names.append(name) }
        }
        if names.isEmpty {
            names = try await includedTables(spec, filter: TableFilter(include: spec.include, exclude: spec.exclude), configuration: configuration, logger: logger)
        }
        try await store.requestSnapshot(pipeline: pipeline, tables: names, reason: "requested", atMillis: WallClock.millisecondsSinceEpoch(), actor: actor)
        return names
    }

    /// After a reload widened a pipeline's `tables:`/`exclude:`, requests a snapshot of the
    /// source tables the new filter includes and the old one did not (none under `snapshot: never`).
    static func requestNewlyIncluded(before: FerryConfiguration.Pipeline, after: FerryConfiguration.Pipeline, configuration: FerryConfiguration,
                                     store: SQLiteCheckpointStore, actor: String, logger: Logger) async throws -> [TableName] {
        guard after.snapshot.mode != .never, before.include != after.include || before.exclude != after.exclude,
              configuration.sources[after.source] != nil else { return [] }
        let previous = TableFilter(include: before.include, exclude: before.exclude)
        let included = try await includedTables(after, filter: TableFilter(include: after.include, exclude: after.exclude), configuration: configuration,
                                                logger: logger)
        let added = included.filter { !previous.includes($0) }
        guard !added.isEmpty else { return [] }
        try await store.requestSnapshot(pipeline: after.name, tables: added, reason: "added to tables", atMillis: WallClock.millisecondsSinceEpoch(),
                                        actor: actor)
        return added
    }

    /// The source tables `filter` includes, whatever kind of source the pipeline reads.
    static func includedTables(_ pipeline: FerryConfiguration.Pipeline, filter: TableFilter, configuration: FerryConfiguration,
                               logger: Logger) async throws -> [TableName] {
        let source = configuration.sources[pipeline.source]!
        if PostgresSourceConfiguration.isPostgresURL(source.url) {
            return try await PostgresSource(configuration: try PostgresSourceConfiguration(name: source.name, url: source.url, password: source.password,
                                                                                           filter: filter), logger: logger).includedTables()
        }
        let connection = try MySQLConnectionConfiguration(url: source.url, password: source.password)
        return try await MySQLSource(configuration: MySQLSourceConfiguration(name: source.name, connection: connection, serverID: pipeline.serverID, filter: filter),
                                     logger: logger).includedTables(signalTable: pipeline.snapshot.signalTable)
    }

    /// Prints progress until every table of `tables` is done: redrawn bars on a terminal, a line
    /// per table every few seconds otherwise.
    public static func follow(configuration: FerryConfiguration, pipeline: String, tables: Set<TableName>, terminal: Bool,
                              logger: Logger) async throws {
        var drawn = 0
        var lastPlain = ContinuousClock.now - .seconds(60)
        while true {
            let all = try await StateAccess.with(configuration, readOnly: true, logger: logger) { try await progress(store: $0, pipeline: pipeline) }
            let shown = all.filter { tables.isEmpty || tables.contains($0.table) }
            if tables.isEmpty && shown.isEmpty {
                print("pipeline \(pipeline) has no snapshot recorded (yet)")
                return
            }
            let finished = !shown.isEmpty && shown.allSatisfy { $0.state == .done }
            if terminal {
                if drawn > 0 { print("\u{1B}[\(drawn)A", terminator: "") }
                for table in shown { print("\u{1B}[2K" + line(table)) }
                drawn = shown.count
            } else if finished || ContinuousClock.now - lastPlain >= .seconds(5) {
                for table in shown { print(line(table)) }
                lastPlain = ContinuousClock.now
            }
            if finished { return }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire
import Pipeline
import PostgresSource
import StateStore

/// `ferry verify -c FILE [PIPELINE] [TABLE…] [--repair]`: proves that every table sink holds what
/// the source holds.
///
/// Each source table is read in key order, chunk by chunk, decoded exactly as snapshots are and
/// shaped by the pipeline's mapping; each chunk goes to every table sink, whose database compares
/// it with its table by key over every column, with the semantics the sink writes with. Rows may
/// be in flight while the pipeline runs, so differences are checked again once the sink has
/// applied everything up to the source position at which they were seen; what still differs is
/// reported — and with `--repair` read again through the running pipeline (a snapshot of just
/// those keys; keys the source no longer has are deleted from the targets).
public enum Verify {
    public struct Options: Sendable {
        public var chunkRows = 10_000
        /// How long to wait for a sink to apply up to the position differences were seen at.
        public var settleSeconds: Double = 60
        public var repair = false
        public init() {}
    }

    /// One table in one sink.
    public struct TableReport: Sendable {
        public var pipeline: String
        public var sink: String
        public var table: TableName
        public var chunks = 0
        public var matchingChunks = 0
        public var sourceRows = 0
        /// Rows the target lacks or holds with other values, after the re-check.
        public var differingKeys: [[Value]] = []
        /// Rows the target holds that the source does not, after the re-check.
        public var extraKeys: [[Value]] = []
        /// Rows that differed at first but matched once in-flight changes were applied.
        public var settled = 0
        /// Rows whose source row changed during every look within the settle time (a row updated
        /// every few milliseconds): in flight throughout, so not compared — neither equal nor different.
        public var changingKeys: [[Value]] = []
        /// Rows that differed and matched after `--repair` had them read again.
        public var repaired = 0
        /// The table could not be compared (no key to match rows by): neither equal nor not equal.
        public var skipped = false
        public var note: String?

        /// Compared, and nothing differs (after a repair, when one ran).
        public var matches: Bool { !skipped && differingKeys.isEmpty && extraKeys.isEmpty }
    }

    public static func run(configuration: FerryConfiguration, pipeline name: String?, tables: [String], options: Options,
                           logger: Logger, output: (String) -> Void) async throws -> [TableReport] {
        let pipelines = try configuration.pipelines.filter { pipeline in
            guard let name else { return true }
            if pipeline.name == name { return true }
            guard configuration.pipelines.contains(where: { $0.name == name }) else {
                throw FerryError(code: .cliUnknownPipeline, message: "no pipeline named '\(name)' in \(configuration.file)",
                                 fix: "pipelines: \(configuration.pipelines.map(\.name).joined(separator: ", "))")
            }
            return false
        }
        var reports: [TableReport] = []
        for pipeline in pipelines {
            reports += try await verify(pipeline, configuration: configuration, tables: tables, options: options, logger: logger, output: output)
        }
        return reports
    }

    static func verify(_ pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration, tables requested: [String], options: Options,
                       logger: Logger, output: (String) -> Void) async throws -> [TableReport] {
        let source = try verifiableSource(pipeline, configuration: configuration, logger: logger)
        var tables = try requested.map { text -> TableName in
            let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw FerryError(code: .cliBadTable, message: "'\(text)' is not DATABASE.TABLE", fix: "name tables as they are in the source, e.g. shop.orders")
            }
            return TableName(database: parts[0], table: parts[1])
        }
        if tables.isEmpty { tables = try await source.verifiedTables(signalTable: pipeline.snapshot.signalTable) }
        var sinks: [(name: String, sink: any VerifiableSink)] = []
        for sinkName in pipeline.sinks {
            if let sink = try Run.makeSession(sinkName, lane: 0, pipeline: pipeline, configuration: configuration, logger: logger) as? any VerifiableSink {
                sinks.append((sinkName, sink))
            }
        }
        guard !sinks.isEmpty else {
            output("pipeline \(pipeline.name): no table sink to verify (jsonl sinks hold events, not tables)")
            return []
        }
        return try await closing(sinks.map(\.sink)) {
            try await verify(tables, of: pipeline, in: sinks, source: source, configuration: configuration, options: options, logger: logger, output: output)
        }
    }

    /// The pipeline's source as verify reads it.
    static func verifiableSource(_ pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration, logger: Logger) throws -> any VerifiableSource {
        let sourceSpec = configuration.sources[pipeline.source]!
        let filter = TableFilter(include: pipeline.include, exclude: pipeline.exclude)
        if PostgresSourceConfiguration.isPostgresURL(sourceSpec.url) {
            return PostgresSource(configuration: try PostgresTransactionSource.settings(sourceSpec, pipeline: pipeline.name, filter: filter), logger: logger)
        }
        return MySQLSource(configuration: MySQLSourceConfiguration(
            name: sourceSpec.name, connection: try MySQLConnectionConfiguration(url: sourceSpec.url, password: sourceSpec.password),
            serverID: pipeline.serverID, filter: filter), logger: logger)
    }

    /// Runs `body`, then closes `sinks` — also when it throws (awaited: no close outlives the run).
    static func closing<T>(_ sinks: [any VerifiableSink], _ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            for sink in sinks { try? await sink.close() }
            return result
        } catch {
            for sink in sinks { try? await sink.close() }
            throw error
        }
    }

    static func verify(_ tables: [TableName], of pipeline: FerryConfiguration.Pipeline, in sinks: [(name: String, sink: any VerifiableSink)],
                       source: any VerifiableSource, configuration: FerryConfiguration, options: Options, logger: Logger,
                       output: (String) -> Void) async throws -> [TableReport] {
        let transform = TransactionTransform(mappings: pipeline.mappings, pipeline: pipeline.name)
        let targetTable = Run.targetTableNamer(pipeline)
        var reports: [TableReport] = []
        for table in tables {
            let keyOverride = pipeline.snapshot.keyOverride(for: table)
            let reader = try await source.verifyReader(table, keyOverride: keyOverride)
            let target = targetTable(table)
            var tableReports = sinks.map { TableReport(pipeline: pipeline.name, sink: $0.name, table: table) }
            guard !reader.keyColumns.isEmpty else {
                for index in tableReports.indices {
                    tableReports[index].skipped = true
                    tableReports[index].note = "skipped, not compared: the table has no primary key or unique NOT NULL index to match rows by "
                        + "(give it one in the source, or give the pipeline a mapping for it with `key: [COLUMNS]`)"
                    output(line(tableReports[index]))
                }
                reports += tableReports
                continue
            }
            // Pass 1: chunk by chunk, every sink compares in its database.
            var lower: [Value]? = nil
            var shapedSchema: TableSchema? = nil
            var candidates = Array(repeating: [[Value]](), count: sinks.count)
            while true {
                let rows = try await reader.rows(after: lower, limit: options.chunkRows)
                guard let last = rows.last else { break }
                lower = reader.keyColumns.map { last[$0] }
                let (schema, shaped) = try shape(rows, table: table, schema: reader.schema, transform: transform)
                shapedSchema = schema
                for (index, entry) in sinks.enumerated() {
                    let differing = try await entry.sink.differingRows(table: target, schema: schema, rows: shaped)
                    tableReports[index].chunks += 1
                    tableReports[index].sourceRows += rows.count
                    if differing.isEmpty { tableReports[index].matchingChunks += 1 }
                    candidates[index] += differing.map { row in reader.keyColumns.map { rows[row][$0] } }
                }
                if rows.count < options.chunkRows { break }
            }
            let seenAt = try await source.verifyPosition()
            // Rows the target has beyond the source show as a count that does not add up.
            var extraCandidates = Array(repeating: [[Value]](), count: sinks.count)
            var sourceKeys: [[Value]]? = nil
            for (index, entry) in sinks.enumerated() {
                guard let schema = shapedSchema else { break }
                let targetRows = try await entry.sink.rowCount(table: target) ?? 0
                if targetRows != tableReports[index].sourceRows || !candidates[index].isEmpty {
                    if sourceKeys == nil { sourceKeys = try await reader.keys() }
                    extraCandidates[index] = try await entry.sink.extraKeys(table: target, schema: schema, sourceKeys: sourceKeys!)
                }
            }
            // Pass 2: what differed may have been in flight; check it again once applied.
            for (index, entry) in sinks.enumerated() {
                guard !candidates[index].isEmpty || !extraCandidates[index].isEmpty, let schema = shapedSchema else { continue }
                let wait = try await waitForSink(configuration: configuration, pipeline: pipeline.name, sink: entry.name, position: seenAt,
                                                 seconds: options.settleSeconds, logger: logger)
                let applied = wait == .applied
                if let note = wait.note(seenAt, seconds: options.settleSeconds) { tableReports[index].note = note }
                let recheck = Recheck(sink: entry.sink, sinkName: entry.name, target: target, schema: schema, reader: reader, transform: transform,
                                      source: source, configuration: configuration, pipeline: pipeline.name, options: options, logger: logger)
                let (differing, extra, changing) = try await recheck.run(candidates[index], extraCandidates: extraCandidates[index], waitForApply: applied)
                tableReports[index].differingKeys = differing
                tableReports[index].extraKeys = extra
                tableReports[index].changingKeys = changing
                tableReports[index].settled = candidates[index].count + extraCandidates[index].count - differing.count - extra.count - changing.count
            }
            for report in tableReports { output(line(report)) }
            if options.repair, tableReports.contains(where: { !$0.matches }), let schema = shapedSchema,
               let requestedAt = try await repair(tableReports, pipeline: pipeline, source: source, reader: reader, schema: schema, configuration: configuration,
                                                  logger: logger, output: output) {
                // The repair counts only once it was applied and the keys compare equal.
                let done = try await waitForRepair(configuration: configuration, pipeline: pipeline.name, table: table, requestedAt: requestedAt,
                                                   seconds: options.settleSeconds, logger: logger)
                let position = try await source.verifyPosition()
                for (index, entry) in sinks.enumerated() where !tableReports[index].matches {
                    guard done else {
                        tableReports[index].note = "the repair was not applied within \(Int(options.settleSeconds)) s (is the pipeline running?); run verify again"
                        output(line(tableReports[index]))
                        continue
                    }
                    let wait = try await waitForSink(configuration: configuration, pipeline: pipeline.name, sink: entry.name, position: position,
                                                     seconds: options.settleSeconds, logger: logger)
                    let applied = wait == .applied
                    let before = tableReports[index].differingKeys.count + tableReports[index].extraKeys.count
                    let recheck = Recheck(sink: entry.sink, sinkName: entry.name, target: target, schema: schema, reader: reader, transform: transform,
                                          source: source, configuration: configuration, pipeline: pipeline.name, options: options, logger: logger)
                    let (differing, extra, _) = try await recheck.run(tableReports[index].differingKeys, extraCandidates: tableReports[index].extraKeys,
                                                                      waitForApply: applied)
                    tableReports[index].differingKeys = differing
                    tableReports[index].extraKeys = extra
                    tableReports[index].repaired = before - differing.count - extra.count
                    if let note = wait.note(position, seconds: options.settleSeconds) { tableReports[index].note = note }
                    output(line(tableReports[index]))
                }
            }
            reports += tableReports
        }
        return reports
    }

    /// The second look at keys that differed: each is compared at a moment when the source row
    /// stood still. The source rows are read, the sink is waited for up to the position read
    /// after them, the target compares, and the source rows are read again: a key whose source
    /// row (or absence) was the same both times was not in flight, so a difference there is real;
    /// a key whose row moved meanwhile is looked at again, until it stands still or the settle
    /// time runs out (then it counts as differing, with a note).
    struct Recheck {
        let sink: any VerifiableSink
        let sinkName: String
        let target: String
        let schema: TableSchema
        let reader: any SourceTableReader
        let transform: TransactionTransform
        let source: any VerifiableSource
        let configuration: FerryConfiguration
        let pipeline: String
        let options: Options
        let logger: Logger

        func run(_ candidates: [[Value]], extraCandidates: [[Value]], waitForApply: Bool) async throws
            -> (differing: [[Value]], extra: [[Value]], changing: [[Value]]) {
            let deadline = ContinuousClock.now + .milliseconds(Int64(options.settleSeconds * 1000))
            var pending = Dictionary((candidates + extraCandidates).map { (ChunkKey($0), $0) }, uniquingKeysWith: { first, _ in first })
            var differing: [[Value]] = [], extra: [[Value]] = [], changing: [[Value]] = []
            while !pending.isEmpty {
                let keys = Array(pending.values)
                let before = try await sourceRows(keys)
                let position = try await source.verifyPosition()
                if waitForApply {
                    _ = try await Verify.waitForSink(configuration: configuration, pipeline: pipeline, sink: sinkName, position: position,
                                                     seconds: max(0, Double((deadline - ContinuousClock.now).components.seconds)), logger: logger)
                }
                let present = keys.filter { before[ChunkKey($0)] != nil }
                let rows = present.map { before[ChunkKey($0)]! }
                let (_, shaped) = try Verify.shape(rows, table: reader.schema.name, schema: reader.schema, transform: transform)
                let differs = Set(try await sink.differingRows(table: target, schema: schema, rows: shaped).map { ChunkKey(present[$0]) })
                let absent = keys.filter { before[ChunkKey($0)] == nil }
                var held: Set<ChunkKey> = []
                if !absent.isEmpty {
                    let sourceKeys = try await reader.keys()
                    held = Set(try await sink.extraKeys(table: target, schema: schema, sourceKeys: sourceKeys).map(ChunkKey.init))
                }
                let after = try await sourceRows(keys)
                let outOfTime = ContinuousClock.now >= deadline || !waitForApply
                for key in keys {
                    let id = ChunkKey(key)
                    let isDifferent = before[id] == nil ? held.contains(id) : differs.contains(id)
                    guard isDifferent else {
                        pending[id] = nil
                        continue
                    }
                    // Different while the source row stood still: real. Moving: in flight, again —
                    // until the time is up; a row that moved at every look was never comparable.
                    let stoodStill = before[id] == after[id]
                    guard stoodStill || outOfTime else { continue }
                    pending[id] = nil
                    if !stoodStill, waitForApply { changing.append(key) } else if before[id] == nil { extra.append(key) } else { differing.append(key) }
                }
                if !pending.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            }
            return (differing, extra, changing)
        }

        /// The source rows of `keys` by key; keys the source lacks are missing.
        private func sourceRows(_ keys: [[Value]]) async throws -> [ChunkKey: Row] {
            var rows: [ChunkKey: Row] = [:]
            for row in try await reader.rows(keys: keys) { rows[ChunkKey(reader.keyColumns.map { row[$0] })] = row }
            return rows
        }
    }

    /// Waits until the repair requested at `requestedAt` (or a later request for the table) is done.
    static func waitForRepair(configuration: FerryConfiguration, pipeline: String, table: TableName, requestedAt: Int64, seconds: Double,
                              logger: Logger) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            let record = try? await StateAccess.with(configuration, readOnly: true, logger: logger) {
                try await $0.snapshotTables(pipeline: pipeline).first { $0.table == table }
            }
            if let record, record.requestedMillis >= requestedAt, record.state == .done { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Runs `body` (a pipeline's source) beside the sweep that finishes a `when_needed`
    /// re-snapshot, also one an earlier run began; the sweep never ends by itself and is
    /// cancelled however `body` ends.
    static func whileSweeping(pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration, source: any VerifiableSource,
                              store: any SnapshotStore, logger: Logger, _ body: () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await sweepUntilCancelled(pipeline: pipeline, configuration: configuration, source: source, store: store, logger: logger)
            }
            defer { group.cancelAll() }
            try await body()
        }
    }

    /// Runs the sweep after a `when_needed` re-snapshot until cancelled. A source or target that
    /// is away holds it up; its work waits in the state store, so it goes on when they are back.
    /// Any other failure is reported, and the sweep is tried again at the next start (the stream
    /// goes on meanwhile).
    static func sweepUntilCancelled(pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration, source: any VerifiableSource,
                                    store: any SnapshotStore, logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await sweepAfterResnapshot(pipeline: pipeline, configuration: configuration, source: source, store: store, logger: logger)
            } catch where !Task.isCancelled && (source.isLostConnection(error) || ErrorClassifier.isTransient(error)) {
                logger.warning("deleting rows the source lost while its position was gone failed; retrying in 5 s", metadata: [
                    LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.error: .error(error),
                ])
                try? await Task.sleep(for: .seconds(5))
            } catch where !Task.isCancelled {
                logger.error("rows the source lost while its position was gone cannot be deleted from the targets; tried again at the next start, or run `ferry verify --repair`",
                             metadata: [LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.error: .error(error)])
                return
            } catch {
                return
            }
        }
    }

    /// After a `when_needed` re-snapshot (reason `purged`): rows deleted in the source while its
    /// position was lost are still in the targets, and a snapshot only adds rows. For each table
    /// whose re-snapshot is done, the keys any table sink holds beyond the source are read again
    /// through the pipeline as a repair — which deletes the ones the source does not have. Runs
    /// until cancelled, looking once a second.
    static func sweepAfterResnapshot(pipeline: FerryConfiguration.Pipeline, configuration: FerryConfiguration, source: any VerifiableSource,
                                     store: any SnapshotStore, logger: Logger) async throws {
        let transform = TransactionTransform(mappings: pipeline.mappings, pipeline: pipeline.name)
        let targetTable = Run.targetTableNamer(pipeline)
        while true {
            let records = try await store.snapshotTables(pipeline: pipeline.name).filter { $0.reason == "purged" }
            for var record in records where record.state == .done {
                let keyOverride = pipeline.snapshot.keyOverride(for: record.table)
                let reader: any SourceTableReader
                do {
                    reader = try await source.verifyReader(record.table, keyOverride: keyOverride)
                } catch let error as FerryError where error.code == .snapshotTableMissing {
                    // Dropped or renamed since: the stream carries that to the targets.
                    record.reason = "purged (swept)"
                    try await store.saveSnapshotTable(record, pipeline: pipeline.name)
                    continue
                }
                guard !reader.keyColumns.isEmpty else {
                    logger.warning("after the re-snapshot, rows deleted while the position was lost may remain in the targets: the table has no key to find them by",
                                   metadata: [LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.table: "\(record.table)"])
                    record.reason = "purged (swept)"
                    try await store.saveSnapshotTable(record, pipeline: pipeline.name)
                    continue
                }
                let (schema, _) = try shape([Row(repeating: .null, count: reader.schema.columns.count)], table: record.table, schema: reader.schema,
                                            transform: transform)
                let sourceKeys = try await reader.keys()
                var extra: [ChunkKey: [Value]] = [:]
                for sinkName in pipeline.sinks {
                    guard let sink = try Run.makeSession(sinkName, lane: 0, pipeline: pipeline, configuration: configuration, logger: logger) as? any VerifiableSink
                    else { continue }
                    let keys = try await closing([sink]) {
                        try await sink.extraKeys(table: targetTable(record.table), schema: schema, sourceKeys: sourceKeys)
                    }
                    for key in keys { extra[ChunkKey(key)] = key }
                }
                if extra.isEmpty {
                    record.reason = "purged (swept)"
                    try await store.saveSnapshotTable(record, pipeline: pipeline.name)
                    continue
                }
                logger.notice("rows deleted while the position was lost are deleted from the targets",
                              metadata: [LoggingKeys.pipeline: "\(pipeline.name)", LoggingKeys.table: "\(record.table)", "ferry.rows": "\(extra.count)"])
                let literals = extra.values.map(source.repairKey)
                // Only over the record looked at: a snapshot requested meanwhile stays.
                try await store.requestRepair(pipeline: pipeline.name, table: record.table, keys: literals, chunkKeys: pipeline.snapshot.chunkRows,
                                              atMillis: WallClock.millisecondsSinceEpoch(), replacing: record.requestedMillis)
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Source rows as the pipeline's mapping delivers them.
    static func shape(_ rows: [Row], table: TableName, schema: TableSchema, transform: TransactionTransform) throws -> (TableSchema, [Row]) {
        let position = SourcePosition.binlog(file: "verify", offset: 0)
        let events = rows.enumerated().map { index, row in
            ChangeEvent(operation: .read, table: table, schema: schema, before: nil, after: row,
                        source: ChangeSource(name: "verify", serverID: 0, gtid: nil, position: position, row: index, timestampMillis: 0))
        }
        let shaped = try transform.apply(Transaction(gtid: nil, position: position, serverID: 0, timestampMillis: 0, events: events))
        return (shaped.events.first?.schema ?? schema, shaped.events.compactMap(\.after))
    }

    /// Waits (polling the state store) until the sink has applied `position`; false at the deadline.
    /// How waiting for a sink to apply up to a position ended.
    enum SinkWait {
        case applied
        /// The pipeline saves no figures: it is not running, so it will not catch up.
        case notRunning
        case timedOut

        /// Why differences may be changes in flight, for a table's report; `nil` when applied.
        func note(_ position: SourcePosition, seconds: Double) -> String? {
            switch self {
            case .applied: nil
            case .notRunning: "the pipeline is not running, so the sink has not applied up to \(position.place); differences may be changes not yet applied — start it and verify again"
            case .timedOut: "the sink had not applied up to \(position.place) within \(Int(seconds)) s; differences may include changes in flight"
            }
        }
    }

    static func waitForSink(configuration: FerryConfiguration, pipeline: String, sink: String, position: SourcePosition, seconds: Double,
                            logger: Logger) async throws -> SinkWait {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            var running = false
            if configuration.cluster != nil || FileManager.default.fileExists(atPath: configuration.statePath) {
                let (applied, progress) = try await StateAccess.with(configuration, readOnly: true, logger: logger) { store in
                    (try? await store.checkpoint(pipeline: pipeline)?.sinks[sink]?.applied, try? await store.progress(pipeline: pipeline))
                }
                if let applied, applied >= position { return .applied }
                // A running pipeline saves its figures every second; one that does not will not catch up.
                running = progress.map { WallClock.millisecondsSinceEpoch() - $0.updatedMillis <= Status.staleAfterMillis } ?? false
            }
            if !running { return .notRunning }
            if ContinuousClock.now >= deadline { return .timedOut }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Asks the running pipeline to read the differing keys again; returns when the request was
    /// made (nil when there was nothing to repair or it cannot be).
    static func repair(_ reports: [TableReport], pipeline: FerryConfiguration.Pipeline, source: any VerifiableSource, reader: any SourceTableReader,
                       schema: TableSchema, configuration: FerryConfiguration, logger: Logger, output: (String) -> Void) async throws -> Int64? {
        var keys: [ChunkKey: [Value]] = [:]
        for report in reports { for key in report.differingKeys + report.extraKeys { keys[ChunkKey(key)] = key } }
        guard !keys.isEmpty, let table = reports.first?.table else { return nil }
        let sourceKey = reader.keyColumns.map { reader.schema.columnName($0) }
        let targetKey = schema.primaryKey.map { schema.columnName($0) }
        guard sourceKey == targetKey else {
            output("  repair of \(table) skipped: the target's key (\(targetKey.joined(separator: ", "))) is not the source's (\(sourceKey.joined(separator: ", ")))")
            return nil
        }
        let literals = keys.values.map(source.repairKey)
        let requestedAt = WallClock.millisecondsSinceEpoch()
        try await StateAccess.with(configuration, logger: logger) {
            _ = try await $0.requestRepair(pipeline: pipeline.name, table: table, keys: literals, chunkKeys: pipeline.snapshot.chunkRows,
                                           atMillis: requestedAt, replacing: nil)
        }
        output("  repair of \(table): \(keys.count) keys are read again by the running pipeline (`ferry status` shows it); waiting for it")
        return requestedAt
    }

    public static func line(_ report: TableReport) -> String {
        var text = "pipeline \(report.pipeline) sink \(report.sink) table \(report.table): "
        if let note = report.note, report.chunks == 0 || report.skipped { return text + note }
        text += "\(report.chunks) chunks, \(report.matchingChunks) matching, \(report.chunks - report.matchingChunks) differing; "
        text += "\(report.sourceRows) rows, \(report.differingKeys.count) differing, \(report.extraKeys.count) extra"
        if report.settled > 0 { text += " (\(report.settled) in flight, matched on re-check)" }
        if report.repaired > 0 { text += " (\(report.repaired) repaired, matched after the repair)" }
        if !report.changingKeys.isEmpty { text += " (\(report.changingKeys.count) changing at every look, not compared)" }
        text += report.matches ? " — equal" : " — NOT EQUAL"
        let sample = (report.differingKeys.map { "differs \(describe($0))" } + report.extraKeys.map { "extra \(describe($0))" }).prefix(5)
        if !sample.isEmpty { text += "\n    " + sample.joined(separator: "\n    ") }
        for key in report.changingKeys.prefix(5) {
            text += "\n    changing \(describe(key)): its source row changed during every look for --settle-seconds; not compared"
        }
        if let note = report.note { text += "\n    note: \(note)" }
        return text
    }

    static func describe(_ key: [Value]) -> String {
        "key (" + MySQLLiteral.literals(key).joined(separator: ", ") + ")"
    }
}

/// A key as a dictionary key, equal for equal key values whatever value kinds carry them (targets
/// give numbers and text back).
struct ChunkKey: Hashable {
    let text: String
    init(_ key: [Value]) { text = MySQLLiteral.keyText(key) }
}

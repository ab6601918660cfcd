import FerryCore
import Logging
import MySQLBinlog
import MySQLWire
import NIOConcurrencyHelpers
import NIOCore

/// Follows a MySQL/MariaDB binlog as a replica and delivers committed transactions in order.
///
/// One query connection (server facts, positions, column metadata fallback) and one replication
/// connection. After a lost connection it reconnects with backoff and resumes at the last
/// transaction boundary, so a half-received transaction is read again whole and nothing is
/// delivered twice.
public struct MySQLSource: Sendable {
    public let configuration: MySQLSourceConfiguration
    let logger: Logger
    /// Where the stream has read to (live lag figures).
    public let logEnd = SourceLogEnd()

    public init(configuration: MySQLSourceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Why `run` returned.
    public enum Completion: Sendable, Equatable {
        /// Reached the stop position.
        case reachedStopPosition(BinlogPosition?)
        /// `snapshot: initial_only` delivered every requested table.
        case snapshotFinished
    }

    /// The snapshot's error, carried through the stream that it stops.
    private struct SnapshotFailed: Error {
        var error: any Error
    }

    /// A step before streaming begins; retried after a lost connection when the configuration
    /// waits for the source at start (`ferry run`), else the error ends the run at once.
    private func atStart<T: Sendable>(_ doing: String, _ body: () async throws -> T) async throws -> T {
        guard configuration.waitsForSourceAtStart else { return try await body() }
        return try await retryingLostConnections(doing, body)
    }

    /// Streams transactions from `start` until `stopAtCurrent` is satisfied (if set), the task is
    /// cancelled, or an error that is not a lost connection occurs.
    /// - Parameters:
    ///   - stopAtCurrent: stop once the position that was the server's end of log at start is reached.
    ///   - snapshot: snapshot tables alongside the stream (their rows arrive as `read` changes).
    ///   - resolved: receives the position the stream starts after (`current` and `earliest` made
    ///     concrete) before anything is delivered, so a caller can make it durable: a restart
    ///     before any sink recorded a position must resume there, not at a later "current".
    ///   - deliver: receives every committed transaction, including ones whose changes were all
    ///     filtered out (empty `events`), so the caller always knows the position.
    public func run(from start: StartPosition, stopAtCurrent: Bool = false, snapshot job: SnapshotJob? = nil,
                    resolved: (SourcePosition) async throws -> Void = { _ in },
                    deliver: (Transaction) async throws -> Void) async throws -> Completion {
        let (server, startPosition, stopCoordinates) = try await atStart("starting") {
            try await MySQLConnection.withConnection(configuration.connection, logger: logger) { query in
                let server = try await ServerFacts.load(query)
                let position = try await resolve(start, query: query, server: server)
                let stop = stopAtCurrent ? try await ServerFacts.currentCoordinates(query) : nil
                return (server, position, stop)
            }
        }
        let resolvedStart = startPosition.coordinates.map { SourcePosition.binlog(BinlogPosition(coordinates: $0, gtidPosition: startPosition.gtid)) }
        guard let job else {
            if let resolvedStart { try await resolved(resolvedStart) }
            var session = StreamSession(configuration: configuration, server: server, start: startPosition, logEnd: logEnd, logger: logger)
            return try await follow(&session, stopAt: stopCoordinates, shouldStop: { false }, deliver: deliver)
        }
        let windows = SnapshotWindows()
        let snapshotter = Snapshotter(job: job, configuration: configuration, server: server, windows: windows, logger: logger)
        // The initial snapshot is requested before the start becomes durable: a run that finds a
        // saved start and no request would never snapshot.
        let useSignalTable = try await atStart("preparing the snapshot") { try await snapshotter.prepare() }
        if let resolvedStart { try await resolved(resolvedStart) }
        let outcome = NIOLockedValueBox<Result<Void, any Error>?>(nil)
        let untilDone = job.settings.mode == .initialOnly
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await snapshotter.run(untilDone: untilDone, useSignalTable: useSignalTable)
                    outcome.withLockedValue { $0 = .success(()) }
                } catch {
                    outcome.withLockedValue { $0 = .failure(error) }
                }
                // The stream notices at once, not at the next event or heartbeat.
                windows.wakeStream()
            }
            let reread = job.settings.rereadAfterSchemaChange ? Self.rereader(job, logger: logger) : nil
            var session = StreamSession(configuration: configuration, server: server, start: startPosition,
                                        snapshot: (windows, job.settings.signalTable, reread), logEnd: logEnd, logger: logger)
            // The snapshot's end (initial_only) or failure wakes the stream, which stops at the
            // next transaction boundary.
            let completion: Completion
            do {
                completion = try await follow(&session, stopAt: stopCoordinates, shouldStop: {
                    switch outcome.withLockedValue({ $0 }) {
                    // Wrapped: the stream must not take the snapshot's lost connection for its
                    // own and reconnect (it would stop again at once, for ever).
                    case .failure(let error): throw SnapshotFailed(error: error)
                    case .success: return true
                    case nil: return false
                    }
                }, deliver: deliver)
            } catch {
                group.cancelAll()
                windows.abandonAll("the stream stopped")
                throw (error as? SnapshotFailed)?.error ?? error
            }
            group.cancelAll()
            windows.abandonAll("the stream stopped")
            return completion
        }
    }

    /// After the state store was lost while the sinks kept their positions: an initial snapshot
    /// that was running is not known to have finished, so every table is snapshotted again (rows
    /// are upserted by key, and a table without a key has its target rows replaced, so what the
    /// sinks already hold is harmless) — unless the pipeline never snapshots by itself, or some
    /// record of its snapshots survived.
    public func snapshotAfterLostState(_ job: SnapshotJob) async throws {
        guard job.settings.mode != .never, try await job.store.snapshotTables(pipeline: job.pipeline).isEmpty else { return }
        let tables = try await includedTables(signalTable: job.settings.signalTable)
        try await job.store.requestSnapshot(pipeline: job.pipeline, tables: tables, reason: "state lost", atMillis: WallClock.millisecondsSinceEpoch())
        logger.warning("no record of the pipeline's snapshots survives: every table is snapshotted again so that none stays incomplete", metadata: [
            LoggingKeys.pipeline: "\(job.pipeline)", LoggingKeys.position: "\(job.resume.map { "\($0)" } ?? "")", "ferry.tables": "\(tables.count)",
        ])
    }

    /// Requests a snapshot of tables whose rows a DDL statement rewrote, and of the new name of a
    /// renamed table whose snapshot was still to finish: the old name no longer exists on the
    /// source, so its rows can only be read under the new one.
    private static func rereader(_ job: SnapshotJob, logger: Logger) -> StreamSession.Reread {
        { rewritten, renamed in
            var tables = rewritten
            if !renamed.isEmpty {
                let unfinished = Set(try await job.store.snapshotTables(pipeline: job.pipeline).filter { $0.state != .done }.map(\.table))
                tables += renamed.filter { unfinished.contains($0.from) }.map(\.to)
            }
            guard !tables.isEmpty else { return }
            try await job.store.requestSnapshot(pipeline: job.pipeline, tables: tables, reason: "schema change", atMillis: WallClock.millisecondsSinceEpoch())
            logger.notice("a schema change rewrote existing rows, or renamed a table being read; the tables are read again", metadata: [
                LoggingKeys.pipeline: "\(job.pipeline)", "ferry.tables": "\(tables.map(\.description).joined(separator: ", "))",
            ])
        }
    }

    private func follow(_ session: inout StreamSession, stopAt stopCoordinates: BinlogCoordinates?, shouldStop: () throws -> Bool,
                        deliver: (Transaction) async throws -> Void) async throws -> Completion {
        if let stopCoordinates, let coordinates = session.assembler.resumePosition?.coordinates, coordinates >= stopCoordinates {
            return .reachedStopPosition(session.assembler.resumePosition)
        }
        var backoff = ReconnectBackoff(configuration)
        while true {
            do {
                return try await session.stream(stopAt: stopCoordinates, shouldStop: shouldStop, deliver: deliver) { backoff.reset() }
            } catch let error where Self.isLostConnection(error) && !Task.isCancelled {
                let wait = try backoff.delay(after: error)
                logger.warning("lost the binlog connection; reconnecting", metadata: [
                    LoggingKeys.source: "\(configuration.name)", LoggingKeys.error: .error(error),
                    LoggingKeys.position: "\(session.assembler.resumePosition.map { "\($0)" } ?? "start")",
                    LoggingKeys.retryIn: .seconds(wait),
                ])
                try await ReconnectBackoff.wait(wait)
                session.prepareReconnect()
            }
        }
    }

    private func resolve(_ start: StartPosition, query: MySQLConnection, server: ServerFacts) async throws -> ResolvedStart {
        switch start {
        case .earliest:
            let logs = try await query.query("SHOW BINARY LOGS")
            guard let first = logs.rows.first?[0] else {
                throw FerryError(code: .sourceBinlogOff, message: "the server has no binary logs",
                                 fix: "enable log_bin on the server (see `ferry check`)")
            }
            return ResolvedStart(coordinates: BinlogCoordinates(file: first, offset: 4), gtid: nil)
        case .current:
            let coordinates = try await ServerFacts.currentCoordinates(query)
            return ResolvedStart(coordinates: coordinates, gtid: try await ServerFacts.gtidPosition(at: coordinates, query: query, server: server))
        case .coordinates(let coordinates):
            let logs = try await query.query("SHOW BINARY LOGS").rows.compactMap { $0[0] }
            guard logs.contains(coordinates.file) else {
                throw FerryError(code: .sourceBinlogPurged,
                                 message: "binlog file \(coordinates.file) is not on the server (it has \(logs.first ?? "none") … \(logs.last ?? "none"))",
                                 context: [("source", configuration.name), ("position", coordinates.description)],
                                 fix: "the server purged the binlog ferry needs (binlog_expire_logs_seconds / PURGE BINARY LOGS): set `snapshot: when_needed` on the pipeline to snapshot every table again from the current position, or delete the pipeline's state and targets and start over")
            }
            return ResolvedStart(coordinates: coordinates, gtid: try await ServerFacts.gtidPosition(at: coordinates, query: query, server: server))
        case .gtid(let position):
            return ResolvedStart(coordinates: nil, gtid: position)
        }
    }

    struct ResolvedStart: Sendable {
        var coordinates: BinlogCoordinates?
        var gtid: GTIDPosition?
    }
}

/// What Ferry needs to know about the source server.
struct ServerFacts: Sendable {
    var isMariaDB: Bool
    var version: String
    var checksum: FormatDescriptionEvent.ChecksumAlgorithm
    /// Character set names by collation id.
    var collations: [UInt64: String]
    /// Collation name → id, for describing tables from information_schema.
    var collationIDs: [String: UInt64]
    var rowMetadataFull: Bool

    static func load(_ query: MySQLConnection) async throws -> ServerFacts {
        let checksumText = try await query.query("SELECT @@GLOBAL.binlog_checksum").rows.first?[0] ?? "NONE"
        var collations: [UInt64: String] = [:]
        var collationIDs: [String: UInt64] = [:]
        for row in try await query.query("SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS").rows {
            guard let id = row[0].flatMap({ UInt64($0) }) else { continue }
            if let name = row[1] { collations[id] = name }
            if let name = row[2] { collationIDs[name] = id }
        }
        let metadata = (try? await query.query("SELECT @@GLOBAL.binlog_row_metadata").rows.first?[0]) ?? nil
        let logBin = try await query.query("SELECT @@GLOBAL.log_bin").rows.first?[0] ?? "0"
        guard logBin == "1" || logBin.uppercased() == "ON" else {
            throw FerryError(code: .sourceBinlogOff, message: "binary logging is off on the source, so there is no binlog to follow",
                             fix: "add `log_bin = mysql-bin` and `server_id = 1` under [mysqld] and restart the server (see `ferry check`)")
        }
        let format = try await query.query("SELECT @@GLOBAL.binlog_format").rows.first?[0] ?? ""

        guard format.uppercased() == "ROW" else {
            throw FerryError(code: .sourceBinlogFormat, message: "the source's binlog_format is \(format), so row changes are not in the binlog",
                             fix: "SET GLOBAL binlog_format = 'ROW'; and `binlog_format = ROW` under [mysqld] (see `ferry check`)")
        }

        return ServerFacts(isMariaDB: query.isMariaDB, version: query.serverVersion,
                           checksum: checksumText.uppercased() == "CRC32" ? .crc32 : .off,
                           collations: collations, collationIDs: collationIDs, rowMetadataFull: metadata?.uppercased() == "FULL")
    }

    static func currentCoordinates(_ query: MySQLConnection) async throws -> BinlogCoordinates {
        let status = try await query.query("SHOW MASTER STATUS")
        guard let file = status.value("File"), let position = status.value("Position").flatMap({ UInt64($0) }) else {
            throw FerryError(code: .sourceBinlogOff, message: "SHOW MASTER STATUS returned nothing: binary logging is off",
                             fix: "enable log_bin on the server (see `ferry check`)")
        }
        return BinlogCoordinates(file: file, offset: position)
    }

    /// MariaDB can say which GTID state a file position corresponds to.
    static func gtidPosition(at coordinates: BinlogCoordinates, query: MySQLConnection, server: ServerFacts) async throws -> GTIDPosition? {
        guard server.isMariaDB else { return nil }
        let escaped = coordinates.file.replacingSingleQuotes
        let text = try await query.query("SELECT BINLOG_GTID_POS('\(escaped)', \(coordinates.offset))").rows.first?[0]
        guard let text, let position = MariaDBGTIDPosition(parsing: Substring(text)) else { return nil }
        return .mariadb(position)
    }
}

extension String {
    var replacingSingleQuotes: String {
        var out = ""
        for ch in self {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}

import FerryCore
import Foundation
import Logging
import Metrics
import NIOCore
import SQLiteNIO

/// The pipeline state on a local SQLite file (WAL mode, synchronous=FULL): per pipeline the safe
/// position, per sink the last queued and applied positions, snapshot progress, and an audit log
/// of runs and operator actions.
///
/// Schema (version 1):
/// - `pipelines(name PRIMARY KEY, safe_position TEXT, updated_at TEXT)`
/// - `sinks(pipeline, sink, queued_position TEXT, applied_position TEXT, updated_at TEXT, PRIMARY KEY(pipeline, sink))`
/// - `snapshot_tables(pipeline, table_name, record TEXT, PRIMARY KEY(pipeline, table_name))`: `SnapshotTableRecord` as JSON
/// - `snapshot_ranges(pipeline, table_name, chunk INTEGER, record TEXT, PRIMARY KEY(pipeline, table_name, chunk))`:
///   `SnapshotChunkRecord` as JSON
/// - `audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, pipeline TEXT, action TEXT, detail TEXT, actor TEXT)`:
///   `actor` is `ferry` (the engine), `cli` (a command) or an API token's name
/// - `api_tokens(name PRIMARY KEY, role TEXT, hash TEXT UNIQUE, created_at TEXT)`: only the SHA-256 of each token
/// - `rewinds(pipeline, sink, position TEXT, requested_at TEXT, PRIMARY KEY(pipeline, sink))`
/// - `progress(pipeline PRIMARY KEY, figures TEXT)`: `PipelineProgress` as JSON
/// - `schema_history(pipeline, table_id, position TEXT, description TEXT, PRIMARY KEY(pipeline, table_id, position))`:
///   a PostgreSQL source's table descriptions by position (`SchemaHistoryRecord`)
/// Positions are `SourcePosition.persistedJSON`.
///
/// Every public method runs alone, through one gate, from its first statement to its last: an
/// actor serialises calls only between suspensions, and a unit of several statements (a
/// snapshot request is a transaction) must not see another caller's statements in between.
///
/// A full file system is a condition to wait out, not an error: a unit that fails with
/// `SQLITE_FULL` (rolled back whole) is tried again every second, outside the gate so reads go on,
/// until space returns. Callers — sink workers recording positions — wait meanwhile, so the
/// pipeline holds; the first failure is logged once (`state.disk_full`) and `ferry_state_disk_full`
/// is 1 until a unit that failed for space succeeds.
public actor SQLiteCheckpointStore: OperatorStore {
    public let path: String
    private let connection: SQLiteConnection
    private let logger: Logger
    private let outOfSpaceGauge = Gauge(label: "ferry_state_disk_full")
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// When units began failing for lack of space; `nil` while they succeed.
    public private(set) var outOfSpaceSince: ContinuousClock.Instant?

    /// Runs `body` alone through the gate; waits out a full file system and runs it again.
    private func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        var held = false
        while true {
            do {
                let value = try await alone(body)
                // Only a unit that failed for space proves space returned: reads and writes
                // that fit in pages the file already has succeed all along.
                if held, let since = outOfSpaceSince {
                    outOfSpaceSince = nil
                    outOfSpaceGauge.record(0)
                    logger.notice("the state file has space again; pipelines go on",
                                  metadata: ["ferry.file": "\(path)", "ferry.held_s": "\((ContinuousClock.now - since).components.seconds)"])
                }
                return value
            } catch let error as SQLiteError where error.reason == .full {
                held = true
                if outOfSpaceSince == nil {
                    outOfSpaceSince = .now
                    outOfSpaceGauge.record(1)
                    let full = FerryError(code: .stateDiskFull,
                                          message: "the state file's file system is full (\(error.message)); pipelines hold and go on by themselves when space returns",
                                          context: [("file", path)],
                                          fix: "free space on the file system of \(path) (a few MiB is plenty), or move the state file (`state: { sqlite: PATH }`)")
                    logger.warning("the state file's file system is full", metadata: [LoggingKeys.error: .error(full), "ferry.file": "\(path)"])
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Runs `body` with no other method of the store running (first come, first served).
    private func alone<T>(_ body: () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }

    private init(path: String, connection: SQLiteConnection, logger: Logger) {
        self.path = path
        self.connection = connection
        self.logger = logger
    }

    /// Opens (creating if needed) and verifies the state file. `readOnly` (for `ferry status`
    /// beside a running pipeline) neither creates nor migrates anything.
    public static func open(path: String, logger: Logger, readOnly: Bool = false) async throws -> SQLiteCheckpointStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw corrupt(path, "\(error)")
        }
        do {
            let check = try await connection.query("PRAGMA quick_check")
            guard check.first?.column("quick_check")?.string == "ok" else {
                throw corrupt(path, "integrity check reports \(check.first?.column("quick_check")?.string ?? "nothing")")
            }
            // Another process (`ferry status`, `ferry sink rewind`) may hold the lock briefly.
            _ = try await connection.query("PRAGMA busy_timeout = 10000")
            if readOnly {
                _ = try await connection.query("PRAGMA query_only = 1")
            } else {
                _ = try await connection.query("PRAGMA journal_mode = WAL")
                _ = try await connection.query("PRAGMA synchronous = FULL")
                // One transaction: one fsync instead of one per table, and never half a schema.
                _ = try await connection.query("BEGIN IMMEDIATE")
                do {
                    for statement in migrations { _ = try await connection.query(statement) }
                    let auditColumns = try await connection.query("PRAGMA table_info(audit)").compactMap { $0.column("name")?.string }
                    if !auditColumns.contains("actor") {
                        _ = try await connection.query("ALTER TABLE audit ADD COLUMN actor TEXT NOT NULL DEFAULT 'ferry'")
                    }
                    _ = try await connection.query("COMMIT")
                } catch {
                    _ = try? await connection.query("ROLLBACK")
                    throw error
                }
            }
        } catch let error as FerryError {
            try? await connection.close()
            throw error
        } catch let error as SQLiteError where error.reason == .full {
            try? await connection.close()
            throw FerryError(code: .stateDiskFull, message: "the state file \(path) cannot be prepared: its file system is full",
                             context: [("file", path)], fix: "free space on the file system of \(path), then start again")
        } catch {
            try? await connection.close()
            throw corrupt(path, "\(error)")
        }
        return SQLiteCheckpointStore(path: path, connection: connection, logger: logger)
    }

    static let migrations = [
        "CREATE TABLE IF NOT EXISTS pipelines (name TEXT PRIMARY KEY, safe_position TEXT, updated_at TEXT)",
        "CREATE TABLE IF NOT EXISTS sinks (pipeline TEXT NOT NULL, sink TEXT NOT NULL, queued_position TEXT, applied_position TEXT, updated_at TEXT, PRIMARY KEY (pipeline, sink))",
        "CREATE TABLE IF NOT EXISTS snapshot_tables (pipeline TEXT NOT NULL, table_name TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (pipeline, table_name))",
        "CREATE TABLE IF NOT EXISTS snapshot_ranges (pipeline TEXT NOT NULL, table_name TEXT NOT NULL, chunk INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (pipeline, table_name, chunk))",
        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, pipeline TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rewinds (pipeline TEXT NOT NULL, sink TEXT NOT NULL, position TEXT NOT NULL, requested_at TEXT NOT NULL, PRIMARY KEY (pipeline, sink))",
        "CREATE TABLE IF NOT EXISTS progress (pipeline TEXT PRIMARY KEY, figures TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS schema_history (pipeline TEXT NOT NULL, table_id TEXT NOT NULL, position TEXT NOT NULL, description TEXT NOT NULL, PRIMARY KEY (pipeline, table_id, position))",
    ]

    static func corrupt(_ path: String, _ cause: String) -> FerryError {
        FerryError(code: .stateCorrupt, message: "the state file \(path) cannot be used: \(cause)",
                   context: [("file", path)],
                   fix: "move the file aside and start again: each SQL sink recovers its position from its ferry_offsets table; for other sinks give a start position with `ferry run --from POSITION`",
                   disposition: .fatal)
    }

    public func close() async throws { try await connection.close() }

    /// One statement, run also when the calling task is cancelled: the async API refuses work in a
    /// cancelled task, so a unit of several statements (BEGIN … COMMIT) could stop in the middle
    /// and leave its transaction open on the shared connection, failing every later BEGIN.
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        let answer: EventLoopFuture<[SQLiteRow]> = connection.query(sql, binds)
        return try await answer.get()
    }

    public func checkpoint(pipeline: String) async throws -> PipelineCheckpoint? {
        try await exclusively {
            let safeRows = try await execute("SELECT safe_position FROM pipelines WHERE name = ?", [.text(pipeline)])
            let sinkRows = try await execute("SELECT sink, queued_position, applied_position FROM sinks WHERE pipeline = ?", [.text(pipeline)])
            let rewindRows = (try? await execute("SELECT sink, position FROM rewinds WHERE pipeline = ?", [.text(pipeline)])) ?? []
            if safeRows.isEmpty && sinkRows.isEmpty && rewindRows.isEmpty { return nil }
            var rewinds: [String: SourcePosition] = [:]
            for row in rewindRows {
                guard let name = row.column("sink")?.string, let position = row.column("position")?.string.flatMap(SourcePosition.init(persistedJSON:)) else { continue }
                rewinds[name] = position
            }
            var sinks: [String: SinkCheckpoint] = [:]
            for row in sinkRows {
                guard let name = row.column("sink")?.string else { continue }
                sinks[name] = SinkCheckpoint(queued: row.column("queued_position")?.string.flatMap(SourcePosition.init(persistedJSON:)),
                                             applied: row.column("applied_position")?.string.flatMap(SourcePosition.init(persistedJSON:)))
            }
            return PipelineCheckpoint(safePosition: safeRows.first?.column("safe_position")?.string.flatMap(SourcePosition.init(persistedJSON:)),
                                      sinks: sinks, rewinds: rewinds)
        }
    }

    /// Keeps the newer of `position` and the one stored: the safe position never moves backwards,
    /// whichever sink worker's report arrives last.
    public func saveSafePosition(_ position: SourcePosition, pipeline: String) async throws {
        try await exclusively {
            let stored = try await execute("SELECT safe_position FROM pipelines WHERE name = ?", [.text(pipeline)])
                .first?.column("safe_position")?.string.flatMap(SourcePosition.init(persistedJSON:))
            if let stored, stored >= position { return }
            _ = try await execute("""
                INSERT INTO pipelines (name, safe_position, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET safe_position = excluded.safe_position, updated_at = excluded.updated_at
                """, [.text(pipeline), .text(position.persistedJSON), .text(Self.now())])
        }
    }

    public func saveSinkPositions(pipeline: String, sink: String, queued: SourcePosition?, applied: SourcePosition?) async throws {
        try await exclusively {
            _ = try await execute("""
                INSERT INTO sinks (pipeline, sink, queued_position, applied_position, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (pipeline, sink) DO UPDATE SET queued_position = excluded.queued_position,
                  applied_position = excluded.applied_position, updated_at = excluded.updated_at
                """, [.text(pipeline), .text(sink), queued.map { .text($0.persistedJSON) } ?? .null,
                      applied.map { .text($0.persistedJSON) } ?? .null, .text(Self.now())])
        }
    }

    public func audit(pipeline: String, action: String, detail: String) async throws {
        try await audit(pipeline: pipeline, action: action, detail: detail, actor: "ferry")
    }

    /// An audit entry made on someone's behalf: `cli`, or an API token's name.
    public func audit(pipeline: String, action: String, detail: String, actor: String) async throws {
        try await exclusively { try await writeAudit(pipeline: pipeline, action: action, detail: detail, actor: actor) }
    }

    private func writeAudit(pipeline: String, action: String, detail: String, actor: String) async throws {
        _ = try await execute("INSERT INTO audit (at, pipeline, action, detail, actor) VALUES (?, ?, ?, ?, ?)",
                                       [.text(Self.now()), .text(pipeline), .text(action), .text(detail), .text(actor)])
    }

    /// Asks the pipeline to replay a sink from `position` (out of its disk buffer) when it next
    /// starts; recorded in the audit log.
    public func requestRewind(pipeline: String, sink: String, position: SourcePosition, actor: String = "cli") async throws {
        try await exclusively {
            _ = try await execute("""
                INSERT INTO rewinds (pipeline, sink, position, requested_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (pipeline, sink) DO UPDATE SET position = excluded.position, requested_at = excluded.requested_at
                """, [.text(pipeline), .text(sink), .text(position.persistedJSON), .text(Self.now())])
            try await writeAudit(pipeline: pipeline, action: "rewind", detail: "sink \(sink) to \(position)", actor: actor)
        }
    }

    public func clearRewind(pipeline: String, sink: String) async throws {
        try await exclusively {
            _ = try await execute("DELETE FROM rewinds WHERE pipeline = ? AND sink = ?", [.text(pipeline), .text(sink)])
        }
    }

    public func saveProgress(_ progress: PipelineProgress) async throws {
        try await exclusively {
            let figures = String(decoding: try JSONEncoder().encode(progress), as: UTF8.self)
            _ = try await execute("INSERT INTO progress (pipeline, figures) VALUES (?, ?) ON CONFLICT (pipeline) DO UPDATE SET figures = excluded.figures",
                                           [.text(progress.pipeline), .text(figures)])
        }
    }

    public func progress(pipeline: String) async throws -> PipelineProgress? {
        try await exclusively {
            // A state file written before progress was recorded has no such table.
            guard let rows = try? await execute("SELECT figures FROM progress WHERE pipeline = ?", [.text(pipeline)]),
                  let text = rows.first?.column("figures")?.string
            else { return nil }
            return try? JSONDecoder().decode(PipelineProgress.self, from: Data(text.utf8))
        }
    }

    // MARK: - Schema history

    public func schemaHistory(pipeline: String) async throws -> [SchemaHistoryRecord] {
        try await exclusively {
            let rows: [SQLiteRow]
            do {
                rows = try await execute("SELECT table_id, position, description FROM schema_history WHERE pipeline = ?", [.text(pipeline)])
            } catch where "\(error)".contains("no such table") {
                // A read-only open of a state file from before the history.
                return []
            }
            return try rows.map { row in
                guard let table = row.column("table_id")?.string, let description = row.column("description")?.string,
                      let position = row.column("position")?.string.flatMap(SourcePosition.init(persistedJSON:)) else {
                    throw Self.corrupt(path, "a schema_history row of pipeline \(pipeline) does not read")
                }
                return SchemaHistoryRecord(table: table, position: position, description: description)
            }
        }
    }

    public func saveSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws {
        try await exclusively {
            try await inTransaction {
                for record in records {
                    _ = try await execute("""
                        INSERT INTO schema_history (pipeline, table_id, position, description) VALUES (?, ?, ?, ?)
                        ON CONFLICT (pipeline, table_id, position) DO UPDATE SET description = excluded.description
                        """, [.text(pipeline), .text(record.table), .text(record.position.persistedJSON), .text(record.description)])
                }
            }
        }
    }

    public func forgetSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws {
        try await exclusively {
            try await inTransaction {
                for record in records {
                    _ = try await execute("DELETE FROM schema_history WHERE pipeline = ? AND table_id = ? AND position = ?",
                                          [.text(pipeline), .text(record.table), .text(record.position.persistedJSON)])
                }
            }
        }
    }

    // MARK: - Snapshots

    public func snapshotTables(pipeline: String) async throws -> [SnapshotTableRecord] {
        try await exclusively {
            // A read-only open of a state file from before snapshots has no such table.
            guard let rows = try? await execute("SELECT record FROM snapshot_tables WHERE pipeline = ? ORDER BY table_name", [.text(pipeline)])
            else { return [] }
            return try rows.map { try Self.decode(SnapshotTableRecord.self, $0.column("record")?.string) }
        }
    }

    public func snapshotChunks(pipeline: String, table: TableName) async throws -> [SnapshotChunkRecord] {
        try await exclusively {
            guard let rows = try? await execute("SELECT record FROM snapshot_ranges WHERE pipeline = ? AND table_name = ? ORDER BY chunk",
                                                         [.text(pipeline), .text(table.description)])
            else { return [] }
            return try rows.map { try Self.decode(SnapshotChunkRecord.self, $0.column("record")?.string) }
        }
    }

    @discardableResult
    public func saveSnapshotTable(_ record: SnapshotTableRecord, pipeline: String) async throws -> Bool {
        try await exclusively {
            try await inTransaction {
                if let stored = try await storedRequest(pipeline: pipeline, table: record.table), stored != record.requestedMillis { return false }
                try await writeSnapshotTable(record, pipeline: pipeline)
                return true
            }
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE … COMMIT`: a check and the write it allows are atomic
    /// also against other processes (`ferry snapshot` writes the same file).
    private func inTransaction<T>(_ body: () async throws -> T) async throws -> T {
        _ = try await execute("BEGIN IMMEDIATE")
        do {
            let value = try await body()
            _ = try await execute("COMMIT")
            return value
        } catch {
            _ = try? await execute("ROLLBACK")
            throw error
        }
    }

    /// When the table's current snapshot request was made; `nil` when it has none.
    private func storedRequest(pipeline: String, table: TableName) async throws -> Int64? {
        let rows = try await execute("SELECT record FROM snapshot_tables WHERE pipeline = ? AND table_name = ?",
                                              [.text(pipeline), .text(table.description)])
        guard let row = rows.first else { return nil }
        return try Self.decode(SnapshotTableRecord.self, row.column("record")?.string).requestedMillis
    }

    /// A request time later than the table's current request, so that the new request is told
    /// apart from the one that may be running.
    private func newRequestTime(pipeline: String, table: TableName, atMillis: Int64) async throws -> Int64 {
        let stored = (try? await storedRequest(pipeline: pipeline, table: table)) ?? nil
        return max(atMillis, (stored ?? Int64.min) &+ 1)
    }

    private func writeSnapshotTable(_ record: SnapshotTableRecord, pipeline: String) async throws {
        _ = try await execute("""
            INSERT INTO snapshot_tables (pipeline, table_name, record) VALUES (?, ?, ?)
            ON CONFLICT (pipeline, table_name) DO UPDATE SET record = excluded.record
            """, [.text(pipeline), .text(record.table.description), .text(try Self.encode(record))])
    }

    @discardableResult
    public func saveSnapshotChunk(_ chunk: SnapshotChunkRecord, pipeline: String, requestedMillis: Int64) async throws -> Bool {
        try await exclusively {
            try await inTransaction {
                guard try await storedRequest(pipeline: pipeline, table: chunk.table) == requestedMillis else { return false }
                try await writeSnapshotChunk(chunk, pipeline: pipeline)
                return true
            }
        }
    }

    private func writeSnapshotChunk(_ chunk: SnapshotChunkRecord, pipeline: String) async throws {
        _ = try await execute("""
            INSERT INTO snapshot_ranges (pipeline, table_name, chunk, record) VALUES (?, ?, ?, ?)
            ON CONFLICT (pipeline, table_name, chunk) DO UPDATE SET record = excluded.record
            """, [.text(pipeline), .text(chunk.table.description), .integer(chunk.index), .text(try Self.encode(chunk))])
    }

    public func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64) async throws {
        try await requestSnapshot(pipeline: pipeline, tables: tables, reason: reason, atMillis: atMillis, actor: "ferry")
    }

    /// A snapshot asked for by `actor` (`cli` or an API token's name).
    public func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64, actor: String) async throws {
        try await exclusively {
            try await inTransaction {
                for table in tables {
                    _ = try await execute("DELETE FROM snapshot_ranges WHERE pipeline = ? AND table_name = ?", [.text(pipeline), .text(table.description)])
                    let at = try await newRequestTime(pipeline: pipeline, table: table, atMillis: atMillis)
                    try await writeSnapshotTable(SnapshotTableRecord(table: table, state: .requested, reason: reason, requestedMillis: at), pipeline: pipeline)
                }
                try await writeAudit(pipeline: pipeline, action: "snapshot", detail: "\(reason): \(tables.map(\.description).joined(separator: ", "))", actor: actor)
            }
        }
    }

    @discardableResult
    public func requestRepair(pipeline: String, table: TableName, keys: [[String]], chunkKeys: Int, atMillis: Int64,
                              replacing expected: Int64?) async throws -> Bool {
        try await exclusively {
            try await inTransaction {
                let stored = try await storedRequest(pipeline: pipeline, table: table)
                if let expected, stored != expected { return false }
                let at = max(atMillis, (stored ?? Int64.min) &+ 1)
                _ = try await execute("DELETE FROM snapshot_ranges WHERE pipeline = ? AND table_name = ?", [.text(pipeline), .text(table.description)])
                for (index, start) in stride(from: 0, to: keys.count, by: max(1, chunkKeys)).enumerated() {
                    let part = Array(keys[start..<min(keys.count, start + max(1, chunkKeys))])
                    try await writeSnapshotChunk(SnapshotChunkRecord(table: table, index: index, lower: nil, upper: nil, keys: part), pipeline: pipeline)
                }
                try await writeSnapshotTable(SnapshotTableRecord(table: table, state: .requested, reason: "repair", planComplete: true, requestedMillis: at),
                                             pipeline: pipeline)
                try await writeAudit(pipeline: pipeline, action: "repair", detail: "\(table): \(keys.count) keys", actor: "cli")
                return true
            }
        }
    }

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T {
        guard let text, let value = try? JSONDecoder().decode(type, from: Data(text.utf8)) else {
            throw FerryError(code: .stateCorrupt, message: "a snapshot record in the state file cannot be read: \(text ?? "NULL")",
                             fix: "start the table's snapshot over with `ferry snapshot -c FILE PIPELINE TABLE`")
        }
        return value
    }

    /// The most recent audit entries of one pipeline (all when nil), newest first.
    public func auditLog(pipeline: String?, limit: Int) async throws -> [AuditRecord] {
        try await exclusively {
            let rows = if let pipeline {
                try await execute("SELECT at, pipeline, action, detail, actor FROM audit WHERE pipeline = ? ORDER BY id DESC LIMIT ?",
                                           [.text(pipeline), .integer(limit)])
            } else {
                try await execute("SELECT at, pipeline, action, detail, actor FROM audit ORDER BY id DESC LIMIT ?", [.integer(limit)])
            }
            return rows.map {
                AuditRecord(at: $0.column("at")?.string ?? "", pipeline: $0.column("pipeline")?.string ?? "", action: $0.column("action")?.string ?? "",
                           detail: $0.column("detail")?.string ?? "", actor: $0.column("actor")?.string ?? "ferry")
            }
        }
    }

    /// Stores a token's hash under `name`; false when the name is taken.
    public func createToken(name: String, role: String, hash: String) async throws -> Bool {
        try await exclusively {
            let existing = try await execute("SELECT 1 FROM api_tokens WHERE name = ?", [.text(name)])
            guard existing.isEmpty else { return false }
            _ = try await execute("INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)",
                                           [.text(name), .text(role), .text(hash), .text(Self.now())])
            try await writeAudit(pipeline: "*", action: "token-create", detail: "token \(name) with role \(role)", actor: "cli")
            return true
        }
    }

    /// False when no token has that name.
    public func revokeToken(name: String) async throws -> Bool {
        try await exclusively {
            let existing = try await execute("SELECT 1 FROM api_tokens WHERE name = ?", [.text(name)])
            guard !existing.isEmpty else { return false }
            _ = try await execute("DELETE FROM api_tokens WHERE name = ?", [.text(name)])
            try await writeAudit(pipeline: "*", action: "token-revoke", detail: "token \(name)", actor: "cli")
            return true
        }
    }

    public func tokens() async throws -> [TokenRecord] {
        try await exclusively {
            try await execute("SELECT name, role, created_at FROM api_tokens ORDER BY name").map {
                TokenRecord(name: $0.column("name")?.string ?? "", role: $0.column("role")?.string ?? "", createdAt: $0.column("created_at")?.string ?? "")
            }
        }
    }

    /// The name and role of the token with this SHA-256.
    public func token(hash: String) async throws -> (name: String, role: String)? {
        try await exclusively {
            try await execute("SELECT name, role FROM api_tokens WHERE hash = ?", [.text(hash)]).first.map {
                ($0.column("name")?.string ?? "", $0.column("role")?.string ?? "")
            }
        }
    }

    static func now() -> String { WallClock.iso8601UTC() }
}

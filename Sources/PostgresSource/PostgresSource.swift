import FerryCore
import Logging
import PostgresLogical
import PostgresWire

/// Where a PostgreSQL source reads from: the server, the publication naming its tables, and
/// the slot that keeps its place.
public struct PostgresSourceConfiguration: Sendable {
    public var name: String
    public var connection: PostgresWireConfiguration
    public var publication: String
    /// A named slot keeps the WAL from the last confirmed position; nil means a temporary slot,
    /// created at the current position and gone with the connection (`ferry tail`).
    public var slot: String?
    public var filter: TableFilter

    public init(name: String, connection: PostgresWireConfiguration, publication: String, slot: String?, filter: TableFilter = TableFilter()) {
        self.name = name
        self.connection = connection
        self.publication = publication
        self.slot = slot
        self.filter = filter
    }

    /// From `postgres://USER@HOST:PORT/DATABASE?publication=NAME[&slot=NAME][&sslmode=…]`.
    public init(name: String, url: String, password: String?, filter: TableFilter = TableFilter()) throws {
        let parsed: PostgresURL
        do {
            parsed = try PostgresURL(url, password: password)
        } catch {
            throw FerryError(code: .configSource, message: "source URL: \(error.reason)",
                             fix: "use postgres://USER@HOST:PORT/DATABASE?publication=NAME[&slot=NAME][&sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE]")
        }
        // Slot names are identifiers the replication grammar takes unquoted: lower case, digits, `_`.
        if let slot = parsed.settings["slot"], !PostgresSourceConfiguration.isSlotName(slot) {
            throw FerryError(code: .configSource, message: "source URL: slot name '\(slot)' is not a PostgreSQL slot name",
                             fix: "use up to 63 lower-case letters, digits and underscores, e.g. ?slot=ferry_orders")
        }
        self.init(name: name, connection: parsed.connection, publication: parsed.settings["publication"] ?? "ferry",
                  slot: parsed.settings["slot"], filter: filter)
    }

    /// The connection with the settings every session reading values needs (`PgValueReader`).
    var sessionConnection: PostgresWireConfiguration {
        var session = connection
        session.options.append(("options", PgValueReader.sessionOptions))
        return session
    }

    /// Whether `url` names a PostgreSQL source (else a MySQL-family one).
    public static func isPostgresURL(_ url: String) -> Bool {
        url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")
    }

    /// What `pg_create_logical_replication_slot` accepts.
    public static func isSlotName(_ name: String) -> Bool {
        (1...63).contains(name.utf8.count) && name.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }
}

/// Follows a database's logical replication (pgoutput) and delivers each committed transaction
/// of the publication's tables. This task owns both connections — the replication stream and
/// one SQL session for the catalog — and closes them however it ends.
public struct PostgresSource: Sendable {
    public let configuration: PostgresSourceConfiguration
    let logger: Logger

    public init(configuration: PostgresSourceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// How a run uses its slot.
    public struct Follow {
        /// Return once everything the server had written when the stream began was read (a
        /// named slot's backlog: benchmarks, `ferry tail --to current`).
        public var stopAtCurrent = false
        /// Create the named slot when it does not exist (a pipeline's first start).
        public var createSlot = false
        /// Where the targets are: the stream goes on after it (nil: the slot's confirmed position).
        public var resumeAfter: LSN?
        /// The snapshot step of the targets' position at `resumeAfter`: the schema history's
        /// descriptions kept at a snapshot round's steps up to it are in effect.
        public var resumeStep: UInt32 = 0
        /// What every target holds, read now and then and confirmed to the slot so the server may
        /// forget the WAL before it; nil confirms nothing (a tail of a named slot leaves it alone).
        public var safePosition: (@Sendable () async throws -> LSN?)?
        /// Told where a new slot begins, before anything is delivered from it.
        public var slotCreated: (@Sendable (LSN) async throws -> Void)?
        /// Told when a stream starts: its descriptions of tables start afresh, so a change to a
        /// table made before it is not seen as one (what reads tables outside the stream forgets them).
        public var streamStarted: (@Sendable () async -> Void)?
        /// Where the tables' descriptions are kept across streams; nil: each stream knows only
        /// its own (a tail), so a change made while none was open shows only as added columns.
        public var schemaHistory: PgSchemaHistory?
        /// Return before a transaction that ends after this position, or once the stream is
        /// idle past it (a snapshot's point).
        var stopAt: LSN?
        /// Asked about once a second; true ends the run (a snapshot was requested).
        var stopWhen: (@Sendable () async throws -> Bool)?
        /// Where tables a schema change rewrote are asked to be read again (`after_schema_change`).
        var rereads: SnapshotJob?

        public init(stopAtCurrent: Bool = false, createSlot: Bool = false, resumeAfter: LSN? = nil,
                    safePosition: (@Sendable () async throws -> LSN?)? = nil, slotCreated: (@Sendable (LSN) async throws -> Void)? = nil,
                    streamStarted: (@Sendable () async -> Void)? = nil, schemaHistory: PgSchemaHistory? = nil) {
            self.schemaHistory = schemaHistory
            self.stopAtCurrent = stopAtCurrent
            self.createSlot = createSlot
            self.resumeAfter = resumeAfter
            self.safePosition = safePosition
            self.slotCreated = slotCreated
            self.streamStarted = streamStarted
        }
    }

    /// Why a run ended without an error.
    enum FollowEnd {
        /// At the stop position (`stopAtCurrent`, `stopAt`).
        case reachedStop
        /// `stopWhen` said so.
        case stopRequested
    }

    /// Streams from the slot (a temporary one at the current position when none is named) until
    /// cancelled or `deliver` throws; `deliver` may suspend, which holds the stream.
    public func run(_ follow: Follow = Follow(), deliver: (Transaction) async throws -> Void) async throws {
        _ = try await stream(follow, deliver: deliver)
    }

    func stream(_ follow: Follow, deliver: (Transaction) async throws -> Void) async throws -> FollowEnd {
        let sql = try await connect(configuration.sessionConnection, purpose: "catalog")
        let stream: PostgresWireConnection
        do {
            stream = try await connect(replicationConnection, purpose: "replication")
        } catch {
            await sql.close()
            throw error
        }
        let end: FollowEnd
        do {
            end = try await self.follow(stream, sql: sql, follow, deliver: deliver)
        } catch {
            await stream.close()
            await sql.close()
            throw error
        }
        await stream.close()
        await sql.close()
        return end
    }

    /// Sets the stream up and follows it; ends only at the stop position or when asked to, else
    /// by throwing.
    func follow(_ stream: PostgresWireConnection, sql: PostgresWireConnection, _ follow: Follow, deliver: (Transaction) async throws -> Void) async throws -> FollowEnd {
        try await checkPublication(sql)
        var stop = follow.stopAt
        if follow.stopAtCurrent {
            let system = try await setup("reading the server's WAL position") { try await stream.simpleQuery("IDENTIFY_SYSTEM") }
            guard let end = system.text(0, 2).flatMap(LSN.init) else {
                throw FerryError(code: .sourcePostgresStream, message: "source \(configuration.name): IDENTIFY_SYSTEM answered without a WAL position")
            }
            stop = end
        }
        let start: LSN
        let slot: String
        // Where the slot stands: the server streams from the later of it and `start`, and no
        // stream starts before it again.
        let slotAt: LSN
        if let named = configuration.slot {
            slot = named
            (start, slotAt) = try await namedSlotStart(named, follow, stream: stream, sql: sql)
        } else {
            slot = "ferry_tail_\(UInt32.random(in: 0 ... .max))"
            start = try await createSlot(slot, temporary: true, exportingSnapshot: false, on: stream).point
            slotAt = start
        }
        var mapper = PgTransactionMapper(sourceName: configuration.name)
        if let history = follow.schemaHistory {
            // Where the targets are, not where the slot is: the slot passes quiet WAL while a
            // snapshot round's rows (and a schema change it delivered) may not be in the targets yet.
            let seededAt = WALPosition(lsn: start, snapshotStep: follow.resumeAfter == nil ? 0 : follow.resumeStep)
            mapper.seed(try await history.descriptions(at: seededAt, horizon: slotAt))
        }
        try await setup("starting replication from slot \(slot)") {
            try await stream.startCopyBoth("START_REPLICATION SLOT \(slot) LOGICAL \(start) (\(Self.streamOptions(serverVersion: stream.serverVersion, publication: configuration.publication)))")
        }
        await follow.streamStarted?()
        logger.notice("following PostgreSQL logical replication", metadata: [
            "ferry.source": "\(configuration.name)", "ferry.slot": "\(slot)", "ferry.publication": "\(configuration.publication)", LoggingKeys.position: "\(start)",
        ])
        // A named slot nobody confirms for (a tail) stays where it is.
        var state = ReplicationStreamState(protocolVersion: Self.protocolVersion(serverVersion: stream.serverVersion), confirmed: start, confirmsNothing: configuration.slot != nil && follow.safePosition == nil)
        // Asked for, a keepalive says how far the server has read its WAL: the stream has caught
        // up once that passes the stop with nothing open.
        func askWhereTheServerIs() async throws {
            let flushed = state.confirmsNothing ? LSN.zero : state.confirmed
            try await streamWrite(stream, StandbyStatusUpdate(written: state.received, flushed: flushed, applied: flushed,
                                                              sentAt: PostgresTimestamp.fromUnixMicroseconds(WallClock.millisecondsSinceEpoch() * 1000),
                                                              replyRequested: true).bytes)
        }
        if stop != nil { try await askWhereTheServerIs() }
        var nextSafeRead: Int64 = 0
        var nextRequestCheck: Int64 = 0
        var dataSinceQuestion = false
        // An idle server says nothing for half its wal_sender_timeout: asked once a second, it
        // answers at once, so confirmations and snapshot requests are not held up that long.
        let periodic = stop == nil && (follow.safePosition != nil || follow.stopWhen != nil)
        var lastQuestion: Int64 = 0
        while true {
            try Task.checkCancellation()
            if periodic && state.isBetweenTransactions {
                let now = WallClock.millisecondsSinceEpoch()
                if now - lastQuestion >= 1000 {
                    lastQuestion = now
                    try await askWhereTheServerIs()
                }
            }
            guard let payload = try await streamRead(stream) else {
                throw FerryError(code: .sourcePostgresUnreachable, message: "source \(configuration.name): the server ended the replication stream",
                                 fix: "nothing if the server is restarting: a pipeline connects again by itself; otherwise see the server's log for why the walsender stopped")
            }
            // One clock reading per message: the status timing and the safe-position reads share it.
            let nowMillis = WallClock.millisecondsSinceEpoch()
            let step: ReplicationStreamState.Step
            do {
                step = try state.receive(payload, now: PostgresTimestamp.fromUnixMicroseconds(nowMillis * 1000))
            } catch {
                throw FerryError(code: .sourcePostgresStream, message: "source \(configuration.name): \(error)", context: [(LoggingKeys.position, "\(state.received)")])
            }
            if case .transaction(let assembled)? = step.assembled {
                // Not delivered: the next run from the last delivered position has it again.
                if let stop, assembled.endLSN > stop { return .reachedStop }
                try await resolveTypes(mapper.missingTypes(assembled), into: &mapper.catalog, sql: sql)
                var transaction: Transaction
                do {
                    transaction = try mapper.map(assembled)
                } catch {
                    throw FerryError(code: .sourcePostgresStream, message: "source \(configuration.name): \(error)", context: [(LoggingKeys.position, "\(assembled.endLSN)")])
                }
                if !mapper.described.isEmpty { try await follow.schemaHistory?.keep(mapper.described, at: WALPosition(lsn: assembled.endLSN)) }
                transaction.events = transaction.events.compactMap { event in
                    guard event.operation == .ddl else { return configuration.filter.includes(event.table) ? event : nil }
                    // A TRUNCATE names every table it emptied: keep the included ones.
                    var kept = event
                    kept.schemaChanges = event.schemaChanges.filter { configuration.filter.includes($0.table) }
                    return kept.schemaChanges.isEmpty ? nil : kept
                }
                // Schema changes are rare: a transaction without one costs a scan, nothing more.
                if let job = follow.rereads, transaction.events.contains(where: { $0.operation == .ddl }) {
                    let changes = transaction.events.filter { $0.operation == .ddl }.flatMap(\.schemaChanges)
                    if !changes.isEmpty { try await rereadRewrittenTables(changes, guessed: mapper.guessed, job: job, sql: sql) }
                }
                if !transaction.events.isEmpty {
                    try await deliver(transaction)
                    state.handedOn(assembled.endLSN)
                }
            }
            // A position mark is delivered as a transaction without changes, so the targets
            // record that they are past it.
            if case .message(let lsn, let prefix, _)? = step.assembled, prefix == Self.positionMessagePrefix {
                if let stop, lsn > stop { return .reachedStop }
                try await deliver(Transaction(gtid: nil, position: .wal(WALPosition(lsn: lsn)), serverID: 0,
                                              timestampMillis: WallClock.millisecondsSinceEpoch(), events: []))
                state.handedOn(lsn)
            }
            // A temporary slot dies with the connection: what it confirms only keeps the
            // server from holding WAL for it while it runs.
            if configuration.slot == nil, case .transaction(let done)? = step.assembled { state.confirm(done.endLSN) }
            if let safePosition = follow.safePosition, nowMillis >= nextSafeRead {
                nextSafeRead = nowMillis + 1000
                if let safe = try await safePosition() { state.confirm(safe) }
            }
            // Between transactions only: one cut short (or streamed and held) is received again.
            if let stopWhen = follow.stopWhen, state.isBetweenTransactions, nowMillis >= nextRequestCheck {
                nextRequestCheck = nowMillis + 1000
                if try await stopWhen() { return .stopRequested }
            }
            if let reply = step.reply ?? state.statusIfDue(now: PostgresTimestamp.fromUnixMicroseconds(nowMillis * 1000)) {
                try await streamWrite(stream, reply.bytes)
            }
            if let stop {
                if payload.first == UInt8(ascii: "k") {
                    if state.isBetweenTransactions && state.received >= stop { return .reachedStop }
                    // Not there yet and nothing came since the last question: the server is
                    // still reading WAL with nothing for us; ask again a little later.
                    if !dataSinceQuestion { try await Task.sleep(for: .milliseconds(20)) }
                    dataSinceQuestion = false
                    try await askWhereTheServerIs()
                } else {
                    dataSinceQuestion = true
                }
            }
        }
    }

    /// pgoutput's protocol: 2 from PostgreSQL 14, which streams a transaction larger than
    /// `logical_decoding_work_mem` while it runs (the server keeps no copy of it on disk, and its
    /// changes are here by the time it commits); 1 before.
    static func protocolVersion(serverVersion: String) -> Int {
        streamsMessages(serverVersion) ? 2 : 1
    }

    /// START_REPLICATION's options: the protocol, the publication, streaming of large
    /// transactions and the logical messages that carry the positions `verifyPosition` marks
    /// (both PostgreSQL 14+).
    static func streamOptions(serverVersion: String, publication: String) -> String {
        let version = protocolVersion(serverVersion: serverVersion)
        return "proto_version '\(version)', publication_names '\(quotedOption(quotedIdentifier(publication)))'"
            + (version >= 2 ? ", streaming 'on', messages 'true'" : "")
    }

    /// Where a named slot's stream starts — after the targets' position when there is one, else
    /// at the slot's confirmed position, creating the slot first when asked to — and the slot's
    /// confirmed position.
    func namedSlotStart(_ slot: String, _ follow: Follow, stream: PostgresWireConnection, sql: PostgresWireConnection) async throws -> (start: LSN, slotAt: LSN) {
        switch try await slotCondition(slot, sql: sql) {
        case .missing:
            guard follow.createSlot else {
                throw FerryError(code: .sourcePostgresSetup, message: "source \(configuration.name): there is no replication slot \(slot)",
                                 fix: "create it: SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput');")
            }
            // A new slot starts now: the changes after the targets' position are not in it.
            if let resumeAfter = follow.resumeAfter { throw slotLost(slot, invalidated: false, targetsAt: resumeAfter) }
            let consistent = try await createSlot(slot, temporary: false, exportingSnapshot: false, on: stream).point
            try await follow.slotCreated?(consistent)
            return (consistent, consistent)
        case .invalidated:
            throw slotLost(slot, invalidated: true, targetsAt: follow.resumeAfter)
        case .present(let confirmed, let plugin):
            guard plugin == "pgoutput" else {
                throw FerryError(code: .sourcePostgresSetup, message: "source \(configuration.name): replication slot \(slot) uses plugin \(plugin), not pgoutput",
                                 fix: "name another slot (?slot=NAME), or drop this one if nothing else reads it")
            }
            // A slot ahead of the targets is normal: while the published tables were quiet it was
            // moved over WAL holding nothing for them. The server starts at the later of the two.
            return (follow.resumeAfter ?? confirmed, confirmed)
        }
    }

    /// What the server has of a named slot.
    enum SlotCondition: Equatable {
        case missing
        /// The server removed WAL the slot still needed (`max_slot_wal_keep_size`): it cannot stream.
        case invalidated
        case present(confirmed: LSN, plugin: String)
    }

    func slotCondition(_ slot: String, sql: PostgresWireConnection) async throws -> SlotCondition {
        let found = try await setup("reading slot \(slot)") {
            try await sql.query("SELECT coalesce(confirmed_flush_lsn::text, ''), coalesce(wal_status, ''), plugin FROM pg_replication_slots WHERE slot_name = $1",
                                [.text(slot)])
        }
        guard !found.rows.isEmpty else { return .missing }
        if found.text(0, 1) == "lost" { return .invalidated }
        return .present(confirmed: LSN(found.text(0, 0) ?? "") ?? .zero, plugin: found.text(0, 2) ?? "?")
    }

    /// The slot a pipeline resumes from is gone, and with it the changes after `targetsAt`.
    func slotLost(_ slot: String, invalidated: Bool, targetsAt: LSN?) -> FerryError {
        let what = invalidated
            ? "was invalidated: the server removed WAL it still needed (max_slot_wal_keep_size)"
            : "is gone (dropped while ferry was not reading it)"
        let since = targetsAt.map { "since the targets' position \($0)" } ?? "since the slot's last confirmed position"
        return FerryError(code: .sourcePostgresSlotLost, message: "source \(configuration.name): replication slot \(slot) \(what), so the changes \(since) are lost",
                          context: [("source", configuration.name), ("slot", slot)] + (targetsAt.map { [("position", "\($0)")] } ?? []),
                          fix: "set `snapshot: when_needed` on the pipeline and start it again: ferry creates the slot again and snapshots every table through it; "
                              + "or delete the pipeline's state and targets and start over. Raise max_slot_wal_keep_size so it does not recur")
    }

    /// Drops an invalidated slot so it can be created again.
    func dropSlot(_ slot: String, sql: PostgresWireConnection) async throws {
        _ = try await setup("dropping invalidated replication slot \(slot)") {
            try await sql.query("SELECT pg_drop_replication_slot($1)", [.text(slot)])
        }
        logger.warning("dropped the invalidated replication slot to create it again", metadata: ["ferry.source": "\(configuration.name)", "ferry.slot": "\(slot)"])
    }

    /// The connection a replication stream or a slot's creation takes.
    var replicationConnection: PostgresWireConfiguration {
        var options = configuration.sessionConnection
        options.options.append(("replication", "database"))
        return options
    }

    /// Creates a logical pgoutput slot on a replication connection; returns its consistent point
    /// and, when exporting, the name of the snapshot that lives until the connection's next
    /// command (empty when not exporting).
    func createSlot(_ slot: String, temporary: Bool, exportingSnapshot: Bool,
                    on connection: PostgresWireConnection) async throws -> (point: LSN, snapshot: String) {
        let created = try await setup("creating \(temporary ? "temporary " : "")replication slot \(slot)") {
            try await connection.simpleQuery("CREATE_REPLICATION_SLOT \(slot)\(temporary ? " TEMPORARY" : "") LOGICAL pgoutput\(exportingSnapshot ? " EXPORT_SNAPSHOT" : "")")
        }
        let snapshot = created.text(0, 2)
        let snapshotNamed = snapshot.map { !$0.isEmpty && $0.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) } } ?? false
        guard let point = created.text(0, 1).flatMap(LSN.init), !exportingSnapshot || snapshotNamed else {
            throw FerryError(code: .sourcePostgresStream,
                             message: "source \(configuration.name): CREATE_REPLICATION_SLOT answered without a consistent point\(exportingSnapshot ? " and snapshot" : "")")
        }
        if !temporary {
            logger.notice("created replication slot", metadata: ["ferry.source": "\(configuration.name)", "ferry.slot": "\(slot)", LoggingKeys.position: "\(point)"])
        }
        return (point, exportingSnapshot ? snapshot ?? "" : "")
    }

    /// Reads the `pg_type` rows of the database's own types until the catalog knows them all.
    func resolveTypes(_ first: [UInt32], into catalog: inout PgTypeCatalog, sql: PostgresWireConnection) async throws {
        var missing = first
        while !missing.isEmpty {
            let result = try await setup("reading the types of replicated columns") {
                try await sql.query(PgTypeCatalog.query, [.text("{" + missing.map(String.init).joined(separator: ",") + "}")])
            }
            var found = 0
            for row in result.rows.indices {
                let field = { (column: Int) in result.text(row, column) ?? "" }
                guard let oid = UInt32(field(0)), let kind = field(1).utf8.first, let base = UInt32(field(2)), let element = UInt32(field(3)),
                      let modifier = Int32(field(4)), let category = field(5).utf8.first else { continue }
                catalog.add(PgTypeCatalog.Row(oid: oid, kind: kind, baseType: base, element: element, baseModifier: modifier, category: category))
                found += 1
            }
            guard found > 0 else {
                throw FerryError(code: .sourcePostgresStream, message: "source \(configuration.name): types \(missing) of replicated columns are not in pg_type (dropped while the stream was behind)",
                                 fix: "the changes before the type was dropped cannot be read: exclude the table for that stretch, or take the pipeline past it and snapshot the table again")
            }
            missing = catalog.missing(missing)
        }
    }

    func checkPublication(_ sql: PostgresWireConnection) async throws {
        let found = try await setup("checking the publication") {
            try await sql.query("SELECT puballtables::text FROM pg_publication WHERE pubname = $1", [.text(configuration.publication)])
        }
        guard found.rows.isEmpty else { return }
        throw FerryError(code: .sourcePostgresSetup,
                         message: "source \(configuration.name): database \(configuration.connection.database) has no publication \(configuration.publication)",
                         fix: "create it as the tables' owner: CREATE PUBLICATION \(Self.quotedIdentifier(configuration.publication)) FOR TABLE schema.table, …; (or FOR ALL TABLES as a superuser), or name another with ?publication=NAME")
    }

    /// Runs `body` on a SQL session of its own, closed however it ends.
    func withSession<T>(purpose: String = "catalog", _ body: (PostgresWireConnection) async throws -> T) async throws -> T {
        let sql = try await connect(configuration.sessionConnection, purpose: purpose)
        do {
            let result = try await body(sql)
            await sql.close()
            return result
        } catch {
            await sql.close()
            throw error
        }
    }

    func connect(_ connection: PostgresWireConfiguration, purpose: String) async throws -> PostgresWireConnection {
        do {
            return try await PostgresWireConnection.connect(connection, logger: logger)
        } catch {
            throw FerryError(code: .sourcePostgresUnreachable,
                             message: "source \(configuration.name): cannot open the \(purpose) connection to \(connection.host):\(connection.port): \(error)",
                             fix: "check the URL, the password and pg_hba.conf (the replication connection needs a `replication` line for the user)")
        }
    }

    /// Runs a setup step, saying what it was doing and how to fix what the server refused.
    func setup<T>(_ doing: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresWireError {
            // A server shutting down or starting, or out of connections, is away, not misconfigured.
            if case .server(let server) = error, !error.isTransient {
                throw FerryError(code: .sourcePostgresSetup, message: "source \(configuration.name): \(doing): \(server)", fix: Self.fix(server.sqlState))
            }
            throw FerryError(code: .sourcePostgresUnreachable, message: "source \(configuration.name): \(doing): \(error)")
        }
    }

    func streamRead(_ stream: PostgresWireConnection) async throws -> [UInt8]? {
        do {
            return try await stream.nextCopyData()
        } catch is PostgresWireError where Task.isCancelled {
            // Cancelling closes the connection: that is the stop asked for, not a lost source.
            throw CancellationError()
        } catch let error as PostgresWireError {
            throw FerryError(code: .sourcePostgresUnreachable, message: "source \(configuration.name): the replication stream failed: \(error)")
        }
    }

    func streamWrite(_ stream: PostgresWireConnection, _ bytes: [UInt8]) async throws {
        do {
            try await stream.sendCopyData(bytes)
        } catch let error as PostgresWireError {
            throw FerryError(code: .sourcePostgresUnreachable, message: "source \(configuration.name): the replication stream failed: \(error)")
        }
    }

    /// What to do about a server error met while setting up replication, by SQLSTATE.
    static func fix(_ sqlState: String) -> String {
        switch sqlState {
        case "55000": "set wal_level = logical (and max_replication_slots, max_wal_senders) in postgresql.conf and restart PostgreSQL"
        case "53400": "free a replication slot (SELECT slot_name FROM pg_replication_slots WHERE NOT active) or raise max_replication_slots / max_wal_senders and restart"
        case "42501": "give the user the REPLICATION attribute (ALTER ROLE name REPLICATION) and SELECT on the published tables"
        case "42704": "create the publication or slot named in the source URL, or name existing ones"
        default: "check the server's log for the statement above"
        }
    }

    static func quotedIdentifier(_ name: String) -> String { "\"" + name.replacing("\"", with: "\"\"") + "\"" }

    /// A value inside START_REPLICATION's option list, single-quoted.
    static func quotedOption(_ value: String) -> String { value.replacing("'", with: "''") }
}

import Etcd
import FerryCore
import Foundation

/// The pipelines' saved records — positions, snapshot progress, audit entries, live figures —
/// kept in etcd in cluster mode, so whichever node owns a pipeline next finds them (the same
/// ports as the SQLite state file).
///
/// Keys under the cluster prefix, per pipeline P:
/// - `state/P/safe`, `state/P/sinks/SINK`, `state/P/rewinds/SINK`, `state/P/progress`;
/// - `state/P/snapshot/TABLE`, `state/P/chunks/TABLE/INDEX` (index zero-padded: key order);
/// - `state/P/schema/TABLE/POSITION` — a PostgreSQL source's table descriptions by position;
/// - `state/P/owner` — the last claim of P and whether it was handed back;
/// - `audit/P/MILLIS-NODE-N` (`*` for entries of no pipeline: tokens), and the claims and
///   hand-backs again under `history/P/…`, so the cluster's history is read without the log;
/// - `tokens/NAME` — an API token's role and SHA-256.
///
/// **Fencing.** Once a node owns P at an epoch (`bind`), every write for P is a transaction that
/// also requires `owners/P` to still have that create revision; when another node has claimed
/// P since, the write is refused (`cluster.fenced`) and nothing changes.
///
/// **Coalescing.** The safe position, sink positions and live figures change with every batch;
/// each key is written at most once per `flushInterval`, with the latest value, and `flush()`
/// writes what is left. A position saved late only lags — the sinks' own positions and row
/// versions make the replay of what it lags behind harmless — and never leads.
public actor EtcdStateStore: OperatorStore {
    private let client: EtcdClient
    private let prefix: String
    private let node: String
    private let flushInterval: Duration
    /// Whether a pipeline's own writes need this node's claim (`bind`); off only where one
    /// process owns everything (tests of the store alone).
    private let requiresBinding: Bool
    private var epochs: [String: Int64] = [:]
    /// Coalesced writes not yet sent, by key, with their pipeline (for the fence).
    private var pending: [String: PendingWrite] = [:]
    /// Keys being sent: a key is never sent twice at once, so two values cannot land out of order.
    private var inFlight: Set<String> = []
    private var lastWrite: [String: ContinuousClock.Instant] = [:]
    /// The highest safe position saved per pipeline, so one never moves backwards.
    private var safePositions: [String: SourcePosition] = [:]
    private var auditSequence = 0

    public init(client: EtcdClient, prefix: String, node: String, flushInterval: Duration = .seconds(1), requiresBinding: Bool = true) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.node = node
        self.flushInterval = flushInterval
        self.requiresBinding = requiresBinding
    }

    /// From now on, writes for `pipeline` require this node's claim at `epoch`.
    public func bind(pipeline: String, epoch: Int64) {
        epochs[pipeline] = epoch
    }

    /// Writes `pipeline`'s coalesced values still pending, then forgets its epoch — also when
    /// that fails: whatever is left is dropped (the saved position lags, never leads).
    public func unbind(pipeline: String) async throws {
        defer {
            epochs[pipeline] = nil
            safePositions[pipeline] = nil
            pending = pending.filter { $0.value.pipeline != pipeline }
        }
        try await flush(pipeline: pipeline)
    }

    // MARK: Keys

    private func stateKey(_ pipeline: String, _ rest: String) -> String { "\(prefix)state/\(escape(pipeline))/\(rest)" }
    private func ownerKey(_ pipeline: String) -> String { "\(prefix)owners/\(pipeline)" }
    private func chunkPrefix(_ pipeline: String, _ table: TableName) -> String { stateKey(pipeline, "chunks/\(escape(table.description))/") }
    /// Chunk keys sort by index: nine digits, zero-padded.
    private func chunkKey(_ pipeline: String, _ table: TableName, _ index: Int) -> String {
        let digits = String(index)
        return chunkPrefix(pipeline, table) + String(repeating: "0", count: max(0, 9 - digits.count)) + digits
    }
    private func tableKey(_ pipeline: String, _ table: TableName) -> String { stateKey(pipeline, "snapshot/\(escape(table.description))") }

    /// Names go into keys with `/` and `%` escaped, so no name reaches into another's keys.
    private func escape(_ name: String) -> String {
        name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }

    // MARK: Checkpoints

    public func checkpoint(pipeline: String) async throws -> PipelineCheckpoint? {
        try await flush(pipeline: pipeline)
        let base = stateKey(pipeline, "")
        // Only these keys, in one request at one revision: the pipeline's other records
        // (snapshot chunks, the schema history) can be many, and this is read every second.
        let reads: [EtcdOperation] = ["safe", "sinks/", "rewinds/"].map { rest in
            let key = Array((base + rest).utf8)
            return .get(key: key, rangeEnd: rest.hasSuffix("/") ? etcdPrefixEnd(key) : nil)
        }
        let result = try await etcd { try await self.client.txn([], success: reads) }
        let keyValues = result.results.flatMap { read -> [EtcdKeyValue] in
            if case .get(let range) = read { return range.keyValues }
            return []
        }
        var safe: SourcePosition?
        var sinks: [String: SinkCheckpoint] = [:]
        var rewinds: [String: SourcePosition] = [:]
        for keyValue in keyValues {
            let rest = String(keyValue.keyText.dropFirst(base.count))
            if rest == "safe" {
                safe = try position(keyValue)
            } else if rest.hasPrefix("sinks/") {
                let stored = try decode(StoredSink.self, keyValue)
                sinks[unescape(String(rest.dropFirst(6)))] = SinkCheckpoint(queued: stored.queued.flatMap(SourcePosition.init(persistedJSON:)),
                                                                            applied: stored.applied.flatMap(SourcePosition.init(persistedJSON:)))
            } else if rest.hasPrefix("rewinds/") {
                rewinds[unescape(String(rest.dropFirst(8)))] = try position(keyValue)
            }
        }
        if safe == nil && sinks.isEmpty && rewinds.isEmpty { return nil }
        return PipelineCheckpoint(safePosition: safe, sinks: sinks, rewinds: rewinds)
    }

    public func saveSafePosition(_ position: SourcePosition, pipeline: String) async throws {
        if safePositions[pipeline] == nil, let stored = try await etcd({ try await self.client.get(self.stateKey(pipeline, "safe")) }) {
            // Another call may have saved a newer one while this read was under way.
            let storedPosition = try self.position(stored)
            safePositions[pipeline] = max(safePositions[pipeline] ?? storedPosition, storedPosition)
        }
        if let highest = safePositions[pipeline], highest >= position { return }
        safePositions[pipeline] = position
        try await coalesce(stateKey(pipeline, "safe"), pipeline: pipeline, Array(position.persistedJSON.utf8))
    }

    public func saveSinkPositions(pipeline: String, sink: String, queued: SourcePosition?, applied: SourcePosition?) async throws {
        let stored = StoredSink(queued: queued?.persistedJSON, applied: applied?.persistedJSON)
        try await coalesce(stateKey(pipeline, "sinks/\(escape(sink))"), pipeline: pipeline, try JSONEncoder().encode(stored).bytes)
    }

    public func saveProgress(_ progress: PipelineProgress) async throws {
        try await coalesce(stateKey(progress.pipeline, "progress"), pipeline: progress.pipeline, try JSONEncoder().encode(progress).bytes)
    }

    public func progress(pipeline: String) async throws -> PipelineProgress? {
        guard let stored = try await etcd({ try await self.client.get(self.stateKey(pipeline, "progress")) }) else { return nil }
        return try? JSONDecoder().decode(PipelineProgress.self, from: Data(stored.value))
    }

    public func audit(pipeline: String, action: String, detail: String) async throws {
        try await write(pipeline, [auditEntry(pipeline: pipeline, action: action, detail: detail, actor: "ferry")])
    }

    public func clearRewind(pipeline: String, sink: String) async throws {
        try await write(pipeline, [.delete(stateKey(pipeline, "rewinds/\(escape(sink))"))])
    }

    /// Asks the pipeline to replay a sink from `position` when it next starts; audited.
    public func requestRewind(pipeline: String, sink: String, position: SourcePosition, actor: String) async throws {
        try await write(pipeline, [.put(stateKey(pipeline, "rewinds/\(escape(sink))"), Array(position.persistedJSON.utf8)),
                                   auditEntry(pipeline: pipeline, action: "rewind", detail: "sink \(sink) to \(position)", actor: actor)],
                        fenced: false)
    }

    /// Sends the coalesced values not yet written: `pipeline`'s, or every pipeline's. A key
    /// whose earlier value is still being sent is left for the next flush.
    public func flush(pipeline: String? = nil) async throws {
        for key in pending.keys.sorted() where pipeline == nil || pending[key]?.pipeline == pipeline {
            try await send(key)
        }
    }

    private func coalesce(_ key: String, pipeline: String, _ value: [UInt8]) async throws {
        try requireClaim(pipeline)
        pending[key] = PendingWrite(pipeline: pipeline, value: value)
        if let last = lastWrite[key], ContinuousClock.now - last < flushInterval { return }
        try await send(key)
    }

    private func send(_ key: String) async throws {
        guard !inFlight.contains(key), let write = pending.removeValue(forKey: key) else { return }
        inFlight.insert(key)
        lastWrite[key] = .now
        defer { inFlight.remove(key) }
        do {
            try await self.write(write.pipeline, [.put(key, write.value)])
        } catch let error as FerryError where error.code == .clusterFenced {
            // This node may not write it, now or later.
            throw error
        } catch {
            // Kept for the next attempt unless a newer value arrived meanwhile.
            if pending[key] == nil { pending[key] = write }
            throw error
        }
    }

    // MARK: Schema history

    private func schemaKey(_ pipeline: String, _ record: SchemaHistoryRecord) -> String {
        stateKey(pipeline, "schema/\(escape(record.table))/\(escape(record.position.persistedJSON))")
    }

    public func schemaHistory(pipeline: String) async throws -> [SchemaHistoryRecord] {
        let range = try await etcd { try await self.client.get(prefix: self.stateKey(pipeline, "schema/")) }
        return try range.keyValues.map { try decode(SchemaHistoryRecord.self, $0) }
    }

    public func saveSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws {
        try await writeInBatches(pipeline, try records.map { .put(schemaKey(pipeline, $0), try JSONEncoder().encode($0).bytes) })
    }

    public func forgetSchemaHistory(_ records: [SchemaHistoryRecord], pipeline: String) async throws {
        try await writeInBatches(pipeline, records.map { .delete(schemaKey(pipeline, $0)) })
    }

    /// Fenced writes of 100 operations each: etcd takes at most 128 in a transaction.
    private func writeInBatches(_ pipeline: String, _ operations: [EtcdOperation]) async throws {
        for start in stride(from: 0, to: operations.count, by: 100) {
            try await write(pipeline, Array(operations[start..<min(start + 100, operations.count)]))
        }
    }

    // MARK: Snapshots

    public func snapshotTables(pipeline: String) async throws -> [SnapshotTableRecord] {
        let range = try await etcd { try await self.client.get(prefix: self.stateKey(pipeline, "snapshot/")) }
        return try range.keyValues.map { try decode(SnapshotTableRecord.self, $0) }.sorted { $0.table.description < $1.table.description }
    }

    public func snapshotChunks(pipeline: String, table: TableName) async throws -> [SnapshotChunkRecord] {
        let range = try await etcd { try await self.client.get(prefix: self.chunkPrefix(pipeline, table)) }
        return try range.keyValues.map { try decode(SnapshotChunkRecord.self, $0) }.sorted { $0.index < $1.index }
    }

    @discardableResult
    public func saveSnapshotTable(_ record: SnapshotTableRecord, pipeline: String) async throws -> Bool {
        let key = tableKey(pipeline, record.table)
        while true {
            let stored = try await etcd { try await self.client.get(key) }
            if let stored, try decode(SnapshotTableRecord.self, stored).requestedMillis != record.requestedMillis { return false }
            if try await write(pipeline, [.put(key, try JSONEncoder().encode(record).bytes)], unless: stored, at: key) { return true }
        }
    }

    @discardableResult
    public func saveSnapshotChunk(_ chunk: SnapshotChunkRecord, pipeline: String, requestedMillis: Int64) async throws -> Bool {
        let key = tableKey(pipeline, chunk.table)
        while true {
            guard let stored = try await etcd({ try await self.client.get(key) }),
                  try decode(SnapshotTableRecord.self, stored).requestedMillis == requestedMillis else { return false }
            let operation = EtcdOperation.put(chunkKey(pipeline, chunk.table, chunk.index), try JSONEncoder().encode(chunk).bytes)
            if try await write(pipeline, [operation], unless: stored, at: key) { return true }
        }
    }

    public func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64) async throws {
        try await requestSnapshot(pipeline: pipeline, tables: tables, reason: reason, atMillis: atMillis, actor: "ferry")
    }

    /// A snapshot asked for by `actor`; an operator's request, so it is not fenced.
    public func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64, actor: String) async throws {
        // The pipeline's own requests (actor "ferry") are fenced: a former owner must not start
        // the new owner's snapshots over. An operator's request may come from any node.
        let fenced = actor == "ferry"
        for table in tables {
            let key = tableKey(pipeline, table)
            while true {
                let stored = try await etcd { try await self.client.get(key) }
                let previous = try stored.map { try decode(SnapshotTableRecord.self, $0).requestedMillis }
                let record = SnapshotTableRecord(table: table, state: .requested, reason: reason,
                                                 requestedMillis: max(atMillis, (previous ?? .min) &+ 1))
                let chunks = Array(chunkPrefix(pipeline, table).utf8)
                if try await write(pipeline, [.delete(key: chunks, rangeEnd: etcdPrefixEnd(chunks)), .put(key, try JSONEncoder().encode(record).bytes)],
                                   unless: stored, at: key, fenced: fenced) { break }
            }
        }
        try await write(pipeline, [auditEntry(pipeline: pipeline, action: "snapshot",
                                              detail: "\(reason): \(tables.map(\.description).joined(separator: ", "))", actor: actor)], fenced: fenced)
    }

    @discardableResult
    public func requestRepair(pipeline: String, table: TableName, keys: [[String]], chunkKeys: Int, atMillis: Int64,
                              replacing expected: Int64?) async throws -> Bool {
        let key = tableKey(pipeline, table)
        while true {
            let stored = try await etcd { try await self.client.get(key) }
            let previous = try stored.map { try decode(SnapshotTableRecord.self, $0).requestedMillis }
            if let expected, previous != expected { return false }
            let size = max(1, chunkKeys)
            let starts = Array(stride(from: 0, to: keys.count, by: size))
            // The new chunks overwrite 0..<count; the old ones past them are deleted (etcd refuses
            // a put inside a range the same transaction deletes).
            let chunks = Array(chunkPrefix(pipeline, table).utf8)
            var operations: [EtcdOperation] = [.delete(key: Array(chunkKey(pipeline, table, starts.count).utf8), rangeEnd: etcdPrefixEnd(chunks))]
            for (index, start) in starts.enumerated() {
                let part = Array(keys[start..<min(keys.count, start + size)])
                let chunk = SnapshotChunkRecord(table: table, index: index, lower: nil, upper: nil, keys: part)
                operations.append(.put(chunkKey(pipeline, table, index), try JSONEncoder().encode(chunk).bytes))
            }
            let record = SnapshotTableRecord(table: table, state: .requested, reason: "repair", planComplete: true,
                                             requestedMillis: max(atMillis, (previous ?? .min) &+ 1))
            operations.append(.put(key, try JSONEncoder().encode(record).bytes))
            operations.append(auditEntry(pipeline: pipeline, action: "repair", detail: "\(table): \(keys.count) keys", actor: "cli"))
            if try await write(pipeline, operations, unless: stored, at: key, fenced: false) { return true }
        }
    }

    // MARK: Operators

    public func audit(pipeline: String, action: String, detail: String, actor: String) async throws {
        try await write(pipeline, [auditEntry(pipeline: pipeline, action: action, detail: detail, actor: actor)], fenced: false)
    }

    public func auditLog(pipeline: String?, limit: Int) async throws -> [AuditRecord] {
        try await entries(in: "audit", pipeline: pipeline, limit: limit)
    }

    /// Claims and hand-backs of every pipeline, newest first.
    public func ownershipHistory(limit: Int) async throws -> [AuditRecord] {
        try await entries(in: "history", pipeline: nil, limit: limit)
    }

    private func entries(in name: String, pipeline: String?, limit: Int) async throws -> [AuditRecord] {
        let folder = "\(prefix)\(name)/"
        let scope = folder + (pipeline.map { escape($0) + "/" } ?? "")
        let range = try await etcd { try await self.client.get(prefix: scope) }
        var entries: [(revision: Int64, record: AuditRecord)] = []
        for keyValue in range.keyValues {
            let rest = keyValue.keyText.dropFirst(folder.count)
            guard let slash = rest.lastIndex(of: "/"), let stored = try? JSONDecoder().decode(StoredAudit.self, from: Data(keyValue.value)) else { continue }
            entries.append((keyValue.createRevision, AuditRecord(at: stored.at, pipeline: unescape(String(rest[..<slash])), action: stored.action,
                                                                 detail: stored.detail, actor: stored.actor)))
        }
        return entries.sorted { $0.revision > $1.revision }.prefix(limit).map(\.record)
    }

    /// Deletes all but the newest `keep` entries of `pipeline`'s audit log (and of its ownership
    /// history, which keeps a tenth as many). Newest by etcd's order of writes, not by the
    /// writers' clocks.
    public func trimAudit(pipeline: String, keeping keep: Int) async throws {
        for (folder, kept) in [("audit", keep), ("history", max(1, keep / 10))] {
            let scope = Array("\(prefix)\(folder)/\(escape(pipeline))/".utf8)
            let range = try await etcd { try await self.client.range(key: scope, rangeEnd: etcdPrefixEnd(scope)) }
            let oldest = range.keyValues.sorted { $0.createRevision < $1.createRevision }.dropLast(kept)
            // etcd takes at most 128 operations in one transaction by default.
            for start in stride(from: 0, to: oldest.count, by: 100) {
                let operations = oldest.dropFirst(start).prefix(100).map { EtcdOperation.delete(key: $0.key, rangeEnd: nil) }
                _ = try await etcd { try await self.client.txn([], success: Array(operations)) }
            }
        }
    }

    private func tokenKey(_ name: String) -> String { "\(prefix)tokens/\(escape(name))" }

    public func createToken(name: String, role: String, hash: String) async throws -> Bool {
        let key = tokenKey(name)
        let value = try JSONEncoder().encode(StoredToken(role: role, hash: hash, createdAt: WallClock.iso8601UTC())).bytes
        let audit = auditEntry(pipeline: "*", action: "token-create", detail: "token \(name) with role \(role)", actor: "cli")
        return try await etcd { try await self.client.txn([.absent(key)], success: [.put(key, value), audit]) }.succeeded
    }

    public func revokeToken(name: String) async throws -> Bool {
        let key = tokenKey(name)
        guard let stored = try await etcd({ try await self.client.get(key) }) else { return false }
        let audit = auditEntry(pipeline: "*", action: "token-revoke", detail: "token \(name)", actor: "cli")
        return try await etcd {
            try await self.client.txn([EtcdCompare(key: key, .modRevision(stored.modRevision))], success: [.delete(key), audit])
        }.succeeded
    }

    public func tokens() async throws -> [TokenRecord] {
        try await storedTokens().map { TokenRecord(name: $0.name, role: $0.token.role, createdAt: $0.token.createdAt) }
    }

    public func token(hash: String) async throws -> (name: String, role: String)? {
        try await storedTokens().first { $0.token.hash == hash }.map { ($0.name, $0.token.role) }
    }

    private func storedTokens() async throws -> [(name: String, token: StoredToken)] {
        let folder = "\(prefix)tokens/"
        let range = try await etcd { try await self.client.get(prefix: folder) }
        return try range.keyValues.map { (unescape(String($0.keyText.dropFirst(folder.count))), try decode(StoredToken.self, $0)) }
            .sorted { $0.name < $1.name }
    }

    // MARK: Ownership

    /// Records this node's claim of a bound pipeline and returns the claim before it: nil for
    /// the first, else who held it and whether it was handed back (`released`) or lost with its
    /// node or its run (a failover). Audited as `claim`.
    public func recordClaim(pipeline: String) async throws -> OwnerRecord? {
        guard let epoch = epochs[pipeline] else { return nil }
        let key = stateKey(pipeline, "owner")
        let stored = try await etcd { try await self.client.get(key) }
        let previous = stored.flatMap { try? JSONDecoder().decode(OwnerRecord.self, from: Data($0.value)) }
        let record = OwnerRecord(node: node, epoch: epoch, at: WallClock.iso8601UTC(), released: false)
        try await write(pipeline, [.put(key, try JSONEncoder().encode(record).bytes)] + ownershipEntries(pipeline: pipeline, action: "claim", detail: OwnerRecord.describe(claim: record, after: previous)))
        return previous
    }

    /// Records that this node handed `pipeline` back in order (drained, positions saved).
    public func recordRelease(pipeline: String) async throws {
        guard let epoch = epochs[pipeline] else { return }
        let record = OwnerRecord(node: node, epoch: epoch, at: WallClock.iso8601UTC(), released: true)
        try await write(pipeline, [.put(stateKey(pipeline, "owner"), try JSONEncoder().encode(record).bytes)] + ownershipEntries(pipeline: pipeline, action: "release", detail: "node \(node) handed it back (epoch \(epoch))"))
    }

    // MARK: Writing

    /// Runs `operations` in one transaction: only if `key` is still as `seen` (its mod revision,
    /// or absent when nil), and — when `fenced` and the pipeline is bound — only while this node's
    /// claim holds. Returns false when `key` changed meanwhile (the caller reads again).
    /// - Throws: `cluster.fenced` when another node has claimed the pipeline.
    @discardableResult
    private func write(_ pipeline: String, _ operations: [EtcdOperation], unless seen: EtcdKeyValue? = nil, at key: String? = nil,
                       fenced: Bool = true) async throws -> Bool {
        var compare: [EtcdCompare] = []
        if let key { compare.append(EtcdCompare(key: key, .modRevision(seen?.modRevision ?? 0))) }
        let epoch = fenced ? epochs[pipeline] : nil
        if fenced { try requireClaim(pipeline) }
        if let epoch { compare.append(EtcdCompare(key: ownerKey(pipeline), .createRevision(epoch))) }
        let owner = ownerKey(pipeline)
        let conditions = compare
        let result = try await etcd { try await self.client.txn(conditions, success: operations, failure: epoch == nil ? [] : [.get(owner)]) }
        if result.succeeded { return true }
        if let epoch, case .get(let range)? = result.results.first, range.keyValues.first?.createRevision != epoch {
            let holder = range.keyValues.first
            throw FerryError.fenced("node \(node) no longer owns pipeline \(pipeline): its claim at epoch \(epoch) is gone" +
                                        (holder.map { ", node \($0.valueText) holds it at epoch \($0.createRevision)" } ?? ""),
                                    context: [("pipeline", pipeline), ("node", node)])
        }
        return false
    }

    /// A pipeline's own writes need this node's claim on it.
    private func requireClaim(_ pipeline: String) throws {
        guard requiresBinding, epochs[pipeline] == nil else { return }
        throw FerryError.fenced("node \(node) does not own pipeline \(pipeline) (no claim), so it may not write its state",
                                context: [("pipeline", pipeline), ("node", node)])
    }

    /// A claim or hand-back, in the audit log and in the ownership history.
    private func ownershipEntries(pipeline: String, action: String, detail: String) -> [EtcdOperation] {
        ["audit", "history"].map { auditEntry(pipeline: pipeline, action: action, detail: detail, actor: "ferry", folder: $0) }
    }

    /// An entry of the audit log, or (`folder: "history"`) of the ownership history, under a
    /// key that sorts by time.
    private func auditEntry(pipeline: String, action: String, detail: String, actor: String, folder: String = "audit") -> EtcdOperation {
        auditSequence += 1
        let millis = Int64(Date().timeIntervalSince1970 * 1000)
        let entry = StoredAudit(at: WallClock.iso8601UTC(), action: action, detail: detail, actor: actor, node: node)
        let key = "\(prefix)\(folder)/\(escape(pipeline))/\(String(format: "%013lld", millis))-\(escape(node))-\(String(format: "%010d", auditSequence))"
        return .put(key, (try? JSONEncoder().encode(entry).bytes) ?? [])
    }

    private func etcd<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await clusterStateCall(node: node, body)
    }

    private func position(_ keyValue: EtcdKeyValue) throws -> SourcePosition {
        guard let position = SourcePosition(persistedJSON: keyValue.valueText) else { throw corrupt(keyValue) }
        return position
    }

    private func decode<T: Decodable>(_ type: T.Type, _ keyValue: EtcdKeyValue) throws -> T {
        guard let value = try? JSONDecoder().decode(type, from: Data(keyValue.value)) else { throw corrupt(keyValue) }
        return value
    }

    private func corrupt(_ keyValue: EtcdKeyValue) -> FerryError {
        FerryError(code: .stateCorrupt, message: "a record in the cluster state cannot be read: \(keyValue.keyText) = \(keyValue.valueText.prefix(200))",
                   context: [("key", keyValue.keyText)],
                   fix: "delete the key (etcdctl del KEY) and start the table's snapshot over with `ferry snapshot`, or give the pipeline a start with `ferry run --from POSITION`",
                   disposition: .fatal)
    }

    private func unescape(_ name: String) -> String {
        name.replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%25", with: "%")
    }
}

private struct PendingWrite {
    var pipeline: String
    var value: [UInt8]
}

private struct StoredSink: Codable {
    var queued: String?
    var applied: String?
}

private struct StoredToken: Codable {
    var role: String
    var hash: String
    var createdAt: String
}

/// A pipeline's last claim: by which node, at which epoch, and whether it was handed back.
public struct OwnerRecord: Codable, Sendable, Equatable {
    public var node: String
    public var epoch: Int64
    public var at: String
    public var released: Bool

    public init(node: String, epoch: Int64, at: String, released: Bool) {
        self.node = node
        self.epoch = epoch
        self.at = at
        self.released = released
    }

    /// A claim that follows one its node did not hand back: the pipeline failed over.
    public static func isFailover(_ claim: OwnerRecord, after previous: OwnerRecord?) -> Bool {
        guard let previous else { return false }
        return !previous.released && previous.node != claim.node
    }

    static func describe(claim: OwnerRecord, after previous: OwnerRecord?) -> String {
        let mine = "node \(claim.node) claimed it (epoch \(claim.epoch))"
        guard let previous else { return mine + ", the first claim" }
        if previous.released { return mine + " after node \(previous.node) handed it back (epoch \(previous.epoch))" }
        if previous.node == claim.node { return mine + " again; its run at epoch \(previous.epoch) ended without handing it back" }
        return mine + ": failover from node \(previous.node) (epoch \(previous.epoch)), which stopped without handing it back"
    }
}

private struct StoredAudit: Codable {
    var at: String
    var action: String
    var detail: String
    var actor: String
    var node: String
}

private extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}

/// An etcd call on `node`'s behalf; its failure becomes the `cluster.unavailable` error.
public func clusterStateCall<T: Sendable>(node: String, _ body: @Sendable () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EtcdError {
        throw FerryError.clusterUnavailable("the cluster state in etcd cannot be used: \(error)", context: [("node", node)])
    }
}

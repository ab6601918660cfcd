import FerryCore

/// Splits transactions into lanes by a stable hash of (table, primary key), so each row's changes
/// stay in one lane, in order, while different rows go in parallel (docs/architecture.md, promise 4).
///
/// A primary-key change whose old and new keys fall in different lanes travels as a delete of
/// the old key in the old key's lane and an insert of the new row in the new key's lane. A table
/// without a primary key goes to one lane by its name. The hash (FNV-1a over the table name and
/// the key's JSON form) is the same in every run, so a row keeps its lane across restarts.
public struct LaneRouter: Sendable {
    public let lanes: Int

    public init(lanes: Int) {
        precondition(lanes >= 1)
        self.lanes = lanes
    }

    /// One transaction per lane, each with the lane's changes (possibly none) and the original
    /// position, so every lane can record how far it got.
    public func route(_ transaction: Transaction) -> [Transaction] {
        var parts = Array(repeating: transaction, count: lanes)
        for index in parts.indices { parts[index].events = [] }
        for event in transaction.events {
            guard let schema = event.schema, event.operation != .ddl else {
                parts[0].events.append(event)
                continue
            }
            if event.operation == .update, let before = event.before, let after = event.after, !schema.primaryKey.isEmpty {
                let completed = after.completed(from: before)
                let from = lane(event.table, schema, before)
                let to = lane(event.table, schema, completed)
                if from != to {
                    var delete = event
                    delete.operation = .delete
                    delete.after = nil
                    var insert = event
                    insert.operation = .create
                    insert.before = nil
                    insert.after = completed
                    parts[from].events.append(delete)
                    parts[to].events.append(insert)
                    continue
                }
                parts[from].events.append(event)
                continue
            }
            guard let row = event.after ?? event.before else {
                parts[0].events.append(event)
                continue
            }
            parts[lane(event.table, schema, row)].events.append(event)
        }
        return parts
    }

    public func lane(_ table: TableName, _ schema: TableSchema, _ row: Row) -> Int {
        guard lanes > 1 else { return 0 }
        var hash: UInt64 = 14_695_981_039_346_656_037
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        }
        mix(table.database.utf8)
        mix(CollectionOfOne(0))
        mix(table.table.utf8)
        var key: [UInt8] = []
        for column in schema.primaryKey {
            key.append(0)
            ValueJSON.append(row[column], to: &key)
        }
        mix(key)
        return Int(hash % UInt64(lanes))
    }
}

/// A table sink's session applied in N lanes: each batch is split by `LaneRouter`, the lanes apply their
/// parts at the same time (each over its own connection, recording its own `ferry_offsets` row
/// in the same target transaction), and the next batch starts when all have finished. DDL is a
/// barrier: the rows before it are applied, then the DDL alone in lane 0, then the rows after it.
///
/// On open each lane says what it applied; the sink reports the lowest, and each lane skips what
/// its own record says it already has.
public actor LanedSink: SinkSession {
    public nonisolated let name: String
    let lanes: [any SinkSession]
    let router: LaneRouter
    private var applied: [SourcePosition?]
    /// Schemas some batch has already written: a batch with a new one runs its lanes one after
    /// another, so that only one of them creates the table or adds its columns.
    private var seenSchemas: Set<ObjectIdentifier> = []
    /// Keeps the seen schemas alive, so their identifiers are not reused.
    private var schemas: [TableSchema] = []

    /// - Parameter lanes: one session per lane, each recording its lane's position; this session
    ///   owns them.
    public init(name: String, lanes: [any SinkSession]) {
        self.name = name
        self.lanes = lanes
        self.router = LaneRouter(lanes: lanes.count)
        self.applied = Array(repeating: nil, count: lanes.count)
    }

    public func open() async throws -> SourcePosition? {
        // Every lane opens (and learns what it applied) even when one has no record.
        for (index, lane) in lanes.enumerated() {
            applied[index] = try await lane.open()
        }
        let recorded = applied.compactMap { $0 }
        return recorded.count == lanes.count ? recorded.min() : nil
    }

    /// Closes every lane; the first failure is thrown after all were tried.
    public func close() async throws {
        var failure: (any Error)?
        for lane in lanes {
            do {
                try await lane.close()
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }

    public nonisolated func interrupt() {
        for lane in lanes { lane.interrupt() }
    }

    public func apply(_ transactions: [Transaction]) async throws {
        var segment: [Transaction] = []
        for transaction in transactions {
            if transaction.events.contains(where: { $0.operation == .ddl }) {
                try await applyInLanes(segment)
                segment = []
                try await applyAlone(transaction)
            } else {
                segment.append(transaction)
            }
        }
        try await applyInLanes(segment)
    }

    /// The rows of `transactions` in parallel lanes; each lane leaves out what it already has.
    private func applyInLanes(_ transactions: [Transaction]) async throws {
        guard !transactions.isEmpty else { return }
        var parts = Array(repeating: [Transaction](), count: lanes.count)
        for transaction in transactions {
            for (index, part) in router.route(transaction).enumerated() where isNew(part, lane: index) {
                parts[index].append(part)
            }
        }
        var fresh: [TableSchema] = []
        for transaction in transactions {
            for event in transaction.events {
                if let schema = event.schema, !seenSchemas.contains(ObjectIdentifier(schema)), !fresh.contains(where: { $0 === schema }) {
                    fresh.append(schema)
                }
            }
        }
        var failed: [Int] = []
        if fresh.isEmpty {
            let results = await withTaskGroup(of: (Int, (any Error)?).self) { group in
                for (index, part) in parts.enumerated() where !part.isEmpty {
                    let lane = lanes[index]
                    group.addTask {
                        do {
                            try await lane.apply(part)
                            return (index, nil)
                        } catch {
                            return (index, error)
                        }
                    }
                }
                var results: [(Int, (any Error)?)] = []
                for await result in group { results.append(result) }
                return results
            }
            for (index, error) in results {
                if error == nil { applied[index] = parts[index].last!.position } else { failed.append(index) }
            }
        } else {
            failed = parts.indices.filter { !parts[$0].isEmpty }
        }
        // Lanes that failed together (a deadlock between two lanes' row locks) go again one after
        // another, where they cannot deadlock; a failure now is the caller's to retry.
        for index in failed.sorted() {
            try await lanes[index].apply(parts[index])
            applied[index] = parts[index].last!.position
        }
        for schema in fresh where seenSchemas.insert(ObjectIdentifier(schema)).inserted { schemas.append(schema) }
    }

    /// A DDL transaction: applied in lane 0; the other lanes record its position with no changes.
    private func applyAlone(_ transaction: Transaction) async throws {
        for (index, lane) in lanes.enumerated() where isNew(transaction, lane: index) {
            var part = transaction
            if index > 0 { part.events = [] }
            try await lane.apply([part])
            applied[index] = transaction.position
        }
    }

    /// Whether a lane still needs a transaction. The position a lane recorded is applied again
    /// (harmless) because a transaction split to find a rejected change travels stamped with the
    /// position before it.
    private func isNew(_ transaction: Transaction, lane: Int) -> Bool {
        applied[lane].map { transaction.position >= $0 } ?? true
    }
}

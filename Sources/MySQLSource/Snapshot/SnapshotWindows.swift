import FerryCore
import MySQLWire
import NIOConcurrencyHelpers

/// The watermark windows of the chunks being read, shared by the snapshot readers and the binlog
/// stream (DBLog's method).
///
/// A reader opens a window, then writes the low watermark, reads the chunk, hands over its rows
/// and writes the high watermark. From the moment the window opens, the stream records the key of
/// every change to the chunk's table. When the stream reaches the high watermark's transaction,
/// the chunk's rows — minus those whose key changed in the window, whose newer state the stream
/// has already delivered — are added to that transaction as `read` changes. So every row reaches
/// the sinks in source order without locking anything.
///
/// Recording from the window's opening (before the low watermark) is on the safe side: a
/// superseded row is only ever one the stream delivered a full image of.
final class SnapshotWindows: Sendable {
    /// How a window ended.
    enum Outcome: Sendable, Equatable {
        /// Delivered in the transaction at `position` with `rows` rows.
        case delivered(SourcePosition, rows: Int)
        /// Must be read again, e.g. the table's schema changed meanwhile.
        case retry(String)
        /// The stream passed the end of the binlog as it stood after the high watermark without
        /// seeing it: read again, but not for ever.
        case watermarkLost(String)
    }

    fileprivate struct Window {
        let table: TableName
        /// The chunk's index in its table's snapshot; `nil` when not counted toward its end.
        let chunk: Int?
        let keyColumns: [String]
        /// The table's schema generation when the reader loaded its description.
        let generation: Int
        var changedKeys: Set<[Value]> = []
        /// Once the rows are read, only changes to their keys (and to a repair's absent keys)
        /// matter; the rest are not kept, so a stream far behind does not pile keys up.
        var rowKeys: Set<[Value]>?
        var absentCanonical: Set<String> = []
        /// Where the key columns are in the stream's schema object last seen.
        var streamKeyIndexes: (schema: TableSchema, indexes: [Int])?
        var changed = false
        var rows: [Row]?
        /// Keys a repair asked for that the read did not find: deleted at the high watermark.
        var absentKeys: [[Value]] = []
        var schema: TableSchema?
        var keyIndexes: [Int] = []
        /// Binlog-position watermarks: the position the chunk's consistent read saw (rows are
        /// delivered once the stream is past it), and where the stream was when the window opened.
        var readAt: BinlogCoordinates?
        var openedAt: BinlogPosition?
        /// Signal-table watermarks: the binlog's end read right after the high watermark was
        /// written. A stream past it that has not seen the watermark never will (a source crash
        /// lost the binlog's tail), so the chunk is read again instead of waited for.
        var highWrittenBefore: BinlogCoordinates?
        var deliveredRows = 0
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
    }

    /// A table's snapshot in progress: the chunks still to deliver, so that the row delivered
    /// last carries Debezium's end-of-snapshot mark.
    fileprivate struct TableProgress {
        var undelivered: Set<Int>
        var planComplete: Bool
        /// No other table waits for its snapshot: this table's last row ends the whole snapshot.
        var lastTable: Bool
    }

    private struct State {
        var windows: [String: Window] = [:]
        var progress: [TableName: TableProgress] = [:]
        /// Schema changes seen per table; a window whose table changed is read again.
        var generations: [TableName: Int] = [:]
        var closing: [String] = []
        /// The stream's last transaction boundary, and the snapshot steps used after it.
        var boundary: BinlogPosition?
        var steps: UInt32 = 0
        var waker: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    /// The table's schema generation as the stream has seen it.
    func generation(of table: TableName) -> Int {
        state.withLockedValue { $0.generations[table, default: 0] }
    }

    func open(_ id: String, table: TableName, chunk: Int? = nil, keyColumns: [String], generation: Int) {
        state.withLockedValue { state in
            var window = Window(table: table, chunk: chunk, keyColumns: keyColumns, generation: generation)
            window.openedAt = state.boundary
            state.windows[id] = window
        }
    }

    /// A table's snapshot starts (or resumes) with these chunks still to deliver.
    func tableStarted(_ table: TableName, undelivered: Set<Int>, planComplete: Bool, lastTable: Bool) {
        state.withLockedValue { $0.progress[table] = TableProgress(undelivered: undelivered, planComplete: planComplete, lastTable: lastTable) }
    }

    /// The planner found chunk `index` of `table`; `last` when it is the final one. Called before
    /// any reader can take the chunk.
    func chunkPlanned(_ table: TableName, index: Int, last: Bool) {
        state.withLockedValue { state in
            state.progress[table]?.undelivered.insert(index)
            if last { state.progress[table]?.planComplete = true }
        }
    }

    /// The table's snapshot ended (done, failed or superseded).
    func tableEnded(_ table: TableName) {
        state.withLockedValue { _ = $0.progress.removeValue(forKey: table) }
    }

    /// Binlog-position watermarks: the chunk's rows as a consistent read at `readAt` saw them.
    /// If the stream had already passed `readAt` when the window opened, changes between the two
    /// were not recorded, so the chunk is read again.
    func setRows(_ id: String, rows: [Row], absentKeys: [[Value]], schema: TableSchema, keyIndexes: [Int], readAt: BinlogCoordinates) {
        let waker = state.withLockedValue { state -> (@Sendable () -> Void)? in
            guard var window = state.windows[id] else { return nil }
            if let opened = window.openedAt, opened.coordinates > readAt {
                window.outcome = .retry("the stream was past the chunk's read position \(readAt) when its window opened")
            }
            state.windows[id] = nil
            window.narrow(rows: rows, keyIndexes: keyIndexes, absentKeys: absentKeys)
            window.rows = rows
            window.absentKeys = absentKeys
            window.schema = schema
            window.keyIndexes = keyIndexes
            window.readAt = readAt
            state.windows[id] = window
            return state.waker
        }
        waker?()
    }

    /// Interrupts the stream's wait for the next event.
    func wakeStream() {
        state.withLockedValue { $0.waker }?()
    }

    /// The stream's wake-up, so rows read while it idles are delivered at once.
    func setWaker(_ waker: (@Sendable () -> Void)?) {
        state.withLockedValue { $0.waker = waker }
    }

    /// The chunk's rows, before the high watermark is written.
    func setRows(_ id: String, rows: [Row], absentKeys: [[Value]] = [], schema: TableSchema, keyIndexes: [Int]) {
        state.withLockedValue { state in
            state.windows[id]?.narrow(rows: rows, keyIndexes: keyIndexes, absentKeys: absentKeys)
            state.windows[id]?.rows = rows
            state.windows[id]?.absentKeys = absentKeys
            state.windows[id]?.schema = schema
            state.windows[id]?.keyIndexes = keyIndexes
        }
    }

    /// Signal-table watermarks: the high watermark is committed, and the binlog ended at `end`
    /// right after it.
    func highWatermarkWritten(_ id: String, before end: BinlogCoordinates) {
        state.withLockedValue { $0.windows[id]?.highWrittenBefore = end }
    }

    /// Ends, to be read again, the windows whose high watermark the stream has passed at
    /// `boundary` without seeing it.
    func endLostWatermarks(at boundary: BinlogCoordinates) {
        let lost = state.withLockedValue { state -> [(id: String, end: BinlogCoordinates)] in
            guard !state.windows.isEmpty else { return [] }
            return state.windows.compactMap { id, window in
                guard window.outcome == nil, window.rows != nil, let end = window.highWrittenBefore, end <= boundary,
                      !state.closing.contains(id) else { return nil }
                return (id, end)
            }
        }
        for (id, end) in lost {
            self.end(id, .watermarkLost("the stream reached \(boundary) without the chunk's high watermark, written before the binlog ended at \(end): the source lost it (a crash?)"))
        }
    }

    /// Waits for the window's end and forgets it; a cancelled wait ends as `.retry`.
    func outcome(_ id: String) async -> Outcome {
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Outcome? = state.withLockedValue { state in
                    if let outcome = state.windows[id]?.outcome { return outcome }
                    if state.windows[id] == nil { return .retry("cancelled") }
                    state.windows[id]!.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            end(id, .retry("cancelled"))
        }
        cancel(id)
        return outcome
    }

    /// Forgets a window.
    func cancel(_ id: String) {
        state.withLockedValue { _ = $0.windows.removeValue(forKey: id) }
    }

    private func end(_ id: String, _ outcome: Outcome) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Outcome, Never>? in
            guard state.windows[id] != nil, state.windows[id]!.outcome == nil else { return nil }
            state.windows[id]!.outcome = outcome
            defer { state.windows[id]!.waiter = nil }
            return state.windows[id]!.waiter
        }
        waiter?.resume(returning: outcome)
    }

    /// Ends every window (the stream stopped); their readers give up.
    func abandonAll(_ reason: String) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Outcome, Never>] in
            var waiters: [CheckedContinuation<Outcome, Never>] = []
            for id in Array(state.windows.keys) {
                state.windows[id]!.outcome = .retry(reason)
                if let waiter = state.windows[id]!.waiter { waiters.append(waiter) }
                state.windows[id]!.waiter = nil
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: .retry(reason)) }
    }

    // MARK: - Stream side

    var isEmpty: Bool { state.withLockedValue { $0.windows.isEmpty } }

    /// A high watermark row of the transaction being assembled.
    func highWatermarkSeen(_ id: String) {
        state.withLockedValue { state in
            guard state.windows[id] != nil else { return }
            state.closing.append(id)
        }
    }

    /// A schema change to these tables reached the stream.
    func schemaChanged(_ tables: [TableName]) {
        state.withLockedValue { state in
            for table in tables { state.generations[table, default: 0] += 1 }
        }
    }

    /// Records the keys `transaction` changes and adds the rows of the chunks whose high
    /// watermark it carries. Returns those windows' ids, to pass to `delivered` once the
    /// transaction is delivered.
    func absorb(_ transaction: inout Transaction, sourceName: String? = nil) -> [String] {
        state.withLockedValue { state in
            state.boundary = transaction.position.binlog
            state.steps = 0
            guard !state.windows.isEmpty else { return [] }
            // Ids first: iterating the dictionary while mutating it would copy every window's key
            // set on each change.
            var ids: [String] = []
            var tables = Set<TableName>()
            for (id, window) in state.windows where window.outcome == nil {
                ids.append(id)
                tables.insert(window.table)
            }
            for event in transaction.events where tables.contains(event.table) {
                for id in ids where state.windows[id]!.table == event.table {
                    state.windows[id]!.record(event)
                }
            }
            let closing = state.closing
            state.closing.removeAll()
            var closed: [String] = []
            for id in closing {
                guard var window = state.windows[id], window.outcome == nil, window.rows != nil else { continue }
                Self.close(&window, generation: state.generations[window.table, default: 0], progress: &state.progress,
                           into: &transaction, sourceName: sourceName)
                state.windows[id] = window
                closed.append(id)
            }
            return closed
        }
    }

    /// Binlog-position watermarks: at a transaction boundary `boundary` (the stream idles, or has
    /// just delivered a transaction), the chunks whose read position the stream has passed, as one
    /// transaction of their own placed right after the boundary. Returns it with the windows'
    /// ids, or `nil` when none is ready.
    func chunksReady(at boundary: BinlogPosition, sourceName: String) -> (Transaction, [String])? {
        state.withLockedValue { state in
            // Called after every transaction: no allocation unless a chunk is ready.
            var ready: [String] = []
            for (id, window) in state.windows where window.outcome == nil && window.rows != nil
                && window.readAt.map({ $0 <= boundary.coordinates }) ?? false {
                ready.append(id)
            }
            guard !ready.isEmpty else { return nil }
            ready.sort()
            if state.boundary?.coordinates != boundary.coordinates { state.steps = 0 }
            state.boundary = boundary
            state.steps += 1
            let position = BinlogPosition(coordinates: boundary.coordinates, gtidPosition: boundary.gtidPosition, snapshotStep: state.steps)
            var transaction = Transaction(gtid: nil, position: .binlog(position), serverID: 0, timestampMillis: WallClock.millisecondsSinceEpoch(), events: [])
            for id in ready {
                var window = state.windows[id]!
                Self.close(&window, generation: state.generations[window.table, default: 0], progress: &state.progress,
                           into: &transaction, sourceName: sourceName)
                state.windows[id] = window
            }
            return (transaction, ready)
        }
    }

    /// Ends a window at `transaction`: its rows (less those whose key changed in the window), and
    /// deletes for the keys a repair asked for that the source does not have — or `.retry`. The
    /// last row of a table's last undelivered chunk carries the end-of-snapshot mark.
    private static func close(_ window: inout Window, generation: Int, progress: inout [TableName: TableProgress],
                              into transaction: inout Transaction, sourceName: String? = nil) {
        guard let rows = window.rows, let schema = window.schema else { return }
        if generation != window.generation {
            window.outcome = .retry("the schema of \(window.table) changed while the chunk was read")
            return
        }
        if window.keyIndexes.isEmpty && window.changed {
            window.outcome = .retry("\(window.table) has no key and changed while it was read")
            return
        }
        let name = sourceName ?? transaction.events.first?.source.name ?? ""
        func append(_ event: (ChangeSource) -> ChangeEvent) {
            transaction.events.append(event(ChangeSource(name: name, serverID: transaction.serverID, gtid: transaction.gtid, position: transaction.position,
                                                         row: transaction.events.count, timestampMillis: transaction.timestampMillis)))
        }
        func append(_ operation: ChangeOperation, before: Row?, after: Row?) {
            append { ChangeEvent(operation: operation, table: window.table, schema: schema, before: before, after: after, source: $0) }
        }
        if window.keyIndexes.isEmpty {
            // Read whole: the rows replace whatever the target holds (the stream's copies, an
            // earlier snapshot's), which nothing else could match them against.
            let statement = "TRUNCATE TABLE \(backquoted(window.table.database)).\(backquoted(window.table.table)) /* ferry: replaced by the snapshot's rows that follow */"
            append { ChangeEvent(operation: .ddl, table: window.table, schema: nil, before: nil, after: nil, statement: statement,
                                 schemaChanges: [.replaceRows(window.table)], source: $0) }
        }
        let rowsBefore = transaction.events.count
        if !window.absentKeys.isEmpty {
            let changed = Set(window.changedKeys.map(MySQLLiteral.keyText))
            for key in window.absentKeys where !changed.contains(MySQLLiteral.keyText(key)) {
                var before = Row(repeating: .null, count: schema.columns.count)
                for (position, column) in window.keyIndexes.enumerated() { before[column] = key[position] }
                append(.delete, before: before, after: nil)
            }
        }
        // Usually nothing changed while the chunk was read: then no row's key is built to look up.
        let skipsChanged = !window.keyIndexes.isEmpty && !window.changedKeys.isEmpty
        transaction.events.reserveCapacity(transaction.events.count + rows.count)
        for row in rows where !skipsChanged || !window.changedKeys.contains(window.keyIndexes.map { row[$0] }) {
            append(.read, before: nil, after: row)
        }
        window.deliveredRows = transaction.events.count - rowsBefore
        if let chunk = window.chunk, var table = progress[window.table] {
            table.undelivered.remove(chunk)
            progress[window.table] = table
            if table.planComplete && table.undelivered.isEmpty {
                progress[window.table] = nil
                if let last = transaction.events.indices.last(where: { $0 >= rowsBefore && transaction.events[$0].operation == .read }) {
                    transaction.events[last].source.snapshotMark = table.lastTable ? .last : .lastInTable
                }
            }
        }
        window.rows = nil
        window.changedKeys.removeAll()
    }

    /// The transaction that carried these windows' rows is delivered at `position`.
    func delivered(_ ids: [String], position: SourcePosition) {
        let waiters = state.withLockedValue { state -> [(CheckedContinuation<Outcome, Never>, Outcome)] in
            var waiters: [(CheckedContinuation<Outcome, Never>, Outcome)] = []
            for id in ids {
                guard var window = state.windows[id] else { continue }
                let outcome = window.outcome ?? .delivered(position, rows: window.deliveredRows)
                window.outcome = outcome
                if let waiter = window.waiter { waiters.append((waiter, outcome)) }
                window.waiter = nil
                state.windows[id] = window
            }
            return waiters
        }
        for (waiter, outcome) in waiters { waiter.resume(returning: outcome) }
    }
}

private extension SnapshotWindows.Window {
    mutating func record(_ event: ChangeEvent) {
        changed = true
        guard !keyColumns.isEmpty, let schema = event.schema else { return }
        // Events of one table share a schema object: look the key columns up once per schema.
        let indexes: [Int]
        if let cached = streamKeyIndexes, cached.schema === schema {
            indexes = cached.indexes
        } else {
            var found: [Int] = []
            for name in keyColumns {
                guard let index = schema.columns.firstIndex(where: { $0.name == name }) else { return }
                found.append(index)
            }
            streamKeyIndexes = (schema, found)
            indexes = found
        }
        if let before = event.before { keep(indexes.map { before[$0] }) }
        if let after = event.after { keep(indexes.map { after[$0] }) }
    }

    mutating func keep(_ key: [Value]) {
        if let rowKeys, !rowKeys.contains(key), absentCanonical.isEmpty || !absentCanonical.contains(MySQLLiteral.keyText(key)) { return }
        changedKeys.insert(key)
    }

    /// The rows are known: keep only what concerns them from now on.
    mutating func narrow(rows: [Row], keyIndexes: [Int], absentKeys: [[Value]]) {
        guard !keyIndexes.isEmpty else { return }
        let keys = Set(rows.map { row in keyIndexes.map { row[$0] } })
        absentCanonical = Set(absentKeys.map(MySQLLiteral.keyText))
        changedKeys = changedKeys.filter { keys.contains($0) || absentCanonical.contains(MySQLLiteral.keyText($0)) }
        rowKeys = keys
    }
}

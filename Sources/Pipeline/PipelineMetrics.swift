import FerryCore
import Foundation
import Metrics

/// A pipeline's counters through swift-metrics (Prometheus under `ferry run`; nothing unless a
/// metrics backend is bootstrapped): changes in per table, changes out per sink and table, binlog
/// bytes read, and each sink's batch latency. Counters are made once per label set and kept.
final class PipelineMetrics: @unchecked Sendable {
    private let pipeline: String
    private let lock = NSLock()
    private var changesIn: [TableName: Counter] = [:]
    private var changesOut: [String: [TableName: Counter]] = [:]
    private var batches: [String: Metrics.Timer] = [:]
    private let binlogBytes: Counter
    private var lastPosition: SourcePosition?

    init(pipeline: String) {
        self.pipeline = pipeline
        binlogBytes = Counter(label: "ferry_source_binlog_bytes_total", dimensions: [("pipeline", pipeline)])
    }

    /// Counts a transaction read from the source.
    func read(_ transaction: Transaction) {
        lock.lock()
        defer { lock.unlock() }
        Self.forEachTableRun(transaction.events) { table, count in
            counter(&changesIn, table, "ferry_changes_in_total", [("pipeline", pipeline), ("table", table.description)]).increment(by: count)
        }
        if let last = lastPosition {
            binlogBytes.increment(by: Int(clamping: transaction.position.logBytes(after: last)))
        }
        lastPosition = transaction.position
    }

    /// Counts a batch a sink applied, and how long it took (retries included).
    func applied(sink: String, _ batch: [Transaction], duration: Duration) {
        lock.lock()
        defer { lock.unlock() }
        var perTable = changesOut[sink, default: [:]]
        for transaction in batch {
            Self.forEachTableRun(transaction.events) { table, count in
                counter(&perTable, table, "ferry_changes_out_total", [("pipeline", pipeline), ("sink", sink), ("table", table.description)])
                    .increment(by: count)
            }
        }
        changesOut[sink] = perTable
        let timer = batches[sink] ?? Metrics.Timer(label: "ferry_sink_batch_seconds", dimensions: [("pipeline", pipeline), ("sink", sink)],
                                                   preferredDisplayUnit: .seconds)
        batches[sink] = timer
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private func counter(_ counters: inout [TableName: Counter], _ table: TableName, _ label: String, _ dimensions: [(String, String)]) -> Counter {
        if let counter = counters[table] { return counter }
        let counter = Counter(label: label, dimensions: dimensions)
        counters[table] = counter
        return counter
    }

    /// Calls `body` once per run of consecutive row changes on one table (most transactions are
    /// one run); schema changes are not counted.
    static func forEachTableRun(_ events: [ChangeEvent], _ body: (TableName, Int) -> Void) {
        var start = 0
        while start < events.count {
            var end = start + 1
            while end < events.count, events[end].table == events[start].table, events[end].operation != .ddl { end += 1 }
            if events[start].operation != .ddl { body(events[start].table, end - start) }
            start = end
        }
    }
}

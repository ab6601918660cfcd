import DiskLog
import FerryCore
import Foundation

/// The disk buffer (`buffer: disk`): transactions go to a `DiskLog`, and each sink reads the log at
/// its own pace, so a slow or stopped sink never stalls the source or the other sinks, and a sink
/// can be rewound to replay from the log. Segments are deleted once every sink has applied them.
///
/// Beside the segments, `origin.json` names the position the log continues from: every
/// transaction after it is in the log. A sink whose position is older than that cannot be served
/// from the log; then the log is emptied and the source re-read from the sinks' positions.
public actor DiskBuffer: ChangeBuffer, ParkingActor {
    let log: DiskLog
    private var cursors: [String: DiskLog.Cursor] = [:]
    private var readUpTo: [String: UInt64] = [:]
    private var acknowledged: [String: UInt64] = [:]
    private var decoders: [String: TransactionDecoder] = [:]
    private var finished = false
    private var readerIDs: [String: Int] = [:]
    var parking = ParkingLot()
    /// Changes each consumer had still to apply when the buffer was opened.
    public private(set) var backlogAtOpen: [String: UInt64] = [:]
    /// Where the source continues: after the newest record, else after the origin.
    public private(set) var resumeAfter: BinlogPosition?
    /// Whether the log had to be emptied because a sink needed older changes than it holds.
    public private(set) var wasReset = false

    /// Opens (recovering) the log in `directory` for sinks that start after `starts` (`nil`: from
    /// the beginning). `fallback` is where the source resumes when the log cannot serve every sink.
    public init(directory: String, options: DiskLog.Options, starts: [String: BinlogPosition?], fallback: BinlogPosition?) throws {
        log = try DiskLog(directory: directory, options: options)
        let originPath = (directory as NSString).appendingPathComponent("origin.json")
        self.originPath = originPath
        let origin = Self.readOrigin(originPath)
        var newest: BinlogPosition? = nil
        if log.nextSequence > log.firstSequence, let last = try log.record(at: log.nextSequence - 1) {
            newest = try TransactionCodec.summary(of: last).position
        }
        let covered = origin.map { origin in
            starts.values.allSatisfy { start in
                guard let start else { return origin == nil }
                return origin.map { start >= $0 } ?? true
            }
        } ?? false
        if covered {
            resumeAfter = newest ?? origin!
        } else {
            if log.nextSequence > log.firstSequence { wasReset = true }
            try log.removeAll()
            try Self.writeOrigin(fallback, to: originPath)
            resumeAfter = fallback
        }
        for (consumer, start) in starts {
            let cursor = try Self.firstCursor(in: log, after: start)
            var scan = cursor
            var pending: UInt64 = 0
            while let record = try log.next(&scan) { pending += UInt64(try TransactionCodec.summary(of: record).events) }
            backlogAtOpen[consumer] = pending
            cursors[consumer] = cursor
            readUpTo[consumer] = cursor.sequence
            acknowledged[consumer] = cursor.sequence
            decoders[consumer] = TransactionDecoder()
        }
    }

    private let originPath: String

    /// Bytes of buffered records on disk.
    public var backlogBytes: Int { log.dataBytes }

    public func append(_ transaction: Transaction) throws {
        try log.append(TransactionCodec.encode(transaction))
        let readers = readerIDs
        readerIDs.removeAll()
        wake(readers.values)
    }

    public func finish() {
        finished = true
        let readers = readerIDs
        readerIDs.removeAll()
        wake(readers.values)
    }

    public func read(consumer: String, limit: Int, maximumEvents: Int) async throws -> [Transaction] {
        while true {
            try log.syncForReaders()
            guard var cursor = cursors[consumer] else { return [] }
            var batch: [Transaction] = []
            var events = 0
            var decoder = decoders[consumer]!
            while batch.count < limit {
                let before = cursor
                guard let record = try log.next(&cursor) else { break }
                let transaction = try decoder.decode(record)
                if !batch.isEmpty, events + transaction.events.count > maximumEvents {
                    cursor = before
                    break
                }
                events += transaction.events.count
                batch.append(transaction)
            }
            decoders[consumer] = decoder
            cursors[consumer] = cursor
            if !batch.isEmpty {
                readUpTo[consumer] = cursor.sequence
                return batch
            }
            if finished || Task.isCancelled { return [] }
            await park { self.readerIDs[consumer] = $0 }
        }
    }

    public func acknowledge(consumer: String) throws {
        acknowledged[consumer] = readUpTo[consumer]
        guard let lowest = acknowledged.values.min(), let boundary = log.oldestSegmentEnd, boundary <= lowest,
              let record = try log.record(at: lowest - 1)
        else { return }
        try Self.writeOrigin(try TransactionCodec.summary(of: record).position, to: originPath)
        try log.removeSegments(before: lowest)
    }

    /// The first record whose position is after `start` (all records when `start` is nil).
    static func firstCursor(in log: DiskLog, after start: BinlogPosition?) throws -> DiskLog.Cursor {
        guard let start else { return try log.cursor(at: log.firstSequence) }
        var from = log.firstSequence
        for head in try log.segmentHeads() where try TransactionCodec.summary(of: head.payload).position <= start {
            from = head.sequence
        }
        var cursor = try log.cursor(at: from)
        while true {
            let before = cursor
            guard let record = try log.next(&cursor) else { return cursor }
            if try TransactionCodec.summary(of: record).position > start { return before }
        }
    }

    /// `nil` when there is no origin file; `.some(nil)` when the log began at the configured start.
    static func readOrigin(_ path: String) -> BinlogPosition?? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "start" { return .some(nil) }
        guard let position = BinlogPosition(persistedJSON: trimmed) else { return nil }
        return .some(position)
    }

    /// Replaces the origin file atomically (write, fsync, rename).
    static func writeOrigin(_ position: BinlogPosition?, to path: String) throws {
        let temporary = path + ".tmp"
        let text = (position?.persistedJSON ?? "start") + "\n"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw DiskLogError.io(operation: "write", path: temporary, errno: errno)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw DiskLogError.fsyncFailed(path: temporary, errno: EIO)
        }
        if rename(temporary, path) != 0 { throw DiskLogError.io(operation: "rename", path: temporary, errno: errno) }
    }
}

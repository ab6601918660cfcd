import DiskLog
import FerryCore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix

/// The disk buffer (`buffer: disk`): transactions go to a `DiskLog`, and each sink reads the log at
/// its own pace, so a slow or stopped sink never stalls the source or the other sinks, and a sink
/// can be rewound to replay from the log. Segments are deleted once every sink has applied them.
///
/// Beside the segments, `origin.json` names the position the log continues from: every
/// transaction after it is in the log. A sink whose position is older than that cannot be served
/// from the log; then the log is emptied and the source re-read from the sinks' positions.
///
/// Its methods write, read and fsync files synchronously, so the actor runs on a thread of its
/// own (`DiskIOThread`), never on Swift's shared task threads: there are as many of those as
/// cores, and one fsync there would stall every other task scheduled on that thread.
public actor DiskBuffer: ChangeBuffer, ParkingActor {
    public nonisolated var unownedExecutor: UnownedSerialExecutor { DiskIOThread.loop.executor.asUnownedSerialExecutor() }
    let log: DiskLog
    private var cursors: [String: DiskLog.Cursor] = [:]
    /// Per consumer, the reads not yet acknowledged: each batch's last position and the sequence
    /// after it, oldest first.
    private var unacknowledgedReads: [String: [(position: SourcePosition, sequence: UInt64)]] = [:]
    private var acknowledged: [String: UInt64] = [:]
    private var decoders: [String: TransactionDecoder] = [:]
    private var finished = false
    private var readerIDs: [String: Int] = [:]
    var parking = ParkingLot()
    /// Changes each consumer had still to apply when the buffer was opened.
    public private(set) var backlogAtOpen: [String: UInt64] = [:]
    /// Where the source continues: after the newest record, else after the origin.
    public private(set) var resumeAfter: SourcePosition?
    /// Whether the log had to be emptied because a sink needed older changes than it holds.
    public private(set) var wasReset = false

    /// Opens (recovering) the log in `directory` for sinks that start after `starts` (`nil`: from
    /// the beginning). `fallback` is where the source resumes when the log cannot serve every sink.
    /// Set to 1 while an append waits for space (`ferry_buffer_disk_full`).
    private let outOfSpace: Gauge
    private let logger: Logger

    public init(directory: String, options: DiskLog.Options, starts: [String: SourcePosition?], fallback: SourcePosition?,
                pipeline: String = "", logger: Logger = Logger(label: "ferry.buffer")) throws {
        self.logger = logger
        self.outOfSpace = Gauge(label: "ferry_buffer_disk_full", dimensions: [("pipeline", pipeline)])
        log = try DiskLog(directory: directory, options: options)
        let originPath = (directory as NSString).appendingPathComponent("origin.json")
        self.originPath = originPath
        let origin = Self.readOrigin(originPath)
        var newest: SourcePosition? = nil
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
            acknowledged[consumer] = cursor.sequence
            decoders[consumer] = TransactionDecoder()
        }
    }

    private let originPath: String

    /// Bytes of buffered records on disk.
    public var backlogBytes: Int { log.dataBytes }

    /// Appends a transaction. A full file system is an environment condition, not a failure: the
    /// append waits (the source stops reading; the database keeps its log), says so once, and
    /// goes on by itself when space returns.
    public func append(_ transaction: Transaction) async throws {
        let record = TransactionCodec.encode(transaction)
        var waiting: ContinuousClock.Instant? = nil
        while true {
            do {
                try log.append(record)
                break
            } catch let error as DiskLogError where error.isOutOfSpace {
                if waiting == nil {
                    waiting = .now
                    outOfSpace.record(1)
                    let full = FerryError(code: .bufferDiskFull,
                                          message: "the disk buffer's file system is full; the pipeline holds (the source keeps its binlog) and goes on by itself when space returns",
                                          context: [("directory", log.directory)],
                                          fix: "free at least \(log.options.segmentBytes) bytes on the file system of \(log.directory), or move data_dir")
                    logger.warning("the disk buffer's file system is full", metadata: [
                        LoggingKeys.error: .error(full), "ferry.directory": "\(log.directory)", "ferry.space_needed_bytes": "\(log.options.segmentBytes)",
                    ])
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
        if let waiting {
            outOfSpace.record(0)
            logger.notice("the disk buffer has space again; the pipeline goes on",
                          metadata: ["ferry.directory": "\(log.directory)", "ferry.held_s": "\((ContinuousClock.now - waiting).components.seconds)"])
        }
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
                unacknowledgedReads[consumer, default: []].append((batch[batch.count - 1].position, cursor.sequence))
                return batch
            }
            if finished || Task.isCancelled { return [] }
            await park { self.readerIDs[consumer] = $0 }
        }
    }

    public func acknowledge(consumer: String, through position: SourcePosition) throws {
        var reads = unacknowledgedReads[consumer, default: []]
        var through: UInt64?
        while let first = reads.first, first.position <= position {
            through = first.sequence
            reads.removeFirst()
        }
        unacknowledgedReads[consumer] = reads
        guard let through else { return }
        acknowledged[consumer] = through
        guard let lowest = acknowledged.values.min(), let boundary = log.oldestSegmentEnd, boundary <= lowest,
              let record = try log.record(at: lowest - 1)
        else { return }
        try Self.writeOrigin(try TransactionCodec.summary(of: record).position, to: originPath)
        try log.removeSegments(before: lowest)
    }

    /// The first record whose position is after `start` (all records when `start` is nil).
    static func firstCursor(in log: DiskLog, after start: SourcePosition?) throws -> DiskLog.Cursor {
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
    static func readOrigin(_ path: String) -> SourcePosition?? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "start" { return .some(nil) }
        guard let position = SourcePosition(persistedJSON: trimmed) else { return nil }
        return .some(position)
    }

    /// Replaces the origin file atomically (write, fsync, rename).
    static func writeOrigin(_ position: SourcePosition?, to path: String) throws {
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

/// The one thread every disk buffer's blocking file I/O runs on.
enum DiskIOThread {
    static let loop: any EventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
}

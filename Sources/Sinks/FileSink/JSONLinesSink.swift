import CWriteback
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Append-only JSON-lines files: one Debezium envelope per change, each with a stable `id`
/// (`file:pos:row` of its transaction's commit position and its index) so consumers can drop
/// duplicates. Files rotate by size and age; a batch is durable (fsync) before `apply` returns.
///
/// Each line also says how many changes its transaction has (`txn_events`). The applied position
/// is that of the last transaction whose lines are all on disk, so no separate offsets file is
/// needed; at open a torn tail — a partial line or a partial transaction — is cut off and replayed.
///
/// As a dead-letter sink it appends rejected changes to `<name>.dead-letters.jsonl`: each line is
/// the change's envelope with a `dead_letter` object naming the pipeline, sink, table, position,
/// error code and message.
public actor JSONLinesSink: DeadLetterSink {
    public struct Configuration: Sendable {
        public var name: String
        /// Directory for the files; the current one is `<directory>/<name>.jsonl`.
        public var directory: String
        /// Rotate when the current file exceeds this many bytes. Default 128 MiB.
        public var maximumFileBytes: Int
        /// Rotate when the current file is older than this many seconds. Default 3600.
        public var maximumFileAgeSeconds: Double
        /// `debezium` (default) or `debezium-schema` (with Kafka Connect's schema block).
        public var format: EventJSONWriter.Format

        public init(name: String, directory: String, maximumFileBytes: Int, maximumFileAgeSeconds: Double,
                    format: EventJSONWriter.Format) {
            self.name = name
            self.directory = directory
            self.maximumFileBytes = maximumFileBytes
            self.maximumFileAgeSeconds = maximumFileAgeSeconds
            self.format = format
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    private let writer: EventJSONWriter
    /// The current file; a completion still syncing it keeps it open after a rotation or close.
    private var file: OwnedDescriptor?
    private var descriptor: Int32 { file?.descriptor ?? -1 }
    private var fileBytes = 0
    private var fileOpenedAt = Date()
    /// The bytes of one batch; kept between batches so its capacity is allocated once.
    private var out: [UInt8] = []

    public init(configuration: Configuration) {
        self.name = configuration.name
        self.configuration = configuration
        self.writer = EventJSONWriter(format: configuration.format)
    }

    var currentPath: String { (configuration.directory as NSString).appendingPathComponent("\(configuration.name).jsonl") }

    public func open() async throws -> SourcePosition? {
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        let last = try Self.repairAndReadLastPosition(currentPath) ?? Self.lastRotatedPosition(directory: configuration.directory, name: configuration.name)
        try openCurrent()
        return last
    }

    public func close() async throws {
        file = nil
    }

    public func apply(_ transactions: [Transaction]) async throws {
        try await write(transactions)?()
    }

    /// Writes the batch's lines; the fsync that makes them durable is left to the returned
    /// completion, which runs on a thread-pool thread — not on the sink or the cooperative
    /// threads — while the next batch is encoded. It holds the file it syncs, so a rotation or
    /// close meanwhile does not close it under the fsync.
    public func write(_ transactions: [Transaction]) async throws -> DurableCompletion? {
        guard try writeLines(transactions), let file else { return nil }
        let path = currentPath
        return {
            // Not cancellable: a stopping pipeline still finishes the fsync of what it wrote.
            try await NIOThreadPool.singleton.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.next()) {
                try Self.sync(file.descriptor, path: path)
            }.get()
        }
    }

    private static func sync(_ descriptor: Int32, path: String) throws {
        guard fsync(descriptor) == 0 else {
            throw FerryError(code: .sinkFileFsync, message: "fsync of \(path) failed: \(String(cString: strerror(errno)))",
                             fix: "check the disk; an fsync error is never retried because the data may be lost", disposition: .fatal)
        }
    }

    /// Writes the batch's lines to the current file (rotating it first when due); false when the
    /// batch had no line to write.
    private func writeLines(_ transactions: [Transaction]) throws -> Bool {
        if descriptor < 0 {
            // A rotation that failed after closing the file (the file moved away meanwhile):
            // the next batch goes to a current file again.
            try openCurrent()
        } else if fileBytes >= configuration.maximumFileBytes || Date().timeIntervalSince(fileOpenedAt) >= configuration.maximumFileAgeSeconds {
            try rotate()
        }
        var out = self.out
        self.out = []
        out.removeAll(keepingCapacity: true)
        // A batch of huge rows is not kept around.
        defer { self.out = out.capacity <= 16 << 20 ? out : [] }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // DDL travels only when it changes a replicated table.
        let written: (UnsafePointer<ChangeEvent>) -> Bool = { $0.pointee.operation != .ddl || !$0.pointee.schemaChanges.isEmpty }
        var wrote = false
        for transaction in transactions {
            // The lines of one transaction are numbered as written (rules may have dropped, split
            // or reordered its changes): a restart finds a torn transaction by `txn_index`, so the
            // lines can go to the file a part at a time and the batch is never all in memory.
            let count = Int64(transaction.events.withUnsafeBufferPointer { events in
                events.indices.reduce(0) { count, index in written(events.baseAddress! + index) ? count + 1 : count }
            })
            var index: Int64 = 0
            for start in stride(from: 0, to: transaction.events.count, by: 256) {
                let part = start..<min(start + 256, transaction.events.count)
                writer.write(transaction, events: part, processedAtMillis: now, into: &out, where: written) { event, line in
                    JSONBuffer.appendASCII("\"id\":", to: &line)
                    Self.appendEventID(event, to: &line)
                    JSONBuffer.appendASCII(",\"txn_events\":", to: &line)
                    JSONBuffer.appendInteger(count, to: &line)
                    JSONBuffer.appendASCII(",\"txn_index\":", to: &line)
                    JSONBuffer.appendInteger(index, to: &line)
                    line.append(UInt8(ascii: ","))
                    index += 1
                }
                if out.count >= 1 << 20 {
                    try writeAll(out)
                    fileBytes += out.count
                    out.removeAll(keepingCapacity: true)
                    wrote = true
                    // The disk writes this part while the next is encoded; the batch's fsync
                    // then waits only for what is still in flight.
                    _ = ferry_start_writeback(descriptor)
                }
            }
        }
        guard wrote || !out.isEmpty else { return false }
        try writeAll(out)
        fileBytes += out.count
        return true
    }

    public func deadLetter(_ letters: [DeadLetter]) async throws {
        let path = (configuration.directory as NSString).appendingPathComponent("\(configuration.name).dead-letters.jsonl")
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        try Self.cutPartialLine(path)
        let file = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard file >= 0 else { throw FerryError(code: .sinkFileOpen, message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(file) }
        var out: [UInt8] = []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for letter in letters {
            JSONBuffer.appendASCII("{\"dead_letter\":{\"pipeline\":", to: &out)
            JSONBuffer.appendString(letter.pipeline, to: &out)
            JSONBuffer.appendASCII(",\"sink\":", to: &out)
            JSONBuffer.appendString(letter.sink, to: &out)
            JSONBuffer.appendASCII(",\"table\":", to: &out)
            JSONBuffer.appendString(letter.event.table.description, to: &out)
            JSONBuffer.appendASCII(",\"position\":", to: &out)
            JSONBuffer.appendString(letter.event.source.position.place, to: &out)
            JSONBuffer.appendASCII(",\"code\":", to: &out)
            JSONBuffer.appendString(letter.error.code.rawValue, to: &out)
            JSONBuffer.appendASCII(",\"error\":", to: &out)
            JSONBuffer.appendString(letter.error.description, to: &out)
            JSONBuffer.appendASCII("},\"id\":", to: &out)
            withUnsafePointer(to: letter.event) { Self.appendEventID($0, to: &out) }
            out.append(UInt8(ascii: ","))
            var line: [UInt8] = []
            writer.write(letter.event, processedAtMillis: now, into: &line)
            out.append(contentsOf: line.dropFirst())
        }
        try Self.writeAll(out, to: file, path: path)
        try Self.sync(file, path: path)
    }

    /// `"file:pos:row"`: the change's transaction commit position and its index, as a JSON string.
    static func appendEventID(_ event: UnsafePointer<ChangeEvent>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        event.pointee.source.appendStableID(to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// Removes a partial last line (a write cut short by a crash).
    static func cutPartialLine(_ path: String) throws {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { return }
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        guard size > 0 else { return }
        var end = size
        while end > 0 {
            let start = end > 65_536 ? end - 65_536 : 0
            try handle.seek(toOffset: start)
            let chunk = try handle.read(upToCount: Int(end - start)) ?? Data()
            if let newline = chunk.lastIndex(of: 0x0A) {
                let keep = start + UInt64(newline - chunk.startIndex) + 1
                if keep < size { try handle.truncate(atOffset: keep) }
                return
            }
            end = start
        }
        try handle.truncate(atOffset: 0)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try Self.writeAll(bytes, to: descriptor, path: currentPath)
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw FerryError(code: .sinkFileWrite, message: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    private func openCurrent() throws {
        let opened = Glibc.open(currentPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard opened >= 0 else {
            throw FerryError(code: .sinkFileOpen, message: "cannot open \(currentPath): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        file = OwnedDescriptor(opened)
        fstat(opened, &info)
        fileBytes = Int(info.st_size)
        fileOpenedAt = Date()
    }

    private func rotate() throws {
        // Let go of before anything can fail: a closed descriptor's number is soon another file's.
        file = nil
        let stamp = Int64(Date().timeIntervalSince1970 * 1000)
        let rotated = (configuration.directory as NSString).appendingPathComponent("\(configuration.name).\(stamp).jsonl")
        try FileManager.default.moveItem(atPath: currentPath, toPath: rotated)
        try openCurrent()
    }

    /// Cuts a torn tail (partial line, partial transaction) and returns the position of the last
    /// complete transaction in the file.
    static func repairAndReadLastPosition(_ path: String) throws -> SourcePosition? {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        guard size > 0 else { return nil }
        let window = min(size, 64 << 20)
        let windowStart = size - window
        try handle.seek(toOffset: windowStart)
        let tail = try handle.readToEnd() ?? Data()
        // Complete lines in the window, newest last, with their end offsets in the file.
        var lines: [(end: UInt64, line: Data)] = []
        var lineStart = tail.startIndex
        for index in tail.indices where tail[index] == 0x0A {
            lines.append((windowStart + UInt64(index - tail.startIndex) + 1, tail[lineStart..<index]))
            lineStart = index + 1
        }
        if windowStart > 0, !lines.isEmpty { lines.removeFirst() }  // may start mid-line
        var keep: UInt64 = windowStart == 0 ? 0 : (lines.first.map { $0.end } ?? windowStart)
        var result: SourcePosition? = nil
        var index = lines.count - 1
        while index >= 0 {
            guard let parsed = parse(lines[index].line) else { index -= 1; continue }
            if parsed.index + 1 == parsed.events {
                keep = lines[index].end
                result = parsed.position
                break
            }
            index -= 1
        }
        if result == nil, windowStart == 0 { keep = 0 }
        if keep < size { try handle.truncate(atOffset: keep) }
        // The position read back counts as applied: lines a stopped process wrote but never
        // synced (a kill between a write and its fsync) are made durable first.
        try sync(handle.fileDescriptor, path: path)
        return result
    }

    /// A line's transaction position, its index among the transaction's lines and their number.
    /// Lines of releases before `txn_index` give the change's row instead (the same when no rule
    /// reshaped the transaction).
    static func parse(_ line: Data) -> (position: SourcePosition, index: Int, events: Int)? {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let source = ((object["payload"] as? [String: Any]) ?? object)["source"] as? [String: Any], let file = source["file"] as? String,
              let offset = (source["pos"] as? NSNumber)?.uint64Value, let row = (source["row"] as? NSNumber)?.intValue,
              let events = (object["txn_events"] as? NSNumber)?.intValue
        else { return nil }
        let gtid = (source["gtid_pos"] as? String).flatMap { MariaDBGTIDPosition(parsing: Substring($0)) }.map { GTIDPosition.mariadb($0) }
        let step = (source["snapshot_step"] as? NSNumber)?.uint32Value ?? 0
        let index = (object["txn_index"] as? NSNumber)?.intValue ?? row
        return (.binlog(BinlogPosition(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: gtid, snapshotStep: step)), index, events)
    }

    static func lastRotatedPosition(directory: String, name: String) -> SourcePosition? {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let rotated = files.filter { $0.hasPrefix("\(name).") && $0.hasSuffix(".jsonl") && $0 != "\(name).jsonl" }.sorted()
        guard let newest = rotated.last else { return nil }
        return try? repairAndReadLastPosition((directory as NSString).appendingPathComponent(newest))
    }
}

/// A file descriptor closed when its last holder lets go: the sink, or a completion syncing it
/// (also one the engine never ran).
final class OwnedDescriptor: Sendable {
    let descriptor: Int32

    init(_ descriptor: Int32) { self.descriptor = descriptor }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }
}

extension JSONLinesSink {
    /// The keys of a `type: jsonl` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("directory", .text, default: "<data_dir>/jsonl", doc: "where <pipeline>/<sink>.jsonl is written"),
        SinkSetting("max_file_bytes", .size, default: "128MiB", doc: "a file larger than this is rotated to <sink>.<unix-ms>.jsonl"),
        SinkSetting("max_file_age_seconds", .integer, default: "3600", doc: "a file older than this is rotated"),
        SinkSetting("format", .text, default: "debezium", doc: "debezium (the envelope) or debezium-schema (Kafka Connect's schema and payload)"),
        SinkSetting("shared", .boolean, default: "false",
                    doc: "true when the directory is on a file system every cluster node mounts at the same path (NFS, CephFS); cluster mode refuses the sink otherwise"),
    ]
}

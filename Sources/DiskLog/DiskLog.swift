import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A segmented, checksummed, append-only log of opaque records (the ZooKeeper/etcd transaction-log
/// design). Records are numbered from 0 by a sequence number that never repeats.
///
/// On disk: a directory of segment files named by the sequence number of their first record
/// (`00000000000000000042.log`), each preallocated to `segmentBytes` and starting with a 16-byte
/// header (`FERRYLOG`, format version, reserved). A record is its payload length (UInt32 LE), the
/// CRC-32 of the payload (UInt32 LE), then the payload; a length of 0 marks the end of the data in
/// a preallocated segment.
///
/// Recovery checks every record. A damaged record at the end of the newest segment is a write cut
/// short by a crash and is cut off; damage anywhere else, or a missing segment, refuses to open
/// with `DiskLogError.corrupt` rather than silently dropping records.
///
/// Not thread-safe: one owner (an actor) calls it.
public final class DiskLog {
    public enum FsyncPolicy: String, Sendable, CaseIterable {
        /// fsync after every record.
        case always
        /// fsync once before newly appended records are handed to readers (group commit).
        case batch
        /// fsync at most every `interval`; readers see records before they are synced.
        case interval
    }

    public struct Options: Sendable {
        public var segmentBytes: Int
        public var fsync: FsyncPolicy
        public var interval: Duration

        public init(segmentBytes: Int = 64 << 20, fsync: FsyncPolicy = .batch, interval: Duration = .seconds(1)) {
            self.segmentBytes = segmentBytes
            self.fsync = fsync
            self.interval = interval
        }
    }

    /// Where a reader stands: the next record's sequence number and its byte offset in its segment.
    public struct Cursor: Sendable, Equatable {
        public var sequence: UInt64
        var segmentBase: UInt64
        var offset: Int
    }

    static let headerBytes = 16
    static let magic: [UInt8] = Array("FERRYLOG".utf8) + [1, 0, 0, 0, 0, 0, 0, 0]
    static let recordHeaderBytes = 8

    final class Segment {
        let base: UInt64
        let path: String
        let descriptor: Int32
        /// Bytes of valid data (header plus records).
        var end: Int
        var count: UInt64
        var fileBytes: Int

        init(base: UInt64, path: String, descriptor: Int32, end: Int, count: UInt64, fileBytes: Int) {
            self.base = base
            self.path = path
            self.descriptor = descriptor
            self.end = end
            self.count = count
            self.fileBytes = fileBytes
        }

        var nextSequence: UInt64 { base + count }
    }

    public let directory: String
    public let options: Options
    private var segments: [Segment] = []
    private var syncedSequence: UInt64 = 0
    private var lastSync = ContinuousClock.now
    /// Records cut off by recovery (a torn tail), for the log.
    public private(set) var truncatedBytes = 0

    /// Opens the log in `directory`, creating it when missing, and recovers it.
    public init(directory: String, options: Options = Options()) throws {
        self.directory = directory
        self.options = options
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DiskLogError.io(operation: "create directory", path: directory, errno: EIO)
        }
        try recover()
        syncedSequence = nextSequence
    }

    deinit {
        for segment in segments { close(segment.descriptor) }
    }

    /// The sequence number the next appended record gets.
    public var nextSequence: UInt64 { segments.last?.nextSequence ?? 0 }
    /// The oldest record still kept.
    public var firstSequence: UInt64 { segments.first?.base ?? nextSequence }
    /// Records readers may see now (under `batch` and `always`: only synced records).
    public var visibleSequence: UInt64 { options.fsync == .interval ? nextSequence : syncedSequence }
    /// Bytes of records kept on disk.
    public var dataBytes: Int { segments.reduce(0) { $0 + $1.end - Self.headerBytes } }
    public var segmentCount: Int { segments.count }
    /// The sequence after the oldest segment's last record, when an older segment could be deleted.
    public var oldestSegmentEnd: UInt64? { segments.count > 1 ? segments[0].nextSequence : nil }

    /// Appends a record and returns its sequence number.
    @discardableResult
    public func append(_ payload: [UInt8]) throws -> UInt64 {
        precondition(!payload.isEmpty, "a record has at least one byte")
        let needed = Self.recordHeaderBytes + payload.count
        if segments.isEmpty || (segments.last!.count > 0 && segments.last!.end + needed > options.segmentBytes) {
            try roll()
        }
        let segment = segments.last!
        var record = [UInt8]()
        record.reserveCapacity(needed)
        Self.appendUInt32(UInt32(payload.count), to: &record)
        Self.appendUInt32(Self.checksum(payload), to: &record)
        record.append(contentsOf: payload)
        try write(record, at: segment.end, to: segment)
        segment.end += needed
        segment.fileBytes = max(segment.fileBytes, segment.end)
        segment.count += 1
        switch options.fsync {
        case .always: try sync()
        case .batch: break
        case .interval: if ContinuousClock.now - lastSync >= options.interval { try sync() }
        }
        return segment.nextSequence - 1
    }

    /// Makes every appended record durable. An fsync failure is fatal (docs/architecture.md, promise 8): the kernel
    /// may have dropped the dirty pages, so retrying could report success for lost data.
    public func sync() throws {
        guard let segment = segments.last, syncedSequence < nextSequence || options.fsync == .interval else { return }
        if fsync(segment.descriptor) != 0 { throw DiskLogError.fsyncFailed(path: segment.path, errno: errno) }
        syncedSequence = nextSequence
        lastSync = .now
    }

    /// Syncs when the policy says readers should only see durable records, or the interval passed.
    public func syncForReaders() throws {
        switch options.fsync {
        case .always, .batch: if syncedSequence < nextSequence { try sync() }
        case .interval: if syncedSequence < nextSequence, ContinuousClock.now - lastSync >= options.interval { try sync() }
        }
    }

    /// A cursor at `sequence` (clamped to the kept records).
    public func cursor(at sequence: UInt64) throws -> Cursor {
        var cursor = Cursor(sequence: firstSequence, segmentBase: segments.first?.base ?? nextSequence, offset: Self.headerBytes)
        let target = min(max(sequence, firstSequence), nextSequence)
        if let index = segments.lastIndex(where: { $0.base <= target }) {
            cursor = Cursor(sequence: segments[index].base, segmentBase: segments[index].base, offset: Self.headerBytes)
        }
        while cursor.sequence < target {
            guard try read(&cursor, skipPayload: true) != nil else { break }
        }
        return cursor
    }

    /// The next record at `cursor` that readers may see, advancing the cursor; `nil` at the end.
    public func next(_ cursor: inout Cursor) throws -> [UInt8]? {
        guard cursor.sequence < visibleSequence else { return nil }
        return try read(&cursor, skipPayload: false)
    }

    /// The record with sequence number `sequence`, or `nil` when it is not kept.
    public func record(at sequence: UInt64) throws -> [UInt8]? {
        guard sequence >= firstSequence, sequence < nextSequence else { return nil }
        var cursor = try cursor(at: sequence)
        return try read(&cursor, skipPayload: false)
    }

    /// The first record of each kept segment with its sequence number (to find a position fast).
    public func segmentHeads() throws -> [(sequence: UInt64, payload: [UInt8])] {
        try segments.filter { $0.count > 0 }.compactMap { segment in
            var cursor = Cursor(sequence: segment.base, segmentBase: segment.base, offset: Self.headerBytes)
            return try read(&cursor, skipPayload: false).map { (segment.base, $0) }
        }
    }

    /// Deletes whole segments whose records all come before `sequence`; the newest segment stays.
    /// Returns the sequence number of the last deleted record, or `nil` when nothing was deleted.
    @discardableResult
    public func removeSegments(before sequence: UInt64) throws -> UInt64? {
        var removedUpTo: UInt64? = nil
        while segments.count > 1, segments[0].nextSequence <= sequence {
            let segment = segments.removeFirst()
            close(segment.descriptor)
            if unlink(segment.path) != 0 { throw DiskLogError.io(operation: "delete", path: segment.path, errno: errno) }
            removedUpTo = segment.nextSequence - 1
        }
        if removedUpTo != nil { try syncDirectory() }
        return removedUpTo
    }

    /// Deletes every record; the next record gets sequence number `nextSequence` still.
    public func removeAll() throws {
        let next = nextSequence
        for segment in segments {
            close(segment.descriptor)
            unlink(segment.path)
        }
        segments = []
        try createSegment(base: next)
        syncedSequence = next
    }

    // MARK: - Reading

    private func segmentIndex(base: UInt64) -> Int? {
        var low = 0, high = segments.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if segments[middle].base == base { return middle }
            if segments[middle].base < base { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    private func read(_ cursor: inout Cursor, skipPayload: Bool) throws -> [UInt8]? {
        guard cursor.sequence < nextSequence else { return nil }
        // A cursor at the very end of a segment that was then deleted (every record in it was
        // consumed) moves to where its next record is now.
        if segmentIndex(base: cursor.segmentBase) == nil, cursor.sequence >= firstSequence {
            cursor = try self.cursor(at: cursor.sequence)
        }
        guard var index = segmentIndex(base: cursor.segmentBase) else {
            throw DiskLogError.corrupt(path: directory, offset: 0, reason: "record \(cursor.sequence) is no longer kept (segment \(cursor.segmentBase) deleted)")
        }
        if cursor.offset >= segments[index].end {
            index += 1
            guard index < segments.count else { return nil }
            cursor = Cursor(sequence: segments[index].base, segmentBase: segments[index].base, offset: Self.headerBytes)
        }
        let segment = segments[index]
        let header = try readBytes(segment, at: cursor.offset, count: Self.recordHeaderBytes)
        let length = Int(Self.uint32(header, 0))
        var payload: [UInt8] = []
        if !skipPayload {
            payload = try readBytes(segment, at: cursor.offset + Self.recordHeaderBytes, count: length)
            guard Self.checksum(payload) == Self.uint32(header, 4) else {
                throw DiskLogError.corrupt(path: segment.path, offset: cursor.offset, reason: "record \(cursor.sequence) fails its CRC check")
            }
        }
        cursor.offset += Self.recordHeaderBytes + length
        cursor.sequence += 1
        return payload
    }

    private func readBytes(_ segment: Segment, at offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { pread(segment.descriptor, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw DiskLogError.io(operation: "read", path: segment.path, errno: errno)
            }
            if result == 0 { throw DiskLogError.corrupt(path: segment.path, offset: offset, reason: "unexpected end of file") }
            done += result
        }
        return bytes
    }

    // MARK: - Writing

    private func write(_ bytes: [UInt8], at offset: Int, to segment: Segment) throws {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { pwrite(segment.descriptor, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw DiskLogError.io(operation: "write", path: segment.path, errno: errno)
            }
            done += result
        }
    }

    private func roll() throws {
        if let current = segments.last, current.count > 0 {
            if fsync(current.descriptor) != 0 { throw DiskLogError.fsyncFailed(path: current.path, errno: errno) }
        }
        let base = nextSequence
        if let current = segments.last, current.count == 0 {
            close(current.descriptor)
            unlink(current.path)
            segments.removeLast()
        }
        try createSegment(base: base)
    }

    private func createSegment(base: UInt64) throws {
        let path = segmentPath(base)
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DiskLogError.io(operation: "create", path: path, errno: errno) }
        let segment = Segment(base: base, path: path, descriptor: descriptor, end: Self.headerBytes, count: 0, fileBytes: Self.headerBytes)
        do {
            let allocated = posix_fallocate(descriptor, 0, off_t(options.segmentBytes))
            if allocated == 0 { segment.fileBytes = options.segmentBytes }
            try write(Self.magic, at: 0, to: segment)
            if fsync(descriptor) != 0 { throw DiskLogError.fsyncFailed(path: path, errno: errno) }
        } catch {
            // A segment without its header (a full disk) must not stay: the next try makes it again.
            close(descriptor)
            unlink(path)
            throw error
        }
        segments.append(segment)
        try syncDirectory()
    }

    private func syncDirectory() throws {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DiskLogError.io(operation: "open directory", path: directory, errno: errno) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw DiskLogError.fsyncFailed(path: directory, errno: errno) }
    }

    private func segmentPath(_ base: UInt64) -> String {
        let digits = String(base)
        return (directory as NSString).appendingPathComponent(String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log")
    }

    // MARK: - Recovery

    private func recover() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let bases = names.compactMap { name -> UInt64? in
            guard name.hasSuffix(".log"), name.count == 24 else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
        for (position, base) in bases.enumerated() {
            let path = segmentPath(base)
            let isNewest = position == bases.count - 1
            if let previous = segments.last, previous.nextSequence != base {
                throw DiskLogError.corrupt(path: path, offset: 0,
                                           reason: "segment starts at record \(base) but the previous one ends before \(previous.nextSequence): a segment is missing")
            }
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { throw DiskLogError.io(operation: "open", path: path, errno: errno) }
            var status = stat()
            fstat(descriptor, &status)
            let segment = Segment(base: base, path: path, descriptor: descriptor, end: Self.headerBytes, count: 0, fileBytes: Int(status.st_size))
            segments.append(segment)
            let header = segment.fileBytes < Self.headerBytes ? [] : try readBytes(segment, at: 0, count: Self.headerBytes)
            if header != Self.magic {
                // A segment created just before a crash may have no header yet.
                guard isNewest, header.allSatisfy({ $0 == 0 }) else {
                    throw DiskLogError.corrupt(path: path, offset: 0, reason: "not a ferry log segment (bad header)")
                }
                try write(Self.magic, at: 0, to: segment)
                segment.fileBytes = max(segment.fileBytes, Self.headerBytes)
                continue
            }
            try scan(segment, isNewest: isNewest)
        }
        if segments.isEmpty { try createSegment(base: 0) }
    }

    /// Walks a segment's records; cuts a torn tail off the newest segment.
    private func scan(_ segment: Segment, isNewest: Bool) throws {
        var offset = Self.headerBytes
        while offset + Self.recordHeaderBytes <= segment.fileBytes {
            let header = try readBytes(segment, at: offset, count: Self.recordHeaderBytes)
            let length = Int(Self.uint32(header, 0))
            if length == 0 {
                if Self.uint32(header, 4) == 0 { break }
                return try damaged(segment, at: offset, isNewest: isNewest, reason: "record header with length 0 and a checksum")
            }
            let end = offset + Self.recordHeaderBytes + length
            guard end <= segment.fileBytes else {
                return try damaged(segment, at: offset, isNewest: isNewest, reason: "record runs past the end of the file")
            }
            let payload = try readBytes(segment, at: offset + Self.recordHeaderBytes, count: length)
            guard Self.checksum(payload) == Self.uint32(header, 4) else {
                return try damaged(segment, at: offset, isNewest: isNewest, reason: "record \(segment.base + segment.count) fails its CRC check",
                                   next: end)
            }
            offset = end
            segment.count += 1
        }
        if offset < segment.fileBytes, offset + Self.recordHeaderBytes > segment.fileBytes {
            let rest = try readBytes(segment, at: offset, count: segment.fileBytes - offset)
            if !rest.allSatisfy({ $0 == 0 }) { return try damaged(segment, at: offset, isNewest: isNewest, reason: "partial record header") }
        }
        segment.end = offset
    }

    /// A damaged record: at the newest segment's tail it is a torn write and is cut off; anywhere
    /// else (a valid record follows it, or an older segment) it is corruption.
    private func damaged(_ segment: Segment, at offset: Int, isNewest: Bool, reason: String, next: Int? = nil) throws {
        let validFollows = try next.map { try validRecord(segment, at: $0) } ?? false
        guard isNewest, !validFollows else {
            throw DiskLogError.corrupt(path: segment.path, offset: offset, reason: reason)
        }
        truncatedBytes = segment.fileBytes - offset
        if ftruncate(segment.descriptor, off_t(offset)) != 0 { throw DiskLogError.io(operation: "truncate", path: segment.path, errno: errno) }
        if posix_fallocate(segment.descriptor, 0, off_t(options.segmentBytes)) == 0 {
            segment.fileBytes = max(options.segmentBytes, offset)
        } else {
            segment.fileBytes = offset
        }
        if fsync(segment.descriptor) != 0 { throw DiskLogError.fsyncFailed(path: segment.path, errno: errno) }
        segment.end = offset
    }

    private func validRecord(_ segment: Segment, at offset: Int) throws -> Bool {
        guard offset + Self.recordHeaderBytes <= segment.fileBytes else { return false }
        let header = try readBytes(segment, at: offset, count: Self.recordHeaderBytes)
        let length = Int(Self.uint32(header, 0))
        guard length > 0, offset + Self.recordHeaderBytes + length <= segment.fileBytes else { return false }
        return Self.checksum(try readBytes(segment, at: offset + Self.recordHeaderBytes, count: length)) == Self.uint32(header, 4)
    }

    // MARK: - Bytes

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func uint32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

/// What went wrong with a disk log.
public enum DiskLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file system has no room (or the quota is used up): nothing was appended, and the same
    /// append may be tried again once there is space.
    public var isOutOfSpace: Bool {
        if case .io(_, _, let code) = self { return code == ENOSPC || code == EDQUOT }
        return false
    }

    case corrupt(path: String, offset: Int, reason: String)
    case io(operation: String, path: String, errno: Int32)
    case fsyncFailed(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .corrupt(let path, let offset, let reason):
            "disk buffer \(path) is damaged at byte \(offset): \(reason)"
        case .io(let operation, let path, let code):
            "disk buffer: cannot \(operation) \(path): \(String(cString: strerror(code)))"
        case .fsyncFailed(let path, let code):
            "disk buffer: fsync of \(path) failed: \(String(cString: strerror(code)))"
        }
    }
}

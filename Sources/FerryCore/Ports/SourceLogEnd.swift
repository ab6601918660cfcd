import Foundation

/// The end of the source's change log as the running stream has seen it (every event carries
/// its end position; heartbeats carry the server's while idle), and the sizes of the log files
/// the stream read to their end. From these the running process tells how many bytes of log a
/// sink is behind without asking the server: the source's stream writes, the status page reads.
public final class SourceLogEnd: @unchecked Sendable {
    private let lock = NSLock()
    private var end: SourcePosition?
    /// Binlog file sizes learnt from rotations, newest last; bounded (`keptFiles`).
    private var fileSizes: [(file: String, size: UInt64)] = []
    static let keptFiles = 256

    public init() {}

    /// The stream read up to `position`.
    public func reached(_ position: SourcePosition) {
        lock.withLock {
            if end.map({ position > $0 }) ?? true { end = position }
        }
    }

    /// The stream read binlog file `file` to its end, `size` bytes.
    public func binlogFileEnded(_ file: String, size: UInt64) {
        lock.withLock {
            guard !fileSizes.contains(where: { $0.file == file }) else { return }
            fileSizes.append((file, size))
            if fileSizes.count > Self.keptFiles { fileSizes.removeFirst(fileSizes.count - Self.keptFiles) }
        }
    }

    /// The furthest position the stream has seen.
    public var position: SourcePosition? { lock.withLock { end } }

    /// Bytes of log from `position` to the end seen; `nil` when the end is not known yet, or a
    /// file in between was not read to its end in this run.
    public func bytes(after position: SourcePosition) -> UInt64? {
        lock.withLock {
            guard let end else { return nil }
            switch (position, end) {
            case (.binlog(let from), .binlog(let to)):
                let from = from.coordinates, to = to.coordinates
                if from >= to { return 0 }
                if from.file == to.file { return to.offset - from.offset }
                guard let first = from.fileSequence, let last = to.fileSequence, last > first else { return nil }
                var total = to.offset
                for sequence in first..<last {
                    guard let file = fileSizes.first(where: { BinlogCoordinates(file: $0.file, offset: 0).fileSequence == sequence }) else { return nil }
                    total += sequence == first ? (file.size > from.offset ? file.size - from.offset : 0) : file.size
                }
                return total
            case (.wal(let from), .wal(let to)):
                return to.lsn > from.lsn ? to.lsn.value - from.lsn.value : 0
            default:
                return nil
            }
        }
    }
}

/// A place in a source's change log, the one position type of every port, sink and saved record.
///
/// Each kind of source has its own case; everything outside the source treats a position as
/// opaque: it compares, prints, persists (`persistedJSON`, `Codable`) and orders targets' row
/// versions (`version`). A pipeline reads one source, so positions of different kinds never meet
/// in one comparison; they still order (by kind) so the order is total.
///
/// Equality means "the same place in the stream", the same relation `<` orders by: annotations
/// of a place (a binlog position's GTID state) do not take part, so `a == b` exactly when neither
/// `a < b` nor `b < a`.
public enum SourcePosition: Sendable, Comparable, Hashable, Codable, CustomStringConvertible {
    /// MySQL/MariaDB: binary log coordinates, GTID state and snapshot step.
    case binlog(BinlogPosition)
    /// PostgreSQL: the end of a commit record in the write-ahead log, and snapshot step.
    case wal(WALPosition)

    /// The binlog position, when the source is MySQL-family.
    public var binlog: BinlogPosition? {
        switch self {
        case .binlog(let position): position
        case .wal: nil
        }
    }

    /// The WAL position, when the source is PostgreSQL.
    public var wal: WALPosition? {
        switch self {
        case .binlog: nil
        case .wal(let position): position
        }
    }

    /// 0 for a source transaction; n for the n-th snapshot chunk delivered after it.
    public var snapshotStep: UInt32 {
        switch self {
        case .binlog(let position): position.snapshotStep
        case .wal(let position): position.snapshotStep
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.binlog(let l), .binlog(let r)): l.isSamePlace(as: r)
        case (.wal(let l), .wal(let r)): l.isSamePlace(as: r)
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .binlog(let position):
            hasher.combine(position.coordinates)
            hasher.combine(position.snapshotStep)
        case .wal(let position):
            hasher.combine(position.lsn)
            hasher.combine(position.snapshotStep)
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.binlog(let l), .binlog(let r)): l < r
        case (.wal(let l), .wal(let r)): l < r
        // Never met in one pipeline; ordered by kind only so the order is total.
        case (.binlog, .wal): true
        case (.wal, .binlog): false
        }
    }

    /// The full position, annotations included: `mariadb-bin.000003:1234 (gtid 0-1-17)`,
    /// `0/16B3748 (xid 731)`.
    public var description: String {
        switch self {
        case .binlog(let position): position.description
        case .wal(let position): position.description
        }
    }

    /// Just the place, for messages and error context: `mariadb-bin.000003:1234`.
    public var place: String {
        var out: [UInt8] = []
        appendPlace(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `place` as UTF-8: `FILE:OFFSET` or `X/Y` (an LSN), and `#STEP` for a snapshot chunk.
    public func appendPlace(to out: inout [UInt8]) {
        switch self {
        case .binlog(let position):
            out.append(contentsOf: position.coordinates.file.utf8)
            out.append(UInt8(ascii: ":"))
            JSONBuffer.appendUnsigned(position.coordinates.offset, to: &out)
        case .wal(let position):
            out.append(contentsOf: position.lsn.description.utf8)
        }
        if snapshotStep > 0 {
            out.append(UInt8(ascii: "#"))
            JSONBuffer.appendUnsigned(UInt64(snapshotStep), to: &out)
        }
    }

    /// One number that orders like positions, for targets that keep a row or document version.
    public var version: Int64 {
        switch self {
        case .binlog(let position): position.version
        case .wal(let position): position.version
        }
    }

    /// The persisted form (state file, `ferry_offsets`, stream headers). A binlog position keeps
    /// the form every earlier release wrote, so saved positions stay readable without migration.
    public var persistedJSON: String {
        switch self {
        case .binlog(let position): position.persistedJSON
        case .wal(let position): position.persistedJSON
        }
    }

    /// Reads `persistedJSON`; `nil` when the text is not a position.
    public init?(persistedJSON text: String) {
        if let position = BinlogPosition(persistedJSON: text) {
            self = .binlog(position)
        } else if let position = WALPosition(persistedJSON: text) {
            self = .wal(position)
        } else {
            return nil
        }
    }

    /// The `Codable` form of a binlog position is `BinlogPosition`'s own, as snapshot records in
    /// state files of earlier releases hold it; a WAL position's has an `lsn`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let position = try? container.decode(BinlogPosition.self) {
            self = .binlog(position)
        } else {
            self = .wal(try container.decode(WALPosition.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .binlog(let position): try container.encode(position)
        case .wal(let position): try container.encode(position)
        }
    }
}

extension SourcePosition {
    /// A binlog position without GTID state: `FILE:OFFSET`, as users type it.
    public static func binlog(file: String, offset: UInt64, snapshotStep: UInt32 = 0) -> SourcePosition {
        .binlog(BinlogPosition(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: nil, snapshotStep: snapshotStep))
    }
}

extension SourcePosition {
    /// Bytes of change log read from `earlier` to here, as far as the positions tell: within one
    /// binlog file the offset difference; after a rotation the offset into the new file (the old
    /// file's end is not part of a position); in a WAL the LSN difference.
    public func logBytes(after earlier: SourcePosition) -> UInt64 {
        switch (self, earlier) {
        case (.binlog(let now), .binlog(let then)):
            if now.coordinates.file == then.coordinates.file {
                return now.coordinates.offset > then.coordinates.offset ? now.coordinates.offset - then.coordinates.offset : 0
            }
            return now.coordinates > then.coordinates ? now.coordinates.offset : 0
        case (.wal(let now), .wal(let then)):
            return now.lsn > then.lsn ? now.lsn.value - then.lsn.value : 0
        default:
            return 0
        }
    }
}

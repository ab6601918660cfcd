/// The GTID state of a MySQL-family source after some transaction.
public enum GTIDPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    case mariadb(MariaDBGTIDPosition)
    case mysql(MySQLGTIDSet)

    public var description: String {
        switch self {
        case .mariadb(let position): position.description
        case .mysql(let set): set.description
        }
    }
}

/// A resume point in a MySQL/MariaDB source, always at a transaction boundary:
/// the binlog continues at `coordinates`, and `gtidPosition` (when known) is the GTID state
/// after the last transaction before it.
///
/// Positions are totally ordered by coordinates, then `snapshotStep`: snapshot chunks delivered
/// while the source is between transactions sit after the transaction at their coordinates and
/// before the next one, numbered from 1.
public struct BinlogPosition: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var coordinates: BinlogCoordinates
    public var gtidPosition: GTIDPosition?
    /// 0 for a source transaction; n for the n-th snapshot chunk delivered after it.
    public var snapshotStep: UInt32

    public init(coordinates: BinlogCoordinates, gtidPosition: GTIDPosition?, snapshotStep: UInt32 = 0) {
        self.coordinates = coordinates
        self.gtidPosition = gtidPosition
        self.snapshotStep = snapshotStep
    }

    public var description: String {
        let step = snapshotStep > 0 ? " +chunk \(snapshotStep)" : ""
        if let gtidPosition { return "\(coordinates)\(step) (gtid \(gtidPosition))" }
        return "\(coordinates)\(step)"
    }

    /// Order in the stream; the GTID state does not take part.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.coordinates != rhs.coordinates { return lhs.coordinates < rhs.coordinates }
        return lhs.snapshotStep < rhs.snapshotStep
    }

    /// Same place in the stream (the GTID state may be known on one side only).
    public func isSamePlace(as other: Self) -> Bool {
        coordinates == other.coordinates && snapshotStep == other.snapshotStep
    }

    enum CodingKeys: String, CodingKey { case coordinates, gtidPosition, snapshotStep }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        coordinates = try container.decode(BinlogCoordinates.self, forKey: .coordinates)
        gtidPosition = try container.decodeIfPresent(GTIDPosition.self, forKey: .gtidPosition)
        snapshotStep = try container.decodeIfPresent(UInt32.self, forKey: .snapshotStep) ?? 0
    }
}

extension BinlogPosition {
    /// The position as one number that orders like positions, for targets that keep a row or
    /// document version (search engines' external versions, ClickHouse's ReplacingMergeTree):
    /// `(file sequence: 20 bits)(offset: 35 bits)(snapshot step: 8 bits)`, positive within a
    /// 64-bit signed integer. Offsets beyond 32 GiB or steps beyond 255 saturate.
    public var version: Int64 {
        let file = Int64(min(coordinates.fileSequence ?? 0, (1 << 20) - 1))
        let offset = Int64(min(coordinates.offset, (1 << 35) - 1))
        let step = Int64(min(snapshotStep, 255))
        return file << 43 | offset << 8 | step
    }
}

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
public struct BinlogPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    public var coordinates: BinlogCoordinates
    public var gtidPosition: GTIDPosition?

    public init(coordinates: BinlogCoordinates, gtidPosition: GTIDPosition?) {
        self.coordinates = coordinates
        self.gtidPosition = gtidPosition
    }

    public var description: String {
        if let gtidPosition { return "\(coordinates) (gtid \(gtidPosition))" }
        return coordinates.description
    }
}

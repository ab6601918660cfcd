import FerryCore

/// Where following a binlog begins. Every form means "after": nothing at or before the named
/// position is delivered, nothing after it is missed.
public enum StartPosition: Sendable, Equatable, CustomStringConvertible {
    /// The oldest binlog file the server still has.
    case earliest
    /// The server's current end of log.
    case current
    /// A `FILE:OFFSET` transaction boundary, e.g. `mariadb-bin.000003:1234`.
    case coordinates(BinlogCoordinates)
    /// A GTID position: MariaDB `domain-server-seq[,…]` or a MySQL GTID set.
    case gtid(GTIDPosition)

    /// Parses the forms `ferry tail --from` accepts.
    public init(parsing text: String) throws {
        let trimmed = Substring(text).trimmingSpaces
        switch trimmed.lowercased() {
        case "earliest": self = .earliest
        case "current", "latest": self = .current
        default:
            if let coordinates = BinlogCoordinates(parsing: trimmed), trimmed.contains(".") || !trimmed.contains("-") {
                self = .coordinates(coordinates)
            } else if let position = MariaDBGTIDPosition(parsing: trimmed), !position.gtids.isEmpty {
                self = .gtid(.mariadb(position))
            } else if trimmed.contains(":"), let set = MySQLGTIDSet(parsing: trimmed), !set.intervals.isEmpty {
                self = .gtid(.mysql(set))
            } else {
                throw FerryError(
                    code: .cliInvalidPosition,
                    message: "'\(text)' is not a position",
                    fix: "use earliest, current, FILE:OFFSET (mariadb-bin.000003:1234), a MariaDB GTID position (0-1-100[,1-2-7]) or a MySQL GTID set (uuid:1-100)")
            }
        }
    }

    public var description: String {
        switch self {
        case .earliest: "earliest"
        case .current: "current"
        case .coordinates(let coordinates): coordinates.description
        case .gtid(let position): position.description
        }
    }
}

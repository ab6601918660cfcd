/// A MariaDB global transaction id: `domain-server-sequence`.
public struct MariaDBGTID: Sendable, Hashable, Codable, CustomStringConvertible {
    public var domain: UInt32
    public var serverID: UInt32
    public var sequence: UInt64

    public init(domain: UInt32, serverID: UInt32, sequence: UInt64) {
        self.domain = domain
        self.serverID = serverID
        self.sequence = sequence
    }

    /// Parses `0-1-100`.
    public init?(parsing text: Substring) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let domain = UInt32(parts[0]), let server = UInt32(parts[1]), let sequence = UInt64(parts[2])
        else { return nil }
        self.init(domain: domain, serverID: server, sequence: sequence)
    }

    public var description: String { "\(domain)-\(serverID)-\(sequence)" }
}

/// A MariaDB replication position: the last GTID applied in each replication domain,
/// as in `@@gtid_slave_pos` (`0-1-100,1-2-7`).
public struct MariaDBGTIDPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One GTID per domain, ordered by domain.
    public private(set) var gtids: [MariaDBGTID]

    public init(_ gtids: [MariaDBGTID] = []) {
        self.gtids = []
        for gtid in gtids { advance(to: gtid) }
    }

    /// Parses a comma-separated list; the empty string is the empty position.
    public init?(parsing text: Substring) {
        var result = MariaDBGTIDPosition()
        for part in text.split(separator: ",") {
            guard let gtid = MariaDBGTID(parsing: part.trimmingSpaces) else { return nil }
            if result.gtids.contains(where: { $0.domain == gtid.domain }) { return nil }
            result.advance(to: gtid)
        }
        self = result
    }

    /// Records `gtid` as the latest of its domain.
    public mutating func advance(to gtid: MariaDBGTID) {
        if let index = gtids.firstIndex(where: { $0.domain == gtid.domain }) {
            gtids[index] = gtid
        } else {
            gtids.append(gtid)
            gtids.sort { $0.domain < $1.domain }
        }
    }

    /// True when `gtid` is at or before this position in its domain.
    public func contains(_ gtid: MariaDBGTID) -> Bool {
        guard let current = gtids.first(where: { $0.domain == gtid.domain }) else { return false }
        return gtid.sequence <= current.sequence
    }

    public var description: String { gtids.map(\.description).joined(separator: ",") }
}

extension Substring {
    /// The substring without leading and trailing whitespace.
    public var trimmingSpaces: Substring {
        var result = self
        while result.first?.isWhitespace == true { result.removeFirst() }
        while result.last?.isWhitespace == true { result.removeLast() }
        return result
    }
}

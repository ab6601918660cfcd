/// A MySQL GTID set: for each source server UUID, the transaction numbers executed,
/// as disjoint half-open intervals (`3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9`).
public struct MySQLGTIDSet: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A server UUID as its 16 bytes.
    public struct ServerUUID: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
        public var bytes: [UInt8]

        public init?(bytes: [UInt8]) {
            guard bytes.count == 16 else { return nil }
            self.bytes = bytes
        }

        public init?(parsing text: Substring) {
            var bytes: [UInt8] = []
            var pending: UInt8? = nil
            for ch in text.utf8 where ch != UInt8(ascii: "-") {
                guard let nibble = hexValue(ch) else { return nil }
                if let high = pending {
                    bytes.append(high << 4 | nibble)
                    pending = nil
                } else {
                    pending = nibble
                }
            }
            guard pending == nil, bytes.count == 16 else { return nil }
            self.bytes = bytes
        }

        public var description: String {
            let hex = bytes.map { byte -> String in
                let digits = Array("0123456789abcdef".utf8)
                return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
            }
            return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]]
                .map { $0.joined() }.joined(separator: "-")
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
    }

    /// Half-open interval `[start, end)` of transaction numbers.
    public struct Interval: Sendable, Hashable, Codable {
        public var start: UInt64
        public var end: UInt64

        public init(start: UInt64, end: UInt64) {
            self.start = start
            self.end = end
        }
    }

    /// Intervals per server, each list sorted and coalesced.
    public private(set) var intervals: [ServerUUID: [Interval]]

    public init() { intervals = [:] }

    /// Parses MySQL's text form; whitespace and newlines (as `@@gtid_executed` prints) are ignored.
    public init?(parsing text: Substring) {
        self.init()
        let compact = text.filter { !$0.isWhitespace }
        for part in compact.split(separator: ",") {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2, let uuid = ServerUUID(parsing: fields[0]) else { return nil }
            for range in fields.dropFirst() {
                let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count == 1 || bounds.count == 2,
                      let first = UInt64(bounds[0]), first > 0,
                      let last = bounds.count == 2 ? UInt64(bounds[1]) : first, last >= first, last < UInt64.max
                else { return nil }
                insert(uuid: uuid, interval: Interval(start: first, end: last + 1))
            }
        }
    }

    /// Adds one transaction.
    public mutating func add(uuid: ServerUUID, transaction: UInt64) {
        insert(uuid: uuid, interval: Interval(start: transaction, end: transaction + 1))
    }

    /// Adds an interval, keeping the list sorted and coalesced.
    public mutating func insert(uuid: ServerUUID, interval: Interval) {
        var list = intervals[uuid] ?? []
        list.append(interval)
        list.sort { $0.start < $1.start }
        var merged: [Interval] = []
        for item in list {
            if let last = merged.last, item.start <= last.end {
                merged[merged.count - 1].end = max(last.end, item.end)
            } else {
                merged.append(item)
            }
        }
        intervals[uuid] = merged
    }

    public func contains(uuid: ServerUUID, transaction: UInt64) -> Bool {
        intervals[uuid]?.contains { $0.start <= transaction && transaction < $0.end } ?? false
    }

    public var description: String {
        intervals.keys.sorted().map { uuid in
            let ranges = intervals[uuid]!.map { $0.end - 1 == $0.start ? "\($0.start)" : "\($0.start)-\($0.end - 1)" }
            return ([uuid.description] + ranges).joined(separator: ":")
        }.joined(separator: ",")
    }
}

private func hexValue(_ ch: UInt8) -> UInt8? {
    switch ch {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return ch - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return ch - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return ch - UInt8(ascii: "A") + 10
    default: return nil
    }
}

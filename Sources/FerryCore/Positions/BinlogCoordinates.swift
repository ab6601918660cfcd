/// A place in a MySQL/MariaDB binary log: file name and byte offset.
///
/// Ordered by the file's numeric suffix (`mariadb-bin.000012` after `.000009`), then offset,
/// which is the server's own order for files of one log.
public struct BinlogCoordinates: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var file: String
    public var offset: UInt64

    public init(file: String, offset: UInt64) {
        self.file = file
        self.offset = offset
    }

    /// Parses `FILE:OFFSET`, e.g. `mariadb-bin.000003:1234`.
    public init?(parsing text: Substring) {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
              let offset = UInt64(text[text.index(after: colon)...])
        else { return nil }
        let file = text[..<colon]
        guard !file.contains(where: { $0 == "/" || $0 == " " }) else { return nil }
        self.init(file: String(file), offset: offset)
    }

    public var description: String { "\(file):\(offset)" }

    /// The numeric extension of the file name, when it has one.
    public var fileSequence: UInt64? {
        // Over the UTF-8 bytes: sinks that version rows read this for every change.
        let utf8 = file.utf8
        guard let dot = utf8.lastIndex(of: UInt8(ascii: ".")), utf8.index(after: dot) != utf8.endIndex else { return nil }
        var sequence: UInt64 = 0
        for byte in utf8[utf8.index(after: dot)...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow) = sequence.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            sequence = sum
        }
        return sequence
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.file != rhs.file {
            if let l = lhs.fileSequence, let r = rhs.fileSequence, l != r { return l < r }
            return lhs.file < rhs.file
        }
        return lhs.offset < rhs.offset
    }
}

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
        guard let dot = file.lastIndex(of: ".") else { return nil }
        return UInt64(file[file.index(after: dot)...])
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.file != rhs.file {
            if let l = lhs.fileSequence, let r = rhs.fileSequence, l != r { return l < r }
            return lhs.file < rhs.file
        }
        return lhs.offset < rhs.offset
    }
}

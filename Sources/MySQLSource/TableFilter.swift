import FerryCore

/// Include/exclude globs over `database.table` (`*` any run, `?` one character; case-sensitive
/// like MySQL on Linux). With no include globs every table is included; excludes win.
public struct TableFilter: Sendable {
    public var include: [String]
    public var exclude: [String]

    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include
        self.exclude = exclude
    }

    public func includes(_ table: TableName) -> Bool {
        let name = table.description
        if exclude.contains(where: { Self.matches(glob: $0, name) }) { return false }
        return include.isEmpty || include.contains { Self.matches(glob: $0, name) }
    }

    /// Whether `text` matches `glob`. A glob without a dot applies to the database part:
    /// `shop` means `shop.*`.
    public static func matches(glob: String, _ text: String) -> Bool {
        let pattern = glob.contains(".") ? glob : glob + ".*"
        return match(Array(pattern.utf8)[...], Array(text.utf8)[...])
    }

    private static func match(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex, t = text.startIndex
        var starP: Int? = nil, starT = 0
        while t < text.endIndex {
            if p < pattern.endIndex, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") {
                starP = p
                starT = t
                p += 1
            } else if let star = starP {
                p = star + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}

/// Globs over names: `*` any run, `?` one character; case-sensitive like MySQL on Linux.
public enum TableGlob {
    /// Whether `database.table` matches `glob`. A glob without a dot applies to the database:
    /// `shop` means `shop.*`.
    public static func matches(_ glob: String, _ table: String) -> Bool {
        matchesName(glob.contains(".") ? glob : glob + ".*", table)
    }

    /// Whether `text` matches `glob` as a whole.
    public static func matchesName(_ glob: String, _ text: String) -> Bool {
        let pattern = Array(glob.utf8), text = Array(text.utf8)
        var p = 0, t = 0
        var starP: Int? = nil, starT = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
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
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

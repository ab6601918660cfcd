/// Durations for people: the largest unit and the one below it, rounded down (`3 d 4 h`,
/// `5 h 12 min`, `42 s`).
public enum DurationText {
    public static func span(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "—" }
        let total = Int(seconds)
        let units: [(name: String, size: Int)] = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
        let first = units.firstIndex { total >= $0.size } ?? units.count - 1
        var text = "\(total / units[first].size) \(units[first].name)"
        if first + 1 < units.count {
            let next = units[first + 1]
            let count = total % units[first].size / next.size
            if count > 0 { text += " \(count) \(next.name)" }
        }
        return text
    }
}

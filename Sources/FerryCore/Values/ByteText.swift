/// Sizes for people in binary units with one decimal: `512 B`, `1.5 KiB`, `3.2 GiB`.
public enum ByteText {
    public static func binary(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var size = Double(value), unit = 0
        while abs(size) >= 1024, unit < units.count - 1 {
            size /= 1024
            unit += 1
        }
        guard unit > 0 else { return "\(value) B" }
        let tenths = Int((size * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10)) \(units[unit])"
    }
}

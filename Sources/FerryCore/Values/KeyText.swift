/// Hexadecimal text to bytes, for keys targets hand back as hex (`HEX(col)`, `encode(col, 'hex')`).
public enum HexBytes {
    /// Two digits per byte; a stray odd digit at the end is ignored, a non-digit pair reads as 0.
    public static func decode(_ text: some StringProtocol) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}

extension Value {
    /// A key a target hands back as text, as the value to name it by in source SQL: a whole number
    /// when it reads as one, else text.
    public init(keyText text: String) {
        if let number = Int64(text) { self = .int(number) } else if let number = UInt64(text) { self = .uint(number) } else { self = .string(text) }
    }
}

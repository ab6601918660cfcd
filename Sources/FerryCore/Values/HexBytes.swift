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

import NIOCore

/// MySQL's binary DECIMAL (`decimal2bin`): groups of nine digits in four big-endian bytes, a
/// shorter leading/trailing group for the remaining digits, sign in the top bit (flipped), and
/// negative numbers stored with every byte inverted.
enum DecimalDecoder {
    private static let bytesForDigits = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]

    static func byteCount(precision: Int, scale: Int) -> Int {
        let integer = precision - scale
        return integer / 9 * 4 + bytesForDigits[integer % 9] + scale / 9 * 4 + bytesForDigits[scale % 9]
    }

    /// Decodes to text with exactly `scale` fractional digits, e.g. `-12.50`.
    static func decode(from buffer: inout ByteBuffer, precision: Int, scale: Int) throws -> String {
        guard precision > 0, precision <= 65, scale >= 0, scale <= 30, scale <= precision else {
            throw BinlogDecodingError(.invalid("DECIMAL(\(precision),\(scale)) is not a valid column definition"))
        }
        let size = byteCount(precision: precision, scale: scale)
        guard buffer.readableBytes >= size else {
            throw BinlogDecodingError(.truncated(needed: size, available: buffer.readableBytes))
        }
        let integerDigits = precision - scale
        let text = buffer.withUnsafeReadableBytes { raw -> String in
            let negative = raw[0] & 0x80 == 0
            let mask: UInt8 = negative ? 0xFF : 0
            var offset = 0
            func group(_ count: Int) -> UInt32 {
                var value: UInt32 = 0
                for index in 0..<count {
                    var byte = raw[offset + index] ^ mask
                    if offset + index == 0 { byte ^= 0x80 }
                    value = value << 8 | UInt32(byte)
                }
                offset += count
                return value
            }
            var text: [UInt8] = []
            text.reserveCapacity(precision + 3)
            if negative { text.append(UInt8(ascii: "-")) }
            var wroteInteger = false
            func appendGroup(_ value: UInt32, digits: Int, pad: Bool) {
                var chars = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
                var rest = value
                for position in stride(from: digits - 1, through: 0, by: -1) {
                    chars[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                if pad {
                    text.append(contentsOf: chars)
                } else if let first = chars.firstIndex(where: { $0 != UInt8(ascii: "0") }) {
                    text.append(contentsOf: chars[first...])
                    wroteInteger = true
                }
            }
            let leading = integerDigits % 9
            if leading > 0 {
                appendGroup(group(bytesForDigits[leading]) % 1_000_000_000, digits: leading, pad: false)
            }
            for _ in 0..<(integerDigits / 9) {
                appendGroup(group(4), digits: 9, pad: wroteInteger)
            }
            if !wroteInteger { text.append(UInt8(ascii: "0")) }
            if scale > 0 {
                text.append(UInt8(ascii: "."))
                for _ in 0..<(scale / 9) { appendGroup(group(4), digits: 9, pad: true) }
                let trailing = scale % 9
                if trailing > 0 { appendGroup(group(bytesForDigits[trailing]), digits: trailing, pad: true) }
            }
            return String(decoding: text, as: UTF8.self)
        }
        buffer.moveReaderIndex(forwardBy: size)
        return text
    }
}

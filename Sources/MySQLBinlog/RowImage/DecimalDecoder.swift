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
        // Sign, every digit, the point: at most 67 bytes, written once with no intermediate arrays.
        let text = buffer.withUnsafeReadableBytes { raw in
            String(unsafeUninitializedCapacity: precision + 3) { out in
                let negative = raw[0] & 0x80 == 0
                let mask: UInt8 = negative ? 0xFF : 0
                var offset = 0
                var length = 0
                if negative {
                    out[0] = UInt8(ascii: "-")
                    length = 1
                }
                let integerStart = length
                // Groups in order: the short leading integer group, whole integer groups, whole
                // fraction groups, the short trailing fraction group.
                let leading = integerDigits % 9, trailing = scale % 9
                let groupCount = (leading > 0 ? 1 : 0) + integerDigits / 9 + scale / 9 + (trailing > 0 ? 1 : 0)
                for groupIndex in 0..<groupCount {
                    let digits: Int
                    let isFraction: Bool
                    if groupIndex == 0 && leading > 0 {
                        digits = leading
                        isFraction = false
                    } else if groupIndex < (leading > 0 ? 1 : 0) + integerDigits / 9 {
                        digits = 9
                        isFraction = false
                    } else {
                        digits = groupIndex == groupCount - 1 && trailing > 0 ? trailing : 9
                        isFraction = true
                    }
                    if isFraction && groupIndex == groupCount - (trailing > 0 ? 1 : 0) - scale / 9 {
                        if length == integerStart {
                            out[length] = UInt8(ascii: "0")
                            length += 1
                        }
                        out[length] = UInt8(ascii: ".")
                        length += 1
                    }
                    let byteCount = digits == 9 ? 4 : bytesForDigits[digits]
                    var value: UInt32 = 0
                    for index in 0..<byteCount {
                        var byte = raw[offset + index] ^ mask
                        if offset + index == 0 { byte ^= 0x80 }
                        value = value << 8 | UInt32(byte)
                    }
                    offset += byteCount
                    var divisor: UInt32 = 1
                    for _ in 1..<digits { divisor *= 10 }
                    var rest = value % (divisor * 10)
                    var started = isFraction || length > integerStart
                    for _ in 0..<digits {
                        let digit = rest / divisor
                        rest %= divisor
                        divisor /= 10
                        if digit != 0 { started = true }
                        if started {
                            out[length] = UInt8(ascii: "0") &+ UInt8(digit)
                            length += 1
                        }
                    }
                }
                if length == integerStart {
                    out[length] = UInt8(ascii: "0")
                    length += 1
                }
                return length
            }
        }
        buffer.moveReaderIndex(forwardBy: size)
        return text
    }
}

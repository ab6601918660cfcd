import NIOCore

/// MySQL's binary DECIMAL (`decimal2bin`): groups of nine digits in four big-endian bytes, a
/// shorter leading/trailing group for the remaining digits, sign in the top bit (flipped), and
/// negative numbers stored with every byte inverted.
enum DecimalDecoder {
    private static let bytesForDigits = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    private static let powersOfTen: [UInt32] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000]

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
        let trailing = scale % 9
        // Sign, every digit, the point: at most 67 bytes, written once with no intermediate arrays.
        let text = buffer.withUnsafeReadableBytes { raw in
            String(unsafeUninitializedCapacity: precision + 3) { out in
                let negative = raw[0] & 0x80 == 0
                let mask: UInt8 = negative ? 0xFF : 0
                var offset = 0
                /// The next group of `digits` digits (its bytes big-endian, sign bit and negation
                /// undone); a group holding more (corrupt bytes) keeps its last `digits`.
                func group(_ digits: Int) -> UInt32 {
                    let count = digits == 9 ? 4 : bytesForDigits[digits]
                    var value: UInt32 = 0
                    for index in offset..<offset + count {
                        var byte = raw[index] ^ mask
                        if index == 0 { byte ^= 0x80 }
                        value = value << 8 | UInt32(byte)
                    }
                    offset += count
                    return value % powersOfTen[digits]
                }
                guard let base = out.baseAddress else { return 0 }
                var end = base
                if negative {
                    end.initialize(to: UInt8(ascii: "-"))
                    end += 1
                }
                // Integer part: the short leading group, then whole groups; zeros before the
                // first nonzero digit are left out, and a zero integer part is one "0".
                var started = false
                var remaining = integerDigits
                while remaining > 0 {
                    let digits = remaining % 9 == 0 ? 9 : remaining % 9
                    remaining -= digits
                    let value = group(digits)
                    if started {
                        Self.write(value, digits: digits, at: &end)
                    } else if value != 0 {
                        Self.write(value, digits: Self.digitCount(value, atMost: digits), at: &end)
                        started = true
                    }
                }
                if !started {
                    end.initialize(to: UInt8(ascii: "0"))
                    end += 1
                }
                if scale > 0 {
                    end.initialize(to: UInt8(ascii: "."))
                    end += 1
                    for _ in 0..<scale / 9 { Self.write(group(9), digits: 9, at: &end) }
                    if trailing > 0 { Self.write(group(trailing), digits: trailing, at: &end) }
                }
                return end - base
            }
        }
        buffer.moveReaderIndex(forwardBy: size)
        return text
    }

    /// Writes the last `digits` decimal digits of `value`, zero-padded, and moves `end` past them.
    /// Division by the constant 10 compiles to a multiplication.
    @inline(__always)
    private static func write(_ value: UInt32, digits: Int, at end: inout UnsafeMutablePointer<UInt8>) {
        var rest = value
        var index = digits
        while index > 0 {
            index -= 1
            (end + index).initialize(to: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        }
        end += digits
    }

    /// How many digits `value` has, at most `limit` (a group holds `limit` digits).
    @inline(__always)
    private static func digitCount(_ value: UInt32, atMost limit: Int) -> Int {
        var count = 1
        var threshold: UInt32 = 10
        while count < limit, value >= threshold {
            count += 1
            threshold &*= 10
        }
        return count
    }
}

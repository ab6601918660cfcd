/// Writes JSON through a pointer into memory sized beforehand by an upper bound, so each byte
/// costs a store rather than an array append (capacity and uniqueness checks, reference
/// counting). `JSONCursor.appending(bound:to:)` gives one such region and appends what was
/// written; every JSON writer in Ferry goes through it.
public struct JSONCursor {
    @usableFromInline var position: UnsafeMutablePointer<UInt8>

    @inlinable init(_ position: UnsafeMutablePointer<UInt8>) {
        self.position = position
    }

    /// Runs `body` on a region of at least `bound` bytes and appends what it wrote to `out`.
    /// `body` must write at most `bound` bytes.
    @inlinable
    public static func appending(bound: Int, to out: inout [UInt8], _ body: (inout JSONCursor) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { region in
            let start = region.baseAddress!
            var cursor = JSONCursor(start)
            body(&cursor)
            out.append(contentsOf: UnsafeBufferPointer(start: start, count: cursor.position - start))
        }
    }

    @inlinable public mutating func byte(_ byte: UInt8) {
        position.initialize(to: byte)
        position += 1
    }

    @inlinable public mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        position.update(from: base, count: bytes.count)
        position += bytes.count
    }

    @inlinable public mutating func bytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { self.bytes($0) }
    }

    @inlinable public mutating func ascii(_ text: StaticString) {
        text.withUTF8Buffer { bytes($0) }
    }

    /// The two ASCII digits of 0...99, for writing numbers two digits per division.
    @usableFromInline static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// Writes the two digits of `value` (0...99).
    @inlinable mutating func pair(_ value: Int) {
        let digits = Self.digitPairs.utf8Start + 2 * value
        position[0] = digits[0]
        position[1] = digits[1]
        position += 2
    }

    /// Decimal digits of `value`.
    @inlinable static func digitCount(_ value: UInt64) -> Int {
        var count = 1
        var threshold: UInt64 = 10
        while count < 20 && value >= threshold {
            count += 1
            threshold = threshold &* 10
        }
        return count
    }

    /// At most 20 bytes.
    @inlinable public mutating func unsigned(_ value: UInt64) {
        if value < 10 {
            return byte(UInt8(ascii: "0") &+ UInt8(value))
        }
        if value < 100 { return pair(Int(value)) }
        let end = position + Self.digitCount(value)
        var cursor = end
        var remaining = value
        let pairs = Self.digitPairs.utf8Start
        while remaining >= 100 {
            let pair = Int(remaining % 100) * 2
            remaining /= 100
            cursor -= 2
            cursor[0] = pairs[pair]
            cursor[1] = pairs[pair + 1]
        }
        if remaining >= 10 {
            cursor -= 2
            cursor[0] = pairs[Int(remaining) * 2]
            cursor[1] = pairs[Int(remaining) * 2 + 1]
        } else {
            cursor -= 1
            cursor[0] = UInt8(ascii: "0") &+ UInt8(remaining)
        }
        position = end
    }

    /// At most 20 bytes.
    @inlinable public mutating func integer(_ value: Int64) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        unsigned(value.magnitude)
    }

    /// `value` zero-padded to at least `width` digits: at most max(width, 20) bytes.
    @inlinable public mutating func padded(_ value: UInt64, width: Int) {
        // Months, days, hours, minutes and seconds: the common case, one table lookup.
        if width == 2 && value < 100 { return pair(Int(value)) }
        let digits = Self.digitCount(value)
        for _ in digits..<max(digits, width) { byte(UInt8(ascii: "0")) }
        unsigned(value)
    }

    /// `.` and the first `fsp` digits of a 6-digit microsecond fraction; nothing for `fsp` 0. At
    /// most 7 bytes.
    @inlinable public mutating func fraction(_ microseconds: UInt32, fsp: UInt8) {
        guard fsp > 0 else { return }
        byte(UInt8(ascii: "."))
        var divisor: UInt32 = 100_000
        var remaining = microseconds
        for _ in 0..<min(Int(fsp), 6) {
            byte(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining / divisor))
            remaining %= divisor
            divisor /= 10
        }
    }

    /// Bytes a quoted, escaped string of `count` UTF-8 bytes can take.
    @inlinable public static func stringBound(_ count: Int) -> Int { 2 + 6 * count }

    /// Whether any byte is a control character, `"` or `\\`: eight bytes at a time (SWAR).
    @inlinable static func needsEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let raw = UnsafeRawPointer(base)
        var index = 0
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= bytes.count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // A byte below 0x20, or equal to 0x22 or 0x5C, sets its high bit in one of these.
            let control = (word &- ones &* 0x20) & ~word
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let found = control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if found & highs != 0 { return true }
            index += 8
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte < 0x20 || byte == 0x22 || byte == 0x5C { return true }
            index += 1
        }
        return false
    }

    /// A JSON string literal with the escapes RFC 8259 requires; at most `stringBound(count)`.
    @inlinable public mutating func string(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        byte(UInt8(ascii: "\""))
        escaped(utf8: bytes)
        byte(UInt8(ascii: "\""))
    }

    /// The inside of a JSON string literal: at most 6 bytes per input byte.
    @inlinable public mutating func escaped(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        if !Self.needsEscape(bytes) { return self.bytes(bytes) }
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") { continue }
            if runStart < index { self.bytes(UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
            runStart = index + 1
            self.byte(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): self.byte(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): self.byte(UInt8(ascii: "\\"))
            case 0x0A: self.byte(UInt8(ascii: "n"))
            case 0x0D: self.byte(UInt8(ascii: "r"))
            case 0x09: self.byte(UInt8(ascii: "t"))
            case 0x08: self.byte(UInt8(ascii: "b"))
            case 0x0C: self.byte(UInt8(ascii: "f"))
            default:
                let hex: StaticString = "0123456789abcdef"
                self.byte(UInt8(ascii: "u"))
                self.byte(UInt8(ascii: "0"))
                self.byte(UInt8(ascii: "0"))
                self.byte(hex.utf8Start[Int(byte >> 4)])
                self.byte(hex.utf8Start[Int(byte & 0xF)])
            }
        }
        if runStart < bytes.count { self.bytes(UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }

    @inlinable public mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { string(utf8: $0) }
    }

    /// Bytes the base64 of `count` bytes takes.
    @inlinable public static func base64Bound(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Standard base64 (RFC 4648, with padding), without quotes.
    @inlinable public mutating func base64(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { base64($0) }
    }

    @inlinable public mutating func base64(_ bytes: UnsafeBufferPointer<UInt8>) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let table = alphabet.utf8Start
        do {
            var index = 0
            while index + 3 <= bytes.count {
                let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                byte(table[Int(chunk >> 18 & 63)])
                byte(table[Int(chunk >> 12 & 63)])
                byte(table[Int(chunk >> 6 & 63)])
                byte(table[Int(chunk & 63)])
                index += 3
            }
            let rest = bytes.count - index
            if rest == 1 {
                let chunk = UInt32(bytes[index]) << 16
                byte(table[Int(chunk >> 18 & 63)])
                byte(table[Int(chunk >> 12 & 63)])
                byte(UInt8(ascii: "="))
                byte(UInt8(ascii: "="))
            } else if rest == 2 {
                let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
                byte(table[Int(chunk >> 18 & 63)])
                byte(table[Int(chunk >> 12 & 63)])
                byte(table[Int(chunk >> 6 & 63)])
                byte(UInt8(ascii: "="))
            }
        }
    }
}

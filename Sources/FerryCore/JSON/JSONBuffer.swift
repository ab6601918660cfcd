/// Low-level appenders for writing JSON into a byte array without Foundation.
///
/// Every function appends to `out`; none allocates beyond growing `out`, except float
/// formatting, which uses the standard library's shortest round-trip text.
public enum JSONBuffer {
    @inlinable
    public static func appendASCII(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    public static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        JSONCursor.appending(bound: 20, to: &out) { $0.integer(value) }
    }

    public static func appendUnsigned(_ value: UInt64, to out: inout [UInt8]) {
        JSONCursor.appending(bound: 20, to: &out) { $0.unsigned(value) }
    }

    /// Appends `value` zero-padded to at least `width` digits.
    public static func appendPadded(_ value: UInt64, width: Int, to out: inout [UInt8]) {
        JSONCursor.appending(bound: max(width, 20), to: &out) { $0.padded(value, width: width) }
    }

    /// Appends the first `fsp` digits of a 6-digit microsecond fraction, preceded by `.`.
    public static func appendFraction(_ microseconds: UInt32, fsp: UInt8, to out: inout [UInt8]) {
        JSONCursor.appending(bound: 7, to: &out) { $0.fraction(microseconds, fsp: fsp) }
    }

    /// Appends a JSON string literal with the escapes RFC 8259 requires.
    public static func appendString(_ value: String, to out: inout [UInt8]) {
        var value = value
        value.withUTF8 { appendString(utf8: $0, to: &out) }
    }

    /// Long strings are escaped a part at a time, so the region stays small.
    public static func appendString(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let part = 8 * 1024
        if bytes.count <= part {
            return JSONCursor.appending(bound: JSONCursor.stringBound(bytes.count), to: &out) { $0.string(utf8: bytes) }
        }
        out.append(UInt8(ascii: "\""))
        for start in stride(from: 0, to: bytes.count, by: part) {
            let piece = UnsafeBufferPointer(rebasing: bytes[start..<min(start + part, bytes.count)])
            JSONCursor.appending(bound: 6 * piece.count, to: &out) { $0.escaped(utf8: piece) }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends standard base64 (RFC 4648, with padding) of `bytes`, without quotes; a part at a
    /// time for large values.
    public static func appendBase64(_ bytes: [UInt8], to out: inout [UInt8]) {
        let part = 3 * 4096
        bytes.withUnsafeBufferPointer { bytes in
            for start in stride(from: 0, to: bytes.count, by: part) {
                let piece = UnsafeBufferPointer(rebasing: bytes[start..<min(start + part, bytes.count)])
                JSONCursor.appending(bound: JSONCursor.base64Bound(piece.count), to: &out) { $0.base64(piece) }
            }
        }
    }
}

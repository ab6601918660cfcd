import FerryCore
import NIOCore

/// Values in PostgreSQL's COPY text format: tab-separated columns, `\N` for NULL, backslash
/// escapes, bytea as `\\x…` — the fast path for upserts (COPY into a staging table, then merge).
enum PostgresCopyText {
    static func append(_ value: Value, to out: inout ByteBuffer) {
        switch value {
        case .null, .absent: out.writeStaticString("\\N")
        case .int(let v): out.writeString(String(v))
        case .uint(let v): out.writeString(String(v))
        case .float(let v): out.writeString(v.description)
        case .double(let v): out.writeString(v.description)
        case .decimal(let text): out.writeString(text)
        case .string(let text), .json(let text), .enumeration(let text): appendEscaped(text, to: &out)
        case .set(let members): appendEscaped(members.joined(separator: ","), to: &out)
        case .bytes(let bytes): appendHex(bytes, to: &out)
        case .year(let year): out.writeString(String(year))
        case .bit(let bits, _): out.writeString(String(bits))
        case .geometry(let geometry):
            var bytes: [UInt8] = []
            withUnsafeBytes(of: geometry.srid.littleEndian) { bytes.append(contentsOf: $0) }
            appendHex(bytes + geometry.wkb, to: &out)
        case .time(let time):
            var text = time.negative ? "-" : ""
            text += "\(time.hours):\(time.minutes):\(time.seconds).\(time.microseconds)"
            out.writeString(text.replacingMicroseconds(time.microseconds))
        case .date, .datetime, .timestamp:
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            if json.count >= 2, json.first == UInt8(ascii: "\"") { out.writeBytes(json.dropFirst().dropLast()) } else { out.writeStaticString("\\N") }
        }
    }

    static func appendEscaped(_ text: String, to out: inout ByteBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.writeStaticString("\\\\")
            case 0x09: out.writeStaticString("\\t")
            case 0x0A: out.writeStaticString("\\n")
            case 0x0D: out.writeStaticString("\\r")
            default: out.writeInteger(byte)
            }
        }
    }

    static func appendHex(_ bytes: [UInt8], to out: inout ByteBuffer) {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        out.writeStaticString("\\\\x")
        for byte in bytes {
            out.writeInteger(digits[Int(byte >> 4)])
            out.writeInteger(digits[Int(byte & 15)])
        }
    }
}

private extension String {
    /// `H:M:S.u` with the microseconds zero-padded to six digits (interval input).
    func replacingMicroseconds(_ microseconds: UInt32) -> String {
        guard let dot = lastIndex(of: ".") else { return self }
        let digits = String(microseconds)
        return String(self[...dot]) + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }
}

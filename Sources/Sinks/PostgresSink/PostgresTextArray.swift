import FerryCore
import NIOCore
import PostgresWire

/// One column of a batch as a PostgreSQL `text[]` parameter (binary array format, NULL elements
/// allowed), so a multi-row statement binds one parameter per column instead of one per cell and
/// is parsed and planned once: `INSERT … SELECT … FROM unnest($1::text[], $2::text[], …)`.
/// Each value is in PostgreSQL's text input form for its column type (docs/sinks/postgres.md).
struct PostgresTextArray {
    static let textOID: UInt32 = 25
    static let textArrayOID: UInt32 = 1009

    /// Each element: its length (Int32, big-endian; -1 for NULL), then its text.
    private var elements: [UInt8] = []
    private var count = 0
    private var hasNull = false

    init(capacity: Int) {
        elements.reserveCapacity(capacity * 16)
    }

    mutating func append(_ value: Value) {
        count += 1
        let start = elements.count
        for _ in 0..<4 { elements.append(0) }
        // The common kinds are written straight into the buffer; the rest go through `text`.
        switch value {
        case .null, .absent:
            markNull(at: start)
            return
        case .int(let number): JSONBuffer.appendInteger(number, to: &elements)
        case .uint(let number): JSONBuffer.appendUnsigned(number, to: &elements)
        case .decimal(var text), .string(var text), .json(var text), .enumeration(var text):
            text.withUTF8 { elements.append(contentsOf: $0) }
        default:
            guard let text = Self.text(value) else { return markNull(at: start) }
            elements.append(contentsOf: text.utf8)
        }
        let length = UInt32(elements.count - start - 4)
        elements[start] = UInt8(truncatingIfNeeded: length >> 24)
        elements[start + 1] = UInt8(truncatingIfNeeded: length >> 16)
        elements[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
        elements[start + 3] = UInt8(truncatingIfNeeded: length)
    }

    private mutating func markNull(at start: Int) {
        hasNull = true
        for offset in 0..<4 { elements[start + offset] = 0xFF }
    }

    /// The array as a binary `text[]` parameter.
    var parameter: FrontendMessage.Parameter {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(20 + elements.count)
        buffer.writeInteger(Int32(1))                     // dimensions
        buffer.writeInteger(Int32(hasNull ? 1 : 0))       // has NULLs
        buffer.writeInteger(Self.textOID)
        buffer.writeInteger(Int32(count))                 // length of the dimension
        buffer.writeInteger(Int32(1))                     // lower bound
        buffer.writeBytes(elements)
        return FrontendMessage.Parameter(typeOID: Self.textArrayOID, binary: true, value: buffer)
    }

    /// PostgreSQL's text input form of a value; `nil` for NULL (and for zero dates, which have no
    /// PostgreSQL form — NULL, as in the JSON form).
    static func text(_ value: Value) -> String? {
        switch value {
        case .null, .absent: return nil
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .float(let v): return floating(Double(v.description) ?? Double(v))
        case .double(let v): return floating(v)
        case .decimal(let text), .string(let text), .json(let text), .enumeration(let text), .sourceText(let text): return text
        case .bool(let truth): return truth ? "true" : "false"
        // PostgreSQL text holds only well-formed text (the source logged the repair).
        case .illFormedText(let bytes): return Value.repairedText(bytes)
        case .set(let members): return members.joined(separator: ",")
        case .bytes(let bytes): return hex(bytes)
        case .year(let year): return String(year)
        case .bit(let bits, _): return String(bits)
        case .geometry(let geometry):
            var bytes: [UInt8] = withUnsafeBytes(of: geometry.srid.littleEndian) { Array($0) }
            bytes += geometry.wkb
            return hex(bytes)
        case .time(let time):
            let minutes = time.minutes < 10 ? "0\(time.minutes)" : "\(time.minutes)"
            let seconds = time.seconds < 10 ? "0\(time.seconds)" : "\(time.seconds)"
            let micros = String(time.microseconds)
            return (time.negative ? "-" : "") + "\(time.hours):\(minutes):\(seconds)." + String(repeating: "0", count: max(0, 6 - micros.count)) + micros
        case .date, .datetime, .timestamp:
            var json: [UInt8] = []
            ValueJSON.append(value, to: &json)
            guard json.count >= 2, json.first == UInt8(ascii: "\"") else { return nil }
            return String(decoding: json.dropFirst().dropLast(), as: UTF8.self)
        }
    }

    static func floating(_ value: Double) -> String {
        value.isFinite ? "\(value)" : ValueJSON.nonFiniteText(value)
    }

    static let digits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        for (index, byte) in bytes.enumerated() {
            out[2 + index * 2] = digits[Int(byte >> 4)]
            out[3 + index * 2] = digits[Int(byte & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

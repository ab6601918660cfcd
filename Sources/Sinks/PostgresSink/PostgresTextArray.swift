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
            guard let text = PostgresText.form(value) else { return markNull(at: start) }
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
}

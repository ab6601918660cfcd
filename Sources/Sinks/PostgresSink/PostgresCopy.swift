import FerryCore
import NIOCore
import PostgresWire
import SinkSupport

/// New rows streamed with `COPY … FROM STDIN` (text format): PostgreSQL's fastest way in. The
/// connection sends each piece while the next is encoded, so ferry and PostgreSQL work at the
/// same time instead of taking turns. Values are in the same text input form as the `text[]`
/// parameters, escaped for COPY's text format.
enum PostgresCopy {
    /// Copies `rows` (their `columns`) into `table` of `schema`. A key that already exists fails
    /// the COPY with 23505, as a plain INSERT would.
    nonisolated(nonsending) static func copy(_ rows: [Row], columns: [Int], of tableSchema: TableSchema, into table: String, schema: String,
                     connection: PostgresWireConnection) async throws {
        let names = columns.map { doubleQuoted(tableSchema.columnName($0)) }.joined(separator: ", ")
        let sql = "COPY \(PostgresDialect(schema: schema).table(table)) (\(names)) FROM STDIN"
        let pieceBytes = 256 * 1024
        var next = rows.startIndex
        _ = try await connection.copyIn(sql, pieceBytes: pieceBytes) { piece in
            let limit = piece.writerIndex + pieceBytes
            while next < rows.endIndex, piece.writerIndex < limit {
                let row = rows[next]
                for (position, column) in columns.enumerated() {
                    if position > 0 { piece.writeInteger(UInt8(ascii: "\t")) }
                    append(row[column], to: &piece)
                }
                piece.writeInteger(UInt8(ascii: "\n"))
                next += 1
            }
            return next < rows.endIndex
        }
    }

    /// One value in COPY's text format: `\N` for NULL; backslash, tab, newline and carriage return
    /// escaped.
    static func append(_ value: Value, to out: inout ByteBuffer) {
        switch value {
        case .null, .absent: out.writeStaticString("\\N")
        case .int(let number):
            if number < 0 { out.writeInteger(UInt8(ascii: "-")) }
            appendDecimal(number.magnitude, to: &out)
        case .uint(let number): appendDecimal(number, to: &out)
        case .decimal(var text), .string(var text), .json(var text), .enumeration(var text):
            text.withUTF8 { appendEscaped($0, to: &out) }
        default:
            guard var text = PostgresText.form(value) else {
                out.writeStaticString("\\N")
                return
            }
            text.withUTF8 { appendEscaped($0, to: &out) }
        }
    }

    static func appendDecimal(_ number: UInt64, to out: inout ByteBuffer) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = number
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: digits[start...])))
        }
    }

    static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout ByteBuffer) {
        var start = 0
        for index in bytes.indices {
            let escaped: UInt8
            switch bytes[index] {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            out.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
            out.writeInteger(UInt8(ascii: "\\"))
            out.writeInteger(escaped)
            start = index + 1
        }
        out.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...])))
    }
}

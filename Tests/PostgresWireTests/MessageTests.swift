import NIOCore
import Testing
@testable import PostgresWire

@Suite struct MessageTests {
    func decodeAll(_ bytes: [UInt8], expectsSSLAnswer: Bool = false) throws -> [BackendMessage] {
        var decoder = BackendMessageDecoder(expectsSSLAnswer: expectsSSLAnswer)
        var buffer = ByteBuffer(bytes: bytes)
        var messages: [BackendMessage] = []
        while let message = try decoder.decodeMessage(from: &buffer) { messages.append(message) }
        #expect(buffer.readableBytes == 0)
        return messages
    }

    @Test func framesAndDecodesAQueryAnswer() throws {
        var bytes: [UInt8] = [UInt8(ascii: "S")]
        // SSL answer, then RowDescription with one column "n", DataRow ["42", NULL], CommandComplete, ReadyForQuery.
        bytes += [UInt8(ascii: "T"), 0, 0, 0, 0x1A, 0, 1, UInt8(ascii: "n"), 0] + [UInt8](repeating: 0, count: 18)
        bytes += [UInt8(ascii: "D"), 0, 0, 0, 16, 0, 2, 0, 0, 0, 2, UInt8(ascii: "4"), UInt8(ascii: "2"), 0xFF, 0xFF, 0xFF, 0xFF]
        bytes += [UInt8(ascii: "C"), 0, 0, 0, 13] + Array("SELECT 1".utf8) + [0]
        bytes += [UInt8(ascii: "Z"), 0, 0, 0, 5, UInt8(ascii: "T")]
        let messages = try decodeAll(bytes, expectsSSLAnswer: true)
        #expect(messages == [.sslAnswer(UInt8(ascii: "S")), .rowDescription(["n"]), .dataRow([ByteBuffer(string: "42"), nil]),
                             .commandComplete("SELECT 1"), .readyForQuery(transactionStatus: UInt8(ascii: "T"))])
    }

    @Test func waitsForWholeMessages() throws {
        var decoder = BackendMessageDecoder()
        let whole: [UInt8] = [UInt8(ascii: "Z"), 0, 0, 0, 5, UInt8(ascii: "I")]
        for cut in 0..<whole.count {
            var buffer = ByteBuffer(bytes: whole[..<cut])
            #expect(try decoder.decodeMessage(from: &buffer) == nil)
            #expect(buffer.readableBytes == cut)
        }
    }

    @Test func errorResponseFields() throws {
        var bytes: [UInt8] = [UInt8(ascii: "E"), 0, 0, 0, 0]
        var body: [UInt8] = []
        for (code, text) in [("S", "ERROR"), ("C", "23505"), ("M", "duplicate key value violates unique constraint \"t_pkey\""), ("D", "Key (id)=(1) already exists.")] {
            body += [UInt8(ascii: Unicode.Scalar(code)!)] + Array(text.utf8) + [0]
        }
        body.append(0)
        bytes += body
        let length = UInt32(4 + body.count)
        bytes[1] = UInt8(length >> 24); bytes[2] = UInt8(length >> 16 & 0xFF); bytes[3] = UInt8(length >> 8 & 0xFF); bytes[4] = UInt8(length & 0xFF)
        guard case .error(let error) = try decodeAll(bytes).first else {
            Issue.record("no error decoded")
            return
        }
        #expect(error.sqlState == "23505")
        #expect(error.description == "23505 duplicate key value violates unique constraint \"t_pkey\" (Key (id)=(1) already exists.)")
        #expect(PostgresWireError.server(error).isTransient == false)
        #expect(PostgresWireError.server(PostgresServerError(fields: [UInt8(ascii: "C"): "40P01"])).isTransient)
    }

    @Test func malformedInputIsAnErrorNotACrash() {
        #expect(throws: PostgresWireError.self) { try decodeAll([UInt8(ascii: "Z"), 0, 0, 0, 2]) }
        #expect(throws: PostgresWireError.self) { try decodeAll([UInt8(ascii: "Z"), 0x7F, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: PostgresWireError.self) { try decodeAll([UInt8(ascii: "D"), 0, 0, 0, 10, 0, 1, 0, 0, 0, 9]) }
        #expect(throws: PostgresWireError.self) { try decodeAll([UInt8(ascii: "?"), 0, 0, 0, 4]) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<64, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.count >= 5 { bytes[1] = 0; bytes[2] = 0 }
            var decoder = BackendMessageDecoder()
            var buffer = ByteBuffer(bytes: bytes)
            while let _ = try? decoder.decodeMessage(from: &buffer) {}
        }
    }

    @Test func extendedQueryBytes() {
        var buffer = ByteBuffer()
        FrontendMessage.extendedQuery("SELECT $1", parameters: [.text("x"), .text(nil)], into: &buffer)
        var expected: [UInt8] = []
        expected += [UInt8(ascii: "P"), 0, 0, 0, 25, 0] + Array("SELECT $1".utf8) + [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        expected += [UInt8(ascii: "B"), 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, UInt8(ascii: "x"), 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
        expected += [UInt8(ascii: "D"), 0, 0, 0, 6, UInt8(ascii: "P"), 0]
        expected += [UInt8(ascii: "E"), 0, 0, 0, 9, 0, 0, 0, 0, 0]
        expected += [UInt8(ascii: "S"), 0, 0, 0, 4]
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func startupAndSSLRequestBytes() {
        var buffer = ByteBuffer()
        FrontendMessage.sslRequest(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F])
        buffer.clear()
        FrontendMessage.startup(parameters: [("user", "u")], into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 16, 0, 3, 0, 0] + Array("user".utf8) + [0, UInt8(ascii: "u"), 0, 0])
    }
}

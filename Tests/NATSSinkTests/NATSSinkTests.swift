import NIOCore
import Testing
@testable import NATSSink

@Suite struct NATSProtocolTests {
    func decodeAll(_ wire: String) throws -> [NATSServerOperation] {
        var buffer = ByteBuffer(string: wire)
        var operations: [NATSServerOperation] = []
        while let operation = try NATSDecoder.decode(&buffer) { operations.append(operation) }
        #expect(buffer.readableBytes == 0)
        return operations
    }

    @Test func serverOperations() throws {
        let wire = "INFO {\"server_id\":\"x\",\"headers\":true}\r\nPING\r\n+OK\r\nMSG a.b 1 _INBOX.r 5\r\nhello\r\n"
            + "HMSG _INBOX.x.7 1 22 24\r\nNATS/1.0 503\r\nA: b\r\n\r\nhi\r\n-ERR 'Authorization Violation'\r\nPONG\r\n"
        #expect(try decodeAll(wire) == [
            .info("{\"server_id\":\"x\",\"headers\":true}"), .ping, .ok,
            .message(subject: "a.b", sid: "1", replyTo: "_INBOX.r", headers: nil, payload: Array("hello".utf8)),
            .message(subject: "_INBOX.x.7", sid: "1", replyTo: nil, headers: Array("NATS/1.0 503\r\nA: b\r\n\r\n".utf8), payload: Array("hi".utf8)),
            .error("Authorization Violation"), .pong,
        ])
        let headers = NATSDecoder.headers(Array("NATS/1.0 503\r\nNats-Msg-Id: f:1:0\r\n\r\n".utf8))
        #expect(headers.status == 503 && headers.fields == ["Nats-Msg-Id": "f:1:0"])
    }

    /// Byte by byte: nothing is returned until an operation is whole, and the reader index stays.
    @Test func partialOperationsWaitForMoreBytes() throws {
        let wire = Array("MSG s 1 3\r\nabc\r\nPING\r\n".utf8)
        var buffer = ByteBuffer()
        var decoded: [NATSServerOperation] = []
        for byte in wire {
            buffer.writeInteger(byte)
            let before = buffer.readerIndex
            if let operation = try NATSDecoder.decode(&buffer) { decoded.append(operation) } else { #expect(buffer.readerIndex == before) }
        }
        #expect(decoded == [.message(subject: "s", sid: "1", replyTo: nil, headers: nil, payload: Array("abc".utf8)), .ping])
    }

    @Test func malformedOperations() {
        for wire in ["BOGUS\r\n", "MSG a 1 x\r\n", "HMSG a 1 9 3\r\nabc\r\n", "MSG a 1 3\r\nabcd\r\n", "PING\rx"] {
            var buffer = ByteBuffer(string: wire)
            #expect(throws: NATSProtocolError.self, "\(wire)") { try NATSDecoder.decode(&buffer) }
        }
    }

    @Test func publishWithHeaders() {
        var buffer = ByteBuffer()
        NATSEncoder.publish(subject: "ferry.shop.orders", replyTo: "_INBOX.f.1", headerBlock: NATSEncoder.headerBlock([("Nats-Msg-Id", "b.000001:4:0")]), payload: Array("{}".utf8), into: &buffer)
        #expect(String(buffer: buffer) == "HPUB ferry.shop.orders _INBOX.f.1 39 41\r\nNATS/1.0\r\nNats-Msg-Id: b.000001:4:0\r\n\r\n{}\r\n")
    }

    @Test func acknowledgementsAreRecognisedWithoutAParser() {
        #expect(NATSSink.isAck(Array(#"{"stream":"FERRY","seq":42}"#.utf8)))
        #expect(NATSSink.isAck(Array(#"{"stream":"FERRY","seq":42,"duplicate":true}"#.utf8)))
        #expect(!NATSSink.isAck(Array(#"{"error":{"code":503,"description":"no responders"}}"#.utf8)))
        #expect(!NATSSink.isAck(Array(#"{"stream":"FERRY","seq":0,"error":{"code":10060}}"#.utf8)))
        #expect(!NATSSink.isAck([]))
    }
}

import FerryCore
import Logging
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

@Suite struct NATSSubjectTests {
    static let schema = TableSchema(name: TableName(database: "shop", table: "items"),
                                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false),
                                              ColumnSchema(name: "code", typeName: "varchar(20)", nullable: true),
                                              ColumnSchema(name: "v", typeName: "int", nullable: true)],
                                    primaryKey: [0, 1])

    func key(_ row: Row, _ columns: [Int] = [0, 1]) -> String {
        var out: [UInt8] = []
        NATSSubject.appendKey(row, key: columns, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// One token per row, never a dot, space or wildcard; different keys never share one.
    @Test func aKeyIsOneEscapedToken() {
        #expect(key([.int(1), .string("x")]) == "1,x")
        #expect(key([.int(-2), .string("a.b c*>")]) == "-2,a%2Eb%20c%2A%3E")
        #expect(key([.int(3), .string("")]) == "3,%")
        #expect(key([.int(3), .null]) == "3,~")
        #expect(key([.int(3), .string("~")]) == "3,%7E")
        #expect(key([.int(3), .string("%")]) == "3,%25")
        #expect(key([.int(4), .string("a,b")]) == "4,a%2Cb")
        #expect(key([.int(5), .string("é_-Z")]) == "5,%C3%A9_-Z")
        #expect(key([.string("k")], [0]) == "k")
        // Ill-formed text keeps its own bytes: two such keys never meet on one subject.
        #expect(key([.int(6), .illFormedText([0x61, 0xFF])]) == "6,a%FF")
        #expect(key([.int(6), .illFormedText([0x61, 0xFE])]) == "6,a%FE")
    }

    @Test func templates() throws {
        let keyed = try NATSSubject(template: "cdc.{db}.{table}.{key}.v1")
        #expect(keyed.isKeyed && keyed.wildcard == "cdc.*.*.*.v1")
        let parts = keyed.tableParts(TableName(database: "shop", table: "items"))
        #expect(String(decoding: parts.prefix, as: UTF8.self) == "cdc.shop.items." && String(decoding: parts.suffix, as: UTF8.self) == ".v1")
        let plain = try NATSSubject(template: "ferry.{db}.{table}")
        #expect(!plain.isKeyed && plain.wildcard == "ferry.*.*")
        #expect(throws: NATSSubjectError.unknown("a.{tabel}", "tabel")) { try NATSSubject(template: "a.{tabel}") }
        #expect(throws: NATSSubjectError.repeatedKey("{key}.{key}")) { try NATSSubject(template: "{key}.{key}") }
        #expect(throws: NATSSubjectError.unclosed("a.{db")) { try NATSSubject(template: "a.{db") }
        // {key} is a whole token: else table "ab" key "c" and table "a" key "bc" would meet.
        for template in ["a.{table}{key}", "a.x{key}", "a.{key}x", "{key}x.y"] {
            #expect(throws: NATSSubjectError.keyNotAToken(template)) { try NATSSubject(template: template) }
        }
        #expect(try NATSSubject(template: "{key}").isKeyed && NATSSubject(template: "{key}.x").isKeyed)
        // Names keep their text; only what would change the subject's shape is escaped.
        let odd = try NATSSubject(template: "c.{db}.{table}").tableParts(TableName(database: "my db", table: "a.b*>%é_"))
        #expect(String(decoding: odd.prefix, as: UTF8.self) == "c.my%20db.a%2Eb%2A%3E%25é_")
    }

    func event(_ operation: ChangeOperation, before: Row? = nil, after: Row? = nil, schema: TableSchema = Self.schema) -> ChangeEvent {
        ChangeEvent(operation: operation, table: schema.name, schema: schema, before: before, after: after,
                    source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: .binlog(file: "b.000001", offset: 120), row: 3, timestampMillis: 1_000))
    }

    func sink(subject: String, tombstones: Bool) throws -> NATSSink {
        NATSSink(configuration: try NATSSink.Configuration(name: "bus", pipeline: "p", url: "nats://127.0.0.1", password: nil, stream: "S", subject: subject,
                                                           duplicateWindowSeconds: 120, tombstones: tombstones),
                 logger: Logger(label: "test"))
    }

    /// What each change becomes: (subject, op, id, tombstone).
    func messages(_ sink: NATSSink, _ events: [ChangeEvent]) async throws -> [String] {
        try await sink.outgoing(events).map { "\($0.subject) \($0.event.operation.code) \($0.event.stableID)\($0.tombstone ? " tombstone" : "")" }
    }

    /// On a keyed subject a delete is followed by its tombstone, and an update that moved the key
    /// is a delete (and tombstone) under the old key and a create under the new — Debezium's shape.
    @Test func keyedSubjectsSplitKeyChangesAndFollowDeletesWithTombstones() async throws {
        let keyed = try sink(subject: "cdc.{table}.{key}", tombstones: true)
        let events = [
            event(.create, after: [.int(1), .string("x"), .int(10)]),
            event(.update, before: [.int(1), .string("x"), .int(10)], after: [.int(1), .string("x"), .int(11)]),
            event(.update, before: [.int(1), .string("x"), .int(11)], after: [.int(2), .string("x"), .int(11)]),
            event(.delete, before: [.int(2), .string("x"), .int(11)]),
        ]
        #expect(try await messages(keyed, events) == [
            "cdc.items.1,x c b.000001:120:3", "cdc.items.1,x u b.000001:120:3",
            "cdc.items.1,x d b.000001:120:3.1", "cdc.items.1,x d b.000001:120:3.1 tombstone", "cdc.items.2,x c b.000001:120:3.2",
            "cdc.items.2,x d b.000001:120:3", "cdc.items.2,x d b.000001:120:3 tombstone",
        ])
        // binlog_row_image=MINIMAL: an update's after image leaves the unchanged key out; it is
        // no key change.
        let minimal = event(.update, before: [.int(1), .string("x"), .absent], after: [.absent, .absent, .int(12)])
        #expect(try await messages(keyed, [minimal]) == ["cdc.items.1,x u b.000001:120:3"])
        // Without tombstones the split stays; without {key} nothing is split or added.
        #expect(try await messages(try sink(subject: "cdc.{table}.{key}", tombstones: false), Array(events[2...])) == [
            "cdc.items.1,x d b.000001:120:3.1", "cdc.items.2,x c b.000001:120:3.2", "cdc.items.2,x d b.000001:120:3",
        ])
        #expect(try await messages(try sink(subject: "cdc.{table}", tombstones: false), Array(events[2...])) == [
            "cdc.items u b.000001:120:3", "cdc.items d b.000001:120:3",
        ])
        // A key too long for the server's control line is refused as one change (dead-letterable),
        // not left to break the connection.
        let long = event(.create, after: [.int(1), .string(String(repeating: "é", count: 800)), .int(1)])
        let message = try await keyed.outgoing([long])[0]
        #expect(message.subject.utf8.count > NATSSink.maximumSubjectBytes)
        let batch = Transaction(gtid: nil, position: long.source.position, serverID: 1, timestampMillis: 1_000, events: [long])
        do {
            try await keyed.apply([batch])
            Issue.record("a subject over the control line was sent")
        } catch let error as NATSSinkError {
            #expect(!error.isTransient && error.ferryError.message.contains("(max_control_line)"), "\(error.ferryError.message)")
            #expect(error.ferryError.fix?.contains("shorter key") == true)
        }
        // A table without a key cannot fill {key}: the change is refused, naming table and fix.
        let keyless = TableSchema(name: TableName(database: "shop", table: "log"), columns: [ColumnSchema(name: "line", typeName: "text", nullable: true)], primaryKey: [])
        await #expect(throws: NATSSinkError.self) { try await keyed.outgoing([event(.create, after: [.string("a")], schema: keyless)]) }
    }
}

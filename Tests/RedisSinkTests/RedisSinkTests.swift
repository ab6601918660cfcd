import FerryCore
import NIOCore
import Testing
@testable import RedisSink

@Suite struct RESPTests {
    func decodeAll(_ text: String) throws -> [RESPValue] {
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        while let value = try RESPDecoder.decode(&buffer) { values.append(value) }
        #expect(buffer.readableBytes == 0)
        return values
    }

    @Test func everyReplyKind() throws {
        #expect(try decodeAll("+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\nl\r\n$0\r\n\r\n$-1\r\n*-1\r\n*2\r\n+QUEUED\r\n*1\r\n:1\r\n") == [
            .simpleString("OK"), .error("ERR wrong"), .integer(-42), .bulk(Array("he\r\nl".utf8)), .bulk([]), .bulk(nil), .array(nil),
            .array([.simpleString("QUEUED"), .array([.integer(1)])]),
        ])
    }

    /// Fed one byte at a time, a reply is returned only when complete and the reader index never
    /// moves on a partial one.
    @Test func partialRepliesWaitForMoreBytes() throws {
        let wire = Array("*3\r\n$3\r\nabc\r\n:7\r\n*1\r\n$-1\r\n".utf8)
        var buffer = ByteBuffer()
        var decoded: [RESPValue] = []
        for byte in wire {
            buffer.writeInteger(byte)
            let before = buffer.readerIndex
            if let value = try RESPDecoder.decode(&buffer) {
                decoded.append(value)
            } else {
                #expect(buffer.readerIndex == before)
            }
        }
        #expect(decoded == [.array([.bulk(Array("abc".utf8)), .integer(7), .array([.bulk(nil)])])])
    }

    @Test func malformedRepliesAreErrorsWithTheirOffset() {
        for (wire, reason) in [("?x\r\n", "unknown type byte 0x3f"), (":12a\r\n", "'12a' is not an integer"), ("$3\r\nabcd\r\n", "bulk string not ended by CRLF"),
                               ("+a\rb\r\n", "CR without LF"), ("$-2\r\n", "bulk length -2")] {
            var buffer = ByteBuffer(string: wire)
            #expect(throws: RESPDecodingError.self, "\(wire)") { try RESPDecoder.decode(&buffer) }
            do { _ = try RESPDecoder.decode(&buffer) } catch let error as RESPDecodingError { #expect(error.reason.hasPrefix(reason), "\(error)") } catch {}
        }
        var deep = ByteBuffer(string: String(repeating: "*1\r\n", count: 40) + ":1\r\n")
        #expect(throws: RESPDecodingError.self) { try RESPDecoder.decode(&deep) }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPEncoder.encode([Array("SET".utf8), Array("k".utf8), [0, 13, 10]], into: &buffer)
        #expect(Array(buffer.readableBytesView) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n".utf8))
    }
}

@Suite struct RedisCommandTests {
    static let schema = TableSchema(name: TableName(database: "shop", table: "orders"),
                                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "who", typeName: "varchar(20)", nullable: true),
                                              ColumnSchema(name: "total", typeName: "decimal(8,2)", nullable: true), ColumnSchema(name: "at", typeName: "date", nullable: true)],
                                    primaryKey: [0])

    func event(_ operation: ChangeOperation, before: Row? = nil, after: Row? = nil) -> ChangeEvent {
        let at = SourcePosition.binlog(file: "b.000001", offset: 120)
        return ChangeEvent(operation: operation, table: Self.schema.name, schema: Self.schema, before: before, after: after,
                           source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: 3, timestampMillis: 1_000))
    }

    func text(_ commands: [[[UInt8]]]) -> [[String]] { commands.map { $0.map { String(decoding: $0, as: UTF8.self) } } }

    @Test func hashRowsAreRewrittenWholeWithoutNullFields() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .hash, key: "order:{id}", ttlSeconds: 60)
        let row: Row = [.int(7), .string("ada"), .null, .date(DateValue(year: 2026, month: 11, day: 22))]
        #expect(text(try RedisCommands.commands(for: event(.create, after: row), rule: rule, processedAtMillis: 0)) == [
            ["DEL", "order:7"], ["HSET", "order:7", "id", "7", "who", "ada", "at", "2026-11-22"], ["EXPIRE", "order:7", "60"],
        ])
        #expect(text(try RedisCommands.commands(for: event(.delete, before: row), rule: rule, processedAtMillis: 0)) == [["DEL", "order:7"]])
    }

    @Test func aKeyChangeMovesTheRow() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .json)
        let commands = try RedisCommands.commands(for: event(.update, before: [.int(1), .string("a"), .decimal("1.50"), .null],
                                                              after: [.int(2), .string("a"), .decimal("1.50"), .null]), rule: rule, processedAtMillis: 0)
        #expect(text(commands) == [["DEL", "shop.orders:1"], ["SET", "shop.orders:2", #"{"id":2,"who":"a","total":"1.50","at":null}"#]])
    }

    @Test func streamEntriesCarryTheStableID() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .stream, maximumLength: 1000)
        let entry = text(try RedisCommands.commands(for: event(.create, after: [.int(1), .null, .null, .null]), rule: rule, processedAtMillis: 5))[0]
        #expect(Array(entry.prefix(12)) == ["XADD", "shop.orders", "MAXLEN", "~", "1000", "*", "id", "b.000001:120:3", "op", "c", "table", "shop.orders"])
        #expect(entry[12] == "event" && entry[13].hasPrefix(#"{"before":null,"after":{"id":1,"who":null,"total":null,"at":null}"#))
    }

    @Test func keyTemplatesNameWhatIsMissing() {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .hash, key: "o:{nope}")
        do {
            _ = try RedisCommands.commands(for: event(.create, after: [.int(1), .null, .null, .null]), rule: rule, processedAtMillis: 0)
            Issue.record("an unknown column must be refused")
        } catch let error as RedisKeyError {
            #expect(error.message == "the key template o:{nope} names {nope}, which table shop.orders does not have")
        } catch {
            Issue.record("\(error)")
        }
    }
}

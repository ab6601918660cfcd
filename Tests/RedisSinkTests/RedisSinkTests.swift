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
        var writer = RESPCommandWriter()
        writer.command([Array("SET".utf8), Array("k".utf8), [0, 13, 10]])
        #expect(writer.bytes == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n".utf8))
    }
}

@Suite struct RESPCommandWriterTests {
    @Test func commandsCollectedArgumentsAndLengthsAreExact() {
        var writer = RESPCommandWriter()
        writer.command([Array("SET".utf8), Array("k".utf8), [0, 13, 10]])
        writer.command(Array("DEL".utf8), Array(repeating: UInt8(ascii: "x"), count: 1234))
        let emptyWritten = writer.endCollected("HSET", Array("empty".utf8))
        #expect(!emptyWritten, "a command with no collected argument is not written")
        writer.collect(Array("f".utf8))
        writer.collect(Array("v".utf8))
        let written = writer.endCollected("HSET", Array("h".utf8))
        #expect(written)
        #expect(writer.count == 3)
        let expected = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n*2\r\n$3\r\nDEL\r\n$1234\r\n".utf8)
            + Array(repeating: UInt8(ascii: "x"), count: 1234) + Array("\r\n*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n".utf8)
        #expect(writer.bytes == expected)
        writer.reset()
        #expect(writer.bytes.isEmpty && writer.count == 0)
    }

    @Test func decimalsWithoutStrings() {
        for value in [0, 7, 9, 10, 99, 100, 65_535, 1_000_000_007, Int.max] {
            var out: [UInt8] = []
            RESPCommandWriter.decimal(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }

    /// Plain text is appended after what the buffer holds, without an array of its own; NULL
    /// appends nothing.
    @Test func plainTextIsAppendedInPlace() {
        let cases: [(Value, String?)] = [(.null, nil), (.absent, nil), (.int(-12), "-12"), (.uint(18_446_744_073_709_551_615), "18446744073709551615"),
                                         (.string("ada \"q\""), "ada \"q\""), (.decimal("-0.50"), "-0.50"), (.double(1.5), "1.5"),
                                         (.date(DateValue(year: 2026, month: 11, day: 22)), "2026-11-22"), (.set(["a", "b"]), "a,b"),
                                         (.enumeration("red"), "red"), (.illFormedText([0x61, 0xED, 0xA0, 0xBD]), "a\u{FFFD}\u{FFFD}\u{FFFD}")]
        for (value, text) in cases {
            var out: [UInt8] = [9]
            #expect(ValueJSON.appendPlainText(value, to: &out) == (text != nil), "\(value)")
            #expect(out == [9] + Array((text ?? "").utf8), "\(value)")
            #expect(ValueJSON.plainText(value) == text.map { Array($0.utf8) }, "\(value)")
        }
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

    /// The commands `event` becomes, read back from the bytes the writer made.
    func commands(for event: ChangeEvent, rule: RedisSink.TableRule, processedAtMillis: Int64) throws -> [[[UInt8]]] {
        var writer = RESPCommandWriter()
        var scratch: [UInt8] = []
        let count = try RedisCommands.write(event, rule: rule, processedAtMillis: processedAtMillis, into: &writer, scratch: &scratch)
        var buffer = ByteBuffer(bytes: writer.bytes)
        var commands: [[[UInt8]]] = []
        while let value = try RESPDecoder.decode(&buffer) {
            guard case .array(let arguments?) = value else { Issue.record("not a command: \(value)"); break }
            commands.append(arguments.map { argument in
                guard case .bulk(let bytes?) = argument else { Issue.record("not a bulk string: \(argument)"); return [] }
                return bytes
            })
        }
        #expect(commands.count == count && buffer.readableBytes == 0)
        return commands
    }

    @Test func hashRowsAreRewrittenWholeWithoutNullFields() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .hash, key: "order:{id}", ttlSeconds: 60)
        let row: Row = [.int(7), .string("ada"), .null, .date(DateValue(year: 2026, month: 11, day: 22))]
        #expect(text(try commands(for: event(.create, after: row), rule: rule, processedAtMillis: 0)) == [
            ["DEL", "order:7"], ["HSET", "order:7", "id", "7", "who", "ada", "at", "2026-11-22"], ["EXPIRE", "order:7", "60"],
        ])
        #expect(text(try commands(for: event(.delete, before: row), rule: rule, processedAtMillis: 0)) == [["DEL", "order:7"]])
    }

    @Test func aKeyChangeMovesTheRow() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .json)
        let commands = try commands(for: event(.update, before: [.int(1), .string("a"), .decimal("1.50"), .null],
                                                              after: [.int(2), .string("a"), .decimal("1.50"), .null]), rule: rule, processedAtMillis: 0)
        #expect(text(commands) == [["DEL", "shop.orders:1"], ["SET", "shop.orders:2", #"{"id":2,"who":"a","total":"1.50","at":null}"#]])
    }

    /// binlog_row_image=MINIMAL: the update's after image has only what changed, its before
    /// image only the key. The hash keeps its other fields (no DEL), a column now NULL is removed,
    /// the key comes from the before image; a JSON value, written whole, is refused with the fix.
    @Test func partialRowImagesUpdateHashesAndAreRefusedForJSON() throws {
        let update = event(.update, before: [.int(1), .absent, .absent, .absent], after: [.absent, .string("b"), .absent, .null])
        let hash = RedisSink.TableRule(tables: "shop.*", mode: .hash)
        let written = text(try commands(for: update, rule: hash, processedAtMillis: 0))
        #expect(written == [["HSET", "shop.orders:1", "id", "1", "who", "b"], ["HDEL", "shop.orders:1", "at"]], "\(written)")
        do {
            _ = try commands(for: update, rule: RedisSink.TableRule(tables: "shop.*", mode: .json), processedAtMillis: 0)
            Issue.record("a partial row was written as a whole JSON value")
        } catch let error as RedisPartialRowError {
            #expect(error.ferryError.message == "the binlog holds only part of a row of shop.orders (no total): a JSON value is written whole")
            #expect(error.ferryError.fix?.contains("binlog_row_image = FULL") == true)
        }
    }

    @Test func streamEntriesCarryTheStableID() throws {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .stream, maximumLength: 1000)
        let entry = text(try commands(for: event(.create, after: [.int(1), .null, .null, .null]), rule: rule, processedAtMillis: 5))[0]
        #expect(Array(entry.prefix(12)) == ["XADD", "shop.orders", "MAXLEN", "~", "1000", "*", "id", "b.000001:120:3", "op", "c", "table", "shop.orders"])
        #expect(entry[12] == "event" && entry[13].hasPrefix(#"{"before":null,"after":{"id":1,"who":null,"total":null,"at":null}"#))
        // format: debezium-schema puts Kafka Connect's schema block around the envelope.
        let withSchema = RedisSink.TableRule(tables: "shop.*", mode: .stream, format: .debeziumSchema)
        let schemaEntry = text(try commands(for: event(.create, after: [.int(1), .null, .null, .null]), rule: withSchema, processedAtMillis: 5))[0]
        #expect(schemaEntry.count == 11 && schemaEntry[9] == "event" && schemaEntry[10].hasPrefix(#"{"schema":{"type":"struct","#), "\(schemaEntry.last?.prefix(80) ?? "")")
        #expect(schemaEntry.last?.contains(#","payload":{"before":null,"after":{"id":1,"who":null,"total":null,"at":null}"#) == true)
    }

    @Test func keyTemplatesNameWhatIsMissing() {
        let rule = RedisSink.TableRule(tables: "shop.*", mode: .hash, key: "o:{nope}")
        do {
            _ = try commands(for: event(.create, after: [.int(1), .null, .null, .null]), rule: rule, processedAtMillis: 0)
            Issue.record("an unknown column must be refused")
        } catch let error as RedisKeyError {
            #expect(error.message == "the key template o:{nope} names {nope}, which table shop.orders does not have")
        } catch {
            Issue.record("\(error)")
        }
    }
}

import FerryCore
import Testing
@testable import PostgresLogical

/// Hand-built pgoutput messages, laid out as PostgreSQL's "Logical Replication Message Formats"
/// describes them (network byte order, zero-terminated strings).
struct Bytes {
    var out: [UInt8] = []
    init(_ type: Character) { out = [type.asciiValue!] }
    init(_ bytes: some Sequence<UInt8>) { out = Array(bytes) }
    func u8(_ value: UInt8) -> Bytes { var copy = self; copy.out.append(value); return copy }
    func char(_ value: Character) -> Bytes { u8(value.asciiValue!) }
    func i16(_ value: Int16) -> Bytes { be(UInt64(UInt16(bitPattern: value)), 2) }
    func u32(_ value: UInt32) -> Bytes { be(UInt64(value), 4) }
    func i32(_ value: Int32) -> Bytes { be(UInt64(UInt32(bitPattern: value)), 4) }
    func u64(_ value: UInt64) -> Bytes { be(value, 8) }
    func i64(_ value: Int64) -> Bytes { be(UInt64(bitPattern: value), 8) }
    func string(_ text: String) -> Bytes { var copy = self; copy.out += Array(text.utf8) + [0]; return copy }
    func raw(_ bytes: [UInt8]) -> Bytes { var copy = self; copy.out += bytes; return copy }
    func text(_ value: String) -> Bytes { char("t").i32(Int32(value.utf8.count)).raw(Array(value.utf8)) }
    private func be(_ value: UInt64, _ width: Int) -> Bytes {
        var copy = self
        for index in stride(from: width - 1, through: 0, by: -1) { copy.out.append(UInt8(truncatingIfNeeded: value >> UInt64(index * 8))) }
        return copy
    }
}

@Suite struct LSNTests {
    @Test func readsAndWritesTheServersForm() {
        #expect(LSN("16/B374D848") == LSN(0x16_B374_D848))
        #expect(LSN(0x16_B374_D848).description == "16/B374D848")
        #expect(LSN("0/0") == .zero && LSN.zero.description == "0/0")
        #expect(LSN("FFFFFFFF/FFFFFFFF") == LSN(.max))
        for bad in ["", "16", "16/", "/1", "G/1", "1/2/3", "123456789/0", "-1/0", "+1/0", "1/-0", " 1/0"] { #expect(LSN(bad) == nil, "\(bad)") }
        #expect(LSN("0/FF")! < LSN("1/0")!)
    }
}

@Suite struct PgOutputDecoderTests {
    let begin = Bytes("B").u64(0x0000_0001_0000_0A00).i64(756_864_000_123_456).u32(731)
    let commit = Bytes("C").u8(0).u64(0x0000_0001_0000_0A00).u64(0x0000_0001_0000_0A38).i64(756_864_000_123_456)
    let relation = Bytes("R").u32(16_385).string("public").string("items").u8(UInt8(ascii: "d")).i16(3)
        .u8(1).string("id").u32(23).i32(-1)
        .u8(0).string("note").u32(25).i32(-1)
        .u8(0).string("price").u32(1700).i32(0x000C_0006)
    /// id 7, note NULL, price 12.50, then a TOASTed column left unchanged and a binary one.
    var insert: Bytes {
        Bytes("I").u32(16_385).char("N").i16(5).text("7").char("n").text("12.50").char("u").char("b").i32(2).raw([0xBE, 0xEF])
    }

    func decoded(_ bytes: Bytes, version: Int = 1) throws -> PgOutputMessage {
        var decoder = PgOutputDecoder(protocolVersion: version)
        return try decoder.decode(bytes.out)
    }

    @Test func beginAndCommit() throws {
        #expect(try decoded(begin) == .begin(.init(finalLSN: LSN("1/A00")!, commitTime: 756_864_000_123_456, xid: 731)))
        #expect(try decoded(commit) == .commit(.init(flags: 0, commitLSN: LSN("1/A00")!, endLSN: LSN("1/A38")!, commitTime: 756_864_000_123_456)))
        #expect(try decoded(Bytes("O").u64(0x42).string("upstream")) == .origin(commitLSN: LSN(0x42), name: "upstream"))
    }

    @Test func relationAndType() throws {
        let expected = PgOutputMessage.Relation(id: 16_385, namespace: "public", name: "items", replicaIdentity: .default, columns: [
            .init(isKey: true, name: "id", typeOID: 23, typeModifier: -1),
            .init(isKey: false, name: "note", typeOID: 25, typeModifier: -1),
            .init(isKey: false, name: "price", typeOID: 1700, typeModifier: 0x000C_0006),
        ])
        #expect(try decoded(relation) == .relation(expected, xid: nil))
        let full = Bytes("R").u32(9).string("s").string("t").u8(UInt8(ascii: "f")).i16(0)
        #expect(try decoded(full) == .relation(.init(id: 9, namespace: "s", name: "t", replicaIdentity: .full, columns: []), xid: nil))
        #expect(try decoded(Bytes("Y").u32(16_400).string("public").string("mood")) == .type(.init(oid: 16_400, namespace: "public", name: "mood"), xid: nil))
    }

    @Test func rowChanges() throws {
        let row = TupleData([.text(Array("7".utf8)), .null, .text(Array("12.50".utf8)), .unchangedToast, .binary([0xBE, 0xEF])])
        #expect(try decoded(insert) == .insert(relation: 16_385, new: row, xid: nil))
        let key = TupleData([.text(Array("7".utf8)), .null, .null])
        let newRow = TupleData([.text(Array("8".utf8)), .text(Array("x".utf8)), .unchangedToast])
        let newBytes = Bytes("N").i16(3).text("8").text("x").char("u").out
        #expect(try decoded(Bytes("U").u32(1).char("K").i16(3).text("7").char("n").char("n").raw(newBytes))
                == .update(relation: 1, old: .key(key), new: newRow, xid: nil))
        #expect(try decoded(Bytes("U").u32(1).char("O").i16(3).text("7").char("n").char("n").raw(newBytes))
                == .update(relation: 1, old: .row(key), new: newRow, xid: nil))
        #expect(try decoded(Bytes("U").u32(1).raw(newBytes)) == .update(relation: 1, old: nil, new: newRow, xid: nil))
        #expect(try decoded(Bytes("D").u32(1).char("K").i16(3).text("7").char("n").char("n")) == .delete(relation: 1, old: .key(key), xid: nil))
        #expect(try decoded(Bytes("T").i32(2).u8(3).u32(1).u32(2)) == .truncate(relations: [1, 2], cascade: true, restartIdentity: true, xid: nil))
        #expect(try decoded(Bytes("T").i32(1).u8(0).u32(5)) == .truncate(relations: [5], cascade: false, restartIdentity: false, xid: nil))
    }

    @Test func logicalMessages() throws {
        let message = Bytes("M").u8(1).u64(0x0000_0002_0000_0010).string("ferry").i32(3).raw([1, 2, 3])
        #expect(try decoded(message) == .message(transactional: true, lsn: LSN("2/10")!, prefix: "ferry", content: [1, 2, 3], xid: nil))
        let heartbeat = Bytes("M").u8(0).u64(5).string("ferry.heartbeat").i32(0)
        #expect(try decoded(heartbeat) == .message(transactional: false, lsn: LSN(5), prefix: "ferry.heartbeat", content: [], xid: nil))
    }

    /// Protocol 2+: a large transaction arrives in segments between Stream Start and Stream Stop,
    /// each change led by the transaction's xid, and ends with Stream Commit or Stream Abort.
    @Test func streamedTransactions() throws {
        var decoder = PgOutputDecoder(protocolVersion: 2)
        #expect(try decoder.decode(Bytes("S").u32(900).u8(1).out) == .streamStart(xid: 900, firstSegment: true))
        #expect(decoder.openStream == 900)
        let streamedRelation = Bytes("R").u32(900).raw(Array(relation.out.dropFirst()))
        guard case .relation(_, let relationXid) = try decoder.decode(streamedRelation.out) else { Issue.record("not a relation"); return }
        #expect(relationXid == 900)
        let streamedInsert = Bytes("I").u32(900).raw(Array(insert.out.dropFirst()))
        guard case .insert(16_385, _, let xid) = try decoder.decode(streamedInsert.out) else { Issue.record("not an insert"); return }
        #expect(xid == 900)
        #expect(try decoder.decode(Bytes("E").out) == .streamStop)
        #expect(decoder.openStream == nil)
        // Outside a segment the same bytes would be read without an xid: a plain insert decodes.
        guard case .insert(16_385, _, nil) = try decoder.decode(insert.out) else { Issue.record("not a plain insert"); return }
        #expect(try decoder.decode(Bytes("c").u32(900).u8(0).u64(0x30).u64(0x58).i64(77).out)
                == .streamCommit(xid: 900, .init(flags: 0, commitLSN: LSN(0x30), endLSN: LSN(0x58), commitTime: 77)))
        #expect(try decoder.decode(Bytes("A").u32(900).u32(901).out) == .streamAbort(xid: 900, subtransaction: 901, abortLSN: nil, abortTime: nil))
        var parallel = PgOutputDecoder(protocolVersion: 4, parallelStreaming: true)
        #expect(try parallel.decode(Bytes("A").u32(900).u32(900).u64(0x99).i64(88).out)
                == .streamAbort(xid: 900, subtransaction: 900, abortLSN: LSN(0x99), abortTime: 88))
    }

    /// Every prefix of every fixture, and bytes left over, are refused with a typed error —
    /// never a crash, never a half-read message.
    @Test func truncatedAndOverlongMessagesAreRefused() throws {
        let fixtures = [begin, commit, relation, insert, Bytes("D").u32(1).char("O").i16(1).text("7"),
                        Bytes("M").u8(1).u64(1).string("p").i32(2).raw([9, 9]), Bytes("T").i32(1).u8(0).u32(5)]
        for fixture in fixtures {
            for length in 1..<fixture.out.count {
                #expect(throws: PgOutputError.self) { try decoded(Bytes(fixture.out.prefix(length))) }
            }
            #expect(throws: PgOutputError.self) { try decoded(fixture.raw([0])) }
        }
        #expect(throws: PgOutputError.unknownMessage(type: UInt8(ascii: "Z"))) { try decoded(Bytes("Z")) }
        #expect(throws: PgOutputError.self) { try decoded(Bytes("I").u32(1).char("N").i16(-1)) }
        #expect(throws: PgOutputError.self) { try decoded(Bytes("I").u32(1).char("N").i16(1).char("t").i32(-5)) }
        #expect(throws: PgOutputError.self) { try decoded(Bytes("R").u32(1).string("s").string("t").u8(0).i16(0)) }
        let error = PgOutputError.truncated(message: "Insert", offset: 5, needed: 1, available: 0)
        #expect(error.description == "a pgoutput Insert message ends early: 1 bytes needed at offset 5, 0 left")
    }

    /// Random bytes after every message type byte: decoded or refused, nothing else.
    @Test func randomBytesNeverCrash() {
        var generator = SplitMix(seed: 20_261_207)
        for _ in 0..<20_000 {
            let type = Array("BCORYIUDTMSEcA".utf8).randomElement(using: &generator)!
            let body = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var decoder = PgOutputDecoder(protocolVersion: Int.random(in: 1...4, using: &generator), parallelStreaming: Bool.random(using: &generator))
            _ = try? decoder.decode([type] + body)
        }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ReplicationMessageTests {
    @Test func walDataAndKeepalives() throws {
        let wal = Bytes("w").u64(0x0000_0001_0000_0A00).u64(0x0000_0001_0000_0B00).i64(123).raw(Array("B...".utf8))
        #expect(try ReplicationMessage.decode(wal.out) == .xLogData(start: LSN("1/A00")!, serverEnd: LSN("1/B00")!, sentAt: 123, data: Array("B...".utf8)))
        #expect(try ReplicationMessage.decode(Bytes("k").u64(0x10).i64(5).u8(1).out) == .keepalive(serverEnd: LSN(0x10), sentAt: 5, replyRequested: true))
        #expect(throws: PgOutputError.self) { try ReplicationMessage.decode(Bytes("k").u64(0x10).i64(5).out) }
        #expect(throws: PgOutputError.self) { try ReplicationMessage.decode(Bytes("w").u64(1).out) }
        #expect(throws: PgOutputError.unknownMessage(type: UInt8(ascii: "q"))) { try ReplicationMessage.decode(Bytes("q").out) }
    }

    @Test func standbyStatusUpdateLayout() {
        let update = StandbyStatusUpdate(written: LSN("1/A38")!, flushed: LSN("1/A00")!, applied: LSN("1/A00")!, sentAt: 0x0102_0304_0506_0708, replyRequested: true)
        #expect(update.bytes == Bytes("r").u64(0x1_0000_0A38).u64(0x1_0000_0A00).u64(0x1_0000_0A00).i64(0x0102_0304_0506_0708).u8(1).out)
        #expect(update.bytes.count == 34)
        #expect(PostgresTimestamp.fromUnixMicroseconds(946_684_800_000_000) == 0)
        #expect(PostgresTimestamp(1_000_000).unixMicroseconds == 946_684_801_000_000)
    }
}

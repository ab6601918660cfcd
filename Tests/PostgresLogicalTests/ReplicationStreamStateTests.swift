import FerryCore
import Testing
@testable import PostgresLogical

@Suite struct ReplicationStreamStateTests {
    let relation = Bytes("R").u32(7).string("public").string("t").u8(UInt8(ascii: "d")).i16(1).u8(1).string("id").u32(23).i32(-1)

    func wal(_ start: UInt64, _ message: Bytes) -> [UInt8] { Bytes("w").u64(start).u64(start).i64(0).raw(message.out).out }
    func keepalive(_ end: UInt64, reply: Bool) -> [UInt8] { Bytes("k").u64(end).i64(0).u8(reply ? 1 : 0).out }

    @Test func transactionsAndStatusUpdates() throws {
        var state = ReplicationStreamState(protocolVersion: 1, confirmed: LSN(0x50), statusIntervalMicroseconds: 10_000_000)
        // The first answer is due at once (nothing was sent yet); idle, the stream confirms the
        // server's end (nothing before it is ours).
        var step = try state.receive(keepalive(0x60, reply: false), now: 20_000_000)
        #expect(step.reply == StandbyStatusUpdate(written: LSN(0x60), flushed: LSN(0x60), applied: LSN(0x60), sentAt: 20_000_000))
        #expect(try state.receive(keepalive(0x60, reply: false), now: 21_000_000).reply == nil, "not due again within the interval")
        #expect(try state.receive(keepalive(0x60, reply: true), now: 21_000_001).reply?.flushed == LSN(0x60), "asked: answered at once")
        #expect(try state.receive(wal(0x100, Bytes("B").u64(0x180).i64(5).u32(9)), now: 21_000_002).assembled == nil)
        #expect(try state.receive(wal(0x110, relation), now: 21_000_003).assembled == nil)
        #expect(try state.receive(wal(0x120, Bytes("I").u32(7).char("N").i16(1).text("1")), now: 21_000_004).assembled == nil)
        step = try state.receive(wal(0x180, Bytes("C").u8(0).u64(0x180).u64(0x1A0).i64(5)), now: 21_000_005)
        guard case .transaction(let transaction)? = step.assembled else { Issue.record("\(step)"); return }
        #expect(transaction.xid == 9 && transaction.endLSN == LSN(0x1A0) && transaction.changes.count == 1)
        state.handedOn(transaction.endLSN)
        #expect(step.reply == nil, "nothing confirmed yet, not due")
        // Confirmed by every target: the next step says so to the server.
        state.confirm(transaction.endLSN)
        state.confirm(LSN(0x60))
        #expect(state.confirmed == LSN(0x1A0), "never backwards")
        #expect(state.statusIfDue(now: 21_000_006) == StandbyStatusUpdate(written: LSN(0x1A0), flushed: LSN(0x1A0), applied: LSN(0x1A0), sentAt: 21_000_006))
        #expect(state.statusIfDue(now: 21_000_007) == nil)
        #expect(state.statusIfDue(now: 31_000_007)?.flushed == LSN(0x1A0), "again after the interval")
    }

    /// While nothing is open and all handed on is confirmed, a keepalive's WAL end holds
    /// nothing for this stream: the slot may move there (else it never advances while the
    /// published tables are quiet, and a server shutting down waits for it).
    @Test func idleStreamsConfirmTheServersEnd() throws {
        var state = ReplicationStreamState(protocolVersion: 1, confirmed: LSN(0x50))
        #expect(try state.receive(keepalive(0x80, reply: true), now: 1).reply?.flushed == LSN(0x80))
        _ = try state.receive(wal(0x100, Bytes("B").u64(0x180).i64(5).u32(9)), now: 2)
        #expect(try state.receive(keepalive(0x190, reply: true), now: 3).reply?.flushed == LSN(0x80), "a transaction is open")
        _ = try state.receive(wal(0x110, relation), now: 4)
        _ = try state.receive(wal(0x180, Bytes("C").u8(0).u64(0x180).u64(0x1A0).i64(5)), now: 5)
        state.handedOn(LSN(0x1A0))
        #expect(try state.receive(keepalive(0x300, reply: true), now: 6).reply?.flushed == LSN(0x80), "handed on, not yet confirmed")
        state.confirm(LSN(0x1A0))
        #expect(try state.receive(keepalive(0x300, reply: true), now: 7).reply?.flushed == LSN(0x300))
        // A transaction the owner skips (nothing published in it after its filter, an empty one
        // of PostgreSQL 14, another tool's logical message) needs no confirmation: the slot
        // follows the server's end past it.
        _ = try state.receive(wal(0x400, Bytes("B").u64(0x480).i64(6).u32(10)), now: 8)
        _ = try state.receive(wal(0x480, Bytes("C").u8(0).u64(0x480).u64(0x4A0).i64(6)), now: 9)
        _ = try state.receive(wal(0x4B0, Bytes("M").u8(0).u64(0x4C0).string("debezium-heartbeat").i32(0)), now: 10)
        #expect(try state.receive(keepalive(0x600, reply: true), now: 11).reply?.flushed == LSN(0x600))
    }

    /// A streamed transaction held between its segments (protocol 2) does not stop a stream
    /// from knowing how far the server has read — a snapshot's point is reached behind it, as it
    /// commits later and a new stream sends it again whole — but nothing past it is confirmed.
    @Test func aHeldStreamedTransactionIsBetweenTransactionsButNotIdle() throws {
        var state = ReplicationStreamState(protocolVersion: 2, confirmed: LSN(0x50))
        _ = try state.receive(wal(0x100, Bytes("S").u32(900).u8(1)), now: 1)
        #expect(!state.isBetweenTransactions && !state.isIdle, "inside a segment")
        _ = try state.receive(wal(0x110, Bytes("R").u32(900).raw(Array(relation.out.dropFirst()))), now: 2)
        _ = try state.receive(wal(0x120, Bytes("I").u32(900).u32(7).char("N").i16(1).text("1")), now: 3)
        _ = try state.receive(wal(0x130, Bytes("E")), now: 4)
        #expect(state.isBetweenTransactions && !state.isIdle, "held between segments")
        let step = try state.receive(keepalive(0x400, reply: true), now: 5)
        #expect(state.received == LSN(0x400))
        #expect(step.reply?.flushed == LSN(0x50), "the held transaction commits later: nothing past it is confirmed")
    }

    @Test func badBytesAreTypedErrors() {
        var state = ReplicationStreamState(protocolVersion: 1, confirmed: .zero)
        #expect(throws: PgOutputError.self) { _ = try state.receive([UInt8(ascii: "w"), 1, 2], now: 0) }
        #expect(throws: PgAssemblyError.self) { _ = try state.receive(wal(0x10, Bytes("I").u32(7).char("N").i16(0)), now: 0) }
    }
}

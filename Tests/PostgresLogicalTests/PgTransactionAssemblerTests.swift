import FerryCore
import Testing
@testable import PostgresLogical

@Suite struct PgTransactionAssemblerTests {
    let items = PgOutputMessage.Relation(id: 7, namespace: "public", name: "items", replicaIdentity: .default,
                                         columns: [.init(isKey: true, name: "id", typeOID: 23, typeModifier: -1)])
    func row(_ id: Int) -> TupleData { TupleData([.text(Array(String(id).utf8))]) }
    func commit(_ lsn: UInt64) -> PgOutputMessage.Commit { .init(flags: 0, commitLSN: LSN(lsn), endLSN: LSN(lsn + 8), commitTime: 99) }

    func feed(_ assembler: inout PgTransactionAssembler, _ messages: [PgOutputMessage]) throws -> [PgAssembled] {
        try messages.compactMap { try assembler.add($0) }
    }

    @Test func aTransactionFromBeginToCommit() throws {
        var assembler = PgTransactionAssembler()
        let out = try feed(&assembler, [
            .begin(.init(finalLSN: LSN(0x100), commitTime: 99, xid: 5)),
            .relation(items, xid: nil),
            .insert(relation: 7, new: row(1), xid: nil),
            .update(relation: 7, old: .key(row(1)), new: row(2), xid: nil),
            .delete(relation: 7, old: .key(row(2)), xid: nil),
            .truncate(relations: [7], cascade: false, restartIdentity: true, xid: nil),
            .message(transactional: true, lsn: LSN(0xF0), prefix: "app", content: [1], xid: nil),
            .commit(commit(0x100)),
            .message(transactional: false, lsn: LSN(0x120), prefix: "ferry.heartbeat", content: [], xid: nil),
        ])
        #expect(out == [
            .transaction(PgTransaction(xid: 5, commitLSN: LSN(0x100), endLSN: LSN(0x108), commitTime: 99, changes: [
                .insert(items, new: row(1)), .update(items, old: .key(row(1)), new: row(2)), .delete(items, old: .key(row(2))),
                .truncate([items], cascade: false, restartIdentity: true), .message(prefix: "app", content: [1]),
            ], streamed: false)),
            .message(lsn: LSN(0x120), prefix: "ferry.heartbeat", content: []),
        ])
    }

    /// A relation described again (a column added) applies to the changes after it.
    @Test func aRelationDescribedAgainAppliesFromThere() throws {
        var assembler = PgTransactionAssembler()
        var wider = items
        wider.columns.append(.init(isKey: false, name: "note", typeOID: 25, typeModifier: -1))
        let out = try feed(&assembler, [
            .begin(.init(finalLSN: LSN(0x100), commitTime: 99, xid: 5)), .relation(items, xid: nil), .insert(relation: 7, new: row(1), xid: nil),
            .relation(wider, xid: nil), .insert(relation: 7, new: TupleData([.text([0x32]), .null]), xid: nil), .commit(commit(0x100)),
        ])
        guard case .transaction(let transaction)? = out.first else { Issue.record("\(out)"); return }
        #expect(transaction.changes == [.insert(items, new: row(1)), .insert(wider, new: TupleData([.text([0x32]), .null]))])
    }

    /// Segments of streamed transactions interleave; a subtransaction's abort drops its changes
    /// and everything after them — a logical message inside it too, though that carries the
    /// top-level xid; each commit delivers its own changes in order; a whole abort drops all.
    @Test func streamedTransactionsInSegments() throws {
        var assembler = PgTransactionAssembler()
        var out = try feed(&assembler, [
            .streamStart(xid: 100, firstSegment: true), .relation(items, xid: 100),
            .insert(relation: 7, new: row(1), xid: 100), .insert(relation: 7, new: row(2), xid: 101),
            .message(transactional: true, lsn: LSN(0x50), prefix: "inside", content: [], xid: 100), .streamStop,
            .streamStart(xid: 200, firstSegment: true), .insert(relation: 7, new: row(20), xid: 200), .streamStop,
            .streamAbort(xid: 100, subtransaction: 101, abortLSN: nil, abortTime: nil),
            .streamStart(xid: 100, firstSegment: false), .insert(relation: 7, new: row(3), xid: 100), .streamStop,
            .streamStart(xid: 300, firstSegment: true), .insert(relation: 7, new: row(30), xid: 300), .streamStop,
        ])
        #expect(out.isEmpty && assembler.pendingStreams == 3 && !assembler.isIdle)
        out = try feed(&assembler, [
            .streamCommit(xid: 100, commit(0x200)),
            .streamAbort(xid: 300, subtransaction: 300, abortLSN: nil, abortTime: nil),
            .streamCommit(xid: 200, commit(0x300)),
        ])
        #expect(out == [
            .transaction(PgTransaction(xid: 100, commitLSN: LSN(0x200), endLSN: LSN(0x208), commitTime: 99,
                                       changes: [.insert(items, new: row(1)), .insert(items, new: row(3))], streamed: true)),
            .transaction(PgTransaction(xid: 200, commitLSN: LSN(0x300), endLSN: LSN(0x308), commitTime: 99,
                                       changes: [.insert(items, new: row(20))], streamed: true)),
        ])
        #expect(assembler.pendingStreams == 0 && assembler.isIdle)
    }

    @Test func outOfOrderStreamsAreRefused() throws {
        var assembler = PgTransactionAssembler()
        #expect(throws: PgAssemblyError.outOfOrder("a change outside a transaction")) {
            _ = try assembler.add(.relation(items, xid: nil))
            _ = try assembler.add(.insert(relation: 7, new: row(1), xid: nil))
        }
        #expect(throws: PgAssemblyError.unknownRelation(8)) {
            _ = try assembler.add(.begin(.init(finalLSN: LSN(1), commitTime: 0, xid: 1)))
            _ = try assembler.add(.insert(relation: 8, new: row(1), xid: nil))
        }
        #expect(throws: PgAssemblyError.self) { _ = try assembler.add(.begin(.init(finalLSN: LSN(2), commitTime: 0, xid: 2))) }
        var fresh = PgTransactionAssembler()
        #expect(throws: PgAssemblyError.self) { _ = try fresh.add(.commit(commit(1))) }
        #expect(throws: PgAssemblyError.self) { _ = try fresh.add(.streamStop) }
        #expect(throws: PgAssemblyError.self) { _ = try fresh.add(.streamCommit(xid: 9, commit(1))) }
        #expect(PgAssemblyError.unknownRelation(8).description == "the replication stream changed relation 8 before describing it (no Relation message)")
    }
}

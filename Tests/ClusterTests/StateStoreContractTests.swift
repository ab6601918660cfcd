import Etcd
import FerryCore
import Foundation
import Logging
import StateStore
import Testing
@testable import Cluster

/// The same saved-record behaviour from the SQLite state file and from etcd (cluster mode).
@Suite(.serialized) struct StateStoreContractTests {
    /// An owner key as a claim makes it, for a store that needs one.
    func claimForTest(_ client: EtcdClient, prefix: String, pipeline: String) async throws -> Int64 {
        let key = prefix + "owners/" + pipeline
        return try await client.txn([.absent(key)], success: [.put(key, Array("n".utf8))]).revision
    }

    typealias Store = OperatorStore

    func at(_ offset: UInt64) -> SourcePosition { .binlog(file: "b.000001", offset: offset) }

    /// Runs `body` against a fresh SQLite file and a fresh etcd prefix.
    func withBothStores(_ body: (String, any Store) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "ferry-cluster-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sqlite = try await SQLiteCheckpointStore.open(path: directory + "/state.sqlite", logger: Logger(label: "test"))
        try await body("sqlite", sqlite)
        try await sqlite.close()

        let client = try etcdTestClient()
        let prefix = "/ferry/test/state-\(UInt32.random(in: 0 ... .max))/"
        do {
            try await body("etcd", EtcdStateStore(client: client, prefix: prefix, node: "n1", flushInterval: .zero, requiresBinding: false))
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.delete(prefix, prefix: true)
        try await client.shutdown()
    }

    @Test func positionsNeverMoveBackwards() async throws {
        try await withBothStores { name, store in
            #expect(try await store.checkpoint(pipeline: "p") == nil, "\(name)")
            try await store.saveSafePosition(at(200), pipeline: "p")
            try await store.saveSafePosition(at(100), pipeline: "p")
            try await store.saveSinkPositions(pipeline: "p", sink: "a/b", queued: at(300), applied: at(200))
            try await store.saveSinkPositions(pipeline: "p", sink: "c", queued: nil, applied: nil)
            try await store.saveSinkPositions(pipeline: "other", sink: "x", queued: at(1), applied: at(1))
            let checkpoint = try await store.checkpoint(pipeline: "p")
            #expect(checkpoint == PipelineCheckpoint(safePosition: at(200), sinks: ["a/b": SinkCheckpoint(queued: at(300), applied: at(200)),
                                                                                   "c": SinkCheckpoint(queued: nil, applied: nil)]), "\(name)")
            try await store.audit(pipeline: "p", action: "start", detail: "test")
            try await store.clearRewind(pipeline: "p", sink: "a/b")
        }
    }

    @Test func snapshotRequestsReplaceEachOther() async throws {
        let table = TableName(database: "shop", table: "items")
        try await withBothStores { name, store in
            try await store.requestSnapshot(pipeline: "p", tables: [table], reason: "initial", atMillis: 1_000)
            var tables = try await store.snapshotTables(pipeline: "p")
            #expect(tables.map(\.state) == [.requested] && tables.first?.requestedMillis == 1_000, "\(name)")
            var running = try #require(tables.first)
            running.state = .running
            #expect(try await store.saveSnapshotTable(running, pipeline: "p"), "\(name)")
            let chunk = SnapshotChunkRecord(table: table, index: 0, lower: nil, upper: ["10"])
            #expect(try await store.saveSnapshotChunk(chunk, pipeline: "p", requestedMillis: 1_000), "\(name)")
            #expect(try await store.snapshotChunks(pipeline: "p", table: table) == [chunk], "\(name)")

            // A new request at an earlier wall-clock time still comes after the running one.
            try await store.requestSnapshot(pipeline: "p", tables: [table], reason: "requested", atMillis: 500)
            tables = try await store.snapshotTables(pipeline: "p")
            #expect(tables.first?.requestedMillis == 1_001 && tables.first?.state == .requested, "\(name)")
            #expect(try await store.snapshotChunks(pipeline: "p", table: table).isEmpty, "\(name)")
            // Whoever worked on the old request is told to stop.
            #expect(try await !store.saveSnapshotTable(running, pipeline: "p"), "\(name)")
            #expect(try await !store.saveSnapshotChunk(chunk, pipeline: "p", requestedMillis: 1_000), "\(name)")

            #expect(try await !store.requestRepair(pipeline: "p", table: table, keys: [["1"]], chunkKeys: 2, atMillis: 2_000, replacing: 1_000), "\(name)")
            #expect(try await store.requestRepair(pipeline: "p", table: table, keys: [["1"], ["2"], ["3"]], chunkKeys: 2, atMillis: 2_000, replacing: 1_001), "\(name)")
            let repair = try await store.snapshotChunks(pipeline: "p", table: table)
            #expect(repair.map(\.keys) == [[["1"], ["2"]], [["3"]]], "\(name)")
            #expect(try await store.snapshotTables(pipeline: "p").first?.reason == "repair", "\(name)")
            // A smaller repair leaves none of the earlier one's chunks behind.
            let repairedAt = try #require(try await store.snapshotTables(pipeline: "p").first?.requestedMillis)
            #expect(try await store.requestRepair(pipeline: "p", table: table, keys: [["9"]], chunkKeys: 2, atMillis: 0, replacing: repairedAt), "\(name)")
            #expect(try await store.snapshotChunks(pipeline: "p", table: table).map(\.keys) == [[["9"]]], "\(name)")
        }
    }

    /// A former owner's writes change nothing once another node claimed the pipeline.
    /// The audit log and API tokens: what `ferry token`, the API's sign-in and its audit
    /// endpoint read, alone and in a cluster.
    /// A table's descriptions by position: the one in effect at a position is the latest at or
    /// before it, and those replaced at or before the horizon are forgotten.
    @Test func schemaHistoryKeepsWhatIsInEffect() async throws {
        func wal(_ lsn: UInt64) -> SourcePosition { .wal(WALPosition(lsn: LSN(lsn))) }
        func record(_ table: String, _ lsn: UInt64, _ text: String) -> SchemaHistoryRecord {
            SchemaHistoryRecord(table: table, position: wal(lsn), description: text)
        }
        try await withBothStores { name, store in
            try await store.saveSchemaHistory([record("7", 0x100, "a"), record("7", 0x300, "b"), record("9/x", 0x200, "c")], pipeline: "p")
            try await store.saveSchemaHistory([record("7", 0x500, "d"), record("7", 0x300, "b2")], pipeline: "p")
            try await store.saveSchemaHistory([record("7", 0x50, "other")], pipeline: "q")
            #expect(try await store.schemaHistory(pipeline: "p", at: wal(0x80), forgettingBefore: wal(0x80)) == [], "\(name)")
            #expect(try await store.schemaHistory(pipeline: "p", at: wal(0x400), forgettingBefore: wal(0x100))
                        == [record("7", 0x300, "b2"), record("9/x", 0x200, "c")], "\(name)")
            #expect(try await store.schemaHistory(pipeline: "p").count == 4, "\(name): nothing replaced at or before 0/100")
            // At 0/400 the description of 0/300 replaced the one of 0/100 for good.
            #expect(try await store.schemaHistory(pipeline: "p", at: wal(0x400), forgettingBefore: wal(0x400))
                        == [record("7", 0x300, "b2"), record("9/x", 0x200, "c")], "\(name)")
            #expect(Set(try await store.schemaHistory(pipeline: "p").map(\.description)) == ["b2", "c", "d"], "\(name)")
            #expect(try await store.schemaHistory(pipeline: "p", at: wal(0x500), forgettingBefore: wal(0x500)).map(\.description) == ["d", "c"], "\(name)")
            #expect(try await store.schemaHistory(pipeline: "q") == [record("7", 0x50, "other")], "\(name)")
        }
    }

    @Test func auditLogAndTokensAreKeptAlike() async throws {
        try await withBothStores { name, store in
            try await store.audit(pipeline: "p", action: "start", detail: "one")
            try await store.audit(pipeline: "p/x", action: "pause", detail: "two", actor: "alice")
            try await store.audit(pipeline: "q", action: "start", detail: "three")
            let p = try await store.auditLog(pipeline: "p", limit: 10)
            #expect(p == [AuditRecord(at: p.first?.at ?? "", pipeline: "p", action: "start", detail: "one", actor: "ferry")], "\(name)")
            let x = try await store.auditLog(pipeline: "p/x", limit: 10)
            #expect(x.map(\.actor) == ["alice"] && x.map(\.pipeline) == ["p/x"], "\(name)")
            #expect(try await store.auditLog(pipeline: nil, limit: 2).map(\.detail) == ["three", "two"], "\(name): newest first")

            #expect(try await store.createToken(name: "ops", role: "operator", hash: "h1"), "\(name)")
            #expect(!(try await store.createToken(name: "ops", role: "admin", hash: "h2")), "\(name): the name is taken")
            let found = try await store.token(hash: "h1")
            #expect(found?.name == "ops" && found?.role == "operator", "\(name)")
            #expect(try await store.token(hash: "h2") == nil, "\(name)")
            #expect(try await store.tokens().map(\.name) == ["ops"], "\(name)")
            #expect(try await store.revokeToken(name: "ops"), "\(name)")
            #expect(!(try await store.revokeToken(name: "ops")), "\(name)")
            #expect(try await store.token(hash: "h1") == nil, "\(name)")
            #expect(try await store.auditLog(pipeline: "*", limit: 10).map(\.action) == ["token-revoke", "token-create"], "\(name)")
        }
    }

    /// Each claim says how the pipeline came to this node; hand-backs and failovers read apart.
    @Test func claimsRecordWhereThePipelineCameFrom() async throws {
        let client = try etcdTestClient()
        let prefix = "/ferry/test/claims-\(UInt32.random(in: 0 ... .max))/"
        let a = EtcdStateStore(client: client, prefix: prefix, node: "a", flushInterval: .zero)
        let b = EtcdStateStore(client: client, prefix: prefix, node: "b", flushInterval: .zero)
        let first = try await claimForTest(client, prefix: prefix, pipeline: "p")
        await a.bind(pipeline: "p", epoch: first)
        #expect(try await a.recordClaim(pipeline: "p") == nil, "the first claim")
        try await a.recordRelease(pipeline: "p")
        try await client.delete(prefix + "owners/p")

        let second = try await claimForTest(client, prefix: prefix, pipeline: "p")
        await b.bind(pipeline: "p", epoch: second)
        let handedOver = try #require(try await b.recordClaim(pipeline: "p"))
        #expect(handedOver.node == "a" && handedOver.epoch == first && handedOver.released)
        #expect(!OwnerRecord.isFailover(OwnerRecord(node: "b", epoch: second, at: "", released: false), after: handedOver))
        // b dies without handing p back; a takes it over.
        try await client.delete(prefix + "owners/p")
        let third = try await claimForTest(client, prefix: prefix, pipeline: "p")
        await a.bind(pipeline: "p", epoch: third)
        let failedOver = try #require(try await a.recordClaim(pipeline: "p"))
        #expect(failedOver.node == "b" && !failedOver.released)
        #expect(OwnerRecord.isFailover(OwnerRecord(node: "a", epoch: third, at: "", released: false), after: failedOver))
        let details = try await a.auditLog(pipeline: "p", limit: 10).filter { $0.action == "claim" }.map(\.detail)
        #expect(details == ["node a claimed it (epoch \(third)): failover from node b (epoch \(second)), which stopped without handing it back",
                            "node b claimed it (epoch \(second)) after node a handed it back (epoch \(first))",
                            "node a claimed it (epoch \(first)), the first claim"])
        // b, fenced, cannot record anything about p any more.
        await #expect(throws: FerryError.self) { try await b.recordRelease(pipeline: "p") }
        try await client.delete(prefix, prefix: true)
        try await client.shutdown()
    }

    /// The audit log of a pipeline is cut to its newest entries.
    @Test func auditTrimmingKeepsTheNewest() async throws {
        let client = try etcdTestClient()
        let prefix = "/ferry/test/trim-\(UInt32.random(in: 0 ... .max))/"
        let store = EtcdStateStore(client: client, prefix: prefix, node: "n", flushInterval: .zero, requiresBinding: false)
        for index in 0..<12 { try await store.audit(pipeline: "p", action: "a\(index)", detail: "", actor: "t") }
        try await store.audit(pipeline: "q", action: "other", detail: "", actor: "t")
        try await store.trimAudit(pipeline: "p", keeping: 5)
        #expect(try await store.auditLog(pipeline: "p", limit: 100).map(\.action) == ["a11", "a10", "a9", "a8", "a7"])
        #expect(try await store.auditLog(pipeline: "q", limit: 100).count == 1, "other pipelines keep theirs")
        try await client.delete(prefix, prefix: true)
        try await client.shutdown()
    }

    @Test func aFormerOwnerIsFenced() async throws {
        let client = try etcdTestClient()
        let prefix = "/ferry/test/fence-\(UInt32.random(in: 0 ... .max))/"
        let a = ClusterNode(client: client, prefix: prefix, name: "a", leaseSeconds: 10, logger: Logger(label: "test"))
        let b = ClusterNode(client: client, prefix: prefix, name: "b", leaseSeconds: 10, logger: Logger(label: "test"))
        try await a.join(info: [])
        try await b.join(info: [])
        guard case .owned(let first) = try await a.claim("p") else { Issue.record("a did not get p"); return }
        let storeA = EtcdStateStore(client: client, prefix: prefix, node: "a", flushInterval: .zero)
        await storeA.bind(pipeline: "p", epoch: first)
        try await storeA.saveSafePosition(at(100), pipeline: "p")

        // a's claim goes (its lease revoked, as etcd does when it expires); b claims p.
        try await client.revokeLease(a.leaseID)
        guard case .owned(let second) = try await b.claim("p") else { Issue.record("b did not get p"); return }
        let storeB = EtcdStateStore(client: client, prefix: prefix, node: "b", flushInterval: .zero)
        await storeB.bind(pipeline: "p", epoch: second)
        try await storeB.saveSafePosition(at(150), pipeline: "p")

        await #expect {
            try await storeA.saveSafePosition(at(900), pipeline: "p")
        } throws: { error in
            guard let error = error as? FerryError else { return false }
            return error.code == .clusterFenced && error.message.contains("node b holds it at epoch \(second)")
        }
        await #expect(throws: FerryError.self) { try await storeA.audit(pipeline: "p", action: "late", detail: "") }
        #expect(try await storeB.checkpoint(pipeline: "p")?.safePosition == at(150))
        try await b.leave()
        try await client.delete(prefix, prefix: true)
        try await client.shutdown()
    }

    /// Positions saved per batch reach etcd at most once per interval, the latest one last.
    @Test func frequentPositionsAreCoalesced() async throws {
        let client = try etcdTestClient()
        let prefix = "/ferry/test/coalesce-\(UInt32.random(in: 0 ... .max))/"
        let store = EtcdStateStore(client: client, prefix: prefix, node: "n", flushInterval: .seconds(60))
        await store.bind(pipeline: "p", epoch: try await claimForTest(client, prefix: prefix, pipeline: "p"))
        for offset in 1...500 { try await store.saveSafePosition(at(UInt64(offset) * 10), pipeline: "p") }
        let written = try #require(try await client.get(prefix + "state/p/safe"))
        #expect(written.version == 1 && written.valueText == at(10).persistedJSON, "only the first save is written within the interval")
        try await store.flush()
        let flushed = try #require(try await client.get(prefix + "state/p/safe"))
        #expect(flushed.version == 2 && flushed.valueText == at(5_000).persistedJSON)
        // Unbound, the node may no longer write the pipeline's state.
        try await store.saveSafePosition(at(6_000), pipeline: "p")
        try await store.unbind(pipeline: "p")
        #expect(try await client.get(prefix + "state/p/safe")?.valueText == at(6_000).persistedJSON, "unbind writes what is pending")
        await #expect(throws: FerryError.self) { try await store.saveSafePosition(at(7_000), pipeline: "p") }
        try await client.delete(prefix, prefix: true)
        try await client.shutdown()
    }
}

import Etcd
import Foundation
import Logging
import Testing
@testable import Cluster

/// Against the 3-member etcd `scripts/services start etcd` runs.
@Suite(.serialized) struct ClusterNodeTests {
    func prefix() -> String { "/ferry/test/cluster-\(UInt32.random(in: 0 ... .max))/" }

    @Test func claimsAreExclusiveAndEpochsGrowAcrossTakeovers() async throws {
        let etcd = try etcdTestClient()
        defer { Task { try? await etcd.shutdown() } }
        let prefix = prefix()
        // Leases long enough for a test process whose threads the suites beside it can hold for
        // many seconds at the start of a run (a 15-second lease ran out in a join there): the
        // test is about order — claims, epochs, writes stopping before the claim goes — not speed.
        let a = ClusterNode(client: etcd, prefix: prefix, name: "a", leaseSeconds: 40, logger: Logger(label: "test"))
        let b = ClusterNode(client: etcd, prefix: prefix, name: "b", leaseSeconds: 40, logger: Logger(label: "test"))
        try await a.join(info: Array("http://a:8080".utf8))
        try await b.join(info: Array("http://b:8080".utf8))
        // b renews its lease for the whole test, as a node does, until it leaves.
        async let bRenewing: Void = { try? await b.keepAlive() }()
        // a renews its lease while it works, until the test lets it lapse.
        let first = try await withThrowingTaskGroup(of: Int64?.self) { group in
            group.addTask {
                try? await a.keepAlive()
                return nil
            }
            defer { group.cancelAll() }
            #expect(a.isWritable && b.isWritable)

            let (members, _) = try await b.members()
            #expect(members.mapValues { String(decoding: $0.info, as: UTF8.self) } == ["a": "http://a:8080", "b": "http://b:8080"])
            #expect(members["a"]?.registered ?? 0 > 0 && members["a"]?.registered != members["b"]?.registered)

            guard case .owned(let first) = try await a.claim("orders") else { Issue.record("a did not get orders"); return Int64?.none }
            #expect(try await a.claim("orders") == .owned(epoch: first), "a retried claim finds its own")
            #expect(try await b.claim("orders") == .ownedBy(node: "a", epoch: first))
            #expect(try await b.owners().mapValues(\.node) == ["orders": "a"])
            return first
        }
        guard let first else { return }

        // a stops renewing: it turns unwritable before etcd expires the lease and deletes its claim.
        let (deletions, continuation) = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
        let start = try await etcd.get(prefix: a.ownerKey("orders")).revision + 1
        let deletedAt = try await withThrowingTaskGroup(of: ContinuousClock.Instant?.self, returning: ContinuousClock.Instant?.self) { group in
            group.addTask {
                try await etcd.watch(prefix: a.ownerKey("orders"), fromRevision: start) { events in
                    if events.contains(where: { $0.kind == .delete }) { continuation.yield(.now) }
                }
                return nil
            }
            group.addTask {
                var iterator = deletions.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(120))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        let observed = try #require(deletedAt, "etcd did not expire a's lease within 120 s")
        #expect(!a.isWritable)
        let writableUntil = try #require(a.writableUntilForTests)
        #expect(writableUntil < observed, "a must stop writing before its claim can vanish")

        // a's next process takes the name again once the old lease is gone.
        let aAgain = ClusterNode(client: etcd, prefix: prefix, name: "a", leaseSeconds: 10, logger: Logger(label: "test"))
        try await aAgain.join(info: [])
        try await aAgain.leave()

        guard case .owned(let second) = try await b.claim("orders") else { Issue.record("b did not take orders over"); return }
        #expect(second > first)
        await #expect(throws: ClusterError.self) { try await a.claim("orders") }

        // A release with a stale epoch changes nothing; the holder's own release frees it.
        try await a.release("orders", epoch: first)
        #expect(try await b.owners()["orders"]?.epoch == second)
        try await b.release("orders", epoch: second)
        #expect(try await b.owners().isEmpty)

        // b lives on: a second b waits out two leases of its own, then gives up.
        let duplicate = ClusterNode(client: etcd, prefix: prefix, name: "b", leaseSeconds: 4, logger: Logger(label: "test"))
        await #expect {
            try await duplicate.join(info: [])
        } throws: { error in
            guard case ClusterError.nameInUse("b", _)? = error as? ClusterError else { return false }
            return "\(error)".contains("cluster.node")
        }
        // Leaving revokes the lease: member key and claims go at once.
        _ = try await b.claim("users")
        try await b.leave()
        await bRenewing
        #expect(!b.isWritable)
        #expect(try await etcd.get(prefix: prefix).keyValues.isEmpty)
    }

    /// Operators' pauses and restarts, and the views nodes publish, as every node reads them.
    @Test func controlsAndViewsAreSharedThroughEtcd() async throws {
        let etcd = try etcdTestClient()
        let prefix = prefix()
        let a = ClusterNode(client: etcd, prefix: prefix, name: "a", leaseSeconds: 15, logger: Logger(label: "test"))
        let b = ClusterNode(client: etcd, prefix: prefix, name: "b", leaseSeconds: 15, logger: Logger(label: "test"))
        try await a.join(info: [])
        try await b.join(info: [])
        #expect(try await a.controls() == ClusterNode.Controls())
        #expect(try await a.pause("p", actor: "alice"))
        #expect(!(try await b.pause("p", actor: "bob")), "paused already")
        #expect(!(try await b.requestRestart("p", actor: "bob")), "a paused pipeline is not restarted")
        #expect(try await b.requestRestart("q", actor: "bob"))
        let seen = try await b.controls()
        #expect(seen.paused == ["p": "alice"] && Array(seen.restarts.keys) == ["q"])
        // A restart asked again after it was seen stays for the next round.
        #expect(try await a.requestRestart("q", actor: "alice"))
        try await b.restartDone("q", revision: try #require(seen.restarts["q"]))
        #expect(try await a.controls().restarts.keys.contains("q"))
        try await b.restartDone("q", revision: try #require(try await a.controls().restarts["q"]))
        #expect(try await b.resume("p"))
        #expect(!(try await b.resume("p")), "not paused any more")
        #expect(try await a.controls() == ClusterNode.Controls())

        try await a.publish(view: Array("[1]".utf8))
        try await b.publish(view: Array("[2]".utf8))
        #expect(try await b.publishedViews() == ["a": Array("[1]".utf8), "b": Array("[2]".utf8)])
        try await a.leave()
        #expect(try await b.publishedViews().keys.sorted() == ["b"], "a view goes with its node's lease")
        try await b.leave()
        try await etcd.delete(prefix, prefix: true)
        try await etcd.shutdown()
    }
}

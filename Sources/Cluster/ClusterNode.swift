import Etcd
import Logging
import NIOConcurrencyHelpers

/// One node's presence in the cluster: its session lease, its key under `members/`, and the
/// pipelines it claims under `owners/`, all bound to the lease so they vanish with it.
///
/// Keys, under the configured prefix:
/// - `members/NODE` — the node is alive (value: what it tells the others, e.g. its API address);
/// - `owners/PIPELINE` — the node named in the value owns the pipeline; the key's create
///   revision is the owner's epoch, which grows with every new claim;
/// - `control/paused/PIPELINE` — an operator paused the pipeline: no node runs it;
/// - `control/restart/PIPELINE` — an operator asked for a restart: the node the pipeline is
///   planned for carries it out and deletes the key;
/// - `views/NODE` — the figures of the pipelines the node runs, for every node's API (bound to
///   the lease).
///
/// One task owns a node (joins, keeps the lease alive, claims and releases); other tasks only
/// ask `isWritable`, which turns false before the lease can expire on the server.
public final class ClusterNode: Sendable {
    public let name: String
    public let prefix: String
    public let leaseSeconds: Int64
    private let client: EtcdClient
    private let logger: Logger
    private let deadline: NIOLockedValueBox<LeaseDeadline>
    private let lease = NIOLockedValueBox<Int64>(0)

    /// What a claim found: the pipeline is ours at `epoch`, or another node's.
    public enum Claim: Sendable, Equatable {
        case owned(epoch: Int64)
        case ownedBy(node: String, epoch: Int64)
    }

    public init(client: EtcdClient, prefix: String, name: String, leaseSeconds: Int64, logger: Logger) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.name = name
        self.leaseSeconds = leaseSeconds
        self.logger = logger
        // A fifth of the lease, at least one second: room for drift and a write in flight.
        self.deadline = NIOLockedValueBox(LeaseDeadline(margin: max(.seconds(1), .seconds(leaseSeconds) / 5)))
    }

    public var memberKey: String { prefix + "members/" + name }
    public func ownerKey(_ pipeline: String) -> String { prefix + "owners/" + pipeline }
    public var leaseID: Int64 { lease.withLockedValue { $0 } }

    /// Whether this node may still write for the pipelines it claimed.
    public var isWritable: Bool {
        deadline.withLockedValue { $0.isWritable(at: .now) }
    }

    /// How long this node may still write: zero once the lease is lost or ran out.
    public func writeWindow() -> Duration {
        let now = ContinuousClock.now
        guard let until = deadline.withLockedValue({ $0.writableUntil }), until > now else { return .zero }
        return until - now
    }

    /// The instant writes stop unless the lease is renewed (nil once it is lost).
    var writableUntilForTests: ContinuousClock.Instant? { deadline.withLockedValue { $0.writableUntil } }

    /// Grants the session lease and registers the node. A member key of the same name may be
    /// this node's previous process, killed a moment ago: its lease runs out within one lease,
    /// so the key is waited for that long (and a little more) before the name counts as taken.
    /// - Throws: `ClusterError.nameInUse` when a live node keeps the name.
    public func join(info: [UInt8]) async throws {
        let giveUp = ContinuousClock.now + .seconds(leaseSeconds) * 2 + .seconds(1)
        var sentAt = ContinuousClock.now
        let granted = try await client.grantLease(ttlSeconds: leaseSeconds)
        do {
            while true {
                let registered = try await client.txn([.absent(memberKey)], success: [.put(memberKey, info, lease: granted.id)],
                                                      failure: [.get(memberKey)])
                if registered.succeeded { break }
                // Our own registration, sent again after its answer was lost.
                if case .get(let range)? = registered.results.first, range.keyValues.first?.lease == granted.id { break }
                guard ContinuousClock.now < giveUp else { throw ClusterError.nameInUse(node: name, key: memberKey) }
                logger.info("waiting for this node name's previous lease to run out", metadata: ["node": "\(name)"])
                try await Task.sleep(for: .milliseconds(250))
                // Keep the new lease alive while waiting.
                sentAt = ContinuousClock.now
                _ = try await client.keepAlive(lease: granted.id)
            }
        } catch {
            try? await client.revokeLease(granted.id)
            throw error
        }
        lease.withLockedValue { $0 = granted.id }
        deadline.withLockedValue { $0.renewed(sentAt: sentAt, ttlSeconds: granted.ttlSeconds) }
        logger.info("joined the cluster", metadata: ["node": "\(name)", "lease": "\(String(granted.id, radix: 16))"])
    }

    /// Renews the lease once.
    /// - Throws: `EtcdError.leaseExpired` when it is gone; the node is no longer writable.
    public func renew() async throws {
        let id = leaseID
        let sentAt = ContinuousClock.now
        do {
            let ttl = try await client.keepAlive(lease: id)
            deadline.withLockedValue { $0.renewed(sentAt: sentAt, ttlSeconds: ttl) }
        } catch let error as EtcdError {
            if case .leaseExpired = error { deadline.withLockedValue { $0.lost() } }
            throw error
        }
    }

    /// Renews the lease every third of its time to live, counted from when the last renewal
    /// was sent, until cancelled, the node leaves, or the lease is lost. A failed renewal (etcd unreachable) is
    /// tried again a quarter second later; writes stop on their own when `isWritable` turns false.
    public func keepAlive() async throws {
        let interval = Duration.seconds(leaseSeconds) / 3
        var next = ContinuousClock.now + interval
        while true {
            try await Task.sleep(until: next)
            // Left the cluster (`leave`): nothing to renew.
            if leaseID == 0 { return }
            let sentAt = ContinuousClock.now
            do {
                try await renew()
                next = sentAt + interval
            } catch EtcdError.leaseExpired(let id) {
                logger.error("the cluster lease expired; this node stopped writing", metadata: ["node": "\(name)", "lease": "\(String(id, radix: 16))"])
                throw EtcdError.leaseExpired(id: id)
            } catch let error as EtcdError {
                logger.warning("cannot renew the cluster lease", metadata: ["node": "\(name)", "error": "\(error)"])
                next = ContinuousClock.now + .milliseconds(250)
            }
        }
    }

    /// Claims `pipeline` for this node unless another node holds it.
    public func claim(_ pipeline: String) async throws -> Claim {
        let key = ownerKey(pipeline)
        let id = leaseID
        guard id != 0, isWritable else { throw ClusterError.notWritable(node: name) }
        let result = try await client.txn([.absent(key)], success: [.put(key, Array(name.utf8), lease: id)], failure: [.get(key)])
        if result.succeeded { return .owned(epoch: result.revision) }
        guard case .get(let range)? = result.results.first, let holder = range.keyValues.first else {
            // Released between the comparison and the read: the next round claims it.
            return .ownedBy(node: "", epoch: 0)
        }
        // Our own claim, retried after its answer was lost.
        if holder.lease == id, holder.valueText == name { return .owned(epoch: holder.createRevision) }
        return .ownedBy(node: holder.valueText, epoch: holder.createRevision)
    }

    /// Gives `pipeline` up, if this node still holds it at `epoch`.
    public func release(_ pipeline: String, epoch: Int64) async throws {
        let key = ownerKey(pipeline)
        _ = try await client.txn([EtcdCompare(key: key, .createRevision(epoch))], success: [.delete(key)])
    }

    /// A live member: what it registered, and when (its key's create revision — a new value
    /// means a new process took the name, even one that came back between two reads).
    public struct Member: Sendable, Equatable {
        public var info: [UInt8]
        public var registered: Int64
    }

    /// Every live member, at one revision.
    public func members() async throws -> (members: [String: Member], revision: Int64) {
        let (children, revision) = try await children(of: "members/")
        return (children.mapValues { Member(info: $0.value, registered: $0.createRevision) }, revision)
    }

    /// Every claimed pipeline: its owner and epoch.
    public func owners() async throws -> [String: (node: String, epoch: Int64)] {
        try await children(of: "owners/").keyValues.mapValues { ($0.valueText, $0.createRevision) }
    }

    /// Operators' standing requests, read at once.
    public struct Controls: Sendable, Equatable {
        /// Paused pipelines, and who paused them.
        public var paused: [String: String] = [:]
        /// Pipelines to restart, with the request's revision (to delete exactly that request).
        public var restarts: [String: Int64] = [:]

        public init(paused: [String: String] = [:], restarts: [String: Int64] = [:]) {
            self.paused = paused
            self.restarts = restarts
        }
    }

    public func controls() async throws -> Controls {
        var controls = Controls()
        for (name, keyValue) in try await children(of: "control/").keyValues {
            if name.hasPrefix("paused/") {
                controls.paused[String(name.dropFirst("paused/".count))] = keyValue.valueText
            } else if name.hasPrefix("restart/") {
                controls.restarts[String(name.dropFirst("restart/".count))] = keyValue.modRevision
            }
        }
        return controls
    }

    /// Pauses `pipeline` for every node; false when it is paused already.
    public func pause(_ pipeline: String, actor: String) async throws -> Bool {
        let key = prefix + "control/paused/" + pipeline
        return try await client.txn([.absent(key)], success: [.put(key, Array(actor.utf8))]).succeeded
    }

    /// Lets `pipeline` run again; false when it was not paused.
    public func resume(_ pipeline: String) async throws -> Bool {
        try await client.delete(prefix + "control/paused/" + pipeline) > 0
    }

    /// Asks the node that runs `pipeline` (or the one it is planned for) to restart it; false,
    /// and nothing asked, while it is paused.
    public func requestRestart(_ pipeline: String, actor: String) async throws -> Bool {
        try await client.txn([.absent(prefix + "control/paused/" + pipeline)],
                             success: [.put(prefix + "control/restart/" + pipeline, Array(actor.utf8))]).succeeded
    }

    /// Deletes the restart request seen at `revision` (a newer one stays for the next round).
    public func restartDone(_ pipeline: String, revision: Int64) async throws {
        let key = prefix + "control/restart/" + pipeline
        _ = try await client.txn([EtcdCompare(key: key, .modRevision(revision))], success: [.delete(key)])
    }

    /// Publishes what this node shows about its pipelines; gone with the lease.
    public func publish(view: [UInt8]) async throws {
        let id = leaseID
        guard id != 0 else { return }
        _ = try await client.put(prefix + "views/" + name, view, lease: id)
    }

    /// What every node published, by node.
    public func publishedViews() async throws -> [String: [UInt8]] {
        try await children(of: "views/").keyValues.mapValues(\.value)
    }

    /// The keys under `prefix + folder`, by the rest of their name, read at one revision.
    private func children(of folder: String) async throws -> (keyValues: [String: EtcdKeyValue], revision: Int64) {
        let folderPrefix = prefix + folder
        let range = try await client.get(prefix: folderPrefix)
        var children: [String: EtcdKeyValue] = [:]
        for keyValue in range.keyValues { children[String(keyValue.keyText.dropFirst(folderPrefix.count))] = keyValue }
        return (children, range.revision)
    }

    /// Stops being a member without giving up the lease: the others plan this node's pipelines
    /// elsewhere and claim each as soon as it is released, while the node drains them.
    public func withdraw() async throws {
        let id = leaseID
        guard id != 0 else { return }
        _ = try await client.txn([EtcdCompare(key: memberKey, .lease(id))], success: [.delete(memberKey)])
    }

    /// Leaves: stops writing, then revokes the lease, which deletes the member key and every
    /// claim at once so other nodes can take the pipelines without waiting for it to expire.
    public func leave() async throws {
        deadline.withLockedValue { $0.lost() }
        let id = lease.withLockedValue { value in
            defer { value = 0 }
            return value
        }
        if id != 0 { try await client.revokeLease(id) }
        logger.info("left the cluster", metadata: ["node": "\(name)"])
    }
}

public enum ClusterError: Error, Sendable, CustomStringConvertible {
    case nameInUse(node: String, key: String)
    case notWritable(node: String)

    public var description: String {
        switch self {
        case .nameInUse(let node, let key):
            return "cluster node name '\(node)' is in use by a live node (\(key) exists); give each node its own cluster.node, or wait for the old process's lease to expire"
        case .notWritable(let node):
            return "cluster node '\(node)' holds no live lease (etcd unreachable or the lease expired); it claims and writes nothing until it joins again"
        }
    }
}

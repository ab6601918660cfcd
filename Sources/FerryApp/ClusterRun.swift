import Cluster
import Etcd
import FerryCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Pipeline
import ServiceLifecycle
import UnixSignals

/// `ferry run` with `cluster:`: this process is one node of several that share the
/// configuration's pipelines through etcd (docs/cluster.md). It joins with a session lease, and
/// every half second reads the members and the claims, works out which pipelines should be its
/// own (`PipelineAssignment`), claims those that are free and runs them with their state in etcd,
/// and hands back those that now belong to another node. When its lease cannot be renewed it
/// stops writing before etcd can expire it, and ends (its service manager restarts it).
enum ClusterRun {
    static func run(configuration: FerryConfiguration, cluster: FerryConfiguration.Cluster, logger: Logger) async throws {
        try refuseNodeLocalSinks(configuration)
        let client = try EtcdClient(configuration: EtcdConfiguration(
            endpoints: cluster.endpoints, user: cluster.user, password: cluster.password,
            caFile: cluster.caFile, certificateFile: cluster.certificateFile, keyFile: cluster.keyFile), logger: logger)
        let node = ClusterNode(client: client, prefix: cluster.prefix, name: cluster.node, leaseSeconds: Int64(cluster.leaseSeconds), logger: logger)
        let store = EtcdStateStore(client: client, prefix: cluster.prefix, node: cluster.node)
        do {
            do {
                let info = try JSONEncoder().encode(["node": cluster.node, "pid": "\(getpid())", "started": WallClock.iso8601UTC()])
                try await node.join(info: [UInt8](info))
            } catch let error as EtcdError {
                throw FerryError.clusterUnavailable("\(error)", context: [("node", cluster.node), ("prefix", cluster.prefix)])
            } catch let error as ClusterError {
                throw FerryError(code: .configInvalid, message: "\(error)", context: [("file", configuration.file)])
            }
            if configuration.server != nil {
                logger.notice("cluster mode: the web page and API are not served yet; use ferry status with the etcd state", metadata: ["ferry.node": "\(cluster.node)"])
            }
            let service = ClusterService(configuration: configuration, node: node, store: store, coolDown: .seconds(2 * cluster.leaseSeconds), logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            try? await store.flush()
            try? await node.leave()
        } catch {
            try? await node.leave()
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// SQLite and JSON-lines targets live on one node's disk: another node taking the pipeline
    /// over could not see them.
    static func refuseNodeLocalSinks(_ configuration: FerryConfiguration) throws {
        for pipeline in configuration.pipelines {
            for sinkName in pipeline.sinks + (pipeline.deadLetterSink.map { [$0] } ?? []) {
                switch configuration.sinks[sinkName]?.kind {
                case .sqlite?, .jsonl?:
                    throw FerryError(code: .configInvalid,
                                     message: "sink \(sinkName) writes to this node's disk, which the node that takes pipeline \(pipeline.name) over cannot see",
                                     context: [("file", configuration.file), ("pipeline", pipeline.name), ("sink", sinkName)],
                                     fix: "in cluster mode use a shared target (PostgreSQL, MariaDB, Redis, NATS, ClickHouse, search, webhook), or run this pipeline without cluster:")
                default: break
                }
            }
        }
    }
}

/// The node's loop: one task owns every decision (what runs, what is claimed); pipelines run as
/// its children.
final class ClusterService: Service, Sendable {
    let configuration: FerryConfiguration
    let node: ClusterNode
    let store: EtcdStateStore
    let coolDown: Duration
    let logger: Logger
    private let shuttingDown = NIOLockedValueBox(false)

    init(configuration: FerryConfiguration, node: ClusterNode, store: EtcdStateStore, coolDown: Duration, logger: Logger) {
        self.configuration = configuration
        self.node = node
        self.store = store
        self.coolDown = coolDown
        self.logger = logger
    }

    private enum Event: Sendable {
        case tick
        case ended(String, (any Error)?)
        case leaseLost(any Error)
    }

    /// A pipeline this node runs: how to stop it, and the epoch of its claim.
    private struct Owned {
        var stop: StopSignal
        var epoch: Int64
        var handingBack = false
    }

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await coordinate()
        } onGracefulShutdown: {
            self.shuttingDown.withLockedValue { $0 = true }
        }
    }

    private func coordinate() async throws {
        let names = configuration.pipelines.map(\.name)
        var view = MemberView(membersPrefix: node.prefix + "members/")
        var owned: [String: Owned] = [:]
        var holdUntil: [String: ContinuousClock.Instant] = [:]
        var finished: Set<String> = []
        var leaseFailure: (any Error)?
        var draining = false
        try await withThrowingTaskGroup(of: Event.self) { group in
            group.addTask {
                do {
                    try await self.node.keepAlive()
                    return .leaseLost(CancellationError())
                } catch {
                    return .leaseLost(error)
                }
            }
            group.addTask { .tick }
            while let event = try await group.next() {
                switch event {
                case .leaseLost(let error):
                    if error is CancellationError { continue }
                    // Writes already stopped (the write window closed); end every pipeline now.
                    leaseFailure = error
                    group.cancelAll()
                case .ended(let name, let error):
                    guard let ended = owned.removeValue(forKey: name) else { continue }
                    try? await store.unbind(pipeline: name)
                    if leaseFailure == nil { try? await node.release(name, epoch: ended.epoch) }
                    if leaseFailure != nil {
                        logger.notice("pipeline stopped with the lease", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.epoch": "\(ended.epoch)"])
                    } else if ended.handingBack || draining {
                        logger.notice("pipeline handed back", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.epoch": "\(ended.epoch)"])
                    } else if let error {
                        logger.error("pipeline stopped on this node; another node may take it", metadata: [
                            LoggingKeys.pipeline: "\(name)", LoggingKeys.error: .error(error)])
                        // Refused only because the lease was late to renew: claim it again at once
                        // if the lease lives on; any other failure waits a cool-down.
                        let fencedOnly = (error as? FerryError)?.code == .clusterFenced && node.isWritable
                        if !fencedOnly { holdUntil[name] = .now + coolDown }
                    } else {
                        // Ended by itself (snapshot: initial_only): its work is done.
                        finished.insert(name)
                    }
                    if draining, owned.isEmpty { group.cancelAll() }
                case .tick:
                    guard leaseFailure == nil else { continue }
                    // Positions held back by coalescing reach etcd within a tick or two.
                    try? await store.flush()
                    if shuttingDown.withLockedValue({ $0 }) || Task.isCancelled {
                        if !draining {
                            draining = true
                            // Out of the plan first, so each pipeline is claimed elsewhere as soon
                            // as it is released here, not after the slowest one has drained.
                            try? await node.withdraw()
                            for entry in owned.values { await entry.stop.stop() }
                        }
                        if owned.isEmpty {
                            group.cancelAll()
                            continue
                        }
                    } else {
                        await rebalance(names: names, view: &view, owned: &owned, holdUntil: &holdUntil, finished: finished, group: &group)
                    }
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(500))
                        return .tick
                    }
                }
            }
        }
        if let leaseFailure {
            throw FerryError(code: .clusterFenced, message: "node \(node.name) lost its cluster lease and stopped its pipelines: \(leaseFailure)",
                             context: [("node", node.name)],
                             fix: "restart it (systemd does, with Restart=on-failure); if it repeats, check its path to etcd and raise cluster.lease_seconds",
                             disposition: .fatal)
        }
    }

    /// One round: claim and start the pipelines planned for this node, hand back the others.
    private func rebalance(names: [String], view: inout MemberView, owned: inout [String: Owned], holdUntil: inout [String: ContinuousClock.Instant],
                           finished: Set<String>, group: inout ThrowingTaskGroup<Event, any Error>) async {
        do {
            let now = ContinuousClock.now
            let (members, _) = try await node.members()
            view.reset(to: members.keys, at: now)
            let claims = try await node.owners()
            let plan = PipelineAssignment.assign(pipelines: names, members: view.ages(at: now), coolDown: coolDown)
            // Claims of this node that nothing runs (a release that failed, a claim whose answer
            // was lost): give them up, or no node would take those pipelines.
            for (name, claim) in claims where claim.node == node.name && owned[name] == nil {
                try? await node.release(name, epoch: claim.epoch)
            }
            for name in names where plan[name] == node.name && owned[name] == nil && !finished.contains(name) {
                if let until = holdUntil[name], until > now { continue }
                if let claim = claims[name], claim.node != node.name { continue }
                guard let pipeline = configuration.pipelines.first(where: { $0.name == name }),
                      case .owned(let epoch) = try await node.claim(name) else { continue }
                await store.bind(pipeline: name, epoch: epoch)
                let window: @Sendable () -> Duration? = { [node] in node.writeWindow() }
                let runner: PipelineRunner
                do {
                    runner = try Run.buildRunner(pipeline, configuration: configuration, store: store, writeWindow: window, epoch: epoch, logger: logger)
                } catch {
                    logger.error("pipeline cannot be built on this node", metadata: [LoggingKeys.pipeline: "\(name)", LoggingKeys.error: .error(error)])
                    try? await store.unbind(pipeline: name)
                    try? await node.release(name, epoch: epoch)
                    holdUntil[name] = now + coolDown
                    continue
                }
                let stop = StopSignal()
                owned[name] = Owned(stop: stop, epoch: epoch)
                logger.notice("pipeline claimed; running it", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.epoch": "\(epoch)"])
                group.addTask {
                    do {
                        try await runner.run(stop: stop)
                        return .ended(name, nil)
                    } catch {
                        return .ended(name, error)
                    }
                }
            }
            // Pipelines the plan gives to another live member: drain and release them.
            for (name, entry) in owned where !entry.handingBack {
                guard let planned = plan[name], planned != node.name, members[planned] != nil else { continue }
                owned[name]?.handingBack = true
                logger.notice("pipeline planned for another node; handing it back", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.to": "\(planned)"])
                await entry.stop.stop()
            }
        } catch {
            logger.warning("cluster round failed; trying again", metadata: [LoggingKeys.error: .error(error)])
        }
    }
}

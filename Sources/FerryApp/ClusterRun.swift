import Cluster
import Etcd
import FerryCore
import Foundation
import Logging
import Metrics
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
        let client = try client(cluster, logger: logger)
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
            let board = ClusterBoard()
            let service = ClusterService(configuration: configuration, node: node, store: store, board: board,
                                         coolDown: .seconds(2 * cluster.leaseSeconds), logger: logger)
            let control = ClusterControl(configuration: configuration, node: node, store: store, board: board,
                                         hangups: await UnixSignalsSequence(trapping: .sighup), logger: logger)
            // Shut down in reverse: the web server, then the figures, then the pipelines drain.
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: control, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup),
            ] + (try Run.controlPlane(configuration: configuration, backend: control, logger: logger))
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
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

    /// A client of the cluster's etcd.
    static func client(_ cluster: FerryConfiguration.Cluster, logger: Logger) throws -> EtcdClient {
        try EtcdClient(configuration: EtcdConfiguration(
            endpoints: cluster.endpoints, user: cluster.user, password: cluster.password,
            caFile: cluster.caFile, certificateFile: cluster.certificateFile, keyFile: cluster.keyFile), logger: logger)
    }

    /// SQLite and JSON-lines targets live on one node's disk: another node taking the pipeline
    /// over could not see them. A JSON-lines directory declared `shared` is on a file system every
    /// node mounts.
    static func refuseNodeLocalSinks(_ configuration: FerryConfiguration) throws {
        for pipeline in configuration.pipelines {
            for sinkName in pipeline.sinks + (pipeline.deadLetterSink.map { [$0] } ?? []) {
                guard let sink = configuration.sinks[sinkName] else { continue }
                switch sink.kind {
                case .sqlite:
                    throw FerryError(code: .configInvalid,
                                     message: "sink \(sinkName) writes to this node's disk, which the node that takes pipeline \(pipeline.name) over cannot see",
                                     context: [("file", configuration.file), ("pipeline", pipeline.name), ("sink", sinkName)],
                                     fix: "in cluster mode use a shared target (PostgreSQL, MariaDB, Redis, NATS, ClickHouse, search, webhook), or run this pipeline without cluster:")
                case .jsonl(let directory, _, _, _) where !sink.sharedDirectory:
                    throw FerryError(code: .configInvalid,
                                     message: "sink \(sinkName) writes to \(directory) on this node's disk, which the node that takes pipeline \(pipeline.name) over cannot see",
                                     context: [("file", configuration.file), ("pipeline", pipeline.name), ("sink", sinkName)],
                                     fix: "put the directory on a file system every node mounts at the same path and set shared: true on the sink, or use a shared target (PostgreSQL, MariaDB, Redis, NATS, ClickHouse, search, webhook)")
                default: break
                }
            }
        }
    }
}

/// What a node's loop last saw in etcd and what it runs, published for its control plane,
/// which only reads it.
final class ClusterBoard: Sendable {
    struct LocalRun: Sendable {
        var runner: PipelineRunner
        var epoch: Int64
        var stopping: Bool
    }

    struct Claimed: Sendable, Equatable {
        var node: String
        var epoch: Int64
    }

    struct Picture: Sendable {
        var members: [String: [UInt8]] = [:]
        var owners: [String: Claimed] = [:]
        var controls = ClusterNode.Controls()
    }

    let runs = NIOLockedValueBox<[String: LocalRun]>([:])
    let picture = NIOLockedValueBox<Picture>(Picture())
    /// Pipelines whose last run on this node failed and that wait out their cool-down, with the
    /// error; shown as `failed` until a node claims them.
    let failed = NIOLockedValueBox<[String: String]>([:])
}

/// The node's loop: one task owns every decision (what runs, what is claimed); pipelines run as
/// its children.
final class ClusterService: Service, Sendable {
    let configuration: FerryConfiguration
    let node: ClusterNode
    let store: EtcdStateStore
    let board: ClusterBoard
    let coolDown: Duration
    let logger: Logger
    private let shuttingDown = NIOLockedValueBox(false)
    /// Audit entries kept per pipeline in etcd; older ones are trimmed about once a minute.
    static let auditEntriesKept = 1000

    init(configuration: FerryConfiguration, node: ClusterNode, store: EtcdStateStore, board: ClusterBoard, coolDown: Duration, logger: Logger) {
        self.configuration = configuration
        self.node = node
        self.store = store
        self.board = board
        self.coolDown = coolDown
        self.logger = logger
    }

    private enum Event: Sendable {
        case tick
        case ended(String, (any Error)?)
        case leaseLost(any Error)
    }

    /// Why this node stops a pipeline it runs.
    private enum StopReason {
        /// The plan gives it to another node.
        case handBack
        /// An operator paused it.
        case pause
        /// An operator asked for a restart: it is claimed again at once.
        case restart
    }

    /// A pipeline this node runs: how to stop it, and the epoch of its claim.
    private struct Owned {
        var stop: StopSignal
        var epoch: Int64
        var runner: PipelineRunner
        var stopping: StopReason?
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
        var view = MemberView()
        var owned: [String: Owned] = [:]
        var holdUntil: [String: ContinuousClock.Instant] = [:]
        var finished: Set<String> = []
        var leaseFailure: (any Error)?
        var draining = false
        var ticks = 0
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
                defer { publish(owned) }
                switch event {
                case .leaseLost(let error):
                    if error is CancellationError { continue }
                    // Writes already stopped (the write window closed); end every pipeline now.
                    leaseFailure = error
                    for name in owned.keys.sorted() {
                        Counter(label: "ferry_cluster_fencing_rejections_total", dimensions: [("pipeline", name)]).increment()
                        let refusal = FerryError.fenced("node \(node.name) lost its cluster lease: pipeline \(name) writes nothing more here; another node may own it",
                                                        context: [("pipeline", name), ("node", node.name)])
                        logger.error("\(refusal.message)", metadata: [LoggingKeys.pipeline: "\(name)", LoggingKeys.error: .error(refusal)])
                    }
                    group.cancelAll()
                case .ended(let name, let error):
                    guard let ended = owned.removeValue(forKey: name) else { continue }
                    if (error as? FerryError)?.code == .clusterFenced {
                        Counter(label: "ferry_cluster_fencing_rejections_total", dimensions: [("pipeline", name)]).increment()
                    }
                    if leaseFailure == nil, error == nil {
                        try? await store.recordRelease(pipeline: name)
                    }
                    try? await store.unbind(pipeline: name)
                    if leaseFailure == nil { try? await node.release(name, epoch: ended.epoch) }
                    let metadata: Logger.Metadata = [LoggingKeys.pipeline: "\(name)", "ferry.epoch": "\(ended.epoch)"]
                    if leaseFailure != nil {
                        logger.notice("pipeline stopped with the lease", metadata: metadata)
                    } else if let error, ended.stopping == nil || (error as? FerryError)?.code == .clusterFenced {
                        logger.error("pipeline stopped on this node; another node may take it", metadata: metadata.merging([LoggingKeys.error: .error(error)]) { $1 })
                        // For `ferry status` and every node's API, as a process alone records it.
                        try? await store.audit(pipeline: name, action: "error", detail: ErrorReport.line(error), actor: "ferry")
                        // Refused only because the lease was late to renew: claim it again at once
                        // if the lease lives on; any other failure waits a cool-down.
                        let fencedOnly = (error as? FerryError)?.code == .clusterFenced && node.isWritable
                        if !fencedOnly {
                            holdUntil[name] = .now + coolDown
                            board.failed.withLockedValue { $0[name] = ErrorReport.line(error) }
                        }
                    } else if ended.stopping == .restart {
                        logger.notice("pipeline stopped for a restart", metadata: metadata)
                    } else if ended.stopping == .pause {
                        logger.notice("pipeline paused", metadata: metadata)
                    } else if ended.stopping == .handBack || draining {
                        logger.notice("pipeline handed back", metadata: metadata)
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
                        await rebalance(names: names, view: &view, owned: &owned, holdUntil: &holdUntil, finished: &finished, group: &group)
                        ticks += 1
                        if ticks % 120 == 0 {
                            // Each owner trims its pipelines' logs; every node the log of no pipeline (tokens).
                            for name in owned.keys + ["*"] { try? await store.trimAudit(pipeline: name, keeping: Self.auditEntriesKept) }
                        }
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

    /// What runs here, for the control plane.
    private func publish(_ owned: [String: Owned]) {
        let runs = owned.mapValues { ClusterBoard.LocalRun(runner: $0.runner, epoch: $0.epoch, stopping: $0.stopping != nil) }
        board.runs.withLockedValue { $0 = runs }
    }

    /// One round: carry out operators' requests, claim and start the pipelines planned for this
    /// node, hand back the others.
    private func rebalance(names: [String], view: inout MemberView, owned: inout [String: Owned], holdUntil: inout [String: ContinuousClock.Instant],
                           finished: inout Set<String>, group: inout ThrowingTaskGroup<Event, any Error>) async {
        do {
            let now = ContinuousClock.now
            let (members, _) = try await node.members()
            view.reset(to: members.mapValues(\.registered), at: now)
            let claims = try await node.owners()
            let controls = try await node.controls()
            board.picture.withLockedValue {
                $0 = ClusterBoard.Picture(members: members.mapValues(\.info), owners: claims.mapValues { ClusterBoard.Claimed(node: $0.node, epoch: $0.epoch) },
                                          controls: controls)
            }
            // A failure here is old news once a node runs the pipeline again.
            board.failed.withLockedValue { failed in failed = failed.filter { claims[$0.key] == nil } }
            // A paused pipeline is planned for no node.
            let plan = PipelineAssignment.assign(pipelines: names.filter { controls.paused[$0] == nil }, members: view.ages(at: now), coolDown: coolDown)
            // Claims of this node that nothing runs (a release that failed, a claim whose answer
            // was lost): give them up, or no node would take those pipelines.
            for (name, claim) in claims where claim.node == node.name && owned[name] == nil {
                try? await node.release(name, epoch: claim.epoch)
            }
            // A restart is carried out where the pipeline runs, else where it is planned to.
            for (name, revision) in controls.restarts where owned[name] != nil || (plan[name] == node.name && claims[name] == nil) {
                holdUntil[name] = nil
                finished.remove(name)
                if let entry = owned[name], entry.stopping == nil {
                    owned[name]?.stopping = .restart
                    await entry.stop.stop()
                }
                try? await node.restartDone(name, revision: revision)
            }
            for (name, entry) in owned where entry.stopping == nil && controls.paused[name] != nil {
                owned[name]?.stopping = .pause
                logger.notice("pipeline paused by an operator; stopping it", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.by": "\(controls.paused[name]!)"])
                await entry.stop.stop()
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
                let claim = OwnerRecord(node: node.name, epoch: epoch, at: WallClock.iso8601UTC(), released: false)
                if case let previous? = try? await store.recordClaim(pipeline: name), OwnerRecord.isFailover(claim, after: previous) {
                    Counter(label: "ferry_cluster_failovers_total", dimensions: [("pipeline", name)]).increment()
                    logger.notice("pipeline failed over to this node", metadata: [
                        LoggingKeys.pipeline: "\(name)", "ferry.from": "\(previous.node)", "ferry.from_epoch": "\(previous.epoch)"])
                }
                board.failed.withLockedValue { _ = $0.removeValue(forKey: name) }
                let stop = StopSignal()
                owned[name] = Owned(stop: stop, epoch: epoch, runner: runner)
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
            for (name, entry) in owned where entry.stopping == nil {
                guard let planned = plan[name], planned != node.name, members[planned] != nil else { continue }
                owned[name]?.stopping = .handBack
                logger.notice("pipeline planned for another node; handing it back", metadata: [LoggingKeys.pipeline: "\(name)", "ferry.to": "\(planned)"])
                await entry.stop.stop()
            }
        } catch {
            logger.warning("cluster round failed; trying again", metadata: [LoggingKeys.error: .error(error)])
        }
    }
}

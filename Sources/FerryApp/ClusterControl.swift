import Cluster
import ControlPlane
import Etcd
import FerryCore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Pipeline
import ServiceLifecycle
import UnixSignals

/// The control plane of one cluster node. Any node answers for every pipeline: the figures of
/// those it runs come from their runs; every node publishes those under `views/NODE` every two
/// seconds, and shows the others' from there. Actions reach the owner through etcd: a pause or
/// a restart is a key the owning (or planned) node acts on within a round; snapshot and rewind
/// requests are records in the pipeline's state, which its owner reads.
final class ClusterControl: ControlBackend, Service {
    let configuration: FerryConfiguration
    let node: ClusterNode
    let store: EtcdStateStore
    let board: ClusterBoard
    let logger: Logger
    private let figures = PipelineFigures()
    private let views = NIOLockedValueBox<[PipelineView]?>(nil)
    /// The views of the pipelines this node runs, as last published.
    private let localViews = NIOLockedValueBox<[PipelineView]>([])
    /// For the pipelines this node runs.
    private let retention: RetentionWatch
    /// SIGHUP (`systemctl reload`), trapped so it does not end the node: a cluster reads its
    /// configuration only at start.
    private let hangups: UnixSignalsSequence

    init(configuration: FerryConfiguration, node: ClusterNode, store: EtcdStateStore, board: ClusterBoard, hangups: UnixSignalsSequence,
         logger: Logger) {
        self.configuration = configuration
        self.node = node
        self.store = store
        self.board = board
        self.logger = logger
        self.retention = RetentionWatch(logger: logger)
        self.hangups = hangups
    }

    func run() async throws {
        let configuration = self.configuration, board = self.board
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var round = 0
                    while !Task.isCancelled {
                        await self.refresh(publishing: round % 2 == 0)
                        round += 1
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                group.addTask {
                    await self.retention.run(configuration: { configuration }, safePositions: {
                        board.runs.withLockedValue { $0 }.compactMapValues { $0.runner.live.progress?.safePosition }
                    })
                }
                group.addTask {
                    for await _ in self.hangups {
                        self.logger.warning("SIGHUP ignored: in cluster mode every node reads the configuration when it starts; change the file on every node and restart the nodes one at a time (systemctl restart), not reload",
                                            metadata: ["ferry.node": "\(self.node.name)"])
                    }
                }
            }
        }
    }

    /// Builds the views of this node's pipelines, and of those whose run failed here and that
    /// no node runs yet (publishing them when asked), takes the others' from etcd, and shows the
    /// rest as paused or unowned with their saved positions.
    func refresh(publishing: Bool) async {
        let runs = board.runs.withLockedValue { $0 }
        let picture = board.picture.withLockedValue { $0 }
        let failed = board.failed.withLockedValue { $0 }
        var local: [PipelineView] = []
        var failedHere: [PipelineView] = []
        for spec in configuration.pipelines {
            if let run = runs[spec.name] {
                var view = await figures.view(spec, state: run.stopping ? "stopping" : "running", progress: run.runner.live.progress,
                                              logEnd: run.runner.sourceLogEnd, store: store, retention: retention.report(spec.name), walRetention: retention.slotReport(spec.name))
                view.owner = node.name
                view.epoch = run.epoch
                local.append(view)
            } else if failed[spec.name] != nil, picture.owners[spec.name] == nil {
                failedHere.append(await figures.view(spec, state: "failed", progress: nil, logEnd: nil, store: store, retention: nil))
            }
        }
        if publishing, let encoded = try? JSONEncoder().encode(local + failedHere) {
            do {
                try await node.publish(view: [UInt8](encoded))
            } catch {
                logger.debug("cannot publish this node's pipeline figures", metadata: [LoggingKeys.error: .error(error)])
            }
        }
        var remote: [String: PipelineView] = [:]
        for (member, bytes) in (try? await node.publishedViews()) ?? [:] where member != node.name {
            for view in (try? JSONDecoder().decode([PipelineView].self, from: Data(bytes))) ?? []
            where picture.owners[view.name]?.node == member || (view.state == "failed" && picture.owners[view.name] == nil) {
                remote[view.name] = view
            }
        }
        var all: [PipelineView] = []
        for spec in configuration.pipelines {
            if let view = (local + failedHere).first(where: { $0.name == spec.name }) ?? remote[spec.name] {
                all.append(view)
                continue
            }
            let claim = picture.owners[spec.name]
            let state = picture.controls.paused[spec.name] != nil ? "paused" : claim == nil ? "unowned" : "starting"
            var view = await figures.view(spec, state: state, progress: nil, logEnd: nil, store: store, retention: nil)
            view.owner = claim?.node
            view.epoch = claim?.epoch
            all.append(view)
        }
        views.withLockedValue { $0 = all }
        let previous = localViews.withLockedValue { previous in
            defer { previous = local }
            return previous
        }
        // Each node exports the figures of what it runs; the others export theirs.
        figures.updateGauges(local, previous: previous, configuration: configuration)
        for spec in configuration.pipelines {
            figures.gauge("ferry_pipeline_owned", [("pipeline", spec.name)]).record(runs[spec.name] == nil ? 0 : 1)
        }
        figures.gauge("ferry_cluster_members", []).record(picture.members.count)
        figures.gauge("ferry_cluster_lease_writable_seconds", []).record(Self.seconds(node.writeWindow()))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func pipelines() async -> [PipelineView] {
        if let views = views.withLockedValue({ $0 }) { return views }
        await refresh(publishing: false)
        return views.withLockedValue { $0 } ?? []
    }

    private func known(_ pipeline: String) throws {
        guard configuration.pipelines.contains(where: { $0.name == pipeline }) else {
            throw ControlRequestError(.notFound, "no pipeline named \(pipeline)")
        }
    }

    func pause(pipeline: String, actor: String) async throws {
        try known(pipeline)
        guard try await etcd({ try await self.node.pause(pipeline, actor: actor) }) else {
            throw ControlRequestError(.conflict, "pipeline \(pipeline) is paused already")
        }
        try await store.audit(pipeline: pipeline, action: "pause", detail: "pause requested through node \(node.name)", actor: actor)
        // No run to stop and record it: recorded here, so `ferry status` reads it as paused.
        if try await etcd({ try await self.node.owners()[pipeline] == nil }) {
            try await store.audit(pipeline: pipeline, action: "stop", detail: "paused while no node ran it", actor: "ferry")
        }
        await refresh(publishing: false)
    }

    func resume(pipeline: String, actor: String) async throws {
        try known(pipeline)
        guard try await etcd({ try await self.node.resume(pipeline) }) else {
            throw ControlRequestError(.conflict, "pipeline \(pipeline) is not paused")
        }
        try await store.audit(pipeline: pipeline, action: "resume", detail: "resume requested through node \(node.name)", actor: actor)
        await refresh(publishing: false)
    }

    func restart(pipeline: String, actor: String) async throws {
        try known(pipeline)
        guard try await etcd({ try await self.node.requestRestart(pipeline, actor: actor) }) else {
            throw ControlRequestError(.conflict, "pipeline \(pipeline) is paused; resume it to run it again")
        }
        try await store.audit(pipeline: pipeline, action: "restart", detail: "restart requested through node \(node.name)", actor: actor)
    }

    func snapshot(pipeline: String, tables: [String], actor: String) async throws -> [String] {
        try await OperatorRequests.snapshot(configuration: configuration, pipeline: pipeline, tables: tables, store: store, actor: actor, logger: logger)
    }

    /// A paused pipeline is not restarted: the rewind applies when it is resumed.
    func rewind(pipeline: String, sink: String, position: String, actor: String) async throws {
        try await OperatorRequests.rewind(configuration: configuration, pipeline: pipeline, sink: sink, position: position, store: store, actor: actor)
        _ = try await etcd { try await self.node.requestRestart(pipeline, actor: actor) }
    }

    func auditLog(pipeline: String?, limit: Int) async throws -> [AuditEntryView] {
        try await OperatorRequests.auditLog(store: store, pipeline: pipeline, limit: limit)
    }

    func reload(actor: String) async throws -> String {
        throw ControlRequestError(.conflict, "in cluster mode every node reads the configuration when it starts: change the file on every node, then restart the nodes one at a time (each hands its pipelines to the others first)")
    }

    func redactedConfiguration() -> String { configuration.redactedJSON() }

    func token(hash: String) async throws -> APIToken? {
        try await OperatorRequests.token(store: store, hash: hash)
    }

    /// Ready: the node holds its lease and every pipeline it runs is running.
    func isReady() async -> Bool {
        guard node.isWritable else { return false }
        return localViews.withLockedValue { $0 }.allSatisfy { $0.state == "running" }
    }

    func cluster() async throws -> ClusterView? {
        let picture = board.picture.withLockedValue { $0 }
        let members = picture.members.keys.sorted().map { name in
            let info = picture.members[name].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0)) }
            return ClusterView.Member(name: name, started: info?["started"],
                                      pipelines: picture.owners.filter { $0.value.node == name }.keys.sorted())
        }
        let pipelines = configuration.pipelines.map { spec in
            ClusterView.Ownership(pipeline: spec.name, owner: picture.owners[spec.name]?.node, epoch: picture.owners[spec.name]?.epoch,
                                  paused: picture.controls.paused[spec.name] != nil)
        }
        let history = try await store.ownershipHistory(limit: 100)
        return ClusterView(node: node.name, leaseSeconds: Int(node.leaseSeconds), writableSeconds: Self.seconds(node.writeWindow()),
                           members: members, pipelines: pipelines, history: history)
    }

    /// An etcd call on behalf of an operator; its failure says the cluster state is unreachable.
    private func etcd<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await clusterStateCall(node: node.name, body)
    }
}

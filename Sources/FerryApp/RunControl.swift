import ControlPlane
import FerryCore
import Foundation
import Logging
import Metrics
import MySQLSource
import NIOConcurrencyHelpers
import Pipeline
import ServiceLifecycle
import StateStore

/// The control plane's view of `ferry run`: the supervised pipelines, the state store, and the
/// figures `ferry status` shows, refreshed once a second from the runs' live figures in memory
/// (requests read the last refresh). The refresh also sets the Prometheus gauges.
final class RunControl: ControlBackend, Service {
    let fleet: PipelineFleet
    let store: SQLiteCheckpointStore
    let logger: Logger
    /// The configuration running now (a reload replaces it).
    var configuration: FerryConfiguration { fleet.current.withLockedValue { $0.configuration } }
    var supervisors: [String: PipelineSupervisor] { fleet.current.withLockedValue { $0.supervisors } }
    /// Both at once, from the same moment.
    private var running: (FerryConfiguration, [String: PipelineSupervisor]) {
        fleet.current.withLockedValue { ($0.configuration, $0.supervisors) }
    }
    private let views = NIOLockedValueBox<[PipelineView]?>(nil)
    /// Refreshes started, and the newest one whose views are published: a refresh that began
    /// before a reload must not publish its older pipelines over a newer refresh's.
    private let refreshes = NIOLockedValueBox<(started: Int, published: Int)>((0, 0))
    private let figures = PipelineFigures()
    /// Per pipeline, what its source keeps that it needs: the oldest binlog file, or the WAL of its slot.
    private let retention: RetentionWatch

    init(fleet: PipelineFleet, store: SQLiteCheckpointStore, logger: Logger) {
        self.fleet = fleet
        self.store = store
        self.logger = logger
        self.retention = RetentionWatch(logger: logger)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        await self.refresh()
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await self.followSourcesOfIdlePipelines()
                        try? await Task.sleep(for: .seconds(Self.idleSourceSeconds))
                    }
                }
                group.addTask {
                    await self.retention.run(configuration: { self.configuration }, safePositions: { await self.safePositions() })
                }
            }
        }
    }

    /// How often the log end of a source with an idle pipeline is read.
    static let idleSourceSeconds = 5

    /// A paused, stopped or failed pipeline reads no more of the source's log, yet falls behind
    /// with every change the source takes: its log end is read from the source instead, so its lag
    /// (and an alert on it) grows. In its own loop: an unreachable source cannot hold up the views.
    func followSourcesOfIdlePipelines() async {
        let (configuration, supervisors) = running
        var idle: [String: [SourceLogEnd]] = [:]
        for spec in configuration.pipelines {
            guard let supervisor = supervisors[spec.name], let logEnd = supervisor.logEnd, await Self.idle(supervisor.state) else { continue }
            idle[spec.source, default: []].append(logEnd)
        }
        // One look per source, however many of its pipelines are idle.
        for (name, logEnds) in idle {
            guard let source = configuration.sources[name] else { continue }
            do {
                let log = try await Status.sourceLog(source, logger: logger)
                guard let end = log.end else { continue }
                for logEnd in logEnds {
                    for (file, size) in log.files where file != end.file { logEnd.binlogFileEnded(file, size: size) }
                    logEnd.reached(.binlog(file: end.file, offset: end.offset))
                }
            } catch {
                logger.debug("cannot reach the source for an idle pipeline's lag", metadata: [LoggingKeys.source: "\(name)", LoggingKeys.error: .error(error)])
            }
        }
    }

    /// Where each pipeline's records say it is safe up to, from its run or else the state file.
    func safePositions() async -> [String: SourcePosition] {
        var positions: [String: SourcePosition] = [:]
        for (name, supervisor) in running.1 {
            if let live = supervisor.live.progress?.safePosition {
                positions[name] = live
            } else {
                positions[name] = try? await store.checkpoint(pipeline: name)?.safePosition
            }
        }
        return positions
    }

    static func idle(_ state: String) -> Bool { ["paused", "stopped", "failed"].contains(state) }

    func pipelines() async -> [PipelineView] {
        if let views = views.withLockedValue({ $0 }) { return views }
        await refresh()
        return views.withLockedValue { $0 } ?? []
    }

    /// Builds every pipeline's view from its run's live figures and publishes it. The state file
    /// is read only for what a run does not keep in memory: snapshot progress, and positions
    /// before a pipeline's first run has reported.
    func refresh() async {
        let generation = refreshes.withLockedValue { $0.started += 1; return $0.started }
        let (configuration, supervisors) = running
        var fresh: [PipelineView] = []
        for spec in configuration.pipelines {
            guard let supervisor = supervisors[spec.name] else { continue }
            fresh.append(await figures.view(spec, state: await supervisor.state, progress: supervisor.live.progress, logEnd: supervisor.logEnd,
                                            store: store, retention: retention.report(spec.name), walRetention: retention.slotReport(spec.name)))
        }
        let newest = refreshes.withLockedValue { counts in
            guard generation > counts.published else { return false }
            counts.published = generation
            return true
        }
        guard newest else { return }
        let previous = views.withLockedValue { previous in
            defer { previous = fresh }
            return previous ?? []
        }
        figures.updateGauges(fresh, previous: previous, configuration: configuration)
    }

    func supervisor(_ pipeline: String) throws -> PipelineSupervisor {
        guard let supervisor = supervisors[pipeline] else { throw ControlRequestError(.notFound, "no pipeline named \(pipeline)") }
        return supervisor
    }

    func pause(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).pause(actor: actor)
        await refresh()
    }

    func resume(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).resume(actor: actor)
        await refresh()
    }

    func restart(pipeline: String, actor: String) async throws {
        try await supervisor(pipeline).restart(actor: actor)
        await refresh()
    }

    func snapshot(pipeline: String, tables: [String], actor: String) async throws -> [String] {
        try await OperatorRequests.snapshot(configuration: configuration, pipeline: pipeline, tables: tables, store: store, actor: actor, logger: logger)
    }

    func rewind(pipeline: String, sink: String, position: String, actor: String) async throws {
        try await OperatorRequests.rewind(configuration: configuration, pipeline: pipeline, sink: sink, position: position, store: store, actor: actor)
        try await restart(pipeline: pipeline, actor: actor)
    }

    func auditLog(pipeline: String?, limit: Int) async throws -> [AuditEntryView] {
        try await OperatorRequests.auditLog(store: store, pipeline: pipeline, limit: limit)
    }

    func redactedConfiguration() -> String { configuration.redactedJSON() }

    func reload(actor: String) async throws -> String {
        let summary = try await fleet.reload(actor: actor)
        await refresh()
        return summary
    }

    func token(hash: String) async throws -> APIToken? {
        try await OperatorRequests.token(store: store, hash: hash)
    }

    /// From the same figures the API shows, so a client that saw ready reads `running` there too.
    func isReady() async -> Bool {
        await pipelines().allSatisfy { $0.state == "running" || $0.state == "paused" }
    }
}

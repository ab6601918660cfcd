import ControlPlane
import FerryCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StateStore
import UnixSignals

/// The pipelines `ferry run` runs, and the one task that starts and stops them: every pipeline
/// at start, and on a reload (SIGHUP, `POST /api/v1/reload`) the ones the file adds, removes or
/// changes — the others keep running untouched. A pipeline that fails, or finishes
/// (`snapshot: initial_only`), still ends `ferry run`; one a reload stops does not.
actor PipelineFleet: Service {
    /// What runs now, for readers outside the actor (the control plane's refresh, once a second).
    struct Current: Sendable {
        var configuration: FerryConfiguration
        var supervisors: [String: PipelineSupervisor]
    }

    nonisolated let current: NIOLockedValueBox<Current>
    private let store: SQLiteCheckpointStore
    private let logger: Logger
    /// Read again on every reload, for `${NAME}`.
    private let environment: @Sendable () -> [String: String]
    /// Supervisors to start, handed to the run loop by `nextStarts()`.
    private var toStart: [PipelineSupervisor]
    private var startWaiter: CheckedContinuation<[PipelineSupervisor]?, Never>?
    /// Supervisors a reload is stopping: their end is expected, not the end of `ferry run`.
    private var retiring: Set<ObjectIdentifier> = []
    /// Every supervisor whose run has ended, so a reload never waits for an end that happened.
    private var ended: Set<ObjectIdentifier> = []
    private var retireWaiters: [ObjectIdentifier: CheckedContinuation<Void, Never>] = [:]
    /// SIGHUP, trapped before the pipelines are built so an early `systemctl reload` cannot
    /// end the process.
    private let hangups: UnixSignalsSequence
    private var reloading = false
    private var shuttingDown = false

    init(configuration: FerryConfiguration, supervisors: [PipelineSupervisor], store: SQLiteCheckpointStore, hangups: UnixSignalsSequence,
         logger: Logger, environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment }) {
        current = NIOLockedValueBox(Current(configuration: configuration,
                                            supervisors: Dictionary(uniqueKeysWithValues: supervisors.map { ($0.name, $0) })))
        toStart = supervisors
        self.hangups = hangups
        self.store = store
        self.logger = logger
        self.environment = environment
    }

    private enum Event: Sendable {
        case start([PipelineSupervisor]?)
        case ended(PipelineSupervisor, (any Error)?)
        case signalsDone
    }

    nonisolated func run() async throws {
        try await withGracefulShutdownHandler {
            try await supervise()
        } onGracefulShutdown: {
            Task { await self.shutdownAll() }
        }
    }

    /// The run loop: one child per running pipeline, one waiting for pipelines to start, one
    /// turning SIGHUP into a reload.
    private nonisolated func supervise() async throws {
        var failure: (any Error)?
        await withTaskGroup(of: Event.self) { group in
            group.addTask { .start(await self.nextStarts()) }
            group.addTask {
                for await _ in self.hangups {
                    do {
                        _ = try await self.reload(actor: "signal")
                    } catch {
                        // Already logged and audited; the running configuration stays.
                    }
                }
                return .signalsDone
            }
            var running = 0
            while let event = await group.next() {
                switch event {
                case .start(let supervisors?):
                    for supervisor in supervisors {
                        running += 1
                        group.addTask {
                            do {
                                try await supervisor.run()
                                return .ended(supervisor, nil)
                            } catch {
                                return .ended(supervisor, error)
                            }
                        }
                    }
                    group.addTask { .start(await self.nextStarts()) }
                case .start(nil), .signalsDone:
                    break
                case .ended(let supervisor, let error):
                    running -= 1
                    if await self.runEnded(supervisor) {
                        if let error {
                            logger.warning("a pipeline stopped by a reload ended with an error", metadata: [
                                LoggingKeys.pipeline: "\(supervisor.name)", LoggingKeys.error: .error(error),
                            ])
                        }
                    } else {
                        // Ended by itself: it failed, or finished; either ends ferry run, as before.
                        if let error, failure == nil { failure = error }
                        await self.shutdownAll()
                    }
                }
                if await self.isShuttingDown, running == 0 {
                    group.cancelAll()
                    break
                }
            }
        }
        if let failure { throw failure }
    }

    private var isShuttingDown: Bool { shuttingDown }

    private func nextStarts() async -> [PipelineSupervisor]? {
        if shuttingDown { return nil }
        if !toStart.isEmpty {
            defer { toStart = [] }
            return toStart
        }
        return await withCheckedContinuation { startWaiter = $0 }
    }

    private func handToRunLoop(_ supervisors: [PipelineSupervisor]) {
        toStart += supervisors
        guard let waiter = startWaiter, !toStart.isEmpty else { return }
        startWaiter = nil
        let starting = toStart
        toStart = []
        waiter.resume(returning: starting)
    }

    /// Graceful shutdown of `ferry run`: every pipeline drains and stops; nothing starts again.
    func shutdownAll() async {
        guard !shuttingDown else { return }
        shuttingDown = true
        startWaiter?.resume(returning: nil)
        startWaiter = nil
        // A reload waiting for a pipeline to stop gives up: nothing starts any more.
        for waiter in retireWaiters.values { waiter.resume() }
        retireWaiters = [:]
        let supervisors = current.withLockedValue { Array($0.supervisors.values) }
        for supervisor in supervisors { await supervisor.shutdown() }
    }

    /// Records that `supervisor`'s run ended, wakes a reload waiting for it, and says whether a
    /// reload stopped it (else it ended by itself).
    private func runEnded(_ supervisor: PipelineSupervisor) -> Bool {
        let id = ObjectIdentifier(supervisor)
        ended.insert(id)
        retireWaiters.removeValue(forKey: id)?.resume()
        return retiring.remove(id) != nil
    }

    /// Until `supervisor`'s run has ended, or ferry stops.
    private func untilEnded(_ supervisor: PipelineSupervisor) async {
        let id = ObjectIdentifier(supervisor)
        if ended.contains(id) || shuttingDown { return }
        await withCheckedContinuation { retireWaiters[id] = $0 }
    }

    /// Reads the file again and applies what changed: pipelines added start, removed ones drain
    /// and stop, changed ones (their settings, source or sinks) drain and start with the new
    /// definition, the rest keep running. Returns what it did; an invalid file changes nothing.
    func reload(actor: String) async throws -> String {
        guard !shuttingDown else { throw ControlRequestError(.conflict, "ferry is stopping") }
        guard !reloading else { throw ControlRequestError(.conflict, "a reload is already under way") }
        reloading = true
        defer { reloading = false }
        let old = current.withLockedValue { $0.configuration }
        let new: FerryConfiguration
        var built: [PipelineSupervisor] = []
        let plan: ReloadPlan
        do {
            new = try FerryConfiguration.load(path: old.file, environment: environment())
            plan = ReloadPlan.make(from: old, to: new)
            if let refusal = plan.refusal {
                throw FerryError(code: .configInvalid, message: "\(old.file): \(refusal)", fix: "restart ferry run to move the state")
            }
            // Built before anything stops: a definition that cannot be built refuses the reload.
            for name in plan.added + plan.changed.keys.sorted() {
                guard let spec = new.pipelines.first(where: { $0.name == name }) else { continue }
                built.append(PipelineSupervisor(runner: try Run.buildRunner(spec, configuration: new, store: store, logger: logger), store: store))
            }
        } catch {
            logger.error("reload refused; the running configuration stays", metadata: [LoggingKeys.error: .error(error), "ferry.actor": "\(actor)"])
            throw ControlRequestError(.badRequest, "reload refused, the running configuration stays: \(ErrorReport.line(error))")
        }
        for (name, reasons) in plan.changed.sorted(by: { $0.key < $1.key }) {
            guard let before = old.pipelines.first(where: { $0.name == name }), let after = new.pipelines.first(where: { $0.name == name }) else { continue }
            do {
                let added = try await Snapshots.requestNewlyIncluded(before: before, after: after, configuration: new, store: store, actor: actor, logger: logger)
                if !added.isEmpty {
                    logger.notice("tables newly included by a reload are snapshotted while the pipeline streams", metadata: [
                        LoggingKeys.pipeline: "\(name)", "ferry.tables": "\(added.map(\.description).joined(separator: ", "))",
                    ])
                }
            } catch {
                logger.warning("cannot list the tables a reload added; request their snapshot with ferry snapshot", metadata: [
                    LoggingKeys.pipeline: "\(name)", LoggingKeys.error: .error(error), "ferry.changed": "\(reasons.joined(separator: ", "))",
                ])
            }
        }
        // Removed and changed pipelines drain and commit before their successors start. Chosen
        // and marked in one step after the last wait, so none ends unnoticed in between.
        guard !shuttingDown else { throw ControlRequestError(.conflict, "ferry is stopping; the reload was not applied") }
        let stopping = current.withLockedValue { current in (plan.removed + plan.changed.keys.sorted()).compactMap { current.supervisors[$0] } }
            .filter { !ended.contains(ObjectIdentifier($0)) }
        for supervisor in stopping { retiring.insert(ObjectIdentifier(supervisor)) }
        // An operator's pause outlives the change: the successor starts held.
        var paused: Set<String> = []
        for supervisor in stopping where await supervisor.shutdown() { paused.insert(supervisor.name) }
        for supervisor in stopping { await untilEnded(supervisor) }
        for supervisor in built where paused.contains(supervisor.name) { try? await supervisor.pause(actor: actor) }
        // Published and handed over in one step, after the last wait.
        guard !shuttingDown else { throw ControlRequestError(.conflict, "ferry stopped during the reload; nothing was started") }
        current.withLockedValue { current in
            var supervisors = current.supervisors
            for name in plan.removed + plan.changed.keys { supervisors[name] = nil }
            for supervisor in built { supervisors[supervisor.name] = supervisor }
            var configuration = new
            // The listener keeps its settings until ferry run restarts.
            configuration.server = current.configuration.server
            configuration.definitions["server"] = current.configuration.definitions["server"]
            current = Current(configuration: configuration, supervisors: supervisors)
        }
        handToRunLoop(built)
        for name in plan.added { try? await store.audit(pipeline: name, action: "reload", detail: "added by a reload: started", actor: actor) }
        for name in plan.removed { try? await store.audit(pipeline: name, action: "reload", detail: "removed by a reload: drained and stopped", actor: actor) }
        for (name, reasons) in plan.changed {
            try? await store.audit(pipeline: name, action: "reload", detail: "changed by a reload (\(reasons.joined(separator: ", "))): drained and started again",
                                   actor: actor)
        }
        logger.notice("configuration reloaded", metadata: ["ferry.file": "\(new.file)", "ferry.changes": "\(plan.summary)", "ferry.actor": "\(actor)"])
        return plan.summary
    }
}

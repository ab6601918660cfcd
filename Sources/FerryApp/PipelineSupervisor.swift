import ControlPlane
import FerryCore
import Pipeline
import ServiceLifecycle
import StateStore

/// One pipeline under `ferry run`: runs it, and pauses (drain, commit, hold), resumes or restarts
/// it when asked, and stops it for good (`shutdown`) when ferry stops or a reload removes or
/// replaces it. `PipelineFleet` owns the task that runs it.
actor PipelineSupervisor {
    nonisolated let name: String
    private let runner: PipelineRunner
    private let store: SQLiteCheckpointStore
    private var lifecycle = PipelineLifecycle()
    private var current: StopSignal?
    /// Set while paused: resumed with true to run again, false to stop.
    private var held: CheckedContinuation<Bool, Never>?

    init(runner: PipelineRunner, store: SQLiteCheckpointStore) {
        self.name = runner.configuration.name
        self.runner = runner
        self.store = store
    }

    /// The figures of the current or last run.
    nonisolated var live: LiveProgress { runner.live }

    /// The source's end of log as the pipeline's stream saw it.
    nonisolated var logEnd: SourceLogEnd? { runner.sourceLogEnd }

    /// `starting`, `running`, `stopping`, `paused`, `stopped` or `failed`.
    var state: String { lifecycle.name }

    func run() async throws {
        var next = lifecycle.runStarting()
        while true {
            switch next {
            case .finish:
                return
            case .hold:
                guard await withCheckedContinuation({ held = $0 }) else { return }
                next = lifecycle.runStarting()
            case .run:
                let stop = StopSignal()
                current = stop
                do {
                    try await runner.run(stop: stop)
                } catch {
                    current = nil
                    lifecycle.runFailed()
                    // `ferry status` reads the failure and its error from here after the process ended.
                    try? await store.audit(pipeline: name, action: "error", detail: ErrorReport.line(error))
                    throw error
                }
                current = nil
                next = lifecycle.runEnded()
            }
        }
    }

    func pause(actor: String) async throws {
        await carryOut(try requested { try $0.pauseRequested() })
        try? await store.audit(pipeline: name, action: "pause", detail: "pause requested", actor: actor)
    }

    func resume(actor: String) async throws {
        await carryOut(try requested { try $0.resumeRequested() })
        try? await store.audit(pipeline: name, action: "resume", detail: "resume requested", actor: actor)
    }

    func restart(actor: String) async throws {
        await carryOut(try requested { try $0.restartRequested() })
        try? await store.audit(pipeline: name, action: "restart", detail: "restart requested", actor: actor)
    }

    /// Graceful shutdown of `ferry run`.
    /// Stops the pipeline; returns whether an operator's pause was in force, read in the same
    /// step as the stop so no request can fall between the two.
    @discardableResult
    func shutdown() async -> Bool {
        let wasPaused = state == "paused"
        let wasHeld = held != nil
        await carryOut(lifecycle.shutdownRequested())
        if wasHeld { try? await store.audit(pipeline: name, action: "stop", detail: "stopped while paused") }
        return wasPaused
    }

    /// Applies a request to the lifecycle; a refusal becomes the API's 409.
    private func requested(_ request: (inout PipelineLifecycle) throws -> PipelineLifecycle.Action) throws -> PipelineLifecycle.Action {
        do {
            return try request(&lifecycle)
        } catch let conflict as PipelineLifecycle.Conflict {
            throw ControlRequestError(.conflict, "pipeline \(name): \(conflict.message)")
        }
    }

    /// Carries out a lifecycle action. The held continuation and the stop signal are taken before
    /// the first suspension, so a request that arrives meanwhile sees the state this one left.
    private func carryOut(_ action: PipelineLifecycle.Action) async {
        switch action {
        case .stopRun:
            await current?.stop()
        case .releaseToRun, .releaseToStop:
            let held = self.held
            self.held = nil
            held?.resume(returning: action == .releaseToRun)
        case .none:
            break
        }
    }
}

import ControlPlane
import FerryCore
import Pipeline
import ServiceLifecycle
import StateStore

/// One pipeline under `ferry run`: runs it, and pauses (drain, commit, hold), resumes or restarts
/// it when asked. A pipeline that fails still ends `ferry run` with its error, as before; one
/// that finishes (`snapshot: initial_only`) ends it with success.
actor PipelineSupervisor {
    enum State: String, Sendable {
        case starting, running, paused, stopping, stopped, failed
    }

    private enum Request {
        case pause, restart, shutdown
    }

    nonisolated let name: String
    private let runner: PipelineRunner
    private let store: SQLiteCheckpointStore
    private(set) var state = State.starting
    private var current: StopSignal?
    private var request: Request?
    /// Set while paused: resumed with true to run again, false to stop.
    private var held: CheckedContinuation<Bool, Never>?

    init(runner: PipelineRunner, store: SQLiteCheckpointStore) {
        self.name = runner.configuration.name
        self.runner = runner
        self.store = store
    }

    func run() async throws {
        while true {
            let stop = StopSignal()
            current = stop
            if request == .shutdown { return }
            state = .running
            do {
                try await runner.run(stop: stop)
            } catch {
                state = .failed
                throw error
            }
            current = nil
            switch request {
            case .pause:
                state = .paused
                request = nil
                let again = await withCheckedContinuation { held = $0 }
                if !again {
                    state = .stopped
                    return
                }
            case .restart:
                request = nil
                state = .starting
            case .shutdown, nil:
                state = .stopped
                return
            }
        }
    }

    func pause(actor: String) async throws {
        guard state == .running || state == .starting else { throw ControlRequestError(.conflict, "pipeline \(name) is \(state.rawValue), not running") }
        request = .pause
        state = .stopping
        try? await store.audit(pipeline: name, action: "pause", detail: "pause requested", actor: actor)
        await current?.stop()
    }

    func resume(actor: String) async throws {
        guard state == .paused, let held else { throw ControlRequestError(.conflict, "pipeline \(name) is \(state.rawValue), not paused") }
        self.held = nil
        state = .starting
        try? await store.audit(pipeline: name, action: "resume", detail: "resume requested", actor: actor)
        held.resume(returning: true)
    }

    func restart(actor: String) async throws {
        switch state {
        case .paused: try await resume(actor: actor)
        case .running, .starting:
            request = .restart
            state = .stopping
            try? await store.audit(pipeline: name, action: "restart", detail: "restart requested", actor: actor)
            await current?.stop()
        default: throw ControlRequestError(.conflict, "pipeline \(name) is \(state.rawValue); it can be restarted only while running or paused")
        }
    }

    /// Graceful shutdown of `ferry run`.
    func shutdown() async {
        request = .shutdown
        if let held {
            self.held = nil
            try? await store.audit(pipeline: name, action: "stop", detail: "stopped while paused")
            held.resume(returning: false)
        }
        await current?.stop()
    }
}

/// A supervised pipeline as a swift-service-lifecycle service.
struct SupervisedPipelineService: Service {
    let supervisor: PipelineSupervisor

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await supervisor.run()
        } onGracefulShutdown: {
            Task { await supervisor.shutdown() }
        }
    }
}
